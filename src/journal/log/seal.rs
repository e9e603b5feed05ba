//! From the switch's records (card data in RAM) to the log's (card data
//! sealed): the PAN and every message sealed under the current key, with
//! the same purposes as the SQLite store, so either can open the other's
//! data; the PAN's keyed hash and masked form beside it.

use std::borrow::Cow;

use super::encode::{AcceptedHead, AnsweredRef, SealedSource, encode_entry_with};
use super::record::{
    DETAIL_BYTES_MAX, EncodeError, LogAccepted, LogAnswered, LogPan, LogRecord, LogRoute,
    LogSafQueued, Sealed, encode_entry,
};
use crate::journal::crypto::{Keyring, NoncePool, sealed_len};
use crate::journal::record::{Accepted, Record};
use crate::message::sensitive::mask_pan;

/// The purposes bound into sealed data, the SQLite store's own
/// (`journal::sqlite::SEAL_PAN`, `SEAL_MESSAGE`; a test keeps them equal).
pub const SEAL_PAN: &[u8] = b"pan";
pub const SEAL_MESSAGE: &[u8] = b"message";

/// What seals: the keys, a pool of random nonces, and a scratch string
/// for the masked PAN (reused: no allocation per record).
pub struct Sealer<'k> {
    keys: &'k Keyring,
    nonces: NoncePool,
    masked: String,
}

/// Bytes to seal under the current key as they are written into an entry.
struct ToSeal<'a> {
    keys: &'a Keyring,
    purpose: &'static [u8],
    plain: &'a [u8],
    nonce: [u8; 12],
}

impl SealedSource for ToSeal<'_> {
    fn key_id(&self) -> &str {
        self.keys.current_key_id()
    }
    fn bytes(&self) -> usize {
        sealed_len(self.plain.len())
    }
    fn write(self, out: &mut Vec<u8>) {
        self.keys
            .seal_into(self.purpose, self.plain, self.nonce, out);
    }
}

