//! The switch engine: one request in, one response out. Routes by BIN,
//! translates between dialects, forwards through the issuer's link with
//! the route's time-out, and keeps the promise that every accepted request
//! ends answered, reversed or queued: a time-out answers 91 (or stands in)
//! and queues a reversal advice; acquirer advices are acknowledged and
//! queued; nothing is forwarded twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::{Notify, oneshot};
use tracing::{Instrument, debug, info, warn};

mod journaling;
mod queueing;
mod recovery;
mod saf_delivery;

use super::records::{pan_of, text, without_sad};
use super::responses::{local_response, malfunction};

use super::core::{RESTORED, has_response_code};
use super::duplicates::{DuplicateCache, Seen};
use super::hooks::{AcquirerRules, Admission};
use super::routing::{RouteDecision, RouteTable};
use super::saf::{SafKind, SafPolicy, SafQueue};
use super::standin::StandIn;
use super::translate::translate;
use crate::journal::record::{Forwarded, now_ms};
use crate::journal::{Journal, Record};
use crate::link::connector::{IssuerLink, LinkError};
use crate::link::mux::MuxError;
use crate::message::mti::{Function, MessageClass};
use crate::message::netmgmt;
use crate::message::response_codes::Outcome;
use crate::message::{Message, Spec};

/// Request keys remembered for duplicate detection at most (about 400 bytes
/// each with the response kept).
const DUPLICATE_KEYS_MAX: usize = 200_000;
/// SAF entries kept free for requests in flight (their possible reversals).
const SAF_RESERVE: usize = 1024;

/// One acquirer listener's identity and dialect.
pub struct Acquirer {
    pub name: String,
    pub spec: Arc<Spec>,
    /// DE32 values accepted; empty accepts any.
    pub allowed_institutions: Vec<Bytes>,
}

/// One issuer: its link, dialect and stand-in state.
pub struct Issuer {
    pub name: String,
    pub spec: Arc<Spec>,
    pub link: Arc<IssuerLink>,
    pub stand_in: Option<Mutex<StandIn>>,
}

/// Live counters, for the demo screen and tests.
#[derive(Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub approved: AtomicU64,
    pub declined: AtomicU64,
    pub timed_out: AtomicU64,
    pub stood_in: AtomicU64,
    pub duplicates: AtomicU64,
    pub saf_queued: AtomicU64,
    pub saf_delivered: AtomicU64,
    pub saf_given_up: AtomicU64,
}

