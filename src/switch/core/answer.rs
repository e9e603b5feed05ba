//! The way back: an issuer's answer, a time-out or a failed send decides
//! the reply; an approval is durable before it is written; the delivery is
//! recorded, and an undelivered approval or an unknown outcome is reversed
//! through the store-and-forward queue (its entry durable first).

use super::request::reject;
use super::{Action, Core, State, Time, TimerId, ToQueue, TxnId, Wait};
use crate::journal::Record;
use crate::journal::record::SafQueued;
use crate::message::Message;
use crate::message::mti::MessageClass;
use crate::message::response_codes::Outcome;
use crate::message::sensitive::NEVER_ECHOED;
use crate::switch::records::{self, without_sad};
use crate::switch::reversal::reversal_advice;
use crate::switch::saf::SafKind;
use crate::switch::translate::translate;

/// Fields an acquirer gets back exactly as it sent them.
pub(crate) const RESTORED: &[u16] = &[7, 11, 12, 13, 32, 37, 41, 42];

/// Whether an issuer's response says what the issuer did (DE39 of two
/// characters, or three digits in 1993 dialects): without one the outcome
/// is unknown, as after a time-out.
pub(crate) fn has_response_code(resp: &Message) -> bool {
    match resp.value(39) {
        Some([a, b]) => a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric(),
        Some(code @ [_, _, _]) => code.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// Whether a journal outcome is an approval the acquirer may act on.
fn approves(outcome: &str) -> bool {
    matches!(outcome, "approved" | "stand_in")
}

impl Core {
    /// A message from an issuer: the answer of the transaction forwarded
    /// under its STAN, if one is in flight (a late or unknown answer
    /// changes nothing: its transaction was already decided).
    pub(super) fn issuer_message(&mut self, now: Time, issuer: usize, answer: Message) {
        if !answer.mti().is_answer() {
            return;
        }
        let Some(stan) = answer.get_u64(11).and_then(|s| u32::try_from(s).ok()) else {
            return;
        };
        let Some(id) = self.in_flight.remove(&(issuer, stan)) else {
            return;
        };
        self.push(Action::Disarm {
            timer: TimerId::Response(id),
        });
        if !has_response_code(&answer) {
            return self.unknown_outcome(now, id, "issuer response without a usable DE39");
        }
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        let acq = &self.cfg.acquirers[txn.acquirer];
        let target = &self.cfg.issuers[issuer];
        let mut response = translate(&target.spec, &acq.spec, &answer, now.wall).message;
        if let Some(mti) = txn.request.mti().response() {
            response.set_mti(mti);
        }
        response.overlay(&txn.request, RESTORED);
        if !txn.request.has(33) {
            response.remove(33);
        }
        let outcome = match response.get_str(39) {
            Some("00" | "000" | "001") => "approved",
            _ => "declined",
        };
        txn.reply = Some((response, outcome));
        self.answer(now, id);
    }

    /// The issuer's answer did not come in time.
    pub(super) fn response_due(&mut self, now: Time, id: TxnId) {
        let Some(txn) = self.txns.get(&id) else {
            return;
        };
        if txn.state != State::Forwarded {
            return;
        }
        if let Some(route) = &txn.route {
            self.in_flight.remove(&(route.issuer, route.stan));
        }
        self.unknown_outcome(now, id, "no answer in time");
    }

    /// The request never left: nothing to reverse, the acquirer gets 91.
    pub(super) fn not_sent(&mut self, now: Time, id: TxnId) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        if txn.state != State::Forwarded {
            return;
        }
        if let Some(route) = &txn.route {
            self.in_flight.remove(&(route.issuer, route.stan));
        }
        self.push(Action::Disarm {
            timer: TimerId::Response(id),
        });
        self.event(now, id, "not_sent", "no connection to the issuer");
        self.stand_in_or_decline(now, id, "declined");
    }

    /// The issuer may have acted on the request: it is reversed through
    /// the queue, and the acquirer gets 91 (a reversal request is now the
    /// queue's to deliver, so it is acknowledged).
    fn unknown_outcome(&mut self, now: Time, id: TxnId, why: &str) {
        self.event(now, id, "timed_out", why);
        self.queue_reversal(now, id);
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        if txn.request.mti().class() == MessageClass::Reversal {
            txn.reply = Some((reject(&txn.request, Outcome::Approved), "timed_out"));
            return self.answer(now, id);
        }
        self.stand_in_or_decline(now, id, "timed_out");
    }

    /// Journals the decided reply, an approval durably (the rule of the
    /// docs/journal.md, "Crash recovery": a response whose delivery is unknown is
    /// presumed delivered), then replies.
    pub(super) fn answer(&mut self, now: Time, id: TxnId) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        let Some((response, outcome)) = &txn.reply else {
            return;
        };
        let at = txn.route.is_some().then(|| now.wall_ms());
        let record = records::answered(id.0, response, outcome, at);
        if self.cfg.journal && approves(outcome) {
            txn.state = State::Answering;
            let token = self.token(Wait::Reply(id));
            self.append(vec![record], Some(token));
        } else {
            self.append(vec![record], None);
            self.reply(id);
        }
    }

    /// Writes the reply; its delivery is reported back.
    fn reply(&mut self, id: TxnId) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        let Some((message, _)) = &txn.reply else {
            return;
        };
        txn.state = State::Replying;
        let action = Action::Reply {
            conn: txn.conn,
            acquirer: txn.acquirer,
            message: message.clone(),
            confirm: Some(id),
        };
        let (key, message) = (txn.key, message.clone());
        self.push(action);
        // The copies that waited get the same reply.
        for copy in self.duplicates.complete(key, message.clone()) {
            self.push(Action::Reply {
                conn: copy.conn,
                acquirer: copy.acquirer,
                message: message.clone(),
                confirm: None,
            });
        }
    }

    /// The reply reached its connection or not: recorded; an approval that
    /// did not is reversed. The transaction is closed.
    pub(super) fn written(&mut self, now: Time, id: TxnId, delivered: bool) {
        match self.txns.get(&id) {
            Some(txn) if txn.state == State::Replying => {}
            _ => return,
        }
        self.append(
            vec![Record::Delivery {
                id: id.0,
                at_ms: now.wall_ms(),
                delivered,
            }],
            None,
        );
        let txn = self.txns.get(&id).expect("looked up above");
        let approved = txn.reply.as_ref().is_some_and(|(_, o)| *o == "approved");
        if !delivered && approved {
            self.queue_reversal(now, id);
        }
        self.txns.remove(&id);
    }

    /// A journal wait ended.
    pub(super) fn durable(&mut self, now: Time, token: super::Token, ok: bool) {
        let Some(wait) = self.waits.remove(&token) else {
            return;
        };
        match (wait, ok) {
            (Wait::Forward(id), true) => self.forward(now, id),
            (Wait::Forward(id), false) => {
                // Not on disk: not forwarded.
                if let Some(txn) = self.txns.get_mut(&id) {
                    let reject = reject(&txn.request, Outcome::SystemMalfunction);
                    txn.reply = Some((reject, "rejected"));
                    self.answer(now, id);
                }
            }
            (Wait::Reply(id), true) => self.reply(id),
            (Wait::Reply(id), false) => {
                // An approval that cannot be journaled is not handed out.
                self.queue_reversal(now, id);
                if let Some(txn) = self.txns.get_mut(&id) {
                    txn.reply =
                        Some((reject(&txn.request, Outcome::SystemMalfunction), "rejected"));
                    self.reply(id);
                }
            }
            (Wait::Queue(entry), true) => self.enqueue(now, *entry),
            // Not on disk: never sent, so a restart cannot repeat it as a
            // second original.
            (Wait::Queue(_), false) => {}
        }
    }

    /// Queues a 0420 for transaction `id`'s forwarded request.
    fn queue_reversal(&mut self, now: Time, id: TxnId) {
        let Some(route) = self.txns.get(&id).and_then(|t| t.route.clone()) else {
            return;
        };
        let version = self.cfg.issuers[route.issuer].spec.version.digit();
        let stan = self.next_stan(route.issuer);
        let advice = reversal_advice(version, &route.message, stan, now.wall);
        self.queue(now, SafKind::TimeoutReversal, route.issuer, advice, id);
    }

    /// Queues `message` (issuer dialect, STAN assigned) for `issuer`, on
    /// disk before it enters the in-memory queue, without sensitive
    /// authentication data (an advice never needs it).
    pub(super) fn queue(
        &mut self,
        now: Time,
        kind: SafKind,
        issuer: usize,
        mut message: Message,
        id: TxnId,
    ) {
        for &f in NEVER_ECHOED {
            message.remove(f);
        }
        if !self.saf.has_room(0) {
            return;
        }
        let saf_id = self.saf.allocate_id();
        let target = &self.cfg.issuers[issuer];
        let record = Record::SafQueued(SafQueued {
            id: saf_id,
            txn_id: Some(id.0),
            kind: kind.label(),
            issuer: target.name.clone(),
            message: without_sad(&target.spec, &message),
            queued_at_ms: now.wall_ms(),
        });
        let entry = ToQueue {
            id: saf_id,
            txn_id: Some(id.0),
            kind,
            issuer,
            message,
        };
        if self.cfg.journal {
            let token = self.token(Wait::Queue(Box::new(entry)));
            self.append(vec![record], Some(token));
        } else {
            self.enqueue(now, entry);
        }
    }

    /// Puts a durable entry in the queue, due now.
    fn enqueue(&mut self, now: Time, e: ToQueue) {
        // Room was checked when the entry was made, and nothing else fills
        // the queue between the two.
        let pushed = self
            .saf
            .insert(e.id, e.txn_id, e.kind, e.issuer, e.message, 0, now.mono);
        debug_assert!(pushed.is_ok(), "store-and-forward room was checked");
    }

    pub(super) fn event(&mut self, now: Time, id: TxnId, kind: &'static str, detail: &str) {
        self.append(
            vec![Record::Event {
                txn_id: Some(id.0),
                at_ms: now.wall_ms(),
                kind,
                detail: detail.to_string(),
            }],
            None,
        );
    }

    /// Records for the journal, if there is one.
    pub(super) fn append(&mut self, records: Vec<Record>, durable: Option<super::Token>) {
        if self.cfg.journal {
            self.push(Action::Append { records, durable });
        }
    }
}
