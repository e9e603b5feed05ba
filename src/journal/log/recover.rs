//! What a restart must pick up, computed from the journal log: a fold
//! over its entries in sequence order giving the [`Recovery`] SQLite's
//! `recover` (journal/sqlite/recover.rs) gives for the same records, by
//! the same rules:
//!
//! - next ids: one past the highest id seen, compared as SQLite's signed
//!   integers (an id over `i64::MAX` is stored negative there), at least 1;
//! - pending store-and-forward entries: queued and not done, with the last
//!   attempt count recorded, in id order;
//! - unfinished: accepted with a route, then no answer, no reversal queued
//!   for it and no reversal of it closed, in id order.
//!
//! Memory is bounded: per open transaction the issuer and the sealed
//! message, per pending entry its fields and sealed message; both counts
//! and their bytes together are capped ([`OPEN_TXNS_MAX`],
//! [`PENDING_SAF_MAX`], [`KEPT_BYTES_MAX`]), and going over is a typed
//! error. Closed transactions are forgotten, so two rules rest on the
//! switch's order (a request is journaled before anything names it, and
//! ids are never reused) where SQLite would remember:
//!
//! - a record naming a transaction or entry the fold does not hold is
//!   ignored, as SQLite ignores an update of a missing row; a reversal
//!   closed (`SafDone`) before its transaction was accepted is not
//!   applied to a later `Accepted` (SQLite's update would be);
//! - an `Accepted` or `SafQueued` reusing an id still held is an error
//!   (SQLite refuses the group); one reusing a forgotten id is not seen.
//!
//! Requests never forwarded are not part of the result (SQLite closes
//! them as `abandoned` or `advice_acked` rows; that is a row update,
//! left to the SQLite side).

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::record::{Entry, LogRecord, Sealed};
use super::seal::SEAL_MESSAGE;
use crate::journal::crypto::{CryptoError, Keyring};
use crate::journal::store::{PendingSaf, Recovery, Unfinished};

/// Open (forwarded, unanswered) transactions held at most.
pub const OPEN_TXNS_MAX: usize = 1_000_000;
/// Pending store-and-forward entries held at most.
pub const PENDING_SAF_MAX: usize = 1_000_000;
/// Bytes held for both at most (names and sealed messages).
pub const KEPT_BYTES_MAX: usize = 512 * 1024 * 1024;

/// What the fold holds at most.
#[derive(Debug, Clone, Copy)]
pub struct RecoverLimits {
    pub open_txns: usize,
    pub pending_saf: usize,
    pub kept_bytes: usize,
}

impl Default for RecoverLimits {
    fn default() -> RecoverLimits {
        RecoverLimits {
            open_txns: OPEN_TXNS_MAX,
            pending_saf: PENDING_SAF_MAX,
            kept_bytes: KEPT_BYTES_MAX,
        }
    }
}

