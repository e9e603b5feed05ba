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

/// Appends one entry (header and payload) to `out`; on error `out` is
/// left as it was.
pub fn encode_entry(seq: u64, record: &LogRecord, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_entry_with(seq, out, |enc| enc.record(record))
}

/// Appends one entry whose payload `payload` writes (the sealer writes
/// the switch's records with it, without building a [`LogRecord`]).
pub(super) fn encode_entry_with(
    seq: u64,
    out: &mut Vec<u8>,
    payload: impl FnOnce(&mut Enc<'_>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_BYTES]);
    let result = payload(&mut Enc(out)).and_then(|()| {
        let len = out.len() - start - HEADER_BYTES;
        if len > PAYLOAD_BYTES_MAX {
            return Err(EncodeError {
                field: "payload",
                len,
                max: PAYLOAD_BYTES_MAX,
            });
        }
        Ok(len)
    });
    match result {
        Ok(len) => {
            let header = &mut out[start..start + HEADER_BYTES];
            header[0] = MAGIC;
            header[5..9].copy_from_slice(&(len as u32).to_le_bytes());
            header[9..17].copy_from_slice(&seq.to_le_bytes());
            let crc = crc32c::crc32c(&out[start + 5..]);
            out[start + 1..start + 5].copy_from_slice(&crc.to_le_bytes());
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

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

/// The payload writer: little-endian integers, texts and blobs behind
/// their lengths, options behind a 0/1 byte.
pub(super) struct Enc<'a>(pub(super) &'a mut Vec<u8>);

impl Enc<'_> {
    pub(super) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn opt_u64(&mut self, v: Option<u64>) {
        self.u8(v.is_some().into());
        if let Some(v) = v {
            self.u64(v);
        }
    }
    pub(super) fn opt_i64(&mut self, v: Option<i64>) {
        self.u8(v.is_some().into());
        if let Some(v) = v {
            self.i64(v);
        }
    }
    pub(super) fn short(&mut self, field: &'static str, s: &str) -> Result<(), EncodeError> {
        let len = s.len();
        if len > SHORT_BYTES_MAX {
            return Err(EncodeError {
                field,
                len,
                max: SHORT_BYTES_MAX,
            });
        }
        self.u8(len as u8);
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
    pub(super) fn opt_short(
        &mut self,
        field: &'static str,
        s: &Option<String>,
    ) -> Result<(), EncodeError> {
        self.u8(s.is_some().into());
        match s {
            Some(s) => self.short(field, s),
            None => Ok(()),
        }
    }
    pub(super) fn long(
        &mut self,
        field: &'static str,
        b: &[u8],
        max: usize,
    ) -> Result<(), EncodeError> {
        if b.len() > max {
            return Err(EncodeError {
                field,
                len: b.len(),
                max,
            });
        }
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
        Ok(())
    }
    /// A sealed value: its key id, then its length and bytes, which `s`
    /// writes straight into the entry (sealing them there, or copying).
    pub(super) fn sealed(
        &mut self,
        field: &'static str,
        s: impl SealedSource,
    ) -> Result<(), EncodeError> {
        self.short("key id", s.key_id())?;
        let len = s.bytes();
        if len > SEALED_BYTES_MAX {
            return Err(EncodeError {
                field,
                len,
                max: SEALED_BYTES_MAX,
            });
        }
        self.u32(len as u32);
        let start = self.0.len();
        s.write(self.0);
        debug_assert_eq!(self.0.len() - start, len, "{field}: the length written");
        Ok(())
    }

    fn record(&mut self, r: &LogRecord) -> Result<(), EncodeError> {
        match r {
            LogRecord::Accepted(a) => self.accepted(a)?,
            LogRecord::Answered(a) => self.answered(AnsweredRef {
                id: a.id,
                response_code: &a.response_code,
                approval_code: &a.approval_code,
                outcome: &a.outcome,
                response_at_ms: a.response_at_ms,
                sent_at_ms: a.sent_at_ms,
            })?,
            LogRecord::Delivery {
                id,
                at_ms,
                delivered,
            } => {
                self.u8(TAG_DELIVERY);
                self.u64(*id);
                self.i64(*at_ms);
                self.u8((*delivered).into());
            }
            LogRecord::Event {
                txn_id,
                at_ms,
                kind,
                detail,
            } => {
                self.u8(TAG_EVENT);
                self.opt_u64(*txn_id);
                self.i64(*at_ms);
                self.short("event kind", kind)?;
                self.long("event detail", detail.as_bytes(), DETAIL_BYTES_MAX)?;
            }
            LogRecord::SafQueued(q) => {
                self.u8(TAG_SAF_QUEUED);
                self.u64(q.id);
                self.opt_u64(q.txn_id);
                self.short("saf kind", &q.kind)?;
                self.short("saf issuer", &q.issuer)?;
                self.sealed("saf message", q.message.view())?;
                self.i64(q.queued_at_ms);
            }
            LogRecord::SafAttempted { id, attempts } => {
                self.u8(TAG_SAF_ATTEMPTED);
                self.u64(*id);
                self.u32(*attempts);
            }
            LogRecord::SafDone {
                id,
                delivered,
                attempts,
                at_ms,
            } => {
                self.u8(TAG_SAF_DONE);
                self.u64(*id);
                self.u8((*delivered).into());
                self.u32(*attempts);
                self.i64(*at_ms);
            }
        }
        Ok(())
    }

    fn accepted(&mut self, a: &LogAccepted) -> Result<(), EncodeError> {
        let head = AcceptedHead {
            id: a.id,
            received_at_ms: a.received_at_ms,
            acquirer: &a.acquirer,
            request_mti: &a.request_mti,
            texts: accepted_texts!(a),
            amount_minor: a.amount_minor,
            replacement_amount: a.replacement_amount,
        };
        let pan = a
            .pan
            .as_ref()
            .map(|p| (p.sealed.view(), &p.hash, p.masked.as_str()));
        let route = a
            .route
            .as_ref()
            .map(|r| (r.issuer.as_str(), r.issuer_stan.as_str(), r.message.view()));
        self.accepted_parts(&head, pan, route)
    }

    /// The one layout of an accepted request, from either form.
    pub(super) fn accepted_parts(
        &mut self,
        a: &AcceptedHead<'_>,
        pan: Option<(impl SealedSource, &[u8; 32], &str)>,
        route: Option<(&str, &str, impl SealedSource)>,
    ) -> Result<(), EncodeError> {
        self.u8(TAG_ACCEPTED);
        self.u64(a.id);
        self.i64(a.received_at_ms);
        self.short("acquirer", a.acquirer)?;
        self.short("request mti", a.request_mti)?;
        for (field, value) in ACCEPTED_TEXTS.iter().zip(a.texts) {
            self.opt_short(field, value)?;
        }
        self.opt_i64(a.amount_minor);
        self.opt_i64(a.replacement_amount);
        self.u8(pan.is_some().into());
        if let Some((sealed, hash, masked)) = pan {
            self.sealed("sealed pan", sealed)?;
            self.0.extend_from_slice(hash);
            self.short("masked pan", masked)?;
        }
        self.u8(route.is_some().into());
        if let Some((issuer, issuer_stan, message)) = route {
            self.short("issuer", issuer)?;
            self.short("issuer stan", issuer_stan)?;
            self.sealed("forwarded message", message)?;
        }
        Ok(())
    }

    /// The one layout of an answer, from either form.
    pub(super) fn answered(&mut self, a: AnsweredRef<'_>) -> Result<(), EncodeError> {
        self.u8(TAG_ANSWERED);
        self.u64(a.id);
        self.opt_short("response code", a.response_code)?;
        self.opt_short("approval code", a.approval_code)?;
        self.short("outcome", a.outcome)?;
        self.opt_i64(a.response_at_ms);
        self.opt_i64(a.sent_at_ms);
        Ok(())
    }
}

/// Sealed bytes by reference.
#[derive(Clone, Copy)]
pub(super) struct SealedRef<'a> {
    pub key_id: &'a str,
    pub blob: &'a [u8],
}

/// What [`Enc::sealed`] writes: bytes sealed already ([`SealedRef`]) or
/// bytes sealed as they are written (`seal::ToSeal`), so the hot path
/// seals into the group's buffer without a buffer of its own.
pub(super) trait SealedSource {
    fn key_id(&self) -> &str;
    /// How many bytes [`SealedSource::write`] appends.
    fn bytes(&self) -> usize;
    fn write(self, out: &mut Vec<u8>);
}

impl SealedSource for SealedRef<'_> {
    fn key_id(&self) -> &str {
        self.key_id
    }
    fn bytes(&self) -> usize {
        self.blob.len()
    }
    fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.blob);
    }
}

impl Sealed {
    pub(super) fn view(&self) -> SealedRef<'_> {
        SealedRef {
            key_id: &self.key_id,
            blob: &self.blob,
        }
    }
}

/// An accepted request's fields other than its card data, by reference.
pub(super) struct AcceptedHead<'a> {
    pub id: u64,
    pub received_at_ms: i64,
    pub acquirer: &'a str,
    pub request_mti: &'a str,
    /// In [`ACCEPTED_TEXTS`] order.
    pub texts: [&'a Option<String>; 14],
    pub amount_minor: Option<i64>,
    pub replacement_amount: Option<i64>,
}

/// An answer's fields by reference.
pub(super) struct AnsweredRef<'a> {
    pub id: u64,
    pub response_code: &'a Option<String>,
    pub approval_code: &'a Option<String>,
    pub outcome: &'a str,
    pub response_at_ms: Option<i64>,
    pub sent_at_ms: Option<i64>,
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
