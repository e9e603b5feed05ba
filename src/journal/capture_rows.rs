//! What clearing reads from the journal, store-neutral: the requests its
//! capture derives from (borrowed, so a cut-off over millions of rows
//! allocates nothing per row) and what a presentment needs of its row,
//! the PAN opened. Clearing keeps what it consumed in its own tables; the
//! journal knows nothing of clearing.

use zeroize::Zeroizing;

/// The request MTIs capture looks at.
pub const CAPTURE_MTIS: [&str; 10] = [
    "0100", "0101", "0200", "0201", "0220", "0221", "0400", "0401", "0420", "0421",
];

/// Which requests of the [`CAPTURE_MTIS`] to read, oldest (lowest id) first.
#[derive(Debug, Clone, Copy)]
pub enum CaptureRows<'a> {
    /// Every one received before `before_ms` (a business day's end).
    ReceivedBefore { before_ms: i64 },
    /// Those of one terminal (DE41 as given, or with trailing spaces
    /// trimmed) with ids in `after_id + 1 ..= through_id`.
    OfTerminal {
        terminal: &'a str,
        after_id: i64,
        through_id: i64,
    },
}

/// The columns of one request that capture needs, as stored (text as
/// bytes), valid for one call of the reader's callback.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaptureRow<'a> {
    pub id: i64,
    pub request_mti: &'a [u8],
    pub processing_code: Option<&'a [u8]>,
    pub amount_minor: Option<i64>,
    pub stan: Option<&'a [u8]>,
    pub rrn: Option<&'a [u8]>,
    pub terminal_id: Option<&'a [u8]>,
    /// DE90 / DE56 as received.
    pub original_data: Option<&'a [u8]>,
    /// DE95's replacement amount.
    pub replacement_amount: Option<i64>,
    pub outcome: Option<&'a [u8]>,
    pub response_code: Option<&'a [u8]>,
}

/// What a presentment needs of its journal row, the PAN opened (zeroized
/// when dropped).
#[derive(Debug)]
pub struct PresentmentRow {
    pub txn_id: i64,
    pub processing_code: Option<String>,
    pub received_at_ms: i64,
    pub pos_entry_mode: Option<String>,
    pub approval_code: Option<String>,
    pub terminal_id: Option<String>,
    pub currency: Option<String>,
    pub pan_masked: Option<String>,
    /// `None` when the row holds no sealed PAN.
    pub pan: Option<Zeroizing<Vec<u8>>>,
}
