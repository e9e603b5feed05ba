//! The way in: a request is checked, routed, translated and accepted (on
//! disk before it is forwarded), then sent to its issuer with a time-out.

use super::{Action, ConnId, Copy, Core, Route, State, Time, TimerId, Txn, TxnId, Wait};
use crate::journal::record::Forwarded;
use crate::message::Message;
use crate::message::mti::{Function, MessageClass};
use crate::message::netmgmt;
use crate::message::response_codes::Outcome;
use crate::switch::duplicates::{DupKey, Seen};
use crate::switch::records::{self, pan_of, without_sad};
use crate::switch::responses::local_response;
use crate::switch::routing::RouteDecision;
use crate::switch::translate::translate;

/// The response the switch makes itself, or the request itself when its
/// MTI has no response (the node builds what it can).
pub(super) fn reject(request: &Message, outcome: Outcome) -> Message {
    local_response(request, outcome.code()).unwrap_or_else(|| request.clone())
}

impl Core {
    pub(super) fn request(&mut self, now: Time, conn: ConnId, acquirer: usize, msg: Message) {
        let mti = msg.mti();
        let reply = |message| Action::Reply {
            conn,
            acquirer,
            message,
            confirm: None,
        };
        match (mti.class(), mti.function()) {
            (MessageClass::NetworkManagement, _) => {
                if let Some(answer) = netmgmt::answer(&msg) {
                    self.push(reply(answer));
                }
            }
            (
                MessageClass::Authorization | MessageClass::Financial | MessageClass::Reversal,
                Function::Request,
            ) if self.txns.len() < self.cfg.transactions_max => {
                self.deduplicated(now, conn, acquirer, msg);
            }
            _ if mti.is_answer() => {}
            (_, Function::Request) => {
                self.push(reply(reject(&msg, Outcome::SystemMalfunction)));
            }
            _ => self.push(reply(reject(&msg, Outcome::InvalidTransaction))),
        }
    }

    /// A request that is a copy of one seen (same key and content) gets
    /// its reply, at once or when it is decided; any other is accepted.
    fn deduplicated(&mut self, now: Time, conn: ConnId, acquirer: usize, request: Message) {
        let name = &self.cfg.acquirers[acquirer].name;
        let pan = pan_of(&request);
        let Some(key) = self.duplicates.key(name, &request, pan.as_deref()) else {
            let reject = reject(&request, Outcome::FormatError);
            return self.push(Action::Reply {
                conn,
                acquirer,
                message: reject,
                confirm: None,
            });
        };
        let copy = Copy { conn, acquirer };
        let answer = match self.duplicates.check(key, now.mono, || copy) {
            Seen::New => return self.accept(now, conn, acquirer, request, key),
            Seen::InFlight => return,
            Seen::Answered(reply) => reply,
            Seen::Flooded => reject(&request, Outcome::Duplicate),
        };
        self.push(Action::Reply {
            conn,
            acquirer,
            message: answer,
            confirm: None,
        });
    }

    /// Opens a transaction: routed and translated, it is forwarded once
    /// its acceptance is durable; refused, it is answered at once.
    fn accept(&mut self, now: Time, conn: ConnId, acquirer: usize, request: Message, key: DupKey) {
        let id = TxnId(self.next_txn);
        self.next_txn += 1;
        let route = self.prepare(now, acquirer, &request);
        let forwarded = match &route {
            Ok(r) if self.cfg.journal => {
                let target = &self.cfg.issuers[r.issuer];
                Some(Forwarded {
                    issuer: target.name.clone(),
                    issuer_stan: format!("{:06}", r.stan),
                    message: without_sad(&target.spec, &r.message),
                })
            }
            _ => None,
        };
        let name = &self.cfg.acquirers[acquirer].name;
        let accepted = records::accepted(name, &request, id.0, forwarded, now.wall_ms());
        let mut txn = Txn {
            conn,
            acquirer,
            request,
            state: State::Accepting,
            route: None,
            reply: None,
            key,
        };
        match route {
            Err(outcome) => {
                self.append(vec![accepted], None);
                txn.reply = Some((reject(&txn.request, outcome), "rejected"));
                self.txns.insert(id, txn);
                self.answer(now, id);
            }
            Ok(route) => {
                txn.route = Some(route);
                self.txns.insert(id, txn);
                // Durable before forwarded: after a crash, the journal
                // knows this request may have reached the issuer.
                if self.cfg.journal {
                    let token = self.token(Wait::Forward(id));
                    self.append(vec![accepted], Some(token));
                } else {
                    self.forward(now, id);
                }
            }
        }
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
        let pan = pan_of(request).ok_or(Outcome::FormatError)?;
        let decision =
            self.cfg
                .routes
                .route(&pan, request.mti(), request.value(3), request.value(49));
        let (issuer, timeout) = match decision {
            RouteDecision::Issuer { issuer, timeout } => (issuer, timeout),
            RouteDecision::Decline { .. } => return Err(Outcome::NoSuchIssuer),
        };
        let target = &self.cfg.issuers[issuer];
        let mut message = translate(&acq.spec, &target.spec, request, now.wall).message;
        let _ = message.set(33, self.cfg.institution_id.clone());
        let stan = self.next_stan(issuer);
        let _ = message.set_num(11, u64::from(stan), 6);
        Ok(Route {
            issuer,
            message,
            stan,
            timeout,
        })
    }

    /// Sends an accepted transaction to its issuer and arms its time-out.
    pub(super) fn forward(&mut self, now: Time, id: TxnId) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        let Some(route) = txn.route.clone() else {
            return;
        };
        txn.state = State::Forwarded;
        self.in_flight.insert((route.issuer, route.stan), id);
        self.push(Action::ToIssuer {
            issuer: route.issuer,
            txn: id,
            message: route.message,
        });
        self.push(Action::Arm {
            timer: TimerId::Response(id),
            at: now.mono + route.timeout,
        });
    }
}