impl Stats {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The switch.
pub struct Switch {
    pub institution_id: Bytes,
    routes: RwLock<Arc<RouteTable>>,
    pub issuers: Vec<Issuer>,
    saf: Mutex<SafQueue>,
    saf_wake: Notify,
    saf_response_wait: Duration,
    /// Copies wait on a channel for their original's response bytes.
    duplicates: Mutex<DuplicateCache<Bytes, oneshot::Sender<Bytes>>>,
    pub stats: Stats,
    auth_counter: AtomicU64,
    /// Where every exchange is recorded; `None` runs without a journal.
    journal: Option<Journal>,
    rules: Option<Arc<dyn AcquirerRules>>,
    next_txn_id: AtomicU64,
}

/// What the switch decided for one request.
struct Decided {
    response: Message,
    /// For the journal: approved, declined, timed_out, stand_in, rejected,
    /// advice_acked.
    outcome: &'static str,
    response_at_ms: Option<i64>,
    /// An issuer's approval, as (issuer, request as forwarded): reversed
    /// if the response cannot be handed to the acquirer.
    undo: Option<(usize, Message)>,
}

impl Decided {
    fn local(response: Message, outcome: &'static str) -> Decided {
        Decided {
            response,
            outcome,
            response_at_ms: None,
            undo: None,
        }
    }
}

/// A response for the acquirer, and what is left to do once the server
/// has written it (or failed to).
pub struct Reply {
    pub bytes: Bytes,
    pub after: Option<AfterSend>,
}

impl Reply {
    fn plain(bytes: Bytes) -> Reply {
        Reply { bytes, after: None }
    }
}

/// What is left of a transaction once its answer is journaled: whether
/// its response reached the acquirer (a journal records "sent" only when
/// it is true), and the approval to reverse if it did not.
pub struct AfterSend {
    txn_id: u64,
    undo: Option<(usize, Message)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Switch {
    pub fn new(
        institution_id: Bytes,
        routes: RouteTable,
        issuers: Vec<Issuer>,
        saf_policy: SafPolicy,
        saf_entries_max: usize,
        duplicate_window: Duration,
    ) -> Switch {
        Switch {
            institution_id,
            routes: RwLock::new(Arc::new(routes)),
            issuers,
            saf: Mutex::new(SafQueue::new(saf_policy, saf_entries_max)),
            saf_wake: Notify::new(),
            saf_response_wait: Duration::from_secs(10),
            duplicates: Mutex::new(DuplicateCache::new(duplicate_window, DUPLICATE_KEYS_MAX)),
            stats: Stats::default(),
            auth_counter: AtomicU64::new(1),
            journal: None,
            rules: None,
            next_txn_id: AtomicU64::new(1),
        }
    }

    /// Records every exchange in `journal` (set before traffic starts).
    pub fn with_journal(mut self, journal: Journal) -> Switch {
        self.journal = Some(journal);
        self
    }

    /// How long one store-and-forward attempt waits for its answer.
    pub fn with_saf_response_wait(mut self, wait: Duration) -> Switch {
        assert!(!wait.is_zero(), "a delivery attempt waits for its answer");
        self.saf_response_wait = wait;
        self
    }

    /// Consults the acquirer's rules (terminals, batch close).
    pub fn with_rules(mut self, rules: Arc<dyn AcquirerRules>) -> Switch {
        self.rules = Some(rules);
        self
    }

    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// Replaces the route table (SIGHUP); requests in flight keep theirs.
    pub fn replace_routes(&self, routes: RouteTable) {
        *self.routes.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(routes);
    }

    fn routes(&self) -> Arc<RouteTable> {
        self.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Handles one message from an acquirer: the response as sent in the
    /// acquirer's dialect, or `None` when nothing is answered.
    /// Handles one message from an acquirer: the response as sent in the
    /// acquirer's dialect, or `None` when nothing is answered. The server
    /// hands back the reply's `after` with [`Switch::replied`].
    pub async fn handle(&self, acq: &Acquirer, request: Message) -> Option<Reply> {
        let mti = request.mti();
        match (mti.class(), mti.function()) {
            (MessageClass::NetworkManagement, _) => {
                netmgmt::answer(&request).map(|r| Reply::plain(self.finish(acq, &r, false)))
            }
            (
                MessageClass::Authorization | MessageClass::Financial | MessageClass::Reversal,
                Function::Request | Function::Advice,
            ) => {
                Stats::add(&self.stats.requests);
                let advice = mti.function() == Function::Advice;
                Some(self.deduplicated(acq, request, advice).await)
            }
            (MessageClass::Reconciliation, Function::Request | Function::Advice) => {
                Some(Reply::plain(self.reconcile(acq, request).await))
            }
            // Nothing answers an answer: the server closes a connection that
            // sends one (`server::inbound`) before it comes here.
            _ if mti.is_answer() => {
                warn!(mti = %mti, "an answer from an acquirer is not answered");
                None
            }
            _ => local_response(&request, Outcome::InvalidTransaction.code())
                .map(|r| Reply::plain(self.finish(acq, &r, true))),
        }
    }

    /// Ends a transaction once the server has written its response
    /// (`delivered`) or could not: the journal records the answer as sent
    /// only now; an approval that never reached its acquirer is reversed.
    pub async fn replied(&self, after: AfterSend, delivered: bool) {
        let AfterSend { txn_id, undo } = after;
        if !delivered {
            warn!(
                txn = txn_id,
                "response not delivered: the acquirer's connection is gone"
            );
        }
        if let Some(journal) = &self.journal {
            journal
                .record(Record::Delivery {
                    id: txn_id,
                    at_ms: now_ms(),
                    delivered,
                })
                .await;
        }
        if let (false, Some((issuer, outgoing))) = (delivered, undo) {
            self.queue_reversal(issuer, &outgoing, Some(txn_id)).await;
        }
    }

    /// Builds a response for the acquirer, counting its outcome; a response
    /// that cannot be built becomes a 96 with its key fields.
    fn finish(&self, acq: &Acquirer, response: &Message, count: bool) -> Bytes {
        if count {
            match response.get_str(39) {
                Some("00") => Stats::add(&self.stats.approved),
                _ => Stats::add(&self.stats.declined),
            }
        }
        match acq.spec.build(response) {
            Ok(bytes) => bytes,
            Err(e) => {
                warn!(error = %e, "response cannot be built for the acquirer: 96");
                acq.spec
                    .build(&malfunction(response))
                    .unwrap_or_else(|_| Bytes::new())
            }
        }
    }

    /// A terminal's batch close, answered by the acquirer's rules once the
    /// journal holds everything before it.
    async fn reconcile(&self, acq: &Acquirer, request: Message) -> Bytes {
        let Some(rules) = self.rules.clone() else {
            return self.finish(
                acq,
                &self.reject(&request, Outcome::InvalidTransaction),
                true,
            );
        };
        if let Some(Err(e)) = match &self.journal {
            Some(journal) => Some(journal.flush().await),
            None => None,
        } {
            warn!(error = %e, "journal unavailable: batch close declined");
            return self.finish(
                acq,
                &self.reject(&request, Outcome::SystemMalfunction),
                true,
            );
        }
        let req = request.clone();
        let answer = tokio::task::spawn_blocking(move || rules.reconcile(&req)).await;
        match answer {
            Ok(Some(resp)) => self.finish(acq, &resp, false),
            _ => self.finish(
                acq,
                &self.reject(&request, Outcome::InvalidTransaction),
                true,
            ),
        }
    }

    async fn deduplicated(&self, acq: &Acquirer, request: Message, advice: bool) -> Reply {
        let pan = pan_of(&request);
        let mut waiting = None;
        let seen = {
            let mut cache = lock(&self.duplicates);
            cache.key(&acq.name, &request, pan.as_deref()).map(|key| {
                let seen = cache.check(key, Instant::now(), || {
                    let (tx, rx) = oneshot::channel();
                    waiting = Some(rx);
                    tx
                });
                (key, seen)
            })
        };
        let Some((key, seen)) = seen else {
            let reject = self.reject(&request, Outcome::FormatError);
            return Reply::plain(self.finish(acq, &reject, true));
        };
        match seen {
            Seen::New => {}
            Seen::Answered(resp) => {
                Stats::add(&self.stats.duplicates);
                return Reply::plain(resp);
            }
            Seen::InFlight => {
                Stats::add(&self.stats.duplicates);
                let answered = match waiting {
                    Some(rx) => tokio::time::timeout(Duration::from_secs(60), rx)
                        .await
                        .ok()
                        .and_then(Result::ok),
                    None => None,
                };
                return Reply::plain(answered.unwrap_or_else(|| {
                    self.finish(acq, &self.reject(&request, Outcome::Duplicate), true)
                }));
            }
            Seen::Flooded => {
                Stats::add(&self.stats.duplicates);
                let reject = self.reject(&request, Outcome::Duplicate);
                return Reply::plain(self.finish(acq, &reject, true));
            }
        }
        let txn_id = self.next_txn_id.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("txn", id = txn_id, mti = %request.mti());
        let decided = async {
            if advice {
                self.advice(acq, &request, txn_id).await
            } else {
                self.forward(acq, &request, txn_id).await
            }
        }
        .instrument(span)
        .await;
        let decided = self.journal_answer(request, txn_id, decided).await;
        let bytes = self.finish(acq, &decided.response, true);
        for copy in lock(&self.duplicates).complete(key, bytes.clone()) {
            let _ = copy.send(bytes.clone());
        }
        Reply {
            bytes,
            after: Some(AfterSend {
                txn_id,
                undo: decided.undo,
            }),
        }
    }

    fn reject(&self, request: &Message, outcome: Outcome) -> Message {
        local_response(request, outcome.code()).unwrap_or_else(|| request.clone())
    }

    /// Checks, routes and translates a request for its issuer.
    fn prepare(
        &self,
        acq: &Acquirer,
        request: &Message,
    ) -> Result<(usize, Duration, Message), Outcome> {
        if !acq.allowed_institutions.is_empty() {
            let allowed = request
                .value(32)
                .is_some_and(|id| acq.allowed_institutions.iter().any(|a| a == id));
            if !allowed {
                return Err(Outcome::InvalidMerchant);
            }
        }
        if let Some(rules) = &self.rules {
            let admission = rules.admit(request.value(41), request.value(42));
            match admission {
                Admission::Admit => {}
                Admission::Decline("03") => return Err(Outcome::InvalidMerchant),
                Admission::Decline(_) => return Err(Outcome::NotPermittedToTerminal),
            }
        }
        let pan = pan_of(request).ok_or(Outcome::FormatError)?;
        let decision =
            self.routes()
                .route(&pan, request.mti(), request.value(3), request.value(49));
        let (issuer, timeout) = match decision {
            RouteDecision::Issuer { issuer, timeout } => (issuer, timeout),
            RouteDecision::Decline { .. } => return Err(Outcome::NoSuchIssuer),
        };
        let target = &self.issuers[issuer];
        let mut out = translate(&acq.spec, &target.spec, request, SystemTime::now());
        if !out.dropped.is_empty() {
            debug!(issuer = %target.name, dropped = ?out.dropped, "fields the issuer's dialect cannot carry");
        }
        let _ = out.message.set(33, self.institution_id.clone());
        let stan = target.link.next_stan();
        let _ = out.message.set_num(11, u64::from(stan), 6);
        Ok((issuer, timeout, out.message))
    }

    async fn forward(&self, acq: &Acquirer, request: &Message, txn_id: u64) -> Decided {
        let (issuer, timeout, outgoing) = match self.prepare(acq, request) {
            Ok(x) => x,
            Err(outcome) => {
                let _ = self.journal_accept(acq, request, txn_id, None, false).await;
                return Decided::local(self.reject(request, outcome), "rejected");
            }
        };
        let target = &self.issuers[issuer];
        if !lock(&self.saf).has_room(SAF_RESERVE) {
            warn!("store-and-forward queue nearly full: not forwarding");
            let _ = self.journal_accept(acq, request, txn_id, None, false).await;
            return self
                .stand_in_or_decline(acq, issuer, request, txn_id, "declined")
                .await;
        }
        let route = self.journal.is_some().then(|| Forwarded {
            issuer: target.name.clone(),
            issuer_stan: text(&outgoing, 11).unwrap_or_default(),
            message: without_sad(&target.spec, &outgoing),
        });
        // Durable before forwarded: after a crash, the journal knows this
        // request may have reached the issuer and reverses it.
        if let Err(e) = self.journal_accept(acq, request, txn_id, route, true).await {
            warn!(error = %e, "journal unavailable: not forwarding");
            return Decided::local(self.reject(request, Outcome::SystemMalfunction), "rejected");
        }
        match target.link.request(&outgoing, timeout).await {
            Ok(resp) if !has_response_code(&resp) => {
                warn!(issuer = %target.name, "issuer response without a usable DE39: outcome unknown");
                let why = "issuer response without a usable DE39";
                self.unknown_outcome(acq, issuer, request, &outgoing, txn_id, why.into())
                    .await
            }
            Ok(resp) => {
                let response = self.back_to_acquirer(acq, issuer, request, &resp);
                let outcome = match response.get_str(39) {
                    Some("00" | "000" | "001") => "approved",
                    _ => "declined",
                };
                Decided {
                    response,
                    outcome,
                    response_at_ms: Some(now_ms()),
                    undo: (outcome == "approved").then_some((issuer, outgoing)),
                }
            }
            Err(LinkError::Mux {
                source: MuxError::Build(e),
                ..
            }) => {
                warn!(issuer = %target.name, error = %e, "request cannot be built in the issuer's dialect");
                Decided::local(self.reject(request, Outcome::FormatError), "rejected")
            }
            Err(LinkError::Mux { source, .. }) if outcome_unknown(&source) => {
                info!(issuer = %target.name, error = %source, "no answer: reversing");
                self.unknown_outcome(acq, issuer, request, &outgoing, txn_id, source.to_string())
                    .await
            }
            Err(e) => {
                debug!(issuer = %target.name, error = %e, "not sent");
                self.note(Some(txn_id), "not_sent", e.to_string()).await;
                self.stand_in_or_decline(acq, issuer, request, txn_id, "declined")
                    .await
            }
        }
    }

    /// The issuer may or may not have acted on `outgoing` (no answer in
    /// time, or one without a usable DE39): it is reversed through the
    /// queue, and the acquirer gets stand-in or 91.
    async fn unknown_outcome(
        &self,
        acq: &Acquirer,
        issuer: usize,
        request: &Message,
        outgoing: &Message,
        txn_id: u64,
        why: String,
    ) -> Decided {
        Stats::add(&self.stats.timed_out);
        self.note(Some(txn_id), "timed_out", why).await;
        self.queue_reversal(issuer, outgoing, Some(txn_id)).await;
        if request.mti().class() == MessageClass::Reversal {
            // The reversal is now the queue's to deliver.
            return Decided::local(self.reject(request, Outcome::Approved), "timed_out");
        }
        self.stand_in_or_decline(acq, issuer, request, txn_id, "timed_out")
            .await
    }

    fn back_to_acquirer(
        &self,
        acq: &Acquirer,
        issuer: usize,
        request: &Message,
        resp: &Message,
    ) -> Message {
        let target = &self.issuers[issuer];
        let mut out = translate(&target.spec, &acq.spec, resp, SystemTime::now()).message;
        if let Some(mti) = request.mti().response() {
            out.set_mti(mti);
        }
        out.overlay(request, RESTORED);
        if !request.has(33) {
            out.remove(33);
        }
        out
    }

    /// Stands in for an issuer that is down or did not answer, by its
    /// rules, or declines with 91 (`outcome` says which for the journal).
    async fn stand_in_or_decline(
        &self,
        acq: &Acquirer,
        issuer: usize,
        request: &Message,
        txn_id: u64,
        outcome: &'static str,
    ) -> Decided {
        let target = &self.issuers[issuer];
        let is_purchase = matches!(
            request.mti().class(),
            MessageClass::Authorization | MessageClass::Financial
        ) && request.mti().function() == Function::Request;
        if let (Some(stip), true) = (&target.stand_in, is_purchase) {
            let amount = request.get_u64(4).unwrap_or(u64::MAX);
            let approved = pan_of(request).is_some_and(|pan| {
                lock(stip).approve(
                    &pan,
                    amount,
                    crate::message::time::days_since_epoch(SystemTime::now()) as u32,
                )
            });
            if approved {
                Stats::add(&self.stats.stood_in);
                let n = self.auth_counter.fetch_add(1, Ordering::Relaxed) % 100_000;
                let mut resp = self.reject(request, Outcome::Approved);
                let _ = resp.set_str(38, &format!("S{n:05}"));
                self.note(Some(txn_id), "stand_in", String::new()).await;
                self.queue_stand_in_advice(acq, issuer, request, &resp, txn_id)
                    .await;
                return Decided::local(resp, "stand_in");
            }
        }
        Decided::local(self.reject(request, Outcome::IssuerUnavailable), outcome)
    }

    /// Acknowledges an acquirer's advice once it is durably queued for
    /// the issuer.
    async fn advice(&self, acq: &Acquirer, request: &Message, txn_id: u64) -> Decided {
        let (issuer, _, outgoing) = match self.prepare(acq, request) {
            Ok(x) => x,
            Err(outcome) => {
                let _ = self.journal_accept(acq, request, txn_id, None, false).await;
                return Decided::local(self.reject(request, outcome), "rejected");
            }
        };
        let _ = self.journal_accept(acq, request, txn_id, None, false).await;
        match self
            .queue(SafKind::AcquirerAdvice, issuer, outgoing, Some(txn_id))
            .await
        {
            Ok(()) => Decided::local(self.reject(request, Outcome::Approved), "advice_acked"),
            Err(reason) => {
                warn!(reason, "advice not acknowledged");
                Decided::local(self.reject(request, Outcome::IssuerUnavailable), "rejected")
            }
        }
    }
}

/// Whether a failed exchange may have reached the issuer (so its outcome
/// is unknown and must be reversed).
fn outcome_unknown(e: &MuxError) -> bool {
    matches!(e, MuxError::Timeout(_) | MuxError::Closed)
}
