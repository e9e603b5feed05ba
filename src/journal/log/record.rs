//! One log entry on disk: a 17-byte header (magic, CRC32C, length,
//! sequence number) and one journal record in a compact binary form. Pure
//! (std and crc32c only, no I/O) so the fuzz target and the reader can run
//! it over any byte slice. Card data is already sealed here: the entry
//! holds the PAN only as AES-GCM ciphertext with its key id, its keyed
//! hash and its masked form ([`super::seal`] makes them); never SAD.
//!
//! Every length is checked against a limit before anything is allocated,
//! and every malformed input is a typed [`DecodeError`], never a panic.

use std::borrow::Cow;
use std::fmt;

/// The first byte of every entry: format version 1. Never 0, so a
/// preallocated (zero) region never looks like an entry.
pub const MAGIC: u8 = 0xC1;
/// magic (1) + CRC32C (4) + payload length (4) + sequence number (8).
pub const HEADER_BYTES: usize = 17;
/// A payload's bytes at most: room for a sealed 64 KiB message and the rest.
pub const PAYLOAD_BYTES_MAX: usize = 128 * 1024;
/// An entry's bytes at most.
pub const ENTRY_BYTES_MAX: usize = HEADER_BYTES + PAYLOAD_BYTES_MAX;
/// A short text (ISO fields, names, key ids) at most: its length is one byte.
pub const SHORT_BYTES_MAX: usize = 255;
/// An event's detail at most; [`super::seal`] cuts longer ones.
pub const DETAIL_BYTES_MAX: usize = 2048;
/// A sealed blob at most: a 64 KiB frame, its nonce and its tag.
pub const SEALED_BYTES_MAX: usize = 65_535 + 12 + 16;

pub use super::decode::decode_entry;
pub use super::encode::encode_entry;

/// Bytes sealed under a key, with the key's id (keys rotate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    /// nonce || ciphertext || tag, as [`crate::journal::crypto`] makes it.
    pub blob: Vec<u8>,
}

/// The PAN as the journal keeps it: sealed, keyed hash, masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPan {
    pub sealed: Sealed,
    pub hash: [u8; 32],
    pub masked: String,
}

/// Where a request was forwarded, the message sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRoute {
    pub issuer: String,
    pub issuer_stan: String,
    pub message: Sealed,
}

/// [`crate::journal::record::Accepted`] with its card data sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogAccepted {
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
    pub pan: Option<LogPan>,
    pub route: Option<LogRoute>,
}

/// [`crate::journal::record::Answered`]; the outcome as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogAnswered {
    pub id: u64,
    pub response_code: Option<String>,
    pub approval_code: Option<String>,
    /// Borrowed when sealed from a record (the switch's names are
    /// static), owned when decoded.
    pub outcome: Cow<'static, str>,
    pub response_at_ms: Option<i64>,
    pub sent_at_ms: Option<i64>,
}

/// [`crate::journal::record::SafQueued`] with its message sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSafQueued {
    pub id: u64,
    pub txn_id: Option<u64>,
    pub kind: Cow<'static, str>,
    pub issuer: String,
    pub message: Sealed,
    pub queued_at_ms: i64,
}

/// A journal record as the log holds it: one variant per
/// [`crate::journal::Record`] variant, with the same fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRecord {
    Accepted(Box<LogAccepted>),
    Answered(LogAnswered),
    Delivery {
        id: u64,
        at_ms: i64,
        delivered: bool,
    },
    Event {
        txn_id: Option<u64>,
        at_ms: i64,
        kind: Cow<'static, str>,
        detail: String,
    },
    SafQueued(LogSafQueued),
    SafAttempted {
        id: u64,
        attempts: u32,
    },
    SafDone {
        id: u64,
        delivered: bool,
        attempts: u32,
        at_ms: i64,
    },
}

/// One decoded entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub record: LogRecord,
}

pub(super) const TAG_ACCEPTED: u8 = 1;
pub(super) const TAG_ANSWERED: u8 = 2;
pub(super) const TAG_DELIVERY: u8 = 3;
pub(super) const TAG_EVENT: u8 = 4;
pub(super) const TAG_SAF_QUEUED: u8 = 5;
pub(super) const TAG_SAF_ATTEMPTED: u8 = 6;
pub(super) const TAG_SAF_DONE: u8 = 7;

