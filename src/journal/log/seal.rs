//! From the switch's records (card data in RAM) to the log's (card data
//! sealed): the PAN and every message sealed under the current key, with
//! the same purposes as the SQLite store, so either can open the other's
//! data; the PAN's keyed hash and masked form beside it.

use super::record::{
    DETAIL_BYTES_MAX, LogAccepted, LogAnswered, LogPan, LogRecord, LogRoute, LogSafQueued, Sealed,
};
use crate::journal::crypto::{Keyring, NoncePool};
use crate::journal::record::{Accepted, Record};
use crate::message::sensitive::mask_pan;

/// The purposes bound into sealed data, the SQLite store's own
/// (`journal::sqlite::SEAL_PAN`, `SEAL_MESSAGE`; a test keeps them equal).
pub const SEAL_PAN: &[u8] = b"pan";
pub const SEAL_MESSAGE: &[u8] = b"message";

/// What seals: the keys and a pool of random nonces.
pub struct Sealer<'k> {
    pub keys: &'k Keyring,
    pub nonces: NoncePool,
}

impl Sealer<'_> {
    fn seal(&mut self, purpose: &[u8], plain: &[u8]) -> Sealed {
        let s = self
            .keys
            .seal_with_nonce(purpose, plain, self.nonces.draw());
        Sealed {
            key_id: s.key_id.to_string(),
            blob: s.blob,
        }
    }

    /// The log's form of `record`.
    pub fn record(&mut self, record: &Record) -> LogRecord {
        match record {
            Record::Accepted(a) => LogRecord::Accepted(Box::new(self.accepted(a))),
            Record::Answered(a) => LogRecord::Answered(LogAnswered {
                id: a.id,
                response_code: a.response_code.clone(),
                approval_code: a.approval_code.clone(),
                outcome: a.outcome.to_string(),
                response_at_ms: a.response_at_ms,
                sent_at_ms: a.sent_at_ms,
            }),
            Record::Delivery {
                id,
                at_ms,
                delivered,
            } => LogRecord::Delivery {
                id: *id,
                at_ms: *at_ms,
                delivered: *delivered,
            },
            Record::Event {
                txn_id,
                at_ms,
                kind,
                detail,
            } => LogRecord::Event {
                txn_id: *txn_id,
                at_ms: *at_ms,
                kind: kind.to_string(),
                detail: cut(detail, DETAIL_BYTES_MAX).to_string(),
            },
            Record::SafQueued(q) => LogRecord::SafQueued(LogSafQueued {
                id: q.id,
                txn_id: q.txn_id,
                kind: q.kind.to_string(),
                issuer: q.issuer.clone(),
                message: self.seal(SEAL_MESSAGE, &q.message),
                queued_at_ms: q.queued_at_ms,
            }),
            Record::SafAttempted { id, attempts } => LogRecord::SafAttempted {
                id: *id,
                attempts: *attempts,
            },
            Record::SafDone {
                id,
                delivered,
                attempts,
                at_ms,
            } => LogRecord::SafDone {
                id: *id,
                delivered: *delivered,
                attempts: *attempts,
                at_ms: *at_ms,
            },
        }
    }

    fn accepted(&mut self, a: &Accepted) -> LogAccepted {
        let pan = a.pan.as_ref().map(|pan| LogPan {
            sealed: self.seal(SEAL_PAN, pan),
            hash: self.keys.pan_hash(pan),
            masked: mask_pan(pan),
        });
        let route = a.route.as_ref().map(|r| LogRoute {
            issuer: r.issuer.clone(),
            issuer_stan: r.issuer_stan.clone(),
            message: self.seal(SEAL_MESSAGE, &r.message),
        });
        LogAccepted {
            id: a.id,
            received_at_ms: a.received_at_ms,
            acquirer: a.acquirer.clone(),
            request_mti: a.request_mti.clone(),
            processing_code: a.processing_code.clone(),
            amount_minor: a.amount_minor,
            transmission_at: a.transmission_at.clone(),
            stan: a.stan.clone(),
            local_time: a.local_time.clone(),
            local_date: a.local_date.clone(),
            mcc: a.mcc.clone(),
            pos_entry_mode: a.pos_entry_mode.clone(),
            acquirer_inst: a.acquirer_inst.clone(),
            rrn: a.rrn.clone(),
            terminal_id: a.terminal_id.clone(),
            merchant_id: a.merchant_id.clone(),
            merchant_name_loc: a.merchant_name_loc.clone(),
            currency: a.currency.clone(),
            original_data: a.original_data.clone(),
            replacement_amount: a.replacement_amount,
            pan,
            route,
        }
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
