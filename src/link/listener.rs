//! The acquirer side: accept connections (plain or TLS), one task each,
//! bounded by a semaphore. Shutdown is explicit: cancel the token and the
//! accept loop stops at once; connection tasks see the same token and
//! drain their in-flight work up to their own deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::connection::{self, FrameReader, FrameSender, LinkStream, ReadLimits};
use super::framing::{Frame, FrameCodec};
use super::tap::{self, Side};
use super::tls::TlsServer;

/// A boxed stream so that plain and TLS connections share one type.
pub type BoxedStream = Box<dyn LinkStream>;

/// One accepted connection, ready to read and write frames.
pub struct Accepted {
    pub peer: SocketAddr,
    pub reader: FrameReader<tokio::io::ReadHalf<BoxedStream>>,
    pub sender: FrameSender,
    /// Cancelled when the listener shuts down.
    pub shutdown: CancellationToken,
}

impl Accepted {
    /// The next frame, or `None` when the connection should end: closed by
    /// the peer, unreadable (logged and counted), or the listener shutting down.
    pub async fn next_frame(&mut self, link: &str) -> Option<Frame> {
        let frame = tokio::select! {
            _ = self.shutdown.cancelled() => return None,
            f = self.reader.next() => f,
        };
        match frame {
            Ok(frame) => frame,
            Err(e) => {
                warn!(error = %e, "closing connection");
                metrics::counter!("cardswitch_link_decode_errors_total", "link" => link.to_string(), "kind" => e.kind())
                    .increment(1);
                None
            }
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
        (1..=Semaphore::MAX_PERMITS).contains(&settings.connections_max),
        "connection limit must be positive and within a semaphore's permits"
    );
    let limit = Arc::new(Semaphore::new(settings.connections_max));
    let handle = Arc::new(handle);
    let tasks = tokio_util::task::TaskTracker::new();
    let name = settings.name.clone();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(link = %name, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let settings = settings.clone();
        let handle = handle.clone();
        let token = shutdown.child_token();
        let span = info_span!("connection", link = %settings.name, %peer);
        tasks.spawn(
            async move {
                let _permit = permit;
                metrics::gauge!("cardswitch_link_connections_open", "link" => settings.name.clone())
                    .increment(1.0);
                let stream: BoxedStream = match &settings.tls {
                    Some(tls) => match tls.accept(tcp).await {
                        Ok(s) => Box::new(s),
                        Err(e) => {
                            warn!(error = %e, "TLS handshake refused");
                            metrics::counter!("cardswitch_link_tls_refused_total", "link" => settings.name.clone()).increment(1);
                            metrics::gauge!("cardswitch_link_connections_open", "link" => settings.name.clone()).decrement(1.0);
                            return;
                        }
                    },
                    None => Box::new(tcp),
                };
                info!("connected");
                let (mut reader, sender, writer) = connection::open_tapped(stream, settings.codec.clone(), &settings.name, Side::Accepted, tap::installed());
                reader.set_limits(settings.read_limits);
                handle(Accepted {
                    peer,
                    reader,
                    sender,
                    shutdown: token,
                })
                .await;
                // The writer flushes what the handler queued, then closes.
                let _ = writer.await;
                info!("closed");
                metrics::gauge!("cardswitch_link_connections_open", "link" => settings.name.clone())
                    .decrement(1.0);
            }
            .instrument(span),
        );
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
