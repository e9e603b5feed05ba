//! The core's actions as I/O: records to the journal (a durable group
//! reports back as an input), messages to issuer links and replies to
//! acquirer connections as the core built them (replies written by a task
//! of their own so the loop never waits on a slow peer), timers, and
//! questions for the acquirer's rules.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::event_loop::{Confirm, Event, Held, Node};
use crate::journal::OnDurable;
use crate::link::connection::{FrameSender, SendError};
use crate::link::framing::Frame;
use crate::message::Message;
use crate::message::response_codes::Outcome;
use crate::switch::core::{Action, Input, Origin, Question, Time, Token, TxnId};

impl Node {
    /// Performs every action the core has queued; `now` is the turn's
    /// clock (an issuer link marks its sends with it).
    pub(super) async fn perform(&mut self, now: Time) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Append { records, durable } => {
                    let Some(journal) = &self.journal else {
                        continue;
                    };
                    let on_durable = durable.map(|token| self.on_durable(token));
                    journal.submit(records, on_durable).await;
                }
                Action::ToIssuer {
                    issuer,
                    what,
                    stan,
                    frame,
                } => {
                    if let Err(e) = self.issuers[issuer].send(stan, frame, now.mono) {
                        debug!(error = %e, "not sent");
                        self.own(Input::NotSent { what });
                    }
                }
                Action::Reply { to, frame, confirm } => self.reply(to, frame, confirm),
                Action::AnswerIssuer { issuer, id, frame } => {
                    self.issuers[issuer].answer(id.0, frame)
                }
                Action::Forget { issuer, stan } => self.issuers[issuer].forget(stan),
                Action::Arm { timer, at } => self.timers.arm(timer, at),
                Action::Disarm { timer } => self.timers.disarm(timer),
                Action::Ask { token, question } => self.ask(token, question),
            }
        }
    }

    /// An input for the next turn of the loop.
    fn own(&self, input: Input) {
        let _ = self.handle.own.send(Event::Input(input));
    }

    fn on_durable(&self, token: Token) -> OnDurable {
        let own = self.handle.own.clone();
        Box::new(move |ok| {
            let _ = own.send(Event::Input(Input::Durable { token, ok }));
        })
    }

    /// Queues a reply on its connection; when the core asks, the loop
    /// reports its delivery once it is written (`confirm.rs`; a full buffer
    /// hands the reply to a task that waits for room). The request's
    /// permit is released once the reply is written.
    fn reply(&mut self, to: Origin, bytes: Option<Bytes>, confirm: Option<TxnId>) {
        let Some(Held { tpdu, permit }) = self.held.remove(&to.tag) else {
            debug_assert!(false, "a reply for a request not held");
            return;
        };
        let conn = self
            .conns
            .get_mut(&to.conn)
            .filter(|c| !c.peer_gone.load(Ordering::Relaxed));
        let (Some(bytes), Some(conn)) = (bytes, conn) else {
            drop(permit);
            return self.undelivered(confirm);
        };
        let frame = Frame {
            tpdu: tpdu.map(|t| t.reply()),
            message: bytes,
        };
        match (conn.sender.try_send_at(frame.clone()), confirm) {
            (Ok(Some(end)), Some(txn)) => {
                if conn.confirms.is_empty() {
                    self.confirming.push(to.conn);
                }
                conn.confirms.push_back(Confirm { end, txn, permit });
            }
            (Ok(Some(_)), None) => drop(permit),
            (Ok(None), _) => {
                let (sender, stop) = (conn.sender.clone(), conn.stop.clone());
                let own = self.handle.own.clone();
                tokio::spawn(async move {
                    let delivered = write_waiting(&sender, frame, confirm.is_some(), &stop).await;
                    if let Some(txn) = confirm {
                        let _ = own.send(Event::Input(Input::Written { txn, delivered }));
                    }
                    drop(permit);
                });
            }
            (Err(e), _) => {
                close_if_unframable(&e, &conn.stop);
                drop(permit);
                self.undelivered(confirm);
            }
        }
    }

    /// A reply that never reached its connection, reported if asked for.
    fn undelivered(&self, confirm: Option<TxnId>) {
        if let Some(txn) = confirm {
            self.own(Input::Written {
                txn,
                delivered: false,
            });
        }
    }

    /// A batch close: answered by the acquirer's rules once everything
    /// journaled before it is durable, off the async threads.
    fn ask(&self, token: Token, question: Question) {
        let request = match question {
            Question::BatchClose(request) => request,
            Question::Hsm(ops) => return self.ask_hsm(token, ops),
        };
        let (journal, rules) = (self.journal.clone(), self.rules.clone());
        let own = self.handle.own.clone();
        tokio::spawn(async move {
            let answer = batch_close(journal, rules, *request).await;
            let _ = own.send(Event::Input(Input::Answer {
                token,
                answer: answer.map(Box::new),
            }));
        });
    }
}

impl Node {
    /// HSM operations, off the loop: answered in order as one input.
    fn ask_hsm(&self, token: Token, ops: Vec<crate::switch::security::HsmOp>) {
        let Some(hsm) = self.hsm.clone() else {
            warn!(
                operations = ops.len(),
                "no HSM configured: request declined"
            );
            let results = super::hsm::ask::unavailable(&ops);
            return self.own(Input::HsmAnswer { token, results });
        };
        let own = self.handle.own.clone();
        tokio::spawn(async move {
            let results = super::hsm::ask::perform(hsm, ops).await;
            let _ = own.send(Event::Input(Input::HsmAnswer { token, results }));
        });
    }
}

async fn batch_close(
    journal: Option<crate::journal::Journal>,
    rules: Option<std::sync::Arc<dyn crate::switch::hooks::AcquirerRules>>,
    request: Message,
) -> Result<Message, Outcome> {
    let rules = rules.ok_or(Outcome::InvalidTransaction)?;
    if let Some(journal) = journal
        && let Err(e) = journal.flush().await
    {
        warn!(error = %e, "journal unavailable: batch close declined");
        return Err(Outcome::SystemMalfunction);
    }
    let answer = tokio::task::spawn_blocking(move || rules.reconcile(&request)).await;
    answer.ok().flatten().ok_or(Outcome::InvalidTransaction)
}

/// Writes a reply once the buffer has room; with `confirm`, returns once
/// the kernel has it.
async fn write_waiting(
    sender: &FrameSender,
    frame: Frame,
    confirm: bool,
    stop: &CancellationToken,
) -> bool {
    match sender.send_at(frame).await {
        Ok(end) if confirm => sender.written_watch().reached(end).await,
        Ok(_) => true,
        Err(e) => {
            close_if_unframable(&e, stop);
            false
        }
    }
}

/// A reply larger than the connection's frame limit is never sent, so its
/// acquirer would wait for it forever: the connection stops reading and
/// closes once its other requests in flight are answered. (The reply
/// counts as undelivered: an approval is reversed.)
fn close_if_unframable(e: &SendError, stop: &CancellationToken) {
    if let SendError::Framing(e) = e {
        warn!(error = %e, "reply cannot be framed: closing the connection");
        metrics::counter!("cardswitch_link_unframable_replies_total").increment(1);
        stop.cancel();
    }
}
