//! One framed connection: a reader that yields frames and a writer task fed
//! by a bounded queue. The writer drains everything queued before it writes,
//! so frames coalesce into one syscall under load (the cost on loopback is
//! per syscall, not per byte). No business rules here.

use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::{Encoder, FramedRead};

use super::framing::{Frame, FrameCodec, FramingError};

/// Frames queued for one connection's writer before senders wait.
pub const WRITE_QUEUE_FRAMES_MAX: usize = 1024;
/// Bytes the writer gathers before it writes even if more frames are queued.
const WRITE_BATCH_BYTES_MAX: usize = 256 * 1024;

/// A byte stream a link can run on: TCP, or TLS over TCP.
pub trait LinkStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> LinkStream for T {}

/// The sending side of a connection: cheap to clone, bounded.
#[derive(Debug, Clone)]
pub struct FrameSender {
    tx: mpsc::Sender<Frame>,
}

/// The connection's writer has stopped (closed or failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection closed")]
pub struct Closed;

impl FrameSender {
    /// Queues a frame, waiting while the queue is full (backpressure).
    pub async fn send(&self, frame: Frame) -> Result<(), Closed> {
        self.tx.send(frame).await.map_err(|_| Closed)
    }

    /// Whether the writer is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// How long a reader waits: for the next frame to start (`idle`) and for a
/// started frame to complete (`frame`). `None` waits forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadLimits {
    pub idle: Option<Duration>,
    pub frame: Option<Duration>,
}

/// Reads frames within its [`ReadLimits`].
pub struct FrameReader<R> {
    inner: FramedRead<R, FrameCodec>,
    limits: ReadLimits,
    counters: LinkMetrics,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Sets the time limits for later reads.
    pub fn set_limits(&mut self, limits: ReadLimits) {
        self.limits = limits;
    }

    /// The next frame; `Ok(None)` on a clean close between frames.
    pub async fn next(&mut self) -> Result<Option<Frame>, ReadError> {
        let item = self.next_uncounted().await;
        if let Ok(Some(frame)) = &item {
            self.counters.frames_in.increment(1);
            self.counters.bytes_in.increment(frame.message.len() as u64);
        }
        item
    }

    async fn next_uncounted(&mut self) -> Result<Option<Frame>, ReadError> {
        let ReadLimits { idle, frame } = self.limits;
        let tick = match (idle, frame) {
            (None, None) => {
                return self
                    .inner
                    .next()
                    .await
                    .transpose()
                    .map_err(ReadError::Framing);
            }
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
        };
        let tick = tick
            .min(Duration::from_millis(250))
            .max(Duration::from_millis(1));
        let mut idle_waited = Duration::ZERO;
        let mut frame_waited = Duration::ZERO;
        loop {
            // `next` on a FramedRead is cancel-safe: bytes stay buffered.
            match tokio::time::timeout(tick, self.inner.next()).await {
                Ok(item) => return item.transpose().map_err(ReadError::Framing),
                Err(_) if self.inner.read_buffer().is_empty() => {
                    idle_waited += tick;
                    if idle.is_some_and(|d| idle_waited >= d) {
                        return Err(ReadError::Idle(idle_waited));
                    }
                }
                Err(_) => {
                    frame_waited += tick;
                    if frame.is_some_and(|d| frame_waited >= d) {
                        return Err(ReadError::Stalled {
                            waited: frame_waited,
                            buffered: self.inner.read_buffer().len(),
                        });
                    }
                }
            }
        }
    }
}

/// Why reading from a connection stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("no frame for {0:?}")]
    Idle(Duration),
    #[error("frame incomplete after {waited:?} ({buffered} bytes buffered)")]
    Stalled { waited: Duration, buffered: usize },
    #[error(transparent)]
    Framing(#[from] FramingError),
}

impl ReadError {
    pub fn kind(&self) -> &'static str {
        match self {
            ReadError::Idle(_) => "idle",
            ReadError::Stalled { .. } => "stalled",
            ReadError::Framing(e) => e.kind(),
        }
    }
}

/// Per-link traffic counters, registered once per connection so that the
/// per-frame cost is an atomic add.
#[derive(Clone)]
pub struct LinkMetrics {
    frames_in: metrics::Counter,
    frames_out: metrics::Counter,
    bytes_in: metrics::Counter,
    bytes_out: metrics::Counter,
    writes: metrics::Counter,
}

impl LinkMetrics {
    /// Counters labelled with the link's name (never with message content).
    pub fn new(link: &str) -> LinkMetrics {
        let label = link.to_string();
        LinkMetrics {
            frames_in: metrics::counter!("cardswitch_link_frames_in_total", "link" => label.clone()),
            frames_out: metrics::counter!("cardswitch_link_frames_out_total", "link" => label.clone()),
            bytes_in: metrics::counter!("cardswitch_link_bytes_in_total", "link" => label.clone()),
            bytes_out: metrics::counter!("cardswitch_link_bytes_out_total", "link" => label.clone()),
            writes: metrics::counter!("cardswitch_link_writes_total", "link" => label),
        }
    }
}

/// The connection halves returned by [`open`].
pub type Opened<S> = (
    FrameReader<tokio::io::ReadHalf<S>>,
    FrameSender,
    tokio::task::JoinHandle<Result<(), FramingError>>,
);

/// Splits a stream into a frame reader and a sender whose writer task is
/// spawned here. The writer ends when every sender is dropped, after
/// flushing what was queued.
pub fn open<S: LinkStream>(stream: S, codec: FrameCodec) -> Opened<S> {
    open_named(stream, codec, "unnamed")
}

/// [`open`] with traffic counted under the link's name.
pub fn open_named<S: LinkStream>(stream: S, codec: FrameCodec, link: &str) -> Opened<S> {
    let counters = LinkMetrics::new(link);
    let (read, write) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel(WRITE_QUEUE_FRAMES_MAX);
    let writer = tokio::spawn(write_loop(write, rx, codec.clone(), counters.clone()));
    let reader = FrameReader {
        inner: FramedRead::with_capacity(read, codec, 16 * 1024),
        limits: ReadLimits::default(),
        counters,
    };
    (reader, FrameSender { tx }, writer)
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    mut rx: mpsc::Receiver<Frame>,
    mut codec: FrameCodec,
    counters: LinkMetrics,
) -> Result<(), FramingError> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    while let Some(frame) = rx.recv().await {
        codec.encode(frame, &mut buf)?;
        let mut frames = 1;
        if rx.is_empty() {
            // Let other tasks queue their frames before this write.
            tokio::task::yield_now().await;
        }
        while buf.len() < WRITE_BATCH_BYTES_MAX {
            match rx.try_recv() {
                Ok(frame) => {
                    codec.encode(frame, &mut buf)?;
                    frames += 1;
                }
                Err(_) => break,
            }
        }
        counters.frames_out.increment(frames);
        counters.bytes_out.increment(buf.len() as u64);
        counters.writes.increment(1);
        write.write_all(&buf).await?;
        buf.clear();
    }
    write.shutdown().await?;
    Ok(())
}
