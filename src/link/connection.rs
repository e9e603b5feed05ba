//! One framed connection: a reader that yields frames and a writer task.
//! Senders encode straight into a shared, bounded write buffer and the
//! writer sends whatever has gathered in one syscall: under load frames
//! coalesce (on loopback the cost is per syscall, not per byte), and a
//! frame costs one uncontended lock and a copy instead of a queue hop.
//! When the buffer is full, senders wait (backpressure). No business rules.

use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::codec::Encoder;

use super::framing::{Frame, FrameCodec, FramingError};
use super::tap::{self, ConnectionTap, Direction, Side};

pub use super::frame_reader::{FrameReader, ReadError, ReadLimits};

/// Bytes buffered for one connection's writer before senders wait.
pub const WRITE_BUFFER_BYTES_MAX: usize = 256 * 1024;

/// What each of a connection's buffers starts with. Small, because most
/// connections are terminals with one message in flight: 10,000 of them
/// held 3 x 16 KiB each (57 KiB per idle connection in all), and touching
/// those pages on each first frame slowed the first second of a reconnect
/// storm. The write buffers grow with what is queued.
const BUFFER_BYTES_INITIAL: usize = 1024;

/// A byte stream a link can run on: TCP, or TLS over TCP.
pub trait LinkStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> LinkStream for T {}

struct WriteState {
    buf: BytesMut,
    codec: FrameCodec,
    /// Every sender is gone: flush and close.
    senders_gone: bool,
    /// The writer stopped (write failed or closed): sends fail.
    writer_gone: bool,
    /// Bytes ever put in `buf` (the stream offset a frame ends at).
    queued_total: u64,
}

/// How far the writer has got: bytes handed to the stream, and whether it
/// has stopped (nothing more will be written).
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    written_total: u64,
    stopped: bool,
}

impl Progress {
    /// Stream offset `end` written (true), never to be (false: stopped
    /// first), or not yet (`None`).
    fn reached(&self, end: u64) -> Option<bool> {
        let written = self.written_total >= end;
        (written || self.stopped).then_some(written)
    }
}

struct WriteShared {
    state: Mutex<WriteState>,
    data_ready: Notify,
    space_ready: Notify,
    counters: LinkMetrics,
    tap: Option<ConnectionTap>,
    progress: tokio::sync::watch::Sender<Progress>,
    /// Called after each write and once when the writer stops.
    on_written: OnceLock<WrittenHook>,
}

/// What a connection's writer calls when it makes progress.
pub type WrittenHook = Arc<dyn Fn() + Send + Sync>;

impl WriteShared {
    fn wrote(&self) {
        if let Some(hook) = self.on_written.get() {
            hook();
        }
    }

    fn lock(&self) -> MutexGuard<'_, WriteState> {
        // The state stays consistent under a panic elsewhere (plain fields).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Marks the writer's end when the last sender drops.
struct SenderInner {
    shared: Arc<WriteShared>,
}

impl Drop for SenderInner {
    fn drop(&mut self) {
        self.shared.lock().senders_gone = true;
        self.shared.data_ready.notify_one();
    }
}

/// The sending side of a connection: cheap to clone, bounded.
#[derive(Clone)]
pub struct FrameSender {
    inner: Arc<SenderInner>,
}

/// A frame that could not be queued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection's writer has stopped (closed or failed).
    #[error("connection closed")]
    Closed,
    /// The frame cannot be framed (too large).
    #[error(transparent)]
    Framing(#[from] FramingError),
}

impl FrameSender {
    /// Queues a frame, waiting while the write buffer is full (backpressure).
    pub async fn send(&self, frame: Frame) -> Result<(), SendError> {
        self.send_at(frame).await.map(|_| ())
    }

    /// Queues a frame like [`send`](Self::send), returning the stream
    /// offset it ends at (for [`WrittenWatch::reached`]).
    pub async fn send_at(&self, frame: Frame) -> Result<u64, SendError> {
        let mut frame = Some(frame);
        loop {
            if let Some(end) = self.try_put_at(&mut frame)? {
                return Ok(end);
            }
            // Full: register for the writer's wake-up, then look again so a
            // drain between the two checks is not missed.
            let shared = &self.inner.shared;
            let mut space = pin!(shared.space_ready.notified());
            space.as_mut().enable();
            if let Some(end) = self.try_put_at(&mut frame)? {
                return Ok(end);
            }
            space.await;
        }
    }

