//! Store-and-forward entries the core makes: reversal advices for
//! outcomes it does not know, stand-in advices and acquirers' advices,
//! each on disk before it enters the queue (a lost record would let a
//! restart send a second original where a repeat is due).

use super::request::reject_of;
use super::{Core, Route, Time, ToQueue, TxnId, Wait};
use crate::journal::record::SafQueued;
use crate::journal::{Record, TxnOutcome};
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
        self.queue_reversal_acked(now, id, None);
    }

    /// [`Core::queue_reversal`]; with `ack`, transaction `id` is
    /// acknowledged (with that outcome) once the entry is durable, and
    /// refused if it cannot be. False when nothing was queued.
    pub(super) fn queue_reversal_acked(
        &mut self,
        now: Time,
        id: TxnId,
        ack: Option<TxnOutcome>,
    ) -> bool {
        let Some(route) = self.txns.get(&id).and_then(|t| t.route.clone()) else {
            return false;
        };
        self.queue_reversal_of(now, route.issuer, &route.message, Some(id.0), ack)
    }

    /// Queues a 0420 (issuer dialect) for `original` as it was forwarded,
    /// referring to it by DE90 (1987) or DE56 (1993).
    pub(super) fn queue_reversal_of(
        &mut self,
        now: Time,
        issuer: usize,
        original: &Message,
        txn_id: Option<u64>,
        ack: Option<TxnOutcome>,
    ) -> bool {
        let version = self.cfg.issuers[issuer].spec.version.digit();
        let stan = self.next_stan(issuer);
        let advice = reversal_advice(version, original, stan, now.wall);
        self.queue(now, SafKind::TimeoutReversal, issuer, advice, txn_id, ack)
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
            Some(TxnOutcome::AdviceAcked),
        );
        if !queued {
            self.refuse_advice(now, id);
        }
    }

    fn refuse_advice(&mut self, now: Time, id: TxnId) {
        if let Some(txn) = self.txns.get(&id) {
            let reject = reject_of(txn, Outcome::IssuerUnavailable);
            self.decide(now, id, reject, TxnOutcome::Rejected);
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
        ack: Option<TxnOutcome>,
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
        let entry = ToQueue {
            id: self.saf_ids,
            txn_id,
            kind,
            issuer,
            message,
            ack,
            also: Vec::new(),
            then_reply: false,
        };
        if self.cfg.journal {
            self.saf_to_disk += 1;
            self.write_entry(now, entry);
        } else {
            self.queued(now, entry, true);
        }
        true
    }

    /// Appends entry `e`'s record; it is queued once that is durable.
    fn write_entry(&mut self, now: Time, e: ToQueue) {
        let target = &self.cfg.issuers[e.issuer];
        let record = Record::SafQueued(SafQueued {
            id: e.id,
            txn_id: e.txn_id,
            kind: e.kind.label(),
            issuer: target.name.clone(),
            message: without_sad(&target.spec, &e.message),
            queued_at_ms: now.wall_ms(),
        });
        let mut records = vec![record];
        records.extend(e.also.iter().cloned());
        let token = self.token(Wait::Queue(Box::new(e)));
        self.append(records, Some(token));
    }

    /// Writes `record` in the same group as transaction `id`'s entry
    /// queued last, still on its way to disk: both are kept or neither;
    /// with `reply`, the transaction is replied when that group is
    /// durable. False (nothing done) when that entry is not the last
    /// append.
    pub(super) fn ride_along(&mut self, id: TxnId, record: Record, reply: bool) -> bool {
        let token = super::Token(self.next_token - 1);
        let Some(Wait::Queue(e)) = self.waits.get_mut(&token) else {
            return false;
        };
        let Some(super::Action::Append { records, durable }) = self.actions.back_mut() else {
            return false;
        };
        if e.txn_id != Some(id.0) || *durable != Some(token) {
            return false;
        }
        e.also.push(record.clone());
        e.then_reply |= reply;
        records.push(record);
        true
    }

    /// An entry's record is on disk (`ok`): it enters the queue, due now,
    /// and its transaction, if it waits, is acknowledged. Not on disk, it
    /// is never sent, so a restart cannot repeat it as a second original:
    /// one that waits is refused; one the switch owes (a reversal, a
    /// stand-in advice) is written again, since dropping it would leave an
    /// approval at the issuer that nobody reverses.
    pub(super) fn queued(&mut self, now: Time, e: ToQueue, ok: bool) {
        let txn = e.txn_id.map(TxnId);
        if !ok && e.then_reply {
            // The stand-in approval is not on disk: not handed out, and
            // its advice (never on disk either) not sent.
            self.saf_to_disk -= 1;
            if let Some(id) = txn
                && let Some(t) = self.txns.get_mut(&id)
            {
                t.reply = Some((
                    reject_of(t, Outcome::SystemMalfunction),
                    TxnOutcome::Rejected,
                ));
                // Journaled (the journal would otherwise keep it open).
                self.answer(now, id);
            }
            return;
        }
        if !ok {
            if e.ack.is_none() {
                return self.write_entry(now, e);
            }
            self.saf_to_disk -= 1;
            if let Some(id) = txn {
                self.refuse_advice(now, id);
            }
            return;
        }
        if self.cfg.journal {
            self.saf_to_disk -= 1;
        }
        self.counters.saf_queued.add(e.kind);
        // Room was checked when the entry was made, and nothing else fills
        // the queue past its limit between the two.
        let pushed =
            self.saf[e.issuer].insert(e.id, e.txn_id, e.kind, e.issuer, e.message, 0, now.mono);
        debug_assert!(pushed.is_ok(), "store-and-forward room was checked");
        if let (Some(outcome), Some(id)) = (e.ack, txn)
            && let Some(t) = self.txns.get(&id)
        {
            let ack = reject_of(t, Outcome::Approved);
            self.decide(now, id, ack, outcome);
        }
        if let (true, Some(id)) = (e.then_reply, txn) {
            self.reply(id);
        }
    }
}
