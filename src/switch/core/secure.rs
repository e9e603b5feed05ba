//! The HSM's part of a request (issue 21): its MAC checked and its PIN
//! block translated while its acceptance goes to disk (forwarded when both
//! are done: `holds`), and the request signed for an issuer with a MAC
//! key. The core only asks (`Question::Hsm`); the node speaks to the HSM.

use bytes::Bytes;

use super::request::reject_of;
use super::{Action, Core, Outgoing, Question, ReplyMac, State, Time, Token, TxnId, Wait};
use crate::journal::TxnOutcome;
use crate::message::mac_field::{mac_field, with_placeholder, write_mac};
use crate::message::response_codes::Outcome;
use crate::message::{Message, Spec};
use crate::switch::security::{self, HsmOp, HsmReply, HsmResult};

/// `message` built with a zero MAC (see `mac_field::with_placeholder`)
/// and the bytes the MAC covers, for the HSM to sign.
pub(super) fn placeholder_frame(spec: &Spec, message: &mut Message) -> Option<(Vec<u8>, Bytes)> {
    let (frame, covered) = with_placeholder(spec, message)?;
    let data = Bytes::copy_from_slice(&frame[..covered]);
    Some((frame, data))
}

impl Core {
    /// What the HSM must do for a request from `acquirer` to `issuer`.
    pub(super) fn inbound_ops(
        &self,
        acquirer: usize,
        issuer: usize,
        request: &Message,
    ) -> Result<Vec<HsmOp>, Outcome> {
        let acq = &self.cfg.acquirers[acquirer];
        let iss = &self.cfg.issuers[issuer];
        let mut ops = security::inbound_ops(&acq.keys, &iss.keys, &acq.spec, request)?;
        if self.mutated(super::Mutation::NoPinTranslation) {
            ops.retain(|op| !matches!(op, HsmOp::TranslatePin { .. }));
        }
        Ok(ops)
    }

    /// Asks the HSM `ops` for transaction `id`, which waits for them.
    pub(super) fn ask_hsm(&mut self, id: TxnId, ops: Vec<HsmOp>) {
        if ops.is_empty() {
            return;
        }
        let asked = ops.len();
        let token = self.token(Wait::Secure(id, asked));
        self.hold(id);
        self.push(Action::Ask {
            token,
            question: Question::Hsm(ops),
        });
    }

    /// One more thing transaction `id` waits for before it goes on.
    pub(super) fn hold(&mut self, id: TxnId) {
        if let Some(txn) = self.txns.get_mut(&id) {
            txn.holds += 1;
        }
    }

    /// One thing transaction `id` waited for is done.
    pub(super) fn release(&mut self, now: Time, id: TxnId) {
        if let Some(txn) = self.txns.get_mut(&id) {
            txn.holds = txn.holds.saturating_sub(1);
        }
        self.proceed_if_free(now, id);
    }

