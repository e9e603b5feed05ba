//! The acquirer side: accept connections (plain or TLS), one task each,
//! within the limits of [`ConnectionLimits`]. The accept loop only accepts
//! and admits (no TLS, no reads): the handshake and everything after run in
//! the connection's task, so a reconnect storm drains the kernel's backlog
//! as fast as accept() returns. A connection over a limit is closed at
//! once, not left in the backlog. Shutdown is explicit: cancel the token
//! and the accept loop stops at once; connection tasks see the same token
//! and drain their in-flight work up to their own deadline.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::admission::{Admission, Refusal, Ticket};
use super::connection::{self, FrameReader, FrameSender, LinkStream, ReadError, ReadLimits};
use super::framing::{Frame, FrameCodec, FramingError};
use super::log_limit::{LogLimit, LogLimitSettings};
use super::tap::{self, Side};
use super::tls::{HANDSHAKE_TIMEOUT_DEFAULT, TlsServer};

/// A boxed stream so that plain and TLS connections share one type.
pub type BoxedStream = Box<dyn LinkStream>;

/// One accepted connection, ready to read and write frames.
pub struct Accepted {
    pub peer: SocketAddr,
    pub reader: FrameReader<tokio::io::ReadHalf<BoxedStream>>,
    pub sender: FrameSender,
    /// Cancelled when the listener shuts down.
    pub shutdown: CancellationToken,
    /// The listener's warning limiter (shared by its connections).
    log: Arc<LogLimit>,
    /// Set when reading ended because the peer closed its side (at a
    /// frame's end or inside one) or the stream failed: what is written
    /// after that is never read. Reading stopped by `shutdown`, or ended
    /// by a frame that cannot be read, leaves a peer that still reads.
    peer_closed: bool,
}

impl Accepted {
    /// Whether the peer closed its side or the stream failed (see
    /// `peer_closed`), once [`next_frame`](Self::next_frame) said `None`.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Whether a warning about this peer may be logged now (see
    /// [`LogLimit::admit`]): handlers use the listener's limiter so that
    /// one hostile peer cannot flood the log.
    pub fn log_admit(&self) -> Option<u64> {
        self.log.admit(self.peer.ip())
    }

    /// The next frame, or `None` when the connection should end: closed by
    /// the peer, unreadable (logged and counted), or the listener shutting down.
    pub async fn next_frame(&mut self, link: &str) -> Option<Frame> {
        match self.reader.next_until(&self.shutdown).await? {
            Ok(frame) => {
                self.peer_closed = frame.is_none();
                frame
            }
            Err(e) => {
                self.peer_closed = matches!(
                    e,
                    ReadError::Framing(FramingError::Truncated { .. } | FramingError::Io(_))
                );
                if let Some(suppressed) = self.log_admit() {
                    warn!(error = %e, suppressed, "closing connection");
                }
                metrics::counter!("cardswitch_link_decode_errors_total", "link" => link.to_string(), "kind" => e.kind())
                    .increment(1);
                None
            }
        }
    }
}

/// Limits that keep hostile or broken peers from holding a listener's
/// slots: each is a bound on how long, or how many, a peer may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a TLS handshake may take after accept.
    pub handshake_timeout: Duration,
    /// How long a connection (after its handshake) may take to send its
    /// first frame; `None`: only the idle limit applies.
    pub first_frame_timeout: Option<Duration>,
    /// Connections open at once from one peer address.
    pub per_peer_max: usize,
    /// Warnings about peers let through (the rest are counted).
    pub log: LogLimitSettings,
}

impl Default for ConnectionLimits {
    /// The handshake default of [`HANDSHAKE_TIMEOUT_DEFAULT`]; no
    /// first-frame or per-peer limit (a peer such as the switch's issuer
    /// link may stay silent until its first echo is due; the switch's
    /// acquirer configuration sets both).
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            handshake_timeout: HANDSHAKE_TIMEOUT_DEFAULT,
            first_frame_timeout: None,
            per_peer_max: usize::MAX,
            log: LogLimitSettings::default(),
        }
    }
}

/// How a listener accepts.
#[derive(Clone)]
pub struct ListenerSettings {
    /// Name used in logs and metric labels.
    pub name: String,
    pub codec: FrameCodec,
    pub tls: Option<TlsServer>,
    pub connections_max: usize,
    pub read_limits: ReadLimits,
    /// After shutdown, how long connections may take to finish in-flight work.
    pub drain_deadline: std::time::Duration,
    pub limits: ConnectionLimits,
}

