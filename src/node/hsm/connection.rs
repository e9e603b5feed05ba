//! One connection to the HSM, pipelined: commands are written in the
//! order they are queued and a payShield answers in order on a
//! connection, so answers are matched to a FIFO of waiters. The depth is
//! bounded by a semaphore whose permit travels with the waiter. Anything
//! that breaks the order (a late answer, a wrong header, an answer that
//! does not decode, an answer nobody waits for) closes the connection:
//! every waiter still queued fails `Unavailable` and the pool reconnects.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;
use zeroize::Zeroizing;

use super::errors::{HsmError, ProtocolError};
use super::metrics;
use crate::hsm::command::response::response_code;
use crate::hsm::command::{Response, frame};
use crate::link::listener::BoxedStream;

/// The read buffer's first size (it grows to a frame's at most).
const READ_BUFFER_BYTES: usize = 8 * 1024;
/// Bytes written in one go at most when commands queue up.
const WRITE_BATCH_BYTES_MAX: usize = 64 * 1024;

type Reply = oneshot::Sender<Result<Response, HsmError>>;

/// A command written and not answered yet.
struct Waiter {
    /// The response code its answer must carry.
    answer: [u8; 2],
    reply: Reply,
    /// Its place in the pipeline, freed with the answer.
    _permit: OwnedSemaphorePermit,
}

struct Queue {
    open: bool,
    waiters: VecDeque<Waiter>,
}

/// One open connection; shared by the pool and the callers using it.
pub(super) struct Conn {
    queue: Mutex<Queue>,
    writes: mpsc::UnboundedSender<Zeroizing<Vec<u8>>>,
    depth: Arc<Semaphore>,
    closed: CancellationToken,
    header: Arc<[u8]>,
    opened: Instant,
    /// When the last answer came, in microseconds after `opened`.
    answered_us: AtomicU64,
}

