//! What the switch tells the journal. Records carry card data only in RAM
//! (the PAN, to be sealed by the writer); sensitive authentication data is
//! stripped before a message becomes a record (PCI DSS 3.3.1).

use zeroize::Zeroizing;

use super::outcome::TxnOutcome;

/// A request the switch accepted, with where it is going (if anywhere).
/// Durable before the request is forwarded.
#[derive(Debug, Clone, Default)]
pub struct Accepted {
    pub id: u64,
    pub received_at_ms: i64,
    pub acquirer: String,
    pub request_mti: String,
    pub processing_code: Option<String>,
    pub amount_minor: Option<i64>,
    pub transmission_at: Option<String>,
    pub stan: Option<String>,
    pub local_time: Option<String>,
    pub local_date: Option<String>,
    pub mcc: Option<String>,
    pub pos_entry_mode: Option<String>,
    pub acquirer_inst: Option<String>,
    pub rrn: Option<String>,
    pub terminal_id: Option<String>,
    pub merchant_id: Option<String>,
    pub merchant_name_loc: Option<String>,
    pub currency: Option<String>,
    pub original_data: Option<String>,
    pub replacement_amount: Option<i64>,
    /// The whole PAN, sealed by the writer; never stored as is.
    pub pan: Option<Zeroizing<Vec<u8>>>,
    pub route: Option<Forwarded>,
}

/// Where an accepted request is forwarded.
#[derive(Debug, Clone, Default)]
pub struct Forwarded {
    pub issuer: String,
    pub issuer_stan: String,
    /// The message as forwarded (issuer's dialect), without track data,
    /// PIN block or ICC data: enough to reverse it after a crash.
    pub message: Zeroizing<Vec<u8>>,
}

/// The final answer given to the acquirer.
#[derive(Debug, Clone)]
pub struct Answered {
    pub id: u64,
    pub response_code: Option<String>,
    pub approval_code: Option<String>,
    pub outcome: TxnOutcome,
    pub response_at_ms: Option<i64>,
    /// When the response was handed to the acquirer's connection; `None`
    /// when it could not be, or not yet (the answer is journaled before it
    /// is written; [`Record::Delivery`] follows).
    pub sent_at_ms: Option<i64>,
}

/// A store-and-forward entry queued.
#[derive(Debug, Clone)]
pub struct SafQueued {
    pub id: u64,
    pub txn_id: Option<u64>,
    pub kind: &'static str,
    pub issuer: String,
    /// Issuer-dialect message without SAD; sealed by the writer.
    pub message: Zeroizing<Vec<u8>>,
    pub queued_at_ms: i64,
}

/// One journal record.
#[derive(Debug, Clone)]
pub enum Record {
    Accepted(Box<Accepted>),
    Answered(Answered),
    /// Whether the answer of transaction `id`, journaled before it was
    /// written, reached the acquirer's connection.
    Delivery {
        id: u64,
        at_ms: i64,
        delivered: bool,
    },
    /// Something happened to a transaction (time-out, stand-in, ...).
    Event {
        txn_id: Option<u64>,
        at_ms: i64,
        kind: &'static str,
        detail: String,
    },
    SafQueued(SafQueued),
    /// An attempt failed; the entry stays pending.
    SafAttempted {
        id: u64,
        attempts: u32,
    },
    /// Delivered (acknowledged by the issuer) or given up.
    SafDone {
        id: u64,
        delivered: bool,
        attempts: u32,
        at_ms: i64,
    },
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