/// Accepts until `shutdown` is cancelled, running `handle` for each
/// connection in its own task. Returns when the accept loop has stopped and
/// every connection task has finished, or the drain deadline has passed
/// (the remaining tasks end with the runtime).
pub async fn serve<F, Fut>(
    listener: TcpListener,
    settings: ListenerSettings,
    shutdown: CancellationToken,
    handle: F,
) where
    F: Fn(Accepted) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    assert!(
        (1..=tokio::sync::Semaphore::MAX_PERMITS).contains(&settings.connections_max)
            && settings.limits.per_peer_max > 0,
        "connection limits must be positive and within a semaphore's permits"
    );
    let admission = Admission::new(settings.connections_max, settings.limits.per_peer_max);
    let log = Arc::new(LogLimit::new(&settings.name, settings.limits.log));
    let handle = Arc::new(handle);
    let tasks = tokio_util::task::TaskTracker::new();
    let name = settings.name.clone();
    let refused = Refused::new(&name);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors, typically: one line per burst.
                    if let Some(suppressed) = log.admit(IpAddr::V4(Ipv4Addr::UNSPECIFIED)) {
                        warn!(link = %name, error = %e, suppressed, "accept failed");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let ticket = match admission.try_admit(peer.ip()) {
            Ok(t) => t,
            Err(refusal) => {
                refuse(tcp, peer, refusal, &refused, &log);
                continue;
            }
        };
        let span = info_span!("connection", link = %settings.name, %peer);
        let run = run_connection(
            tcp,
            peer,
            ticket,
            settings.clone(),
            log.clone(),
            shutdown.child_token(),
            handle.clone(),
        );
        tasks.spawn(run.instrument(span));
    }
    // Release the port at once: only the drain continues.
    drop(listener);
    tasks.close();
    if tokio::time::timeout(settings.drain_deadline, tasks.wait())
        .await
        .is_err()
    {
        warn!(link = %name, open = tasks.len(), "drain deadline passed; closing the rest");
    }
}

/// The refusal counters, registered once: a flood of refused connections
/// costs an atomic add each, not a label allocation.
struct Refused {
    link: String,
    listener_full: metrics::Counter,
    peer_full: metrics::Counter,
}

impl Refused {
    fn new(link: &str) -> Refused {
        let counter = |r: Refusal| metrics::counter!("cardswitch_link_connections_refused_total", "link" => link.to_string(), "reason" => r.reason());
        Refused {
            link: link.to_string(),
            listener_full: counter(Refusal::ListenerFull),
            peer_full: counter(Refusal::PeerFull),
        }
    }
}

/// Closes a connection over a limit at once (a reset: the peer learns now,
/// and this side keeps no TIME_WAIT), counted and logged within the limits.
fn refuse(tcp: TcpStream, peer: SocketAddr, refusal: Refusal, refused: &Refused, log: &LogLimit) {
    let _ = tcp.set_zero_linger();
    drop(tcp);
    match refusal {
        Refusal::ListenerFull => refused.listener_full.increment(1),
        Refusal::PeerFull => refused.peer_full.increment(1),
    }
    if let Some(suppressed) = log.admit(peer.ip()) {
        let link = &refused.link;
        warn!(%link, %peer, limit = refusal.reason(), suppressed, "connection refused: at its limit");
    }
}

/// One connection's task: handshake (bounded), then the handler, then the
/// writer's flush. The ticket holds its slot until the end.
async fn run_connection<F, Fut>(
    tcp: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    settings: ListenerSettings,
    log: Arc<LogLimit>,
    shutdown: CancellationToken,
    handle: Arc<F>,
) where
    F: Fn(Accepted) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _ticket = ticket;
    let _ = tcp.set_nodelay(true);
    let open = metrics::gauge!("cardswitch_link_connections_open", "link" => settings.name.clone());
    open.increment(1.0);
    let stream: BoxedStream = match &settings.tls {
        Some(tls) => match tls.accept(tcp, settings.limits.handshake_timeout).await {
            Ok(s) => Box::new(s),
            Err(e) => {
                let kind = if e.kind() == std::io::ErrorKind::TimedOut {
                    "timeout"
                } else {
                    "refused"
                };
                if let Some(suppressed) = log.admit(peer.ip()) {
                    warn!(error = %e, suppressed, "TLS handshake failed");
                }
                metrics::counter!("cardswitch_link_tls_refused_total", "link" => settings.name.clone(), "kind" => kind).increment(1);
                open.decrement(1.0);
                return;
            }
        },
        None => Box::new(tcp),
    };
    info!("connected");
    let (mut reader, sender, writer) = connection::open_tapped(
        stream,
        settings.codec.clone(),
        &settings.name,
        Side::Accepted,
        tap::installed(),
    );
    reader.set_limits(settings.read_limits);
    if let Some(limit) = settings.limits.first_frame_timeout {
        reader.set_first_frame_limit(limit);
    }
    handle(Accepted {
        peer,
        reader,
        sender,
        shutdown,
        log: log.clone(),
        peer_closed: false,
    })
    .await;
    // The writer flushes what the handler queued, then closes; a peer
    // that reads nothing for the idle limit does not hold its slot (and
    // the socket) by never draining the flush: the writer is stopped.
    let mut writer = writer;
    let flushed = match settings.read_limits.idle {
        Some(limit) => tokio::time::timeout(limit, &mut writer).await.is_ok(),
        None => {
            let _ = (&mut writer).await;
            true
        }
    };
    if !flushed {
        writer.abort();
        if let Some(suppressed) = log.admit(peer.ip()) {
            warn!(
                suppressed,
                "peer read nothing for the idle limit: closed unflushed"
            );
        }
    }
    info!("closed");
    open.decrement(1.0);
}
