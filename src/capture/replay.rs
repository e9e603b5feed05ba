//! The replay engine: picks a capture's requests on one link, sends them
//! to a target in order (original pacing, scaled, or as fast as possible
//! under a concurrency limit), matches the responses on MTI class, DE11 and
//! DE41, and compares each with the captured one field by field.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use tokio::sync::{Notify, Semaphore, oneshot};

use super::diff::{FieldDiff, diff};
use super::record::{Capture, Position};
use crate::link::connection::{self, FrameSender};
use crate::link::framing::{Frame, FrameCodec};
use crate::link::listener::BoxedStream;
use crate::link::tls::TlsClient;
use crate::message::{Message, Spec};

/// Fields that tie a response to its request (with the MTI class).
pub const KEY_FIELDS: &[u16] = &[11, 41];

/// One captured request and what the capture holds as its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// 1-based, in capture order.
    pub index: usize,
    pub position: Position,
    pub time_us: u64,
    pub frame: Frame,
    pub request: Message,
    pub captured: Option<Message>,
}

/// The requests of `link` in a capture, each with its captured response;
/// frames that do not parse become problems (with their positions).
pub fn exchanges(capture: &Capture, link: &str, spec: &Spec) -> (Vec<Exchange>, Vec<String>) {
    let mut out: Vec<Exchange> = Vec::new();
    let mut problems = Vec::new();
    let mut waiting: HashMap<(u64, Bytes), usize> = HashMap::new();
    for f in capture.frames.iter().filter(|f| f.link == link) {
        let msg = match spec.parse(&f.message) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!(
                    "{}: {} does not parse: {e}",
                    f.position,
                    if f.from_client { "request" } else { "response" }
                ));
                continue;
            }
        };
        if f.from_client && msg.mti().expects_response() {
            waiting.insert((f.connection, key(&msg)), out.len());
            out.push(Exchange {
                index: out.len() + 1,
                position: f.position,
                time_us: f.time_us,
                frame: Frame {
                    tpdu: f.tpdu,
                    message: f.message.clone(),
                },
                request: msg,
                captured: None,
            });
        } else if !f.from_client
            && msg.mti().is_response()
            && let Some(i) = waiting.remove(&(f.connection, key(&msg)))
        {
            out[i].captured = Some(msg);
        }
    }
    (out, problems)
}

/// The matching key: MTI class digit, then DE11 and DE41 when present.
pub fn key(msg: &Message) -> Bytes {
    let mut k = BytesMut::with_capacity(32);
    k.put_u8(msg.mti().digits()[1]);
    for &f in KEY_FIELDS {
        if let Some(v) = msg.get(f) {
            k.put_u16(f);
            k.put_u16(v.len() as u16);
            k.put_slice(v);
        }
    }
    k.freeze()
}

/// How requests are spaced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// The captured gaps divided by this factor (1.0 = as captured).
    Scaled(f64),
    /// As fast as the concurrency limit allows.
    Fast,
}

/// Where and how to replay.
#[derive(Clone)]
pub struct ReplaySettings {
    pub target: String,
    pub codec: FrameCodec,
    pub tls: Option<TlsClient>,
    pub spec: Arc<Spec>,
    pub pacing: Pacing,
    /// Requests awaiting their response at most.
    pub concurrency: usize,
    pub response_timeout: Duration,
    pub volatile: BTreeSet<u16>,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
}

/// The answer each exchange got, and what came unasked.
#[derive(Debug, Default)]
pub struct Replies {
    pub replies: Vec<Option<Message>>,
    /// Responses no request waited for, and frames that did not parse.
    pub extra: u64,
}

