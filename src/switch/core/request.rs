//! The way in: a request is checked, routed, translated and accepted (on
//! disk before it is forwarded), then sent to its issuer with a time-out;
//! an acquirer's advice is acknowledged once it is queued for its issuer;
//! a batch close is a question for the acquirer's rules.

use super::{
    Action, Core, Mutation, Origin, Outgoing, Route, State, Time, TimerId, Txn, TxnId, Wait,
};
use bytes::Bytes;

use crate::journal::TxnOutcome;
use crate::journal::record::Forwarded;
use crate::message::Message;
use crate::message::mti::{Function, MessageClass};
use crate::message::netmgmt;
use crate::message::response_codes::Outcome;
use crate::switch::duplicates::{DupKey, Place, Seen};
use crate::switch::hooks::Admission;
use crate::switch::records::{self, pan_of, without_sad};
use crate::switch::responses::{local_response, malfunction};
use crate::switch::routing::RouteDecision;
use crate::switch::security::HsmOp;
use crate::switch::translate::translate;

/// The response the switch makes itself, or the request itself when its
/// MTI has no response (the node builds what it can).
pub(super) fn reject(request: &Message, outcome: Outcome) -> Message {
    // DE39 in the request's version: a 1993 acquirer gets an action code
    // (two characters in its three-digit field would not build, and the
    // terminal would get no answer at all).
    let code = outcome.code_in(request.mti().version());
    local_response(request, code).unwrap_or_else(|| request.clone())
}

impl Core {
    pub(super) fn request(&mut self, now: Time, from: Origin, msg: Box<Message>) {
        let mti = msg.mti();
        let open = self.txns.len() < self.cfg.transactions_max;
        match (mti.class(), mti.function()) {
            (MessageClass::NetworkManagement, _) => {
                let answer = netmgmt::answer(&msg);
                self.reply_once(from, answer);
            }
            (
                MessageClass::Authorization | MessageClass::Financial | MessageClass::Reversal,
                Function::Request | Function::Advice,
            ) if open => {
                self.counters.requests += 1;
                self.deduplicated(now, from, msg);
            }
            (MessageClass::Reconciliation, Function::Request | Function::Advice) => {
                let token = self.token(Wait::BatchClose(from, msg.clone()));
                self.push(Action::Ask {
                    token,
                    question: super::Question::BatchClose(msg),
                });
            }
            // The node closes a connection that sends answers before they
            // come here; nothing answers one.
            _ if mti.is_answer() => self.reply_once(from, None),
            (_, Function::Request | Function::Advice) if !open => {
                self.reply_reject(from, &msg, Outcome::SystemMalfunction);
            }
            _ => self.reply_reject(from, &msg, Outcome::InvalidTransaction),
        }
    }

    /// Answers a request that opens no transaction.
    pub(super) fn reply_once(&mut self, to: Origin, message: Option<Message>) {
        let frame = message.and_then(|m| self.built(to.acquirer, &m));
        self.reply_frame(to, frame);
    }

    /// Answers a request that opens no transaction with a reply built.
    pub(super) fn reply_frame(&mut self, to: Origin, frame: Option<Bytes>) {
        self.push(Action::Reply {
            to,
            frame,
            confirm: None,
        });
    }

    /// A reply in acquirer `acquirer`'s dialect; one that cannot be built
    /// becomes a 96 with its key fields (counted), or nothing.
    pub(super) fn built(&mut self, acquirer: usize, reply: &Message) -> Option<Bytes> {
        let spec = &self.cfg.acquirers[acquirer].spec;
        let bytes = spec.build(reply).or_else(|_| {
            self.counters.unbuildable += 1;
            spec.build(&malfunction(reply))
        });
        bytes.ok().filter(|b| !b.is_empty())
    }

    pub(super) fn reply_reject(&mut self, to: Origin, request: &Message, outcome: Outcome) {
        self.counters.declined += 1;
        self.reply_once(to, Some(reject(request, outcome)));
    }

