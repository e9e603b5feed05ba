//! The pool: `connections` slots, each kept connected (TCP, TLS when
//! configured) with exponential backoff and jitter between attempts, each
//! checked with NC every `health_interval` (a connection failing it is
//! closed and replaced). Commands go round robin to open connections with
//! a free pipeline place; with no connection open they fail
//! `Unavailable` at once rather than wait for one.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use super::connection::Conn;
use super::errors::{HsmError, ProtocolError};
use super::metrics;
use super::settings::HsmSettings;
use crate::hsm::command::{ErrorCode, Request, Response, frame};
use crate::link::listener::BoxedStream;
use crate::link::log_limit::{LogLimit, LogLimitSettings};
use crate::link::tls::TlsClient;

/// The connections to one HSM.
pub struct Pool {
    settings: HsmSettings,
    tls: Option<TlsClient>,
    header: Arc<[u8]>,
    slots: Vec<Mutex<Option<Arc<Conn>>>>,
    next: AtomicUsize,
    up: AtomicUsize,
    stop: CancellationToken,
    warnings: LogLimit,
}

/// The one peer the warning limit counts (it limits by address).
const HSM_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

impl Pool {
    /// Starts the slots; they run until `stop`.
    pub fn start(
        settings: HsmSettings,
        tls: Option<TlsClient>,
        stop: CancellationToken,
    ) -> Arc<Pool> {
        let slots = (0..settings.connections.max(1))
            .map(|_| Mutex::new(None))
            .collect();
        let pool = Arc::new(Pool {
            header: Arc::from(settings.header.as_slice()),
            settings,
            tls,
            slots,
            next: AtomicUsize::new(0),
            up: AtomicUsize::new(0),
            stop,
            warnings: LogLimit::new(
                "hsm",
                LogLimitSettings {
                    per_peer: 10,
                    total: 10,
                    interval: Duration::from_secs(10),
                    peers_max: 1,
                },
            ),
        });
        for index in 0..pool.slots.len() {
            tokio::spawn(pool.clone().run_slot(index));
        }
        pool
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &HsmSettings {
        &self.settings
    }

    /// Connections open now.
    pub fn up_connections(&self) -> usize {
        self.up.load(Ordering::SeqCst)
    }

    /// Waits until at least one connection is open, or `limit` passed.
    pub async fn wait_up(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.up_connections() == 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// One command with the configured time-out; refusals are
    /// `Refused`, and every call is counted in the metrics.
    pub async fn call(&self, request: &Request) -> Result<Response, HsmError> {
        self.call_within(request, self.settings.timeout).await
    }

    /// One command waiting at most `limit`.
    pub async fn call_within(
        &self,
        request: &Request,
        limit: Duration,
    ) -> Result<Response, HsmError> {
        let started = Instant::now();
        let code = request.code();
        let result = match self.pick() {
            Some(conn) => send(&conn, &self.header, request, started + limit).await,
            None => Err(HsmError::Unavailable),
        };
        metrics::record(code, started.elapsed(), result.as_ref().map(|_| ()));
        match &result {
            Ok(_) => {}
            Err(e @ HsmError::Refused(_)) => {
                debug!(command = %metrics::code_label(code), error = %e, "HSM refused")
            }
            Err(e) => {
                // An HSM down fails every command: a few lines per interval.
                if let Some(suppressed) = self.warnings.admit(HSM_PEER) {
                    warn!(command = %metrics::code_label(code), error = %e, suppressed, "HSM command failed");
                }
            }
        }
        result
    }

    /// Round robin over open connections, preferring one with a free
    /// pipeline place (else the next open one, whose queue bounds the wait).
    fn pick(&self) -> Option<Arc<Conn>> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut fallback = None;
        for i in 0..n {
            let slot = self.slots[(start + i) % n]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(conn) = slot.as_ref().filter(|c| c.is_open()) {
                if conn.free() > 0 {
                    return Some(conn.clone());
                }
                fallback.get_or_insert_with(|| conn.clone());
            }
        }
        fallback
    }

    fn set_slot(&self, index: usize, conn: Option<Arc<Conn>>) {
        let mut slot = self.slots[index].lock().unwrap_or_else(|e| e.into_inner());
        let now_up = conn.is_some();
        if slot.is_some() != now_up {
            let up = if now_up {
                self.up.fetch_add(1, Ordering::SeqCst) + 1
            } else {
                self.up.fetch_sub(1, Ordering::SeqCst) - 1
            };
            metrics::connections_up(up);
        }
        *slot = conn;
    }

    async fn connect(&self) -> std::io::Result<BoxedStream> {
        let address = &self.settings.address;
        let tcp = tokio::time::timeout(self.settings.connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        let _ = tcp.set_nodelay(true);
        // The TLS client carries its handshake time-out (`handshake_timeout_ms`).
        Ok(match &self.tls {
            Some(tls) => Box::new(tls.connect(tcp).await?),
            None => Box::new(tcp),
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let min = self.settings.backoff_min.as_millis() as u64;
        let max = self.settings.backoff_max.as_millis().max(1) as u64;
        let exp = min.saturating_mul(1u64 << attempt.min(16)).min(max);
        // Jitter over the upper half, so slots do not reconnect in step.
        Duration::from_millis(exp / 2 + fastrand::u64(0..=exp / 2))
    }

    async fn run_slot(self: Arc<Self>, index: usize) {
        let mut attempt: u32 = 0;
        let address = self.settings.address.clone();
        while !self.stop.is_cancelled() {
            let connected = tokio::select! {
                _ = self.stop.cancelled() => break,
                r = self.connect() => r,
            };
            match connected {
                Ok(stream) => {
                    let opened = Instant::now();
                    let conn =
                        Conn::open(stream, self.header.clone(), self.settings.pipeline_depth);
                    self.set_slot(index, Some(conn.clone()));
                    info!(%address, slot = index, "HSM connected");
                    self.keep(&conn).await;
                    self.set_slot(index, None);
                    info!(%address, slot = index, "HSM disconnected");
                    // Only a connection that lasted starts the backoff
                    // again: an HSM that accepts and drops at once (out of
                    // host connections) is not redialled at full speed.
                    if opened.elapsed() >= self.settings.backoff_max {
                        attempt = 0;
                    }
                }
                Err(e) if attempt == 0 => {
                    warn!(%address, slot = index, error = %e, "HSM connect failed")
                }
                Err(e) => debug!(%address, slot = index, error = %e, "HSM connect failed"),
            }
            let delay = self.backoff(attempt);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Holds a connection until it closes or fails its health check.
    async fn keep(&self, conn: &Arc<Conn>) {
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => {
                    conn.close("shutdown");
                    return;
                }
                _ = conn.closed() => return,
                _ = tokio::time::sleep(self.settings.health_interval) => {
                    // A connection answering commands is alive: only a
                    // quiet one is checked, so a busy pipeline never
                    // fails its check for want of a place.
                    if conn.quiet_for() < self.settings.health_interval {
                        continue;
                    }
                    let started = Instant::now();
                    let deadline = started + self.settings.timeout;
                    let r = send(conn, &self.header, &Request::Nc, deadline).await;
                    metrics::record(b"NC", started.elapsed(), r.as_ref().map(|_| ()));
                    if let Err(e) = r {
                        warn!(error = %e, "HSM health check failed: connection replaced");
                        conn.close("health check");
                        return;
                    }
                }
            }
        }
    }
}

/// Frames `request`, sends it on `conn`, and turns an error code into
/// `Refused` (A6's advice 01, a key parity warning with the key, is kept).
async fn send(
    conn: &Conn,
    header: &[u8],
    request: &Request,
    deadline: Instant,
) -> Result<Response, HsmError> {
    let mut framed = Zeroizing::new(Vec::with_capacity(request.size_hint() + header.len()));
    frame::encode_with(header, &mut framed, |out| request.encode(out))
        .map_err(ProtocolError::Request)?;
    let response = conn.call(request.code(), framed, deadline).await?;
    let advice = &response.code == b"A7" && response.error == ErrorCode::VerificationFailure;
    if response.error.is_ok() || advice {
        Ok(response)
    } else {
        Err(HsmError::Refused(response.error))
    }
}