/// Sends every exchange and collects the replies; `progress` is called
/// once per finished exchange.
pub async fn run(
    exchanges: &[Exchange],
    settings: &ReplaySettings,
    progress: impl Fn() + Send + Sync + 'static,
) -> Result<Replies, ReplayError> {
    let connect_err = |reason: String| ReplayError::Connect {
        target: settings.target.clone(),
        reason,
    };
    let tcp = tokio::net::TcpStream::connect(&settings.target)
        .await
        .map_err(|e| connect_err(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let stream: BoxedStream = match &settings.tls {
        Some(tls) => Box::new(
            tls.connect(tcp)
                .await
                .map_err(|e| connect_err(e.to_string()))?,
        ),
        None => Box::new(tcp),
    };
    let (mut reader, sender, writer) = connection::open_tapped(
        stream,
        settings.codec.clone(),
        "replay",
        crate::link::tap::Side::Connected,
        None,
    );
    let pending: Arc<Mutex<HashMap<Bytes, oneshot::Sender<Message>>>> = Arc::default();
    let freed = Arc::new(Notify::new());
    let extra = Arc::new(AtomicU64::new(0));
    let read_task = {
        let (pending, extra, spec) = (pending.clone(), extra.clone(), settings.spec.clone());
        tokio::spawn(async move {
            while let Ok(Some(frame)) = reader.next().await {
                let Ok(msg) = spec.parse(&frame.message) else {
                    extra.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let waiter = lock(&pending).remove(&key(&msg));
                match waiter {
                    Some(tx) if msg.mti().is_response() => {
                        let _ = tx.send(msg);
                    }
                    Some(tx) => {
                        // A request from the target with a colliding key: put back.
                        lock(&pending).insert(key(&msg), tx);
                        extra.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        extra.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let limit = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let progress = Arc::new(progress);
    let start = Instant::now();
    let t0 = exchanges.first().map(|e| e.time_us).unwrap_or(0);
    let mut waits = Vec::with_capacity(exchanges.len());
    for ex in exchanges {
        if let Pacing::Scaled(speed) = settings.pacing {
            let offset_us = ex.time_us.saturating_sub(t0) as f64 / speed.max(1e-6);
            tokio::time::sleep_until((start + Duration::from_micros(offset_us as u64)).into())
                .await;
        }
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let k = key(&ex.request);
        // One request per key in flight: a repeat waits for its original.
        let rx = loop {
            let notified = freed.notified();
            {
                let mut p = lock(&pending);
                if !p.contains_key(&k) {
                    let (tx, rx) = oneshot::channel();
                    p.insert(k.clone(), tx);
                    break rx;
                }
            }
            let _ = tokio::time::timeout(settings.response_timeout, notified).await;
        };
        send(&sender, ex.frame.clone()).await;
        let (pending, freed, progress) = (pending.clone(), freed.clone(), progress.clone());
        let timeout = settings.response_timeout;
        waits.push(tokio::spawn(async move {
            let _permit = permit;
            let reply = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(m)) => Some(m),
                _ => {
                    lock(&pending).remove(&k);
                    None
                }
            };
            freed.notify_waiters();
            progress();
            reply
        }));
    }
    let mut replies = Vec::with_capacity(waits.len());
    for w in waits {
        replies.push(w.await.unwrap_or(None));
    }
    drop(sender);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    read_task.abort();
    Ok(Replies {
        replies,
        extra: extra.load(Ordering::Relaxed),
    })
}

async fn send(sender: &FrameSender, frame: Frame) {
    // A closed connection shows up as missing responses.
    let _ = sender.send(frame).await;
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One exchange whose reply differs from the capture.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeDiff {
    pub exchange: usize,
    pub position: String,
    pub mti: String,
    pub stan: String,
    pub fields: Vec<FieldDiff>,
}

/// A request that got no response (though the capture holds one).
#[derive(Debug, Clone, Serialize)]
pub struct Missing {
    pub exchange: usize,
    pub position: String,
    pub mti: String,
    pub stan: String,
}

/// The outcome of a replay.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub sent: usize,
    /// Requests that got a response.
    pub matched: usize,
    pub identical: usize,
    pub differing: usize,
    /// Differing exchanges per field (`mti` or number).
    pub differing_by_field: BTreeMap<String, usize>,
    /// Captured responses that did not come.
    pub missing: usize,
    /// Responses nobody waited for, and responses the capture did not hold.
    pub extra: u64,
    /// Requests with no response in the capture nor in the replay.
    pub unanswered: usize,
}

/// The full report, as written to `--report`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub capture: String,
    pub link: String,
    pub target: String,
    pub volatile: Vec<u16>,
    pub summary: Summary,
    pub differences: Vec<ExchangeDiff>,
    pub missing: Vec<Missing>,
    /// Problems met while reading the capture, with their positions.
    pub problems: Vec<String>,
}

impl Report {
    /// Whether the replay matched the capture outside volatile fields.
    pub fn clean(&self) -> bool {
        let s = &self.summary;
        s.differing == 0 && s.missing == 0 && s.extra == 0 && self.problems.is_empty()
    }
}

/// Compares replies with the capture.
pub fn compare(
    exchanges: &[Exchange],
    replies: &Replies,
    spec: &Spec,
    volatile: &BTreeSet<u16>,
) -> (Summary, Vec<ExchangeDiff>, Vec<Missing>) {
    let mut s = Summary {
        sent: replies.replies.len(),
        extra: replies.extra,
        ..Summary::default()
    };
    let mut diffs = Vec::new();
    let mut missing = Vec::new();
    for (ex, reply) in exchanges.iter().zip(&replies.replies) {
        let stan = ex.request.get_str(11).unwrap_or("").to_string();
        match (&ex.captured, reply) {
            (Some(captured), Some(reply)) => {
                s.matched += 1;
                let fields = diff(spec, captured, reply, volatile);
                if fields.is_empty() {
                    s.identical += 1;
                } else {
                    s.differing += 1;
                    for f in &fields {
                        *s.differing_by_field.entry(f.field.clone()).or_default() += 1;
                    }
                    diffs.push(ExchangeDiff {
                        exchange: ex.index,
                        position: ex.position.to_string(),
                        mti: ex.request.mti().to_string(),
                        stan,
                        fields,
                    });
                }
            }
            (Some(_), None) => {
                s.missing += 1;
                missing.push(Missing {
                    exchange: ex.index,
                    position: ex.position.to_string(),
                    mti: ex.request.mti().to_string(),
                    stan,
                });
            }
            (None, Some(_)) => {
                s.matched += 1;
                s.extra += 1;
            }
            (None, None) => s.unanswered += 1,
        }
    }
    (s, diffs, missing)
}

impl Summary {
    /// The printed summary.
    pub fn text(&self) -> String {
        let mut t = format!(
            "sent {}, matched {}, identical {}, differing {}, missing {}, extra {}, unanswered in both {}",
            self.sent,
            self.matched,
            self.identical,
            self.differing,
            self.missing,
            self.extra,
            self.unanswered
        );
        if !self.differing_by_field.is_empty() {
            let by: Vec<String> = self
                .differing_by_field
                .iter()
                .map(|(f, n)| {
                    if f == "mti" {
                        format!("MTI: {n}")
                    } else {
                        format!("DE{f}: {n}")
                    }
                })
                .collect();
            t.push_str(&format!("\ndiffering by field: {}", by.join(", ")));
        }
        t
    }
}