    /// A request that is a copy of one seen (same key and content) gets
    /// its reply, at once or when it is decided; any other is accepted.
    fn deduplicated(&mut self, now: Time, from: Origin, request: Box<Message>) {
        let name = &self.cfg.acquirers[from.acquirer].name;
        let pan = pan_of(&request);
        let Some(key) = self.duplicates.key(name, &request, pan) else {
            return self.reply_reject(from, &request, Outcome::FormatError);
        };
        let answer = match self.duplicates.check(key, now.mono, || from) {
            Seen::New(place) => return self.accept(now, from, request, key, place),
            Seen::InFlight => {
                self.counters.duplicates += 1;
                return;
            }
            Seen::Answered(reply) => Some(reply).filter(|b| !b.is_empty()),
            Seen::Flooded => self.built(from.acquirer, &reject(&request, Outcome::Duplicate)),
        };
        self.counters.duplicates += 1;
        self.reply_frame(from, answer);
    }

    /// Opens a transaction: routed and translated, a request is forwarded
    /// once its acceptance is durable, an advice acknowledged once it is
    /// queued; refused, it is answered at once.
    fn accept(
        &mut self,
        now: Time,
        from: Origin,
        request: Box<Message>,
        key: DupKey,
        place: Place,
    ) {
        let id = TxnId(self.next_txn);
        self.next_txn += 1;
        let advice = request.mti().function() == Function::Advice;
        let mut route = self.prepare(now, from.acquirer, &request);
        // The HSM's checks, decided before the acceptance is journaled: a
        // request they refuse is never recorded as forwarded.
        let ops = match &route {
            Ok(r) => self.inbound_ops(from.acquirer, r.issuer, &request),
            Err(_) => Ok(Vec::new()),
        };
        let ops = ops.unwrap_or_else(|outcome| {
            route = Err(outcome);
            Vec::new()
        });
        // Room to reverse it (and the others open) if its answer were lost.
        let room = self.saf_room(self.saf_reserve() + 2);
        let forwarded = match &route {
            Ok(r) if self.cfg.journal && !advice && room => {
                let target = &self.cfg.issuers[r.issuer];
                Some(Forwarded {
                    issuer: target.name.clone(),
                    issuer_stan: format!("{:06}", r.stan),
                    message: without_sad(&target.spec, &r.message),
                })
            }
            _ => None,
        };
        let name = &self.cfg.acquirers[from.acquirer].name;
        let durable = forwarded.is_some();
        // Made only for a journal: it costs a copy of the request.
        let accepted = self
            .cfg
            .journal
            .then(|| records::accepted(name, &request, id.0, forwarded, now.wall_ms()));
        let txn = Box::new(Txn {
            from,
            request,
            state: State::Accepting,
            route: None,
            reply: None,
            key,
            place,
            advice: None,
            holds: 0,
            reply_mac: Default::default(),
        });
        self.txns.insert(id, txn);
        let route = match route {
            Err(outcome) => {
                self.append(accepted.into_iter().collect(), None);
                return self.decide(
                    now,
                    id,
                    reject_of(&self.txns[&id], outcome),
                    TxnOutcome::Rejected,
                );
            }
            Ok(route) => route,
        };
        let issuer = route.issuer;
        if advice && ops.is_empty() {
            self.append(accepted.into_iter().collect(), None);
            return self.queue_advice(now, id, route);
        }
        self.txns.get_mut(&id).expect("inserted above").route = Some(route);
        if !room && !advice {
            self.append(accepted.into_iter().collect(), None);
            return self.stand_in_or_decline(now, id, issuer, TxnOutcome::Declined);
        }
        self.ask_hsm(id, ops);
        // Durable before forwarded: after a crash, the journal knows this
        // request may have reached the issuer.
        if durable && !self.mutated(Mutation::NoDurabilityWait) {
            let token = self.token(Wait::Forward(id));
            self.hold(id);
            self.append(accepted.into_iter().collect(), Some(token));
        } else {
            self.append(accepted.into_iter().collect(), None);
        }
        self.proceed_if_free(now, id);
    }

