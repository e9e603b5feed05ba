//! The reading half of a framed connection: frames out of a byte stream
//! within time limits (idle, first frame, a frame started and stalled),
//! bursts read in few calls. No business rules.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::io::AsyncRead;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;

use super::connection::LinkMetrics;
use super::framing::{Frame, FrameCodec, FramingError};
use super::tap::{ConnectionTap, Direction};

/// What a read buffer grows to once a peer sends bursts (more than one
/// frame in a read): a host or issuer link reads its bursts in few calls.
const READ_BUFFER_BYTES_BUSY: usize = 16 * 1024;

/// How often a wait with no limit for its current part looks again.
const NO_LIMIT_RECHECK: Duration = Duration::from_secs(3600);

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
    /// Until the first frame arrives, the idle limit (shorter than the
    /// usual one: a peer that connects and says nothing holds a slot).
    first_frame: Option<Duration>,
    /// The read buffer has grown for bursts (see `grow_for_bursts`).
    grown: bool,
    counters: LinkMetrics,
    tap: Option<ConnectionTap>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader over `read` with no limits yet, its buffer starting at
    /// `buffer_bytes`.
    pub(super) fn new(
        read: R,
        codec: FrameCodec,
        buffer_bytes: usize,
        counters: LinkMetrics,
        tap: Option<ConnectionTap>,
    ) -> FrameReader<R> {
        FrameReader {
            inner: FramedRead::with_capacity(read, codec, buffer_bytes),
            limits: ReadLimits::default(),
            first_frame: None,
            grown: false,
            counters,
            tap,
        }
    }

    /// Sets the time limits for later reads.
    pub fn set_limits(&mut self, limits: ReadLimits) {
        self.limits = limits;
    }

    /// Limits the wait for the first frame to `limit` (if shorter than the
    /// idle limit); later frames wait by the usual [`ReadLimits`].
    pub fn set_first_frame_limit(&mut self, limit: Duration) {
        self.first_frame = Some(limit);
    }

    /// The next frame; `Ok(None)` on a clean close between frames.
    pub async fn next(&mut self) -> Result<Option<Frame>, ReadError> {
        let item = self.next_uncounted().await;
        if let Ok(Some(frame)) = &item {
            self.seen(frame);
            self.grow_for_bursts();
        }
        item
    }

    /// The next frame like [`next`](Self::next), or `None` once `stop` is
    /// cancelled. A frame already buffered is taken without arming a wait
    /// for `stop` (a waiter registered and dropped a frame cost ~400
    /// instructions a request through the switch, callgrind).
    pub async fn next_until(
        &mut self,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Option<Result<Option<Frame>, ReadError>> {
        if stop.is_cancelled() {
            return None;
        }
        let item = match self.decode_buffered() {
            Ok(None) => tokio::select! {
                _ = stop.cancelled() => return None,
                item = self.next_uncounted() => item,
            },
            buffered => buffered,
        };
        if let Ok(Some(frame)) = &item {
            self.seen(frame);
            self.grow_for_bursts();
        }
        Some(item)
    }

    /// More bytes behind a frame just read: this peer sends bursts, so its
    /// buffer grows, once, to read them in few calls. A new buffer rather
    /// than a reserve: the buffers the reader allocates later take the size
    /// of the first (a reserve would keep the initial 1 KiB as that size),
    /// so this need not be done again. Done on every frame, as it was while
    /// the capacity (which shrinks as frames are split off the front) was
    /// under 16 KiB, the reserve copied what was buffered into a new buffer
    /// each time: ~2,200 instructions a request through the switch at 8 x 8
    /// in flight (callgrind).
    fn grow_for_bursts(&mut self) {
        let buf = self.inner.read_buffer_mut();
        if self.grown || buf.is_empty() {
            return;
        }
        self.grown = true;
        let mut grown = BytesMut::with_capacity(READ_BUFFER_BYTES_BUSY.max(buf.len()));
        grown.extend_from_slice(buf);
        *buf = grown;
    }

    /// A frame already complete in the read buffer, without touching the
    /// socket: lets a caller handle a burst as one batch.
    pub fn next_buffered(&mut self) -> Result<Option<Frame>, ReadError> {
        let item = self.decode_buffered()?;
        if let Some(frame) = &item {
            self.seen(frame);
        }
        Ok(item)
    }

    fn decode_buffered(&mut self) -> Result<Option<Frame>, ReadError> {
        use tokio_util::codec::Decoder;
        if self.inner.read_buffer().is_empty() {
            return Ok(None);
        }
        let (codec, buf) = (
            &mut self.inner.decoder().clone(),
            self.inner.read_buffer_mut(),
        );
        codec.decode(buf).map_err(ReadError::Framing)
    }

    fn seen(&mut self, frame: &Frame) {
        self.first_frame = None;
        self.counters.frames_in.increment(1);
        self.counters.bytes_in.increment(frame.message.len() as u64);
        if let Some(tap) = &self.tap {
            tap.see(Direction::In, frame);
        }
    }

    async fn next_uncounted(&mut self) -> Result<Option<Frame>, ReadError> {
        // A frame already buffered needs no socket read and no timer.
        if let Some(frame) = self.decode_buffered()? {
            return Ok(Some(frame));
        }
        let ReadLimits { idle, frame } = self.limits;
        let first = self.first_frame;
        let idle = match first {
            Some(f) => Some(idle.map_or(f, |i| i.min(f))),
            None => idle,
        };
        if idle.is_none() && frame.is_none() {
            return self
                .inner
                .next()
                .await
                .transpose()
                .map_err(ReadError::Framing);
        }
        let waiting_since = Instant::now();
        let inner = &mut self.inner;
        // When the frame being read started: its first byte was seen.
        let mut started = (!inner.read_buffer().is_empty()).then_some(waiting_since);
        let deadline = |started: Option<Instant>| match started {
            None => idle.map(|d| waiting_since + d),
            Some(at) => frame.map(|d| at + d),
        };
        let far = || Instant::now() + NO_LIMIT_RECHECK;
        // One timer per wait, moved only when a frame starts: an idle
        // connection costs no wake-up until its limit.
        let mut timer = pin!(tokio::time::sleep_until(
            deadline(started).unwrap_or_else(far)
        ));
        std::future::poll_fn(|cx| {
            loop {
                if let Poll::Ready(item) = inner.poll_next_unpin(cx) {
                    return Poll::Ready(item.transpose().map_err(ReadError::Framing));
                }
                if started.is_none() && !inner.read_buffer().is_empty() {
                    started = Some(Instant::now());
                    timer.as_mut().reset(deadline(started).unwrap_or_else(far));
                }
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let now = Instant::now();
                let error = match started {
                    None if idle.is_some() && first.is_some() => {
                        ReadError::NoFirstFrame(now - waiting_since)
                    }
                    None if idle.is_some() => ReadError::Idle(now - waiting_since),
                    Some(at) if frame.is_some() => ReadError::Stalled {
                        waited: now - at,
                        buffered: inner.read_buffer().len(),
                    },
                    // No limit applies to this part of the wait.
                    _ => {
                        timer.as_mut().reset(far());
                        continue;
                    }
                };
                return Poll::Ready(Err(error));
            }
        })
        .await
    }
}

/// Why reading from a connection stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No frame started within the idle limit.
    #[error("no frame for {0:?}")]
    Idle(Duration),
    /// The connection sent no first frame within its first-frame limit.
    #[error("no first frame within {0:?} of connecting")]
    NoFirstFrame(Duration),
    /// A frame started but did not complete within the frame limit.
    #[error("frame incomplete after {waited:?} ({buffered} bytes buffered)")]
    Stalled { waited: Duration, buffered: usize },
    /// The bytes are not a valid frame.
    #[error(transparent)]
    Framing(#[from] FramingError),
}

impl ReadError {
    pub fn kind(&self) -> &'static str {
        match self {
            ReadError::Idle(_) => "idle",
            ReadError::NoFirstFrame(_) => "first_frame",
            ReadError::Stalled { .. } => "stalled",
            ReadError::Framing(e) => e.kind(),
        }
    }
}