    /// Queues a frame like [`send`](Self::send), then waits until it has
    /// been handed to the stream (the kernel), so that a record of "sent"
    /// is true. False when the connection stopped first.
    pub async fn send_written(&self, frame: Frame) -> bool {
        match self.send_at(frame).await {
            Ok(end) => self.written_watch().reached(end).await,
            Err(_) => false,
        }
    }

    /// Queues a frame if the write buffer has room, without waiting: false
    /// when it is full (the frame is dropped, nothing was sent).
    pub fn try_send(&self, frame: Frame) -> Result<bool, SendError> {
        self.try_put_at(&mut Some(frame)).map(|end| end.is_some())
    }

    /// Queues a frame if the write buffer has room, without waiting: the
    /// stream offset it ends at (for [`WrittenWatch::reached`]), or `None`
    /// when the buffer is full (nothing was queued).
    pub fn try_send_at(&self, frame: Frame) -> Result<Option<u64>, SendError> {
        self.try_put_at(&mut Some(frame))
    }

    /// Watches how far the writer has handed bytes to the stream.
    pub fn written_watch(&self) -> WrittenWatch {
        WrittenWatch(self.inner.shared.progress.subscribe())
    }

    /// Has the writer call `hook` after each write it hands to the stream
    /// and once when it stops: how one loop confirming the frames of many
    /// connections (with [`WrittenWatch::reached_now`]) learns of their
    /// progress without a task a connection. Set once; later calls are
    /// ignored.
    pub fn on_written(&self, hook: WrittenHook) {
        let _ = self.inner.shared.on_written.set(hook);
    }

    /// Answers `request` like [`reply`](Self::reply), returning once the
    /// answer is handed to the stream (true) or the connection stopped.
    pub async fn reply_written(&self, request: &Frame, message: bytes::Bytes) -> bool {
        let reply = Frame {
            tpdu: request.tpdu.map(|t| t.reply()),
            message,
        };
        self.send_written(reply).await
    }

    /// Encodes the frame into the write buffer if there is room: the
    /// stream offset it ends at, `None` when the buffer is full.
    fn try_put_at(&self, frame: &mut Option<Frame>) -> Result<Option<u64>, SendError> {
        let shared = &self.inner.shared;
        let mut st = shared.lock();
        if st.writer_gone {
            return Err(SendError::Closed);
        }
        if st.buf.len() >= WRITE_BUFFER_BYTES_MAX {
            return Ok(None);
        }
        let before = st.buf.len();
        let was_empty = st.buf.is_empty();
        let WriteState { buf, codec, .. } = &mut *st;
        let frame = frame.take().expect("a frame is put once");
        match &shared.tap {
            // Seen under the lock, so the capture keeps the wire order.
            Some(tap) => {
                codec.encode(frame.clone(), buf)?;
                tap.see(Direction::Out, &frame);
            }
            None => codec.encode(frame, buf)?,
        }
        st.queued_total += (st.buf.len() - before) as u64;
        let end = st.queued_total;
        drop(st);
        shared.counters.frames_out.increment(1);
        if was_empty {
            shared.data_ready.notify_one();
        }
        Ok(Some(end))
    }

    /// Answers `request` with `message` (TPDU addresses swapped): an
    /// error when the connection is gone or the answer cannot be framed
    /// (larger than the link's frame limit; the caller decides what the
    /// peer, still waiting, is told).
    pub async fn reply(&self, request: &Frame, message: bytes::Bytes) -> Result<(), SendError> {
        let reply = Frame {
            tpdu: request.tpdu.map(|t| t.reply()),
            message,
        };
        self.send(reply).await
    }
}

/// How far a connection's writer has got: one watch for many frames, so
/// that confirming each write costs no subscription of its own.
pub struct WrittenWatch(tokio::sync::watch::Receiver<Progress>);

impl WrittenWatch {
    /// Whether the bytes up to stream offset `end` are handed to the
    /// stream (`Some(true)`), never will be (`Some(false)`: the connection
    /// stopped first), or not yet (`None`).
    pub fn reached_now(&self, end: u64) -> Option<bool> {
        self.0.borrow().reached(end)
    }

