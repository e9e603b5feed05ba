//! How the load generator opens its connections: at a bounded rate (a
//! storm of simultaneous opens overflows a host's accept backlog), and each
//! within a connect and a TLS-handshake time-out, so that a host that never
//! accepts or never completes the handshake ends the attempt with an error
//! instead of holding the run forever (issue 19, point 20).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};

use super::pacing::connect_offset;
use crate::link::listener::BoxedStream;
use crate::link::tls::TlsClient;

/// Default time limit of one TCP connect: a host whose backlog is full
/// drops the SYN, and the kernel would retry it for about two minutes.
pub const CONNECT_TIMEOUT_MS_DEFAULT: u64 = 3_000;
/// Default time limit of one TLS handshake.
pub const HANDSHAKE_TIMEOUT_MS_DEFAULT: u64 = 3_000;
/// Longest connect or handshake time limit accepted.
pub const TIMEOUT_MS_MAX: u64 = 600_000;

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The TCP connect failed (refused, unreachable, ...).
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// No TCP connection within the time limit (a full accept backlog).
    #[error("connect: no connection within {0} ms")]
    ConnectTimeout(u64),
    /// The TLS handshake failed.
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
    /// The host accepted but did not complete the TLS handshake in time.
    #[error("TLS handshake: not complete within {0} ms")]
    HandshakeTimeout(u64),
}

/// Where and how to connect.
#[derive(Clone)]
pub struct ConnectPlan {
    /// host:port.
    pub target: String,
    pub tls: Option<TlsClient>,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    /// Connections started per second.
    pub rate: f64,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ConnectPlan {
    /// One connection, within both time limits.
    pub async fn connect(&self) -> Result<BoxedStream, ConnectError> {
        let tcp = timeout(self.connect_timeout, TcpStream::connect(&self.target))
            .await
            .map_err(|_| ConnectError::ConnectTimeout(millis(self.connect_timeout)))?
            .map_err(ConnectError::Connect)?;
        // Requests are small and latency is measured: no Nagle delay.
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let stream = timeout(self.handshake_timeout, tls.connect(tcp))
            .await
            .map_err(|_| ConnectError::HandshakeTimeout(millis(self.handshake_timeout)))?
            .map_err(ConnectError::Handshake)?;
        Ok(Box::new(stream))
    }

    /// Opens `count` connections, connection `i` started `i / rate` seconds
    /// after the first; the results in index order. Ends at most the ramp
    /// plus both time limits after it starts.
    pub async fn connect_all(self: Arc<Self>, count: u32) -> Vec<Result<BoxedStream, String>> {
        let start = Instant::now();
        let handles: Vec<_> = (0..count)
            .map(|i| {
                let plan = self.clone();
                tokio::spawn(async move {
                    sleep_until(start + connect_offset(i, plan.rate)).await;
                    plan.connect().await.map_err(|e| e.to_string())
                })
            })
            .collect();
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            out.push(match handle.await {
                Ok(result) => result,
                Err(e) => Err(format!("connect task: {e}")),
            });
        }
        out
    }
}