    /// Forwards (or queues, for an advice) a transaction that is still
    /// being accepted and waits for nothing more.
    pub(super) fn proceed_if_free(&mut self, now: Time, id: TxnId) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        if txn.holds > 0 || txn.state != State::Accepting {
            return;
        }
        if txn.request.mti().function() == crate::message::mti::Function::Advice {
            if let Some(route) = txn.route.take() {
                self.queue_advice(now, id, route);
            }
            return;
        }
        self.forward(now, id);
    }

    /// The HSM answered one of the core's questions.
    pub(super) fn hsm_answered(&mut self, now: Time, token: Token, results: Vec<HsmResult>) {
        match self.waits.remove(&token) {
            Some(Wait::Secure(id, asked)) => self.secured(now, id, asked, results),
            Some(Wait::Sign(id, frame)) => self.signed(now, id, frame, results),
            Some(Wait::SignReply(id, frame)) => self.reply_signed(id, frame, results),
            Some(Wait::SignSaf(id, attempts, frame)) => {
                self.saf_signed(now, id, attempts, frame, results)
            }
            Some(Wait::KeyGenerated(issuer)) => self.key_generated(now, issuer, results),
            Some(Wait::KeyImported(importing)) => self.key_imported(*importing, results),
            Some(Wait::StandInCard(id, issuer, outcome)) => {
                self.card_checked(now, id, issuer, outcome, results)
            }
            Some(Wait::CheckAnswer(id, reply)) => self.answer_checked(now, id, reply, results),
            // Not an HSM question's: leave it waiting.
            Some(other) => {
                self.waits.insert(token, other);
            }
            None => {}
        }
    }

    /// The request's checks are back: the translated PIN block goes into
    /// the message forwarded; a failure declines it, unsent.
    fn secured(&mut self, now: Time, id: TxnId, asked: usize, results: Vec<HsmResult>) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        if txn.state != State::Accepting {
            return;
        }
        // One result per operation asked, or none counts: a missing
        // translation would forward the acquirer's block.
        let applied = match txn.route.as_mut() {
            Some(route) if results.len() == asked => {
                security::apply_inbound(results, &mut route.message)
            }
            _ => Err(Outcome::SystemMalfunction),
        };
        match applied {
            Ok(()) => self.release(now, id),
            Err(outcome) => self.refuse_unsent(now, id, outcome, "hsm_declined"),
        }
    }

    /// The MAC of the request built for the issuer is back: written over
    /// its placeholder, the request is sent; without one, it is not.
    fn signed(&mut self, now: Time, id: TxnId, mut frame: Vec<u8>, results: Vec<HsmResult>) {
        let Some(route) = self.txns.get(&id).and_then(|t| t.route.as_ref()) else {
            return;
        };
        let spec = &self.cfg.issuers[route.issuer].spec;
        let field = mac_field(&route.message);
        match results.into_iter().next() {
            Some(Ok(HsmReply::Mac(mac))) if write_mac(spec, &mut frame, field, &mac) => {
                self.send_forwarded(now, id, Some(Bytes::from(frame)));
            }
            other => {
                let outcome = match other {
                    Some(Err(outcome)) => outcome,
                    _ => Outcome::SystemMalfunction,
                };
                self.refuse_unsent(now, id, outcome, "hsm_sign_failed");
            }
        }
    }

    /// An issuer with a MAC key: its answer's MAC is checked before the
    /// reply it made (held in the transaction) counts; the reply is signed
    /// in the same question when the acquirer signs (used only if the
    /// answer's MAC verifies).
    pub(super) fn check_answer_mac(
        &mut self,
        now: Time,
        id: TxnId,
        issuer: usize,
        answer: &Message,
    ) {
        let target = &self.cfg.issuers[issuer];
        let Some(key) = &target.keys.mac else {
            return;
        };
        let check = security::verify_mac(key, &target.spec, answer);
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        txn.state = State::Answering;
        let Some(check) = check else {
            // No MAC to check: refused as a bad one is.
            return self.answer_checked(now, id, None, Vec::new());
        };
        let mut ops = vec![check];
        let acq = &self.cfg.acquirers[txn.from.acquirer];
        let reply = match (&acq.keys.mac, &txn.reply) {
            (Some(key), Some((response, _))) => {
                let mut signable = response.clone();
                placeholder_frame(&acq.spec, &mut signable).map(|(frame, data)| {
                    ops.push(HsmOp::GenerateMac {
                        key: key.clone(),
                        data,
                    });
                    frame
                })
            }
            _ => None,
        };
        let token = self.token(Wait::CheckAnswer(id, reply));
        self.push(Action::Ask {
            token,
            question: Question::Hsm(ops),
        });
    }

    /// The issuer's answer's MAC verified: its reply counts (signed, if
    /// the reply's MAC came with it). It did not (or had none): the answer
    /// cannot be trusted, so the issuer is sent a reversal (it may have
    /// approved) and the acquirer gets 63.
    fn answer_checked(
        &mut self,
        now: Time,
        id: TxnId,
        reply: Option<Vec<u8>>,
        results: Vec<HsmResult>,
    ) {
        let Some(txn) = self
            .txns
            .get_mut(&id)
            .filter(|t| t.state == State::Answering)
        else {
            return;
        };
        let mut results = results.into_iter();
        if matches!(results.next(), Some(Ok(HsmReply::Verified))) {
            if let (Some(mut frame), Some(Ok(HsmReply::Mac(mac)))) = (reply, results.next()) {
                let acq = &self.cfg.acquirers[txn.from.acquirer];
                let field = txn.reply.as_ref().map_or(64, |(m, _)| mac_field(m));
                if write_mac(&acq.spec, &mut frame, field, &mac) {
                    txn.reply_mac = ReplyMac::Signed(Bytes::from(frame));
                }
            }
            return self.answer(now, id);
        }
        self.event(now, id, "issuer_mac_failed", "answer not trusted");
        self.queue_reversal(now, id);
        if let Some(txn) = self.txns.get(&id) {
            let reject = reject_of(txn, Outcome::SecurityViolation);
            self.decide(now, id, reject, TxnOutcome::Declined);
        }
    }

    /// An acquirer that signs: its reply is built with a placeholder and
    /// its MAC asked for (true: asked; the reply waits for it).
    pub(super) fn ask_reply_mac(&mut self, id: TxnId) -> bool {
        let Some(txn) = self.txns.get_mut(&id) else {
            return false;
        };
        let acq = &self.cfg.acquirers[txn.from.acquirer];
        let (Some(key), Some((message, _))) = (acq.keys.mac.clone(), txn.reply.as_ref()) else {
            return false;
        };
        let mut signable = message.clone();
        let Some((frame, data)) = placeholder_frame(&acq.spec, &mut signable) else {
            return false;
        };
        txn.reply_mac = ReplyMac::Asked;
        txn.state = State::Answering;
        let token = self.token(Wait::SignReply(id, frame));
        self.push(Action::Ask {
            token,
            question: Question::Hsm(vec![HsmOp::GenerateMac { key, data }]),
        });
        true
    }

    /// The reply's MAC is back: the signed frame is replied. Without one
    /// the reply goes unsigned (the acquirer refuses it as it would a lost
    /// one, and reverses what it does not get).
    fn reply_signed(&mut self, id: TxnId, mut frame: Vec<u8>, results: Vec<HsmResult>) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        let acq = &self.cfg.acquirers[txn.from.acquirer];
        let field = txn.reply.as_ref().map_or(64, |(m, _)| mac_field(m));
        txn.reply_mac = match results.into_iter().next() {
            Some(Ok(HsmReply::Mac(mac))) if write_mac(&acq.spec, &mut frame, field, &mac) => {
                ReplyMac::Signed(Bytes::from(frame))
            }
            _ => ReplyMac::Unsigned,
        };
        self.reply(id);
    }

    /// Sends a store-and-forward entry's attempt, signed first for an
    /// issuer with a MAC key (its answer timer already runs).
    pub(super) fn send_saf(
        &mut self,
        now: Time,
        (issuer, stan): (usize, u32),
        id: u64,
        attempts: u32,
        mut message: Message,
        frame: Bytes,
    ) {
        let target = &self.cfg.issuers[issuer];
        let Some(key) = target.keys.mac.clone() else {
            let what = Outgoing::Saf(id);
            return self.push(Action::ToIssuer {
                issuer,
                what,
                stan,
                frame,
            });
        };
        let Some((frame, data)) = placeholder_frame(&target.spec, &mut message) else {
            return self.saf_not_sent(now, id);
        };
        let token = self.token(Wait::SignSaf(id, attempts, frame));
        self.push(Action::Ask {
            token,
            question: Question::Hsm(vec![HsmOp::GenerateMac { key, data }]),
        });
    }

    /// An entry's attempt signed: sent if that attempt is still out; not
    /// signed, the attempt failed (it backs off and is tried again).
    fn saf_signed(
        &mut self,
        now: Time,
        id: u64,
        attempts: u32,
        mut frame: Vec<u8>,
        results: Vec<HsmResult>,
    ) {
        let Some(entry) = self.saf_sending.get(&id).filter(|e| e.attempts == attempts) else {
            return;
        };
        let (issuer, field) = (entry.issuer, mac_field(&entry.message));
        let Some(stan) = super::saf_delivery::stan_of(entry) else {
            return;
        };
        let spec = &self.cfg.issuers[issuer].spec;
        match results.into_iter().next() {
            Some(Ok(HsmReply::Mac(mac))) if write_mac(spec, &mut frame, field, &mac) => {
                let (what, frame) = (Outgoing::Saf(id), Bytes::from(frame));
                self.push(Action::ToIssuer {
                    issuer,
                    what,
                    stan,
                    frame,
                });
            }
            _ => self.saf_not_sent(now, id),
        }
    }

    /// Declines a transaction that was never sent: nothing to reverse.
    fn refuse_unsent(&mut self, now: Time, id: TxnId, outcome: Outcome, event: &'static str) {
        self.event(now, id, event, outcome.code());
        if let Some(txn) = self.txns.get(&id) {
            let reject = reject_of(txn, outcome);
            self.decide(now, id, reject, TxnOutcome::Declined);
        }
    }
}
