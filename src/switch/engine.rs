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
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::duplicates::{DuplicateCache, Seen};
use super::response_codes::Outcome;
use super::routing::{RouteDecision, RouteTable};
use super::saf::{Retry, SafKind, SafPolicy, SafQueue};
use super::standin::StandIn;
use super::translate::translate;
use crate::link::connector::{IssuerLink, LinkError};
use crate::link::mux::MuxError;
use crate::link::netmgmt;
use crate::message::mti::{Function, MessageClass};
use crate::message::sensitive::NEVER_ECHOED;
use crate::message::{Message, Mti, Spec};

/// Fields an acquirer gets back exactly as it sent them.
const RESTORED: &[u16] = &[7, 11, 12, 13, 32, 37, 41, 42];
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
    duplicates: Mutex<DuplicateCache>,
    pub stats: Stats,
    auth_counter: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The PAN of a request: DE2, or the part of DE35 before the separator.
fn pan_of(msg: &Message) -> Option<Bytes> {
    if let Some(pan) = msg.get(2) {
        return Some(pan.clone());
    }
    let track = msg.get(35)?;
    let end = track.iter().position(|&b| b == b'=' || b == b'D')?;
    Some(track.slice(..end))
}

/// A response that cannot be built for the acquirer, cut down to its key
/// fields with DE39 = 96 (system malfunction).
pub fn malfunction(response: &Message) -> Message {
    let mut out = Message::new(response.mti());
    for n in [3, 4, 7, 11, 12, 13, 32, 37, 41, 42, 49] {
        if let Some(v) = response.get(n) {
            let _ = out.set(n, v.clone());
        }
    }
    let _ = out.set_str(39, Outcome::SystemMalfunction.code());
    out
}

