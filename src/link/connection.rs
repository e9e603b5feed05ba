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

/// Reads frames, with a limit on how long a started frame may take.
pub struct FrameReader<R> {
    inner: FramedRead<R, FrameCodec>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// The next frame; `Ok(None)` on a clean close between frames.
    /// `idle` bounds the wait for the next frame (`None` waits forever).
    pub async fn next(&mut self, idle: Option<Duration>) -> Result<Option<Frame>, ReadError> {
        let next = self.inner.next();
        let item = match idle {
            Some(d) => tokio::time::timeout(d, next)
                .await
                .map_err(|_| ReadError::Idle(d))?,
            None => next.await,
        };
        item.transpose().map_err(ReadError::Framing)
    }
}

/// Why reading from a connection stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("no frame for {0:?}")]
    Idle(Duration),
    #[error(transparent)]
    Framing(#[from] FramingError),
}

impl ReadError {
    pub fn kind(&self) -> &'static str {
        match self {
            ReadError::Idle(_) => "idle",
            ReadError::Framing(e) => e.kind(),
        }
    }
}

/// Splits a stream into a frame reader and a sender whose writer task is
/// spawned here. The writer ends when every sender is dropped, after
/// flushing what was queued.
pub fn open<S: LinkStream>(
    stream: S,
    codec: FrameCodec,
) -> (
    FrameReader<tokio::io::ReadHalf<S>>,
    FrameSender,
    tokio::task::JoinHandle<Result<(), FramingError>>,
) {
    let (read, write) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel(WRITE_QUEUE_FRAMES_MAX);
    let writer = tokio::spawn(write_loop(write, rx, codec.clone()));
    let reader = FrameReader {
        inner: FramedRead::with_capacity(read, codec, 16 * 1024),
    };
    (reader, FrameSender { tx }, writer)
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    mut rx: mpsc::Receiver<Frame>,
    mut codec: FrameCodec,
) -> Result<(), FramingError> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    while let Some(frame) = rx.recv().await {
        codec.encode(frame, &mut buf)?;
        if rx.is_empty() {
            // Let other tasks queue their frames before this write.
            tokio::task::yield_now().await;
        }
        while buf.len() < WRITE_BATCH_BYTES_MAX {
            match rx.try_recv() {
                Ok(frame) => codec.encode(frame, &mut buf)?,
                Err(_) => break,
            }
        }
        metrics::counter!("cardswitch_link_write_syscalls_total").increment(1);
        write.write_all(&buf).await?;
        buf.clear();
    }
    write.shutdown().await?;
    Ok(())
}