/// Why bytes are not an entry. The first five are what a torn write
/// leaves; `Malformed` has a valid checksum, so a writer made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the header or its length say.
    Truncated {
        need: usize,
        have: usize,
    },
    /// A zero where the magic byte goes (preallocated or zeroed space).
    Zeroes,
    BadMagic(u8),
    /// A payload length over [`PAYLOAD_BYTES_MAX`].
    LengthOverLimit(u32),
    Checksum {
        stored: u32,
        computed: u32,
    },
    /// The checksum holds but the payload does not decode.
    Malformed {
        field: &'static str,
        problem: &'static str,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { need, have } => {
                write!(f, "cut entry: {need} bytes needed, {have} there")
            }
            DecodeError::Zeroes => f.write_str("zero bytes where an entry starts"),
            DecodeError::BadMagic(b) => write!(f, "bad magic byte 0x{b:02x}"),
            DecodeError::LengthOverLimit(n) => {
                write!(f, "payload length {n} over {PAYLOAD_BYTES_MAX}")
            }
            DecodeError::Checksum { stored, computed } => {
                write!(
                    f,
                    "checksum 0x{stored:08x} stored, 0x{computed:08x} computed"
                )
            }
            DecodeError::Malformed { field, problem } => write!(f, "{field}: {problem}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a record cannot be encoded (a field over its limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    pub field: &'static str,
    pub len: usize,
    pub max: usize,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} bytes, at most {}",
            self.field, self.len, self.max
        )
    }
}

impl std::error::Error for EncodeError {}

/// Checks the header and checksum of the entry at the start of `buf`
/// without decoding its payload: its sequence number and whole length.
pub fn check_frame(buf: &[u8]) -> Result<(u64, usize), DecodeError> {
    let Some(&magic) = buf.first() else {
        return Err(DecodeError::Truncated {
            need: HEADER_BYTES,
            have: 0,
        });
    };
    match magic {
        MAGIC => {}
        0 => return Err(DecodeError::Zeroes),
        other => return Err(DecodeError::BadMagic(other)),
    }
    if buf.len() < HEADER_BYTES {
        return Err(DecodeError::Truncated {
            need: HEADER_BYTES,
            have: buf.len(),
        });
    }
    let stored = u32::from_le_bytes(buf[1..5].try_into().expect("4 bytes"));
    let len = u32::from_le_bytes(buf[5..9].try_into().expect("4 bytes"));
    if len as usize > PAYLOAD_BYTES_MAX {
        return Err(DecodeError::LengthOverLimit(len));
    }
    let total = HEADER_BYTES + len as usize;
    if buf.len() < total {
        return Err(DecodeError::Truncated {
            need: total,
            have: buf.len(),
        });
    }
    let computed = crc32c::crc32c(&buf[5..total]);
    if computed != stored {
        return Err(DecodeError::Checksum { stored, computed });
    }
    let seq = u64::from_le_bytes(buf[9..17].try_into().expect("8 bytes"));
    Ok((seq, total))
}

/// The optional texts of an accepted request, in their order on disk.
pub(super) const ACCEPTED_TEXTS: [&str; 14] = [
    "processing code",
    "transmission at",
    "stan",
    "local time",
    "local date",
    "mcc",
    "pos entry mode",
    "acquirer inst",
    "rrn",
    "terminal id",
    "merchant id",
    "merchant name",
    "currency",
    "original data",
];

/// An accepted request's optional texts in their order on disk, from the
/// log's form or the switch's (the two share the field names): one list,
/// so that the two encoders cannot disagree.
macro_rules! accepted_texts {
    ($a:expr) => {
        [
            &$a.processing_code,
            &$a.transmission_at,
            &$a.stan,
            &$a.local_time,
            &$a.local_date,
            &$a.mcc,
            &$a.pos_entry_mode,
            &$a.acquirer_inst,
            &$a.rrn,
            &$a.terminal_id,
            &$a.merchant_id,
            &$a.merchant_name_loc,
            &$a.currency,
            &$a.original_data,
        ]
    };
}
pub(super) use accepted_texts;