impl Conn {
    /// Starts the reader and writer tasks on `stream`.
    pub(super) fn open(stream: BoxedStream, header: Arc<[u8]>, depth: usize) -> Arc<Conn> {
        let (read, write) = tokio::io::split(stream);
        let (writes, rx) = mpsc::unbounded_channel();
        let conn = Arc::new(Conn {
            queue: Mutex::new(Queue {
                open: true,
                waiters: VecDeque::new(),
            }),
            writes,
            depth: Arc::new(Semaphore::new(depth)),
            closed: CancellationToken::new(),
            header,
            opened: Instant::now(),
            answered_us: AtomicU64::new(0),
        });
        tokio::spawn(write_loop(conn.clone(), write, rx));
        tokio::spawn(read_loop(conn.clone(), read));
        conn
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves a queue that is still
        // consistent (each operation is one push or pop).
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn is_open(&self) -> bool {
        !self.closed.is_cancelled()
    }

    /// How long since the last answer (or the connect).
    pub(super) fn quiet_for(&self) -> Duration {
        let last = Duration::from_micros(self.answered_us.load(Ordering::Relaxed));
        self.opened.elapsed().saturating_sub(last)
    }

    /// Pipeline places free now.
    pub(super) fn free(&self) -> usize {
        self.depth.available_permits()
    }

    /// Resolves once the connection is closed.
    pub(super) async fn closed(&self) {
        self.closed.cancelled().await
    }

    /// Closes the connection: queued waiters fail `Unavailable` (their
    /// senders are dropped), the tasks stop and the socket is dropped.
    pub(super) fn close(&self, reason: &'static str) {
        let waiters = {
            let mut q = self.lock();
            if !q.open {
                return;
            }
            q.open = false;
            std::mem::take(&mut q.waiters)
        };
        debug!(reason, dropped = waiters.len(), "HSM connection closed");
        metrics::closed(reason);
        self.depth.close();
        self.closed.cancel();
    }

    /// Sends one framed command and waits for its answer until
    /// `deadline`; past it the connection is closed and the call fails
    /// `Timeout`.
    pub(super) async fn call(
        &self,
        command: &[u8; 2],
        frame: Zeroizing<Vec<u8>>,
        deadline: Instant,
    ) -> Result<Response, HsmError> {
        let answer = response_code(command).ok_or(ProtocolError::Body("an unknown command"))?;
        // A free place is taken at once; only a full pipeline arms a timer.
        let permit = match self.depth.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(HsmError::Unavailable),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                match tokio::time::timeout_at(deadline, self.depth.clone().acquire_owned()).await {
                    Err(_) => return Err(HsmError::Timeout),
                    Ok(Err(_)) => return Err(HsmError::Unavailable),
                    Ok(Ok(p)) => p,
                }
            }
        };
        let (reply, rx) = oneshot::channel();
        {
            // Queue and write in one critical section, so the order of the
            // waiters is the order on the wire.
            let mut q = self.lock();
            if !q.open {
                return Err(HsmError::Unavailable);
            }
            q.waiters.push_back(Waiter {
                answer,
                reply,
                _permit: permit,
            });
            if self.writes.send(frame).is_err() {
                drop(q);
                self.close("writer gone");
                return Err(HsmError::Unavailable);
            }
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(HsmError::Unavailable),
            Err(_) => {
                self.close("time-out");
                Err(HsmError::Timeout)
            }
        }
    }

    /// Gives one answer to the oldest waiter; `Err` when the connection
    /// must close.
    fn deliver(&self, f: frame::Frame<'_>) -> Result<(), &'static str> {
        let Some(w) = self.lock().waiters.pop_front() else {
            return Err("an answer no command waits for");
        };
        let result = if f.header != &self.header[..] {
            Err(ProtocolError::Header)
        } else {
            match Response::decode(f.message) {
                Ok(r) if r.code == w.answer => Ok(r),
                Ok(r) => Err(ProtocolError::WrongAnswer {
                    sent: metrics::code_label(&w.answer),
                    got: metrics::code_label(&r.code),
                }),
                Err(e) => Err(ProtocolError::Decode(e)),
            }
        };
        let broken = result.is_err();
        let us = u64::try_from(self.opened.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.answered_us.store(us, Ordering::Relaxed);
        let _ = w.reply.send(result.map_err(HsmError::Protocol));
        if broken {
            Err("protocol error")
        } else {
            Ok(())
        }
    }

    /// Fails the oldest waiter with `e` (a frame that does not even
    /// split into header and message).
    fn fail_oldest(&self, e: ProtocolError) {
        if let Some(w) = self.lock().waiters.pop_front() {
            let _ = w.reply.send(Err(HsmError::Protocol(e)));
        }
    }
}

async fn read_loop(conn: Arc<Conn>, mut read: ReadHalf<BoxedStream>) {
    // At most one frame (65535 + 2 bytes) and one read beyond it; answers
    // carry PIN blocks and CVVs, so the buffer is zeroized when dropped.
    let mut buf = Zeroizing::new(Vec::with_capacity(READ_BUFFER_BYTES));
    loop {
        // Every whole frame read is delivered, then the bytes they took
        // are dropped at once (not one move of the rest per frame).
        let mut used_total = 0;
        loop {
            match frame::decode(&buf[used_total..], conn.header.len()) {
                Ok(Some((f, used))) => {
                    let verdict = conn.deliver(f);
                    used_total += used;
                    if let Err(reason) = verdict {
                        conn.close(reason);
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    conn.fail_oldest(ProtocolError::Decode(e));
                    conn.close("protocol error");
                    return;
                }
            }
        }
        buf.drain(..used_total);
        let n = tokio::select! {
            _ = conn.closed.cancelled() => return,
            n = read.read_buf(&mut *buf) => n,
        };
        if !matches!(n, Ok(n) if n > 0) {
            conn.close("closed by the HSM");
            return;
        }
    }
}

async fn write_loop(
    conn: Arc<Conn>,
    mut write: WriteHalf<BoxedStream>,
    mut frames: mpsc::UnboundedReceiver<Zeroizing<Vec<u8>>>,
) {
    let mut out = Zeroizing::new(Vec::with_capacity(4096));
    loop {
        let first = tokio::select! {
            _ = conn.closed.cancelled() => break,
            f = frames.recv() => match f { Some(f) => f, None => break },
        };
        out.clear();
        out.extend_from_slice(&first);
        // Let the other callers queue theirs, then write everything queued
        // in one go: one syscall for many commands.
        tokio::task::yield_now().await;
        while out.len() < WRITE_BATCH_BYTES_MAX {
            match frames.try_recv() {
                Ok(f) => out.extend_from_slice(&f),
                Err(_) => break,
            }
        }
        let written = tokio::select! {
            _ = conn.closed.cancelled() => break,
            r = async { write.write_all(&out).await?; write.flush().await } => r,
        };
        if written.is_err() {
            conn.close("write failed");
            break;
        }
    }
    out.clear();
}