    /// Waits until the bytes up to stream offset `end` are handed to the
    /// stream (true), or the connection stopped first (false).
    pub async fn reached(&mut self, end: u64) -> bool {
        match self.0.wait_for(|p| p.reached(end).is_some()).await {
            Ok(p) => p.reached(end) == Some(true),
            Err(_) => false,
        }
    }
}

/// Per-link traffic counters, registered once per connection so that the
/// per-frame cost is an atomic add.
#[derive(Clone)]
pub struct LinkMetrics {
    pub(super) frames_in: metrics::Counter,
    pub(super) frames_out: metrics::Counter,
    pub(super) bytes_in: metrics::Counter,
    pub(super) bytes_out: metrics::Counter,
    pub(super) writes: metrics::Counter,
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

/// [`open`] with traffic counted under the link's name (this process
/// connected; frames go to the installed tap, if any).
pub fn open_named<S: LinkStream>(stream: S, codec: FrameCodec, link: &str) -> Opened<S> {
    open_tapped(stream, codec, link, Side::Connected, tap::installed())
}

/// [`open_named`] with the side given and an explicit tap (or none).
pub fn open_tapped<S: LinkStream>(
    stream: S,
    codec: FrameCodec,
    link: &str,
    side: Side,
    tap: Option<std::sync::Arc<dyn tap::FrameTap>>,
) -> Opened<S> {
    let tap = tap.map(|t| ConnectionTap::new(t, link, side, codec.framing().clone()));
    let counters = LinkMetrics::new(link);
    let (read, write) = tokio::io::split(stream);
    let shared = Arc::new(WriteShared {
        state: Mutex::new(WriteState {
            buf: BytesMut::with_capacity(BUFFER_BYTES_INITIAL),
            codec: codec.clone(),
            senders_gone: false,
            writer_gone: false,
            queued_total: 0,
        }),
        data_ready: Notify::new(),
        space_ready: Notify::new(),
        counters: counters.clone(),
        tap: tap.clone(),
        progress: tokio::sync::watch::Sender::new(Progress::default()),
        on_written: OnceLock::new(),
    });
    let writer = tokio::spawn(write_loop(write, shared.clone()));
    let reader = FrameReader::new(read, codec, BUFFER_BYTES_INITIAL, counters, tap);
    let sender = FrameSender {
        inner: Arc::new(SenderInner { shared }),
    };
    (reader, sender, writer)
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    shared: Arc<WriteShared>,
) -> Result<(), FramingError> {
    let result = write_until_closed(&mut write, &shared).await;
    shared.lock().writer_gone = true;
    shared.progress.send_modify(|p| p.stopped = true);
    shared.wrote();
    shared.space_ready.notify_waiters();
    result
}

async fn write_until_closed<W: AsyncWrite + Unpin>(
    write: &mut W,
    shared: &WriteShared,
) -> Result<(), FramingError> {
    let mut out = BytesMut::with_capacity(BUFFER_BYTES_INITIAL);
    loop {
        {
            let mut st = shared.lock();
            if st.buf.is_empty() {
                if st.senders_gone {
                    break;
                }
            } else {
                std::mem::swap(&mut st.buf, &mut out);
            }
        }
        if out.is_empty() {
            // Woken by the first frame of a burst, this task runs after the
            // tasks already queued, which add theirs: the burst leaves in
            // one write without waiting for another turn of the event loop
            // (yielding here cost the switch 0.2 ms of median latency at
            // 50,000 requests/s and gained no throughput).
            shared.data_ready.notified().await;
            continue;
        }
        shared.space_ready.notify_waiters();
        shared.counters.bytes_out.increment(out.len() as u64);
        shared.counters.writes.increment(1);
        write.write_all(&out).await?;
        let written = out.len() as u64;
        out.clear();
        shared.progress.send_modify(|p| p.written_total += written);
        shared.wrote();
    }
    write.shutdown().await?;
    Ok(())
}
