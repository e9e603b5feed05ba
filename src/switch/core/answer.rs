//! The way back: an issuer's answer, a time-out or a failed send decides
//! the reply; an approval is durable before it is written; the delivery is
//! recorded, and an undelivered approval or an unknown outcome is reversed
//! through the store-and-forward queue (its entry durable first).

use super::request::{reject, reject_of};
use super::{Action, Core, Mutation, Outgoing, ReplyMac, State, Time, TimerId, TxnId, Wait};
use crate::journal::{Record, TxnOutcome};
use crate::message::Message;
use crate::message::mti::MessageClass;
use crate::message::response_codes::Outcome;
use crate::switch::records;
use crate::switch::translate::translate_owned;

/// Fields an acquirer gets back exactly as it sent them.
const RESTORED: &[u16] = &[7, 11, 12, 13, 32, 37, 41, 42];

/// Whether an issuer's response says what the issuer did (DE39 of two
/// characters, or three digits in 1993 dialects): without one the outcome
/// is unknown, as after a time-out.
fn has_response_code(resp: &Message) -> bool {
    match resp.value(39) {
        Some([a, b]) => a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric(),
        Some(code @ [_, _, _]) => code.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// Fields an issuer echoes from the request it answers (the PAN, the
/// retrieval reference, the terminal).
const ECHOED: &[u16] = &[2, 37, 41];

/// Whether `answer` can be the answer to `sent`: the STAN alone is not
/// enough (an issuer that answers under a wrong STAN, or a late answer to
/// a STAN given again after a restart, would hand one transaction another
/// one's answer), so the echoed fields present in both must agree.
pub(super) fn answers(sent: &Message, answer: &Message) -> bool {
    sent.agrees_on(answer, ECHOED)
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
        let key = (issuer, stan);
        let id = match self.in_flight.get(&key) {
            Some(&Outgoing::Txn(id)) => id,
            Some(&Outgoing::Saf(id)) => return self.saf_answered(now, id, &answer),
            Some(&Outgoing::KeyExchange(i)) => {
                if answer.mti().class() == MessageClass::NetworkManagement {
                    self.exchange_answered(i, &answer);
                }
                return;
            }
            None => return,
        };
        // An answer of another class (an 0810 to an echo sharing the STAN)
        // is not this transaction's.
        let class = self.txns.get(&id).map(|t| t.request.mti().class());
        if class != Some(answer.mti().class()) {
            return;
        }
        let sent = self.txns.get(&id).and_then(|t| t.route.as_ref());
        if !sent.is_some_and(|r| answers(&r.message, &answer)) {
            return;
        }
        self.in_flight.remove(&key);
        self.push(Action::Disarm {
            timer: TimerId::Response(id),
        });
        if !has_response_code(&answer) {
            return self.unknown_outcome(now, id, "issuer response without a usable DE39");
        }
        if self.cfg.issuers[issuer].keys.mac.is_some() {
            // Decided, but not yet trusted: held until its MAC verifies.
            let Some(decided) = self.reply_to(now, id, issuer, answer.clone()) else {
                return;
            };
            self.txns.get_mut(&id).expect("looked up above").reply = Some(decided);
            return self.check_answer_mac(now, id, issuer, &answer);
        }
        if let Some((response, outcome)) = self.reply_to(now, id, issuer, answer) {
            self.decide(now, id, response, outcome);
        }
    }

    /// The reply that the issuer's answer to transaction `id` makes (the
    /// answer itself, translated in place where it can be), and its
    /// journal outcome.
    fn reply_to(
        &self,
        now: Time,
        id: TxnId,
        issuer: usize,
        answer: Message,
    ) -> Option<(Message, TxnOutcome)> {
        let txn = self.txns.get(&id)?;
        let acq = &self.cfg.acquirers[txn.from.acquirer];
        let target = &self.cfg.issuers[issuer];
        let mut response = translate_owned(&target.spec, &acq.spec, answer, now.wall).message;
        if let Some(mti) = txn.request.mti().response() {
            response.set_mti(mti);
        }
        response.overlay(&txn.request, RESTORED);
        if !txn.request.has(33) {
            response.unset(33);
        }
        let outcome = match response.value(39) {
            Some(b"00" | b"000" | b"001") => TxnOutcome::Approved,
            _ => TxnOutcome::Declined,
        };
        Some((response, outcome))
    }

    /// The message sent under `stan` went down with its connection: a
    /// request's outcome is unknown (reversed, 91 or stand-in), an entry's
    /// attempt failed.
    pub(super) fn lost(&mut self, now: Time, issuer: usize, stan: u32) {
        match self.in_flight.get(&(issuer, stan)) {
            Some(&Outgoing::Txn(id)) => {
                self.in_flight.remove(&(issuer, stan));
                self.push(Action::Disarm {
                    timer: TimerId::Response(id),
                });
                self.unknown_outcome(now, id, "issuer link closed");
            }
            Some(&Outgoing::Saf(id)) => self.saf_answer_due(now, id),
            Some(&Outgoing::KeyExchange(i)) => self.exchange_lost(i),
            None => {}
        }
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
            let (issuer, stan) = (route.issuer, route.stan);
            self.in_flight.remove(&(issuer, stan));
            self.push(Action::Forget { issuer, stan });
        }
        self.unknown_outcome(now, id, "no answer in time");
    }

    /// A message never left: a request has nothing to reverse (the
    /// acquirer gets stand-in or 91), an entry's attempt did not count.
    pub(super) fn not_sent(&mut self, now: Time, what: Outgoing) {
        let id = match what {
            Outgoing::Txn(id) => id,
            Outgoing::Saf(id) => return self.saf_not_sent(now, id),
            Outgoing::KeyExchange(i) => return self.exchange_lost(i),
        };
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        if txn.state != State::Forwarded {
            return;
        }
        let Some(issuer) = txn.route.as_ref().map(|r| r.issuer) else {
            return;
        };
        if let Some(route) = &txn.route {
            self.in_flight.remove(&(route.issuer, route.stan));
        }
        self.push(Action::Disarm {
            timer: TimerId::Response(id),
        });
        self.event(now, id, "not_sent", "no connection to the issuer");
        self.stand_in_or_decline(now, id, issuer, TxnOutcome::Declined);
    }

    /// The issuer may have acted on the request: it is reversed through
    /// the queue, and the acquirer gets 91 (a reversal request is now the
    /// queue's to deliver, so it is acknowledged, once its entry is
    /// durable: a crash before that would lose a reversal already
    /// acknowledged).
    pub(super) fn unknown_outcome(&mut self, now: Time, id: TxnId, why: &str) {
        self.counters.timed_out += 1;
        self.event(now, id, "timed_out", why);
        let Some(txn) = self.txns.get(&id) else {
            return;
        };
        let Some(issuer) = txn.route.as_ref().map(|r| r.issuer) else {
            return;
        };
        if txn.request.mti().class() == MessageClass::Reversal {
            // No longer in flight: its acknowledgement waits for the disk.
            if let Some(t) = self.txns.get_mut(&id) {
                t.state = State::Answering;
            }
            if !self.queue_reversal_acked(now, id, Some(TxnOutcome::TimedOut)) {
                let refuse = reject_of(&self.txns[&id], Outcome::IssuerUnavailable);
                self.decide(now, id, refuse, TxnOutcome::TimedOut);
            }
            return;
        }
        if !self.mutated(Mutation::NoReversalOnTimeout) {
            self.queue_reversal(now, id);
        }
        self.stand_in_or_decline(now, id, issuer, TxnOutcome::TimedOut);
    }

    /// Sets transaction `id`'s reply and answers it.
    pub(super) fn decide(&mut self, now: Time, id: TxnId, response: Message, outcome: TxnOutcome) {
        if let Some(txn) = self.txns.get_mut(&id) {
            txn.reply = Some((response, outcome));
            self.answer(now, id);
        }
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
        if !self.cfg.journal {
            return self.reply(id);
        }
        let at = txn.route.is_some().then(|| now.wall_ms());
        let record = records::answered(id.0, response, *outcome, at);
        if outcome.approves() {
            txn.state = State::Answering;
            // A stand-in approval is written in its advice's group: the
            // journal never holds the advice without the approval.
            let stood_in = *outcome == TxnOutcome::StandIn;
            if stood_in && self.ride_along(id, record.clone(), true) {
                return;
            }
            let token = self.token(Wait::Reply(id));
            self.append(vec![record], Some(token));
        } else {
            // After a time-out, in the reversal's group: a journal that
            // kept the answer without the reversal would never reverse.
            if !(self.cfg.journal && self.ride_along(id, record.clone(), false)) {
                self.append(vec![record], None);
            }
            self.reply(id);
        }
    }

    /// Writes the reply; its delivery is reported back. The reply is built
    /// here, once: the frame goes to the node and to the duplicate cache
    /// (the transaction keeps only its outcome). A frame is one buffer of
    /// its own, so a cached reply pins no read buffer.
    pub(super) fn reply(&mut self, id: TxnId) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        if txn.reply.is_none() || matches!(txn.reply_mac, ReplyMac::Asked) {
            return;
        }
        let signed = match std::mem::take(&mut txn.reply_mac) {
            ReplyMac::Signed(frame) => Some(frame),
            ReplyMac::Unsigned | ReplyMac::Asked => None,
            ReplyMac::None => {
                if self.ask_reply_mac(id) {
                    return;
                }
                None
            }
        };
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        let Some((message, _)) = &mut txn.reply else {
            return;
        };
        txn.state = State::Replying;
        let mti = message.mti();
        let message = std::mem::replace(message, Message::empty(mti));
        match message.get_str(39) {
            Some("00" | "000") => self.counters.approved += 1,
            _ => self.counters.declined += 1,
        }
        let (to, key, place) = (txn.from, txn.key, txn.place);
        let frame = signed.or_else(|| self.built(to.acquirer, &message));
        self.push(Action::Reply {
            to,
            frame: frame.clone(),
            confirm: Some(id),
        });
        // Later copies get the reply from the cache (empty: none could be
        // built); those that waited get it now.
        let cached = frame.clone().unwrap_or_default();
        for copy in self.duplicates.complete(key, Some(place), cached) {
            self.reply_frame(copy, frame.clone());
        }
    }

    /// The reply reached its connection or not: recorded; an approval that
    /// did not is reversed (a stand-in approval: its advice is), and its
    /// copies get a decline from now on. The delivery record of an
    /// undelivered approval is written in the reversal's group: the
    /// journal never knows it undelivered without its reversal (after a
    /// crash before that group, the approval is presumed delivered). The
    /// transaction is closed.
    pub(super) fn written(&mut self, now: Time, id: TxnId, delivered: bool) {
        let Some(txn) = self.txns.get(&id).filter(|t| t.state == State::Replying) else {
            return;
        };
        let outcome = txn.reply.as_ref().map(|(_, o)| *o);
        let class = txn.request.mti().class();
        let record = Record::Delivery {
            id: id.0,
            at_ms: now.wall_ms(),
            delivered,
        };
        let reverse = !delivered && outcome.is_some_and(TxnOutcome::approves);
        let queued_before = self.saf_ids;
        if reverse {
            self.reverse_approval(now, id);
            // A reversal's acknowledgement stands: it is being delivered.
            if class != MessageClass::Reversal {
                let txn = &self.txns[&id];
                let (key, place, acquirer) = (txn.key, txn.place, txn.from.acquirer);
                let decline = reject(&txn.request, Outcome::IssuerUnavailable);
                if let Some(frame) = self.built(acquirer, &decline) {
                    self.duplicates.replace(key, Some(place), frame);
                }
            }
        }
        let queued = self.saf_ids > queued_before;
        // Without a journal the record goes nowhere: not even allocated.
        if self.cfg.journal && !(queued && self.ride_along(id, record.clone(), false)) {
            self.append(vec![record], None);
        }
        self.txns.remove(&id);
    }

    /// Reverses transaction `id`'s approval: a stand-in approval's advice
    /// (the request itself was reversed when it timed out), or the request
    /// as forwarded.
    pub(super) fn reverse_approval(&mut self, now: Time, id: TxnId) {
        let Some(txn) = self.txns.get(&id) else {
            return;
        };
        let stood_in = txn
            .reply
            .as_ref()
            .is_some_and(|(_, o)| *o == TxnOutcome::StandIn);
        match txn.advice.as_deref().cloned() {
            Some((issuer, advice)) if stood_in => {
                self.queue_reversal_of(now, issuer, &advice, Some(id.0), None);
            }
            _ => self.queue_reversal(now, id),
        }
    }

    /// A journal wait ended.
    pub(super) fn durable(&mut self, now: Time, token: super::Token, ok: bool) {
        let Some(wait) = self.waits.remove(&token) else {
            return;
        };
        match (wait, ok) {
            (Wait::Forward(id), true) => self.release(now, id),
            (Wait::Forward(id), false) => {
                // Not on disk: not forwarded.
                if let Some(txn) = self.txns.get(&id) {
                    let reject = reject_of(txn, Outcome::SystemMalfunction);
                    self.decide(now, id, reject, TxnOutcome::Rejected);
                }
            }
            (Wait::Reply(id), true) => self.reply(id),
            (Wait::Reply(id), false) => {
                // An approval that cannot be journaled is not handed out.
                self.reverse_approval(now, id);
                if let Some(txn) = self.txns.get_mut(&id) {
                    txn.reply = Some((
                        reject(&txn.request, Outcome::SystemMalfunction),
                        TxnOutcome::Rejected,
                    ));
                    self.reply(id);
                }
            }
            (Wait::Queue(entry), ok) => self.queued(now, *entry, ok),
            // A batch close or the HSM waits for its answer, not the disk.
            (
                wait @ (Wait::BatchClose(..)
                | Wait::Secure(..)
                | Wait::Sign(..)
                | Wait::SignReply(..)
                | Wait::SignSaf(..)
                | Wait::StandInCard(..)
                | Wait::KeyGenerated(_)
                | Wait::KeyImported(_)
                | Wait::CheckAnswer(..)),
                _,
            ) => {
                self.waits.insert(token, wait);
            }
        }
    }

    /// The acquirer's rules answered a batch close (or declined to).
    pub(super) fn answered(
        &mut self,
        _now: Time,
        token: super::Token,
        answer: Result<Message, Outcome>,
    ) {
        let Some(Wait::BatchClose(from, request)) = self.waits.remove(&token) else {
            return;
        };
        match answer {
            Ok(response) => self.reply_once(from, Some(response)),
            Err(outcome) => self.reply_reject(from, &request, outcome),
        }
    }

    pub(super) fn event(&mut self, now: Time, id: TxnId, kind: &'static str, detail: &str) {
        if !self.cfg.journal {
            return;
        }
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
