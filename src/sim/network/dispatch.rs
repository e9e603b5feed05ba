//! The core's actions carried out in the simulated world, and the
//! issuers' side of the links: what an issuer answers, and how the
//! answer goes wrong (late, never, twice, wrong STAN, wrong class,
//! without DE39; lost or duplicated on the way).

use bytes::Bytes;

use super::Invariant;
use super::acquirer::{Kind, PIN_TRANSLATED, WRONG_CVV2};
use super::digest::describe_action;
use super::queue::Event;
use super::world::World;
use crate::message::Message;
use crate::message::mti::MessageClass;
use crate::message::response_codes::Outcome;
use crate::switch::core::{Action, Input, Outgoing, Question, TxnId};
use crate::switch::security::{HsmOp, HsmReply, HsmResult, PinBlock};

impl World<'_> {
    pub fn dispatch(&mut self, action: Action) -> Result<(), super::Failure> {
        self.digest.action(self.base, &action);
        if self.trace.is_some() {
            let line = format!("out {}", describe_action(self.base, &self.setup, &action));
            self.trace_line(&line);
        }
        match action {
            Action::Append { records, durable } => {
                let wall_ms = self.now().wall_ms();
                self.checks
                    .appended(&records, wall_ms)
                    .map_err(|b| self.fail(b))?;
                let delay = self.rng.u64(200..20_000);
                let (group, at) = self.journal.append(records, durable, self.now_us, delay);
                self.queue.at(at, Event::Commit { group });
            }
            Action::ToIssuer {
                issuer,
                what,
                stan,
                frame,
            } => self.send_to_issuer(issuer, what, stan, frame)?,
            Action::Reply { to, frame, confirm } => {
                let message = self.readable_reply(to.tag, frame.as_ref())?;
                self.checks
                    .reply(&mut self.acq, &self.journal, to, message.as_ref(), confirm)
                    .map_err(|b| self.fail(b))?;
                self.write_reply(to.tag, message, confirm)?;
            }
            Action::Arm { timer, at } => {
                self.timer_generation += 1;
                let generation = self.timer_generation;
                self.timers.insert(timer, generation);
                let at_us = at.saturating_duration_since(self.base).as_micros() as u64;
                self.queue
                    .at(at_us.max(self.now_us), Event::Timer { timer, generation });
            }
            Action::Disarm { timer } => {
                self.timers.remove(&timer);
            }
            // The simulated issuers send no requests of their own (the
            // core answers only an `Input::IssuerRequest`).
            Action::AnswerIssuer { .. } => {}
            // The simulated links keep no per-message state to forget.
            Action::Forget { .. } => {}
            Action::Ask { token, question } => {
                let request = match question {
                    Question::BatchClose(request) => request,
                    Question::Hsm(ops) => {
                        let results = ops.iter().map(|op| self.hsm_result(op)).collect();
                        let input = Input::HsmAnswer { token, results };
                        let (epoch, at) = (self.epoch, self.now_us + self.rng.u64(50..20_000));
                        self.queue.at(at, Event::Later { epoch, input });
                        return Ok(());
                    }
                };
                let answer = if self.chance(100) {
                    Err(Outcome::SystemMalfunction)
                } else {
                    let mut resp = Message::clone(&request);
                    if let Some(mti) = request.mti().response() {
                        resp.set_mti(mti);
                    }
                    let _ = resp.set_str(39, "00");
                    Ok(resp)
                };
                let at = self.now_us + self.rng.u64(100..50_000);
                let input = Input::Answer {
                    token,
                    answer: answer.map(Box::new),
                };
                self.queue.at(
                    at,
                    Event::Later {
                        epoch: self.epoch,
                        input,
                    },
                );
            }
        }
        Ok(())
    }

    fn send_to_issuer(
        &mut self,
        issuer: usize,
        what: Outgoing,
        stan: u32,
        bytes: Bytes,
    ) -> Result<(), super::Failure> {
        let message = self.setup.issuer_specs[issuer].parse(&bytes).map_err(|e| {
            self.fail((
                Invariant::Buildable,
                format!("message for issuer {issuer} unreadable: {e}"),
            ))
        })?;
        if message.get_u64(11) != Some(u64::from(stan)) {
            return Err(self.fail((
                Invariant::Buildable,
                format!("message for issuer {issuer} sent as STAN {stan} carries another"),
            )));
        }
        self.checks
            .sent_to_issuer(&self.journal, issuer, what, &message)
            .map_err(|b| self.fail(b))?;
        if !self.links[issuer].up {
            self.inputs.push_back(Input::NotSent { what });
            return Ok(());
        }
        self.toward_issuer(issuer, bytes);
        Ok(())
    }

    /// Puts `bytes` on issuer `issuer`'s link toward the issuer: lost,
    /// duplicated or delayed (so reordered) on the way.
    fn toward_issuer(&mut self, issuer: usize, bytes: Bytes) {
        if self.chance(self.rates.link_loss) {
            self.faults.lost += 1;
            return;
        }
        let copies = if self.chance(self.rates.link_loss) {
            self.faults.duplicated += 1;
            2
        } else {
            1
        };
        let link = self.links[issuer].epoch;
        for _ in 0..copies {
            let at = self.now_us + self.rng.u64(500..40_000);
            let event = Event::AtIssuer {
                issuer,
                link,
                bytes: bytes.clone(),
            };
            self.queue.at(at, event);
        }
    }

    /// The reply as the acquirer reads it: a frame it cannot parse, or one
    /// the core could not build (and sent as a 96), breaks an invariant.
    fn readable_reply(
        &mut self,
        tag: u64,
        frame: Option<&Bytes>,
    ) -> Result<Option<Message>, super::Failure> {
        if self
            .core
            .as_ref()
            .is_some_and(|c| c.counters().unbuildable > 0)
        {
            return Err(self.fail((
                Invariant::Buildable,
                format!("the reply to tag {tag} could not be built"),
            )));
        }
        let Some(frame) = frame else { return Ok(None) };
        let parsed = self.setup.acquirer_spec.parse(frame).map_err(|e| {
            self.fail((
                Invariant::Buildable,
                format!("reply to tag {tag} unreadable: {e}"),
            ))
        })?;
        Ok(Some(parsed))
    }

    /// The reply goes out on its connection, if that is still there and
    /// the write works; its delivery is reported at once.
    fn write_reply(
        &mut self,
        tag: u64,
        message: Option<Message>,
        confirm: Option<TxnId>,
    ) -> Result<(), super::Failure> {
        let Some(parsed) = message else {
            return Ok(());
        };
        let (a, conn, kind, rrn) = match self.acq.sent.get(&tag) {
            Some(s) => (s.acquirer, s.conn, s.kind, s.rrn.clone()),
            None => return Ok(()),
        };
        let open = self.acq.conn_of(a) == conn;
        let delivered = open && !self.chance(self.rates.write_fail);
        if delivered {
            if self.acq.delivered(tag, &parsed) {
                // Refused: tried again later, past the duplicate window.
                let at = self.now_us + self.rng.u64(10_000_000..20_000_000);
                self.queue.at(at, Event::ReversalRetry(rrn.clone()));
            }
        } else {
            if open {
                self.faults.write_failed += 1;
                self.acq.reconnect(a);
            }
            self.reply_lost(&rrn, kind == Kind::Reversal);
        }
        if let Some(txn) = confirm {
            self.inputs.push_back(Input::Written { txn, delivered });
        }
        Ok(())
    }

    /// Bytes reach issuer `issuer`: it answers, perhaps wrongly.
    pub fn at_issuer(
        &mut self,
        issuer: usize,
        link: u64,
        bytes: &Bytes,
    ) -> Result<(), super::Failure> {
        if link != self.links[issuer].epoch {
            return Ok(());
        }
        let spec = self.setup.issuer_specs[issuer].clone();
        let message = spec.parse(bytes).map_err(|e| {
            self.fail((
                Invariant::Buildable,
                format!("message to issuer {issuer} unreadable: {e}"),
            ))
        })?;
        let Some(mut answer) = self.issuers[issuer].receive(&message) else {
            return Ok(());
        };
        let mut delay = self.rng.u64(1_000..60_000);
        let mut copies = 1;
        if self.chance(self.rates.answer) {
            match self.rng.u32(..6) {
                0 => {
                    self.faults.late += 1;
                    delay = self.rng.u64(2_000_000..12_000_000);
                }
                1 => {
                    self.faults.never += 1;
                    return Ok(());
                }
                2 => {
                    self.faults.twice += 1;
                    copies = 2;
                }
                3 => {
                    self.faults.wrong_stan += 1;
                    let stan = answer.get_u64(11).unwrap_or(0) % 999_999 + 1;
                    let _ = answer.set_num(11, stan, 6);
                }
                4 => {
                    self.faults.wrong_class += 1;
                    let version = answer.mti().version();
                    let mti = if answer.mti().class() == MessageClass::NetworkManagement {
                        "0110"
                    } else {
                        "0810"
                    };
                    answer.set_mti(
                        mti.parse::<crate::message::Mti>()
                            .expect("constant MTI")
                            .with_version(version),
                    );
                }
                _ => {
                    self.faults.no_de39 += 1;
                    answer.remove(39);
                }
            }
        }
        let Ok(out) = spec.build(&answer) else {
            return Ok(());
        };
        for _ in 0..copies {
            let at_delay = delay + self.rng.u64(0..5_000);
            self.later_to_switch(issuer, out.clone(), at_delay);
        }
        Ok(())
    }

    fn later_to_switch(&mut self, issuer: usize, bytes: Bytes, delay: u64) {
        if self.chance(self.rates.link_loss) {
            self.faults.lost += 1;
            return;
        }
        let link = self.links[issuer].epoch;
        self.queue.at(
            self.now_us + delay,
            Event::AtSwitch {
                issuer,
                link,
                bytes,
            },
        );
    }
}

