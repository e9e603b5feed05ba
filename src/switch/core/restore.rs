//! Start-up after a crash: what the journal says is still open becomes
//! work again. The node reads the journal and parses the stored messages;
//! the core continues the numbering, queues again every entry not yet
//! acknowledged, and reverses every request forwarded whose answer never
//! reached its acquirer (its outcome at the issuer is unknown).

use super::{Core, Time, TxnId};
use crate::message::Message;
use crate::switch::saf::SafKind;

/// A store-and-forward entry the journal holds as not yet acknowledged.
#[derive(Debug)]
pub struct RestoredSaf {
    pub id: u64,
    pub txn_id: Option<u64>,
    pub kind: SafKind,
    pub issuer: usize,
    /// As queued: the issuer's dialect, STAN assigned.
    pub message: Message,
    pub attempts: u32,
}

/// A request forwarded whose outcome is unknown.
#[derive(Debug)]
pub struct RestoredTxn {
    pub txn_id: u64,
    pub issuer: usize,
    /// As forwarded: the issuer's dialect.
    pub message: Message,
}

/// What a restart picks up.
#[derive(Debug, Default)]
pub struct Restored {
    /// The first transaction id not yet used.
    pub next_txn_id: u64,
    /// The first store-and-forward id not yet used.
    pub next_saf_id: u64,
    pub pending_saf: Vec<RestoredSaf>,
    pub unfinished: Vec<RestoredTxn>,
}

/// What a restore did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RestoreCount {
    pub requeued: usize,
    pub reversed: usize,
    /// Entries that found no room.
    pub dropped: usize,
}

impl Core {
    /// Picks up after a restart; called once, before any input.
    pub fn restore(&mut self, now: Time, r: Restored) -> RestoreCount {
        self.next_txn = self.next_txn.max(r.next_txn_id);
        self.saf_ids = self.saf_ids.max(r.next_saf_id.saturating_sub(1));
        let mut count = RestoreCount::default();
        // A stand-in advice of a request the journal has no answer for:
        // the stand-in approval never reached the disk, so it was never
        // replied, yet the advice may have reached the issuer: reversed.
        let unanswered: Vec<u64> = r.unfinished.iter().map(|u| u.txn_id).collect();
        let orphans: Vec<(usize, Message, Option<u64>)> = r
            .pending_saf
            .iter()
            .filter(|p| p.kind == SafKind::StandInAdvice)
            .filter(|p| p.txn_id.is_some_and(|t| unanswered.contains(&t)))
            .map(|p| (p.issuer, p.message.clone(), p.txn_id))
            .collect();
        for p in r.pending_saf {
            let Some(queue) = self.saf.get_mut(p.issuer) else {
                count.dropped += 1;
                continue;
            };
            // A pending entry may have gone out before the crash (attempts
            // are journaled after they fail): it counts as attempted, so it
            // goes out as a repeat.
            let attempts = p.attempts.max(1);
            match queue.insert(
                p.id, p.txn_id, p.kind, p.issuer, p.message, attempts, now.mono,
            ) {
                Ok(()) => count.requeued += 1,
                Err(_) => count.dropped += 1,
            }
        }
        for u in r.unfinished {
            if u.issuer >= self.cfg.issuers.len() {
                count.dropped += 1;
                continue;
            }
            self.queue_reversal_of(now, u.issuer, &u.message, Some(u.txn_id), None);
            self.event(now, TxnId(u.txn_id), "reversed_after_restart", "");
            count.reversed += 1;
        }
        for (issuer, advice, txn_id) in orphans {
            if issuer < self.cfg.issuers.len() {
                self.queue_reversal_of(now, issuer, &advice, txn_id, None);
                count.reversed += 1;
            }
        }
        count
    }
}
