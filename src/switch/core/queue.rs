//! Store-and-forward entries the core makes: reversal advices for
//! outcomes it does not know, stand-in advices and acquirers' advices,
//! each on disk before it enters the queue (a lost record would let a
//! restart send a second original where a repeat is due).

use super::request::reject_of;
use super::{Core, Route, Time, ToQueue, TxnId, Wait};
use crate::journal::Record;
use crate::journal::record::SafQueued;
use crate::message::Message;
use crate::message::response_codes::Outcome;
use crate::message::sensitive::NEVER_ECHOED;
use crate::switch::records::without_sad;
use crate::switch::reversal::reversal_advice;
use crate::switch::saf::SafKind;

impl Core {
    /// Whether the queue has room for one more entry beyond `reserve`
    /// (entries out for delivery count: they come back on a failure).
    pub(super) fn saf_room(&self, reserve: usize) -> bool {
        self.saf_depth() + self.saf_to_disk + reserve < self.cfg.saf_entries_max
    }

    /// Room kept free for the transactions open: each may need a reversal
    /// and a stand-in advice, so no reversal is ever refused for want of
    /// room. Below it, requests are not forwarded and advices not taken.
    pub(super) fn saf_reserve(&self) -> usize {
        2 * self.txns.len()
    }

    /// Queues a 0420 for transaction `id`'s forwarded request.
    pub(super) fn queue_reversal(&mut self, now: Time, id: TxnId) {
        let Some(route) = self.txns.get(&id).and_then(|t| t.route.clone()) else {
            return;
        };
        self.queue_reversal_of(now, route.issuer, &route.message, Some(id.0));
    }

    /// Queues a 0420 (issuer dialect) for `original` as it was forwarded,
    /// referring to it by DE90 (1987) or DE56 (1993).
    pub(super) fn queue_reversal_of(
        &mut self,
        now: Time,
        issuer: usize,
        original: &Message,
        txn_id: Option<u64>,
    ) {
        let version = self.cfg.issuers[issuer].spec.version.digit();
        let stan = self.next_stan(issuer);
        let advice = reversal_advice(version, original, stan, now.wall);
        self.queue(now, SafKind::TimeoutReversal, issuer, advice, txn_id, false);
    }

    /// Queues an acquirer's advice (translated, STAN assigned) for its
    /// issuer; the acquirer's acknowledgement waits until it is queued.
    pub(super) fn queue_advice(&mut self, now: Time, id: TxnId, route: Route) {
        let queued = self.queue(
            now,
            SafKind::AcquirerAdvice,
            route.issuer,
            route.message,
            Some(id.0),
            true,
        );
        if !queued {
            self.refuse_advice(now, id);
        }
    }

    fn refuse_advice(&mut self, now: Time, id: TxnId) {
        if let Some(txn) = self.txns.get(&id) {
            let reject = reject_of(txn, Outcome::IssuerUnavailable);
            self.decide(now, id, reject, "rejected");
        }
    }

    /// Queues `message` (issuer dialect, STAN assigned) for `issuer`, on
    /// disk before it enters the in-memory queue, without sensitive
    /// authentication data (an advice never needs it); with `ack`, its
    /// transaction is acknowledged once it is queued. False when the
    /// queue is full.
    pub(super) fn queue(
        &mut self,
        now: Time,
        kind: SafKind,
        issuer: usize,
        mut message: Message,
        txn_id: Option<u64>,
        ack: bool,
    ) -> bool {
        for &f in NEVER_ECHOED {
            message.remove(f);
        }
        // Reversals may use the reserve; advices from acquirers may not.
        let reserve = if kind == SafKind::AcquirerAdvice {
            self.saf_reserve()
        } else {
            0
        };
        if !self.saf_room(reserve) {
            self.counters.saf_overflow += 1;
            return false;
        }
        self.saf_ids += 1;
        let saf_id = self.saf_ids;
        let target = &self.cfg.issuers[issuer];
        let record = Record::SafQueued(SafQueued {
            id: saf_id,
            txn_id,
            kind: kind.label(),
            issuer: target.name.clone(),
            message: without_sad(&target.spec, &message),
            queued_at_ms: now.wall_ms(),
        });
        let entry = ToQueue {
            id: saf_id,
            txn_id,
            kind,
            issuer,
            message,
            ack,
        };
        if self.cfg.journal {
            self.saf_to_disk += 1;
            let token = self.token(Wait::Queue(Box::new(entry)));
            self.append(vec![record], Some(token));
        } else {
            self.queued(now, entry, true);
        }
        true
    }

    /// An entry's record is on disk (`ok`): it enters the queue, due now,
    /// and its transaction, if it waits, is acknowledged. Not on disk, it
    /// is never sent, so a restart cannot repeat it as a second original.
    pub(super) fn queued(&mut self, now: Time, e: ToQueue, ok: bool) {
        if self.cfg.journal {
            self.saf_to_disk -= 1;
        }
        let txn = e.txn_id.map(TxnId);
        if !ok {
            if let (true, Some(id)) = (e.ack, txn) {
                self.refuse_advice(now, id);
            }
            return;
        }
        self.counters.saf_queued.add(e.kind);
        // Room was checked when the entry was made, and nothing else fills
        // the queue past its limit between the two.
        let pushed =
            self.saf[e.issuer].insert(e.id, e.txn_id, e.kind, e.issuer, e.message, 0, now.mono);
        debug_assert!(pushed.is_ok(), "store-and-forward room was checked");
        if let (true, Some(id)) = (e.ack, txn)
            && let Some(t) = self.txns.get(&id)
        {
            let ack = reject_of(t, Outcome::Approved);
            self.decide(now, id, ack, "advice_acked");
        }
    }
}