/// The response the switch makes itself for `request`.
pub fn local_response(request: &Message, code: &str) -> Option<Message> {
    let mut resp = request.clone();
    resp.set_mti(request.mti().response()?);
    for &f in NEVER_ECHOED {
        resp.remove(f);
    }
    let _ = resp.set_str(39, code);
    Some(resp)
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
        }
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
    pub async fn handle(&self, acq: &Acquirer, request: Message) -> Option<Bytes> {
        let mti = request.mti();
        match (mti.class(), mti.function()) {
            (MessageClass::NetworkManagement, _) => {
                netmgmt::answer(&request).map(|r| self.finish(acq, &r, false))
            }
            (
                MessageClass::Authorization | MessageClass::Financial | MessageClass::Reversal,
                Function::Request | Function::Advice,
            ) => {
                Stats::add(&self.stats.requests);
                let advice = mti.function() == Function::Advice;
                Some(self.deduplicated(acq, request, advice).await)
            }
            _ if mti.is_response() => {
                warn!(mti = %mti, "unexpected response from an acquirer ignored");
                None
            }
            _ => local_response(&request, Outcome::InvalidTransaction.code())
                .map(|r| self.finish(acq, &r, true)),
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

    async fn deduplicated(&self, acq: &Acquirer, request: Message, advice: bool) -> Bytes {
        let seen = {
            let mut cache = lock(&self.duplicates);
            cache
                .key(&acq.name, &request)
                .map(|key| (key, cache.check(key, Instant::now())))
        };
        let Some((key, seen)) = seen else {
            return self.finish(acq, &self.reject(&request, Outcome::FormatError), true);
        };
        match seen {
            Seen::New => {}
            Seen::Answered(resp) => {
                Stats::add(&self.stats.duplicates);
                return resp;
            }
            Seen::InFlight(rx) => {
                Stats::add(&self.stats.duplicates);
                return match tokio::time::timeout(Duration::from_secs(60), rx).await {
                    Ok(Ok(resp)) => resp,
                    _ => self.finish(acq, &self.reject(&request, Outcome::Duplicate), true),
                };
            }
            Seen::Flooded => {
                Stats::add(&self.stats.duplicates);
                return self.finish(acq, &self.reject(&request, Outcome::Duplicate), true);
            }
        }
        let response = if advice {
            self.advice(acq, &request)
        } else {
            self.forward(acq, &request).await
        };
        let bytes = self.finish(acq, &response, true);
        lock(&self.duplicates).complete(key, &bytes);
        bytes
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
                .get(32)
                .is_some_and(|id| acq.allowed_institutions.iter().any(|a| a == id));
            if !allowed {
                return Err(Outcome::InvalidMerchant);
            }
        }
        let pan = pan_of(request).ok_or(Outcome::FormatError)?;
        let decision = self.routes().route(
            &pan,
            request.mti(),
            request.get(3).map(|v| &v[..]),
            request.get(49).map(|v| &v[..]),
        );
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

    async fn forward(&self, acq: &Acquirer, request: &Message) -> Message {
        let (issuer, timeout, outgoing) = match self.prepare(acq, request) {
            Ok(x) => x,
            Err(outcome) => return self.reject(request, outcome),
        };
        if !lock(&self.saf).has_room(SAF_RESERVE) {
            warn!("store-and-forward queue nearly full: not forwarding");
            return self.stand_in_or_decline(acq, issuer, request);
        }
        let target = &self.issuers[issuer];
        match target.link.request(&outgoing, timeout).await {
            Ok(resp) => self.back_to_acquirer(acq, issuer, request, &resp),
            Err(LinkError::Mux {
                source: MuxError::Build(e),
                ..
            }) => {
                warn!(issuer = %target.name, error = %e, "request cannot be built in the issuer's dialect");
                self.reject(request, Outcome::FormatError)
            }
            Err(LinkError::Mux { source, .. }) if outcome_unknown(&source) => {
                Stats::add(&self.stats.timed_out);
                info!(issuer = %target.name, error = %source, "no answer: reversing");
                self.queue_reversal(issuer, &outgoing);
                if request.mti().class() == MessageClass::Reversal {
                    // The reversal is now the queue's to deliver.
                    return self.reject(request, Outcome::Approved);
                }
                self.stand_in_or_decline(acq, issuer, request)
            }
            Err(e) => {
                debug!(issuer = %target.name, error = %e, "not sent");
                self.stand_in_or_decline(acq, issuer, request)
            }
        }
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
        for &n in RESTORED {
            match request.get(n) {
                Some(v) => {
                    let _ = out.set(n, v.clone());
                }
                None => {
                    out.remove(n);
                }
            }
        }
        if !request.has(33) {
            out.remove(33);
        }
        if !out.has(39) {
            warn!(issuer = %target.name, "issuer response without DE39: 96");
            return self.reject(request, Outcome::SystemMalfunction);
        }
        out
    }

    fn stand_in_or_decline(&self, acq: &Acquirer, issuer: usize, request: &Message) -> Message {
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
                    netmgmt::days_since_epoch(SystemTime::now()) as u32,
                )
            });
            if approved {
                Stats::add(&self.stats.stood_in);
                let n = self.auth_counter.fetch_add(1, Ordering::Relaxed) % 100_000;
                let mut resp = self.reject(request, Outcome::Approved);
                let _ = resp.set_str(38, &format!("S{n:05}"));
                self.queue_stand_in_advice(acq, issuer, request, &resp);
                return resp;
            }
        }
        self.reject(request, Outcome::IssuerUnavailable)
    }

    /// Acknowledges an acquirer's advice and queues it for the issuer.
    fn advice(&self, acq: &Acquirer, request: &Message) -> Message {
        let (issuer, _, outgoing) = match self.prepare(acq, request) {
            Ok(x) => x,
            Err(outcome) => return self.reject(request, outcome),
        };
        let pushed =
            lock(&self.saf).push(SafKind::AcquirerAdvice, issuer, outgoing, Instant::now());
        match pushed {
            Ok(_) => {
                Stats::add(&self.stats.saf_queued);
                self.saf_wake.notify_one();
                self.reject(request, Outcome::Approved)
            }
            Err(e) => {
                warn!(error = %e, "advice not acknowledged");
                self.reject(request, Outcome::IssuerUnavailable)
            }
        }
    }

    fn queue(&self, kind: SafKind, issuer: usize, msg: Message) {
        let pushed = lock(&self.saf).push(kind, issuer, msg, Instant::now());
        match pushed {
            Ok(_) => {
                Stats::add(&self.stats.saf_queued);
                metrics::counter!("cardswitch_saf_queued_total", "kind" => kind.label())
                    .increment(1);
                self.saf_wake.notify_one();
            }
            Err(e) => {
                // Cannot happen while `has_room(SAF_RESERVE)` gates forwarding.
                warn!(kind = kind.label(), error = %e, "store-and-forward overflow");
                metrics::counter!("cardswitch_saf_overflow_total").increment(1);
            }
        }
    }

    /// A 0420 reversal advice (issuer dialect) for a request whose outcome
    /// is unknown, referring to it by DE90 (1987) or DE56 (1993).
    fn queue_reversal(&self, issuer: usize, original: &Message) {
        let target = &self.issuers[issuer];
        let version = target.spec.version.digit();
        let mti: Mti = "0420".parse().expect("constant MTI");
        let mut rev = Message::new(mti.with_version(version));
        for n in [2, 3, 4, 7, 12, 13, 14, 32, 33, 37, 41, 42, 49] {
            if let Some(v) = original.get(n) {
                let _ = rev.set(n, v.clone());
            }
        }
        let _ = rev.set_num(11, u64::from(target.link.next_stan()), 6);
        let omti = original.mti().to_string();
        let ostan = original.get_str(11).unwrap_or("000000");
        let acq = original.get_str(32).unwrap_or("");
        if version == 0 {
            let _ = rev.set_str(39, "68");
            let fwd = original.get_str(33).unwrap_or("");
            let odt = original.get_str(7).unwrap_or("0000000000");
            let _ = rev.set_str(90, &format!("{omti}{ostan}{odt}{acq:0>11}{fwd:0>11}"));
        } else {
            let _ = rev.set_str(24, "400");
            let _ = rev.set_str(25, "4021");
            let odt = original.get_str(12).unwrap_or("000000000000");
            let _ = rev.set_str(56, &format!("{omti}{ostan}{odt}{:02}{acq}", acq.len()));
        }
        self.queue(SafKind::TimeoutReversal, issuer, rev);
    }

    /// An 0120 advice (issuer dialect) of a stand-in approval.
    fn queue_stand_in_advice(
        &self,
        acq: &Acquirer,
        issuer: usize,
        request: &Message,
        response: &Message,
    ) {
        let target = &self.issuers[issuer];
        let mut advice = request.clone();
        advice.set_mti("0120".parse().expect("constant MTI"));
        for &f in NEVER_ECHOED {
            advice.remove(f);
        }
        for n in [38, 39] {
            if let Some(v) = response.get(n) {
                let _ = advice.set(n, v.clone());
            }
        }
        let mut out = translate(&acq.spec, &target.spec, &advice, SystemTime::now()).message;
        let _ = out.set(33, self.institution_id.clone());
        let _ = out.set_num(11, u64::from(target.link.next_stan()), 6);
        self.queue(SafKind::StandInAdvice, issuer, out);
    }

    /// Delivers store-and-forward entries until `shutdown`: each is sent to
    /// its issuer when a connection is up, as a repeat (xxx1) after the
    /// first attempt, until answered; failures back off.
    pub async fn run_saf(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            let now = Instant::now();
            let due = {
                let mut q = lock(&self.saf);
                metrics::gauge!("cardswitch_saf_depth").set(q.depth() as f64);
                q.take_due(now, 64, |i| self.issuers[i].link.up_connections() > 0)
            };
            if due.is_empty() {
                let next = lock(&self.saf).next_due();
                let wait = next
                    .map_or(Duration::from_millis(250), |t| {
                        t.saturating_duration_since(now)
                    })
                    .min(Duration::from_millis(250));
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.saf_wake.notified() => {}
                    _ = tokio::time::sleep(wait.max(Duration::from_millis(5))) => {}
                }
                continue;
            }
            let sends = due.into_iter().map(|entry| {
                let this = self.clone();
                async move {
                    let link = &this.issuers[entry.issuer].link;
                    let mut msg = entry.message.clone();
                    if entry.attempts > 0 {
                        msg.set_mti(msg.mti().as_repeat());
                    }
                    let result = link.request(&msg, this.saf_response_wait).await;
                    let retry_code = result.as_ref().ok().and_then(|r| r.get_str(39)).is_some_and(|c| c == "91" || c == "911");
                    if result.is_ok() && !retry_code {
                        Stats::add(&this.stats.saf_delivered);
                        metrics::counter!("cardswitch_saf_delivered_total", "kind" => entry.kind.label()).increment(1);
                        return;
                    }
                    let kind = entry.kind;
                    let id = entry.id;
                    if lock(&this.saf).retry(entry, Instant::now()) == Retry::GaveUp {
                        Stats::add(&this.stats.saf_given_up);
                        metrics::counter!("cardswitch_saf_given_up_total", "kind" => kind.label()).increment(1);
                        warn!(id, kind = kind.label(), "store-and-forward gave up: expired or out of attempts");
                    }
                }
            });
            futures_util::future::join_all(sends).await;
        }
    }
}

/// Whether a failed exchange may have reached the issuer (so its outcome
/// is unknown and must be reversed).
fn outcome_unknown(e: &MuxError) -> bool {
    matches!(e, MuxError::Timeout(_) | MuxError::Closed)
}