impl<'k> Sealer<'k> {
    pub fn new(keys: &'k Keyring) -> Sealer<'k> {
        Sealer {
            keys,
            nonces: NoncePool::new(),
            masked: String::new(),
        }
    }

    fn seal_bytes(&mut self, purpose: &[u8], plain: &[u8]) -> Sealed {
        let s = self
            .keys
            .seal_with_nonce(purpose, plain, self.nonces.draw());
        Sealed {
            key_id: s.key_id.to_string(),
            blob: s.blob,
        }
    }

    /// Appends `record` as entry `seq`, sealed. The hot path: the two
    /// records of every request are written straight from the switch's
    /// form (one layout in [`super::record`]); the rare ones go through
    /// [`Sealer::seal`].
    pub fn encode(
        &mut self,
        seq: u64,
        record: &Record,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        match record {
            Record::Accepted(a) => {
                let keys = self.keys;
                let hash = a.pan.as_ref().map(|pan| keys.pan_hash(pan));
                let pan = a.pan.as_ref().map(|pan| {
                    mask_into(pan, &mut self.masked);
                    to_seal(keys, SEAL_PAN, pan, self.nonces.draw())
                });
                let route = a.route.as_ref().map(|r| {
                    let nonce = self.nonces.draw();
                    (r, to_seal(keys, SEAL_MESSAGE, &r.message, nonce))
                });
                let masked = self.masked.as_str();
                encode_entry_with(seq, out, |enc| {
                    enc.accepted_parts(
                        &head(a),
                        pan.zip(hash.as_ref()).map(|(s, h)| (s, h, masked)),
                        route.map(|(r, s)| (r.issuer.as_str(), r.issuer_stan.as_str(), s)),
                    )
                })
            }
            Record::Answered(a) => encode_entry_with(seq, out, |enc| {
                enc.answered(AnsweredRef {
                    id: a.id,
                    response_code: &a.response_code,
                    approval_code: &a.approval_code,
                    outcome: a.outcome.as_str(),
                    response_at_ms: a.response_at_ms,
                    sent_at_ms: a.sent_at_ms,
                })
            }),
            other => encode_entry(seq, &self.seal(other.clone()), out),
        }
    }

    /// The log's form of `record`, its texts moved, not copied.
    pub fn seal(&mut self, record: Record) -> LogRecord {
        match record {
            Record::Accepted(a) => LogRecord::Accepted(Box::new(self.accepted(*a))),
            Record::Answered(a) => LogRecord::Answered(LogAnswered {
                id: a.id,
                response_code: a.response_code,
                approval_code: a.approval_code,
                outcome: Cow::Borrowed(a.outcome.as_str()),
                response_at_ms: a.response_at_ms,
                sent_at_ms: a.sent_at_ms,
            }),
            Record::Delivery {
                id,
                at_ms,
                delivered,
            } => LogRecord::Delivery {
                id,
                at_ms,
                delivered,
            },
            Record::Event {
                txn_id,
                at_ms,
                kind,
                mut detail,
            } => {
                let keep = cut(&detail, DETAIL_BYTES_MAX).len();
                detail.truncate(keep);
                LogRecord::Event {
                    txn_id,
                    at_ms,
                    kind: Cow::Borrowed(kind),
                    detail,
                }
            }
            Record::SafQueued(q) => LogRecord::SafQueued(LogSafQueued {
                id: q.id,
                txn_id: q.txn_id,
                kind: Cow::Borrowed(q.kind),
                message: self.seal_bytes(SEAL_MESSAGE, &q.message),
                issuer: q.issuer,
                queued_at_ms: q.queued_at_ms,
            }),
            Record::SafAttempted { id, attempts } => LogRecord::SafAttempted { id, attempts },
            Record::SafDone {
                id,
                delivered,
                attempts,
                at_ms,
            } => LogRecord::SafDone {
                id,
                delivered,
                attempts,
                at_ms,
            },
        }
    }

    fn accepted(&mut self, a: Accepted) -> LogAccepted {
        let pan = a.pan.as_ref().map(|pan| LogPan {
            sealed: self.seal_bytes(SEAL_PAN, pan),
            hash: self.keys.pan_hash(pan),
            masked: mask_pan(pan),
        });
        let route = a.route.map(|r| LogRoute {
            message: self.seal_bytes(SEAL_MESSAGE, &r.message),
            issuer: r.issuer,
            issuer_stan: r.issuer_stan,
        });
        LogAccepted {
            id: a.id,
            received_at_ms: a.received_at_ms,
            acquirer: a.acquirer,
            request_mti: a.request_mti,
            processing_code: a.processing_code,
            amount_minor: a.amount_minor,
            transmission_at: a.transmission_at,
            stan: a.stan,
            local_time: a.local_time,
            local_date: a.local_date,
            mcc: a.mcc,
            pos_entry_mode: a.pos_entry_mode,
            acquirer_inst: a.acquirer_inst,
            rrn: a.rrn,
            terminal_id: a.terminal_id,
            merchant_id: a.merchant_id,
            merchant_name_loc: a.merchant_name_loc,
            currency: a.currency,
            original_data: a.original_data,
            replacement_amount: a.replacement_amount,
            pan,
            route,
        }
    }
}

fn to_seal<'a>(
    keys: &'a Keyring,
    purpose: &'static [u8],
    plain: &'a [u8],
    nonce: [u8; 12],
) -> ToSeal<'a> {
    ToSeal {
        keys,
        purpose,
        plain,
        nonce,
    }
}

/// [`mask_pan`] into `out`, without its allocations when the PAN is
/// ASCII (it always is from the switch; anything else takes `mask_pan`).
fn mask_into(pan: &[u8], out: &mut String) {
    out.clear();
    let Ok(text) = std::str::from_utf8(pan) else {
        out.push_str(&mask_pan(pan));
        return;
    };
    if !text.is_ascii() {
        out.push_str(&mask_pan(pan));
        return;
    }
    let len = text.len();
    let stars = |out: &mut String, n: usize| out.extend(std::iter::repeat_n('*', n));
    if len >= 13 {
        out.push_str(&text[..6]);
        stars(out, len - 10);
        out.push_str(&text[len - 4..]);
    } else if len > 4 {
        stars(out, len - 4);
        out.push_str(&text[len - 4..]);
    } else {
        stars(out, len);
    }
}

/// An accepted request's fields, in the order [`super::record`] writes them.
fn head(a: &Accepted) -> AcceptedHead<'_> {
    AcceptedHead {
        id: a.id,
        received_at_ms: a.received_at_ms,
        acquirer: &a.acquirer,
        request_mti: &a.request_mti,
        texts: super::record::accepted_texts!(a),
        amount_minor: a.amount_minor,
        replacement_amount: a.replacement_amount,
    }
}

/// `s` cut to at most `max` bytes on a character boundary: an event's
/// detail is diagnostic text, and a cut one is better than a failed group.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_into_masks_as_mask_pan() {
        let mut out = String::from("left over");
        for pan in [
            &b"4761739001010119"[..],
            b"4761739001010",
            b"476173900101011912",
            b"123456789012",
            b"12345",
            b"1234",
            b"",
            b"47617\xff9001010119",
            "4761é739001010119".as_bytes(),
        ] {
            mask_into(pan, &mut out);
            assert_eq!(out, mask_pan(pan), "{pan:?}");
        }
    }
}