    /// Checks, routes and translates a request for its issuer.
    fn prepare(&mut self, now: Time, acquirer: usize, request: &Message) -> Result<Route, Outcome> {
        let acq = &self.cfg.acquirers[acquirer];
        if !acq.allowed_institutions.is_empty() {
            let allowed = request
                .value(32)
                .is_some_and(|id| acq.allowed_institutions.iter().any(|a| a == id));
            if !allowed {
                return Err(Outcome::InvalidMerchant);
            }
        }
        if let Some(rules) = &self.cfg.rules {
            match rules.admit(request.value(41), request.value(42)) {
                Admission::Admit => {}
                Admission::Decline("03") => return Err(Outcome::InvalidMerchant),
                Admission::Decline(_) => return Err(Outcome::NotPermittedToTerminal),
            }
        }
        let pan = pan_of(request).ok_or(Outcome::FormatError)?;
        let decision =
            self.cfg
                .routes
                .route(pan, request.mti(), request.value(3), request.value(49));
        let (issuer, timeout) = match decision {
            RouteDecision::Issuer { issuer, timeout } => (issuer, timeout),
            RouteDecision::Decline { .. } => return Err(Outcome::NoSuchIssuer),
        };
        let target = &self.cfg.issuers[issuer];
        let mut message = translate(&acq.spec, &target.spec, request, now.wall).message;
        let _ = message.set_copy(33, &self.cfg.institution_id);
        let stan = self.next_stan(issuer);
        let _ = message.set_num(11, u64::from(stan), 6);
        Ok(Route {
            issuer,
            message,
            stan,
            timeout,
        })
    }

    /// Sends an accepted transaction to its issuer and arms its time-out;
    /// one that cannot be built in the issuer's dialect is not sent.
    /// An issuer with a MAC key gets the request signed first.
    pub(super) fn forward(&mut self, now: Time, id: TxnId) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        let Some(route) = txn.route.as_mut().filter(|_| txn.state == State::Accepting) else {
            return;
        };
        let target = &self.cfg.issuers[route.issuer];
        let Some(key) = target.keys.mac.clone() else {
            let frame = target.spec.build(&route.message);
            return self.send_forwarded(now, id, frame.ok());
        };
        match super::secure::placeholder_frame(&target.spec, &mut route.message) {
            Some((frame, data)) => {
                let token = self.token(Wait::Sign(id, frame));
                let question = super::Question::Hsm(vec![HsmOp::GenerateMac { key, data }]);
                self.push(Action::Ask { token, question });
            }
            None => self.send_forwarded(now, id, None),
        }
    }

    /// Sends the request built for its issuer (`None`: it could not be
    /// built or signed, and is not sent) and arms its time-out.
    pub(super) fn send_forwarded(&mut self, now: Time, id: TxnId, frame: Option<Bytes>) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        let Some(route) = txn.route.as_ref().filter(|_| txn.state == State::Accepting) else {
            return;
        };
        let (issuer, stan, at) = (route.issuer, route.stan, now.mono + route.timeout);
        txn.state = State::Forwarded;
        let what = Outgoing::Txn(id);
        self.in_flight.insert((issuer, stan), what);
        let Some(frame) = frame else {
            self.counters.unbuildable += 1;
            return self.not_sent(now, what);
        };
        self.push(Action::ToIssuer {
            issuer,
            what,
            stan,
            frame,
        });
        self.push(Action::Arm {
            timer: TimerId::Response(id),
            at,
        });
    }
}

/// The switch's own response to a transaction's request.
pub(super) fn reject_of(txn: &Txn, outcome: Outcome) -> Message {
    reject(&txn.request, outcome)
}