impl World<'_> {
    /// The simulated HSM: a PIN block translated (its first byte marked),
    /// now and then refused as a wrong PIN or failing as a fault.
    fn hsm_result(&mut self, op: &HsmOp) -> HsmResult {
        match op {
            // 3% (never in the quiet period, when everything must settle).
            HsmOp::TranslatePin { .. } if self.chance(30) => {
                if self.rng.bool() {
                    Err(Outcome::IncorrectPin)
                } else {
                    Err(Outcome::SystemMalfunction)
                }
            }
            HsmOp::TranslatePin { block, .. } => {
                let mut out = block.0;
                out[0] = PIN_TRANSLATED;
                Ok(HsmReply::PinBlock(PinBlock(out)))
            }
            // A CVV2 in stand-in: the wrong one refused, now and then the
            // HSM failing.
            HsmOp::VerifyCvv2 { card, .. } if card.cvv2 == WRONG_CVV2 => Err(Outcome::DoNotHonour),
            HsmOp::VerifyCvv2 { .. } if self.chance(15) => Err(Outcome::SystemMalfunction),
            HsmOp::VerifyCvv2 { .. } => Ok(HsmReply::Verified),
            // Nothing else is configured in the simulated network.
            _ => Err(Outcome::SystemMalfunction),
        }
    }
}