/// Why recovery from the log stopped. Never carries card data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoverError {
    /// Entries must come one after the other, from the log's reader.
    #[error("log recovery: entry {found} where {expected} was expected")]
    OutOfOrder { expected: u64, found: u64 },
    #[error("log recovery: over {limit} {what} held")]
    OverLimit { what: &'static str, limit: usize },
    /// An id reused while the first is still open: SQLite refuses it too.
    #[error("log recovery: entry {seq} reuses {what} id {id}")]
    Duplicate {
        seq: u64,
        what: &'static str,
        id: u64,
    },
    #[error("log recovery: a stored message does not open: {0}")]
    Crypto(#[from] CryptoError),
}

/// A forwarded request with no answer yet.
#[derive(Debug)]
struct Open {
    issuer: String,
    message: Sealed,
}

/// A queued entry not yet done.
#[derive(Debug)]
struct Queued {
    txn_id: Option<u64>,
    kind: String,
    issuer: String,
    message: Sealed,
    attempts: u32,
}

/// The fold's state; feed it every entry with [`LogRecovery::apply`],
/// then [`LogRecovery::finish`].
#[derive(Debug, Default)]
pub struct LogRecovery {
    limits: RecoverLimits,
    last_seq: u64,
    max_txn: Option<i64>,
    max_saf: Option<i64>,
    /// Keyed as SQLite orders them (signed).
    open: BTreeMap<i64, Open>,
    pending: BTreeMap<i64, Queued>,
    kept_bytes: usize,
}

fn sealed_bytes(s: &Sealed) -> usize {
    s.key_id.len() + s.blob.len()
}

impl LogRecovery {
    pub fn new() -> LogRecovery {
        LogRecovery::default()
    }

    /// A fold with smaller (or, up to the maxima, other) limits.
    pub fn with_limits(limits: RecoverLimits) -> LogRecovery {
        let limits = RecoverLimits {
            open_txns: limits.open_txns.min(OPEN_TXNS_MAX),
            pending_saf: limits.pending_saf.min(PENDING_SAF_MAX),
            kept_bytes: limits.kept_bytes.min(KEPT_BYTES_MAX),
        };
        LogRecovery {
            limits,
            ..LogRecovery::default()
        }
    }

    /// Takes the next entry (sequence numbers 1, 2, ... without gaps;
    /// the first may be any, for a log whose start was deleted).
    pub fn apply(&mut self, entry: &Entry) -> Result<(), RecoverError> {
        if self.last_seq != 0 && entry.seq != self.last_seq.wrapping_add(1) {
            return Err(RecoverError::OutOfOrder {
                expected: self.last_seq.wrapping_add(1),
                found: entry.seq,
            });
        }
        self.last_seq = entry.seq;
        match &entry.record {
            LogRecord::Accepted(a) => {
                let key = a.id as i64;
                self.max_txn = Some(self.max_txn.map_or(key, |m| m.max(key)));
                if self.open.contains_key(&key) {
                    return Err(self.duplicate(entry.seq, "transaction", a.id));
                }
                if let Some(r) = &a.route {
                    self.hold_open(
                        key,
                        Open {
                            issuer: r.issuer.clone(),
                            message: r.message.clone(),
                        },
                    )?;
                }
            }
            LogRecord::Answered(a) => self.close_txn(a.id),
            LogRecord::Delivery { .. } | LogRecord::Event { .. } => {}
            LogRecord::SafQueued(q) => {
                let key = q.id as i64;
                self.max_saf = Some(self.max_saf.map_or(key, |m| m.max(key)));
                if self.pending.contains_key(&key) {
                    return Err(self.duplicate(entry.seq, "store-and-forward", q.id));
                }
                if let (Some(txn), "timeout_reversal") = (q.txn_id, q.kind.as_ref()) {
                    self.close_txn(txn);
                }
                let queued = Queued {
                    txn_id: q.txn_id,
                    kind: q.kind.to_string(),
                    issuer: q.issuer.clone(),
                    message: q.message.clone(),
                    attempts: 0,
                };
                self.hold_pending(key, queued)?;
            }
            LogRecord::SafAttempted { id, attempts } => {
                if let Some(q) = self.pending.get_mut(&(*id as i64)) {
                    q.attempts = *attempts;
                }
            }
            LogRecord::SafDone { id, .. } => self.close_saf(*id),
        }
        Ok(())
    }

    fn duplicate(&self, seq: u64, what: &'static str, id: u64) -> RecoverError {
        RecoverError::Duplicate { seq, what, id }
    }

    fn reserve(&mut self, bytes: usize) -> Result<(), RecoverError> {
        match self.kept_bytes.checked_add(bytes) {
            Some(total) if total <= self.limits.kept_bytes => {
                self.kept_bytes = total;
                Ok(())
            }
            _ => Err(RecoverError::OverLimit {
                what: "bytes",
                limit: self.limits.kept_bytes,
            }),
        }
    }

    fn hold_open(&mut self, key: i64, open: Open) -> Result<(), RecoverError> {
        if self.open.len() >= self.limits.open_txns {
            return Err(RecoverError::OverLimit {
                what: "open transactions",
                limit: self.limits.open_txns,
            });
        }
        self.reserve(open.issuer.len() + sealed_bytes(&open.message))?;
        self.open.insert(key, open);
        Ok(())
    }

    fn hold_pending(&mut self, key: i64, q: Queued) -> Result<(), RecoverError> {
        if self.pending.len() >= self.limits.pending_saf {
            return Err(RecoverError::OverLimit {
                what: "pending store-and-forward entries",
                limit: self.limits.pending_saf,
            });
        }
        self.reserve(q.kind.len() + q.issuer.len() + sealed_bytes(&q.message))?;
        self.pending.insert(key, q);
        Ok(())
    }

    /// Answered, or a reversal queued or closed: no longer unfinished.
    fn close_txn(&mut self, id: u64) {
        if let Some(o) = self.open.remove(&(id as i64)) {
            self.kept_bytes -= o.issuer.len() + sealed_bytes(&o.message);
        }
    }

    /// Done: no longer pending; a reversal's transaction is closed (it
    /// already was when the reversal was queued, unless the order was
    /// unusual; SQLite sets the transaction's state here too).
    fn close_saf(&mut self, id: u64) {
        if let Some(q) = self.pending.remove(&(id as i64)) {
            self.kept_bytes -= q.kind.len() + q.issuer.len() + sealed_bytes(&q.message);
            if let (Some(txn), "timeout_reversal") = (q.txn_id, q.kind.as_str()) {
                self.close_txn(txn);
            }
        }
    }

    /// Open transactions and pending entries held now.
    pub fn held(&self) -> (usize, usize) {
        (self.open.len(), self.pending.len())
    }

    /// The restart's view, the messages opened with `keys`.
    pub fn finish(self, keys: &Keyring) -> Result<Recovery, RecoverError> {
        let next = |max: Option<i64>| max.unwrap_or(0).max(0) as u64 + 1;
        let open = |s: &Sealed| -> Result<Zeroizing<Vec<u8>>, CryptoError> {
            keys.open(SEAL_MESSAGE, &s.key_id, &s.blob)
        };
        let mut pending_saf = Vec::with_capacity(self.pending.len());
        for (id, q) in self.pending {
            pending_saf.push(PendingSaf {
                id: id as u64,
                txn_id: q.txn_id,
                message: open(&q.message)?,
                kind: q.kind,
                issuer: q.issuer,
                attempts: q.attempts,
            });
        }
        let mut unfinished = Vec::with_capacity(self.open.len());
        for (id, o) in self.open {
            unfinished.push(Unfinished {
                txn_id: id as u64,
                message: open(&o.message)?,
                issuer: o.issuer,
            });
        }
        Ok(Recovery {
            next_txn_id: next(self.max_txn),
            next_saf_id: next(self.max_saf),
            pending_saf,
            unfinished,
        })
    }
}
