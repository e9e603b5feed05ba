//! The log's writer: group commit, pipelined. Two threads: the appender
//! takes what is queued, seals and encodes it, and `write`s it; the
//! syncer `fdatasync`s and then acknowledges everything up to the synced
//! offset. While one group's sync runs the next is gathered and written,
//! so a record waits about one sync, not two. The appender stays within
//! [`TORN_WINDOW_BYTES`] of the synced offset (the reader's rule for a
//! torn tail depends on it) and starts a new segment only once the old one
//! is synced. A failed write or sync fails the writer for good: the log
//! cannot have a hole, so every later group is refused.
//! Card data is sealed straight into the group's buffer, and the records
//! written go back to the thread that queued them to drop ([`super::queue`]).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{JoinHandle, ThreadId};

pub use super::limits::*;
use super::queue::{Group, Queue, SPENT_IDLE};
use super::reader::{self, TORN_WINDOW_BYTES, TailDamage};
use super::record::{ENTRY_BYTES_MAX, Entry};
use super::seal::Sealer;
use super::spare::Spare;
use super::{LogError, segment};
use crate::journal::crypto::Keyring;
use crate::journal::record::Record;
use crate::journal::writer::OnDurable;

/// One write's bytes: a group stops gathering past this (plus one entry),
/// so two groups in flight stay well within the torn window.
pub const GROUP_BYTES: usize = 1024 * 1024;
/// Records the appender takes from the queue under one lock.
const TAKE_RECORDS: usize = 1024;
const _: () = assert!(2 * (GROUP_BYTES + ENTRY_BYTES_MAX) <= TORN_WINDOW_BYTES);

/// What opening found on disk.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Whole entries kept.
    pub records: u64,
    /// The sequence number the next record gets.
    pub next_seq: u64,
    /// The torn tail cut off, if there was one.
    pub tail: Option<TailDamage>,
}

/// Counters of the writer's work.
#[derive(Debug, Default)]
pub struct LogStats {
    pub records: AtomicU64,
    pub syncs: AtomicU64,
    pub bytes: AtomicU64,
    pub failures: AtomicU64,
}

/// Bytes written and synced, counted over the writer's life.
#[derive(Default)]
struct Progress {
    written: u64,
    synced: u64,
    /// The last entry synced (0: none yet), for readers of the log.
    synced_seq: u64,
    failed: bool,
    /// The threads have stopped: nothing more will be synced.
    stopped: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    queued: Condvar,
    room: Condvar,
    progress: Mutex<Progress>,
    synced: Condvar,
    queue_records: usize,
    stats: LogStats,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A thread that panicked holding it left plain counters: go on.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a group was not queued; it comes back with its callback.
pub enum AppendError {
    Full(Vec<Record>, OnDurable),
}

/// The log's writer. Shared by reference (it is `Sync`); dropped or
/// [`LogWriter::close`]d, it writes and syncs what was queued first.
pub struct LogWriter {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The sequence number of the first entry this writer writes.
    first_seq: u64,
}

/// How far the log is synced, seen from another thread.
#[derive(Clone)]
pub struct SyncWatch {
    shared: Arc<Shared>,
    /// Entries before this one were on disk when the writer started.
    first: u64,
}

impl SyncWatch {
    /// The last entry on disk (0: none).
    pub fn synced_seq(&self) -> u64 {
        let p = lock(&self.shared.progress);
        p.synced_seq.max(self.first - 1)
    }

    /// Waits until an entry after `seq` is on disk, the writer has
    /// stopped, or `timeout` has passed; then the last entry on disk and
    /// whether the writer has stopped.
    pub fn wait_past(&self, seq: u64, timeout: std::time::Duration) -> (u64, bool) {
        let p = lock(&self.shared.progress);
        let (p, _) = self
            .shared
            .synced
            .wait_timeout_while(p, timeout, |p| {
                p.synced_seq.max(self.first - 1) <= seq && !p.stopped
            })
            .unwrap_or_else(|e| e.into_inner());
        (p.synced_seq.max(self.first - 1), p.stopped)
    }
}

/// The segment the appender writes to.
struct Current {
    dir: PathBuf,
    file: Arc<File>,
    len: u64,
    capacity: u64,
}

/// A written group for the syncer: sync `file`, then acknowledge.
struct SyncJob {
    file: Arc<File>,
    written: u64,
    records: u64,
    /// The last entry of the group (0 before the first).
    last_seq: u64,
    acks: Vec<(OnDurable, bool)>,
}

impl LogWriter {
    /// Reads the log in `dir` (made if missing), cuts a torn tail off,
    /// and starts the writer after the last whole entry.
    pub fn open(
        dir: &Path,
        limits: Limits,
        keys: Arc<Keyring>,
    ) -> Result<(LogWriter, Recovered), LogError> {
        LogWriter::open_with(dir, limits, keys, &mut |_| {})
    }

    /// [`LogWriter::open`], handing every entry kept to `on_entry`.
    pub fn open_with(
        dir: &Path,
        limits: Limits,
        keys: Arc<Keyring>,
        on_entry: &mut dyn FnMut(Entry),
    ) -> Result<(LogWriter, Recovered), LogError> {
        limits.check()?;
        std::fs::create_dir_all(dir).map_err(LogError::io("creating the log directory", dir))?;
        let end = reader::read_log(dir, on_entry)?;
        reader::truncate_to_last_whole(dir, &end)?;
        let current = match &end.last {
            Some((path, _, len)) if len + (GROUP_BYTES as u64) < limits.segment_bytes => {
                let file = segment::open_for_append(path)?;
                let size = file
                    .metadata()
                    .map_err(LogError::io("opening a segment", path))?
                    .len();
                Current {
                    dir: dir.to_path_buf(),
                    file: Arc::new(file),
                    len: *len,
                    capacity: size.max(limits.segment_bytes),
                }
            }
            _ => Current {
                dir: dir.to_path_buf(),
                file: Arc::new(segment::create(dir, end.next_seq, limits.segment_bytes)?),
                len: 0,
                capacity: limits.segment_bytes,
            },
        };
        let recovered = Recovered {
            records: end.records,
            next_seq: end.next_seq,
            tail: end.tail,
        };
        let writer = LogWriter::start(current, recovered.next_seq, limits, keys)?;
        Ok((writer, recovered))
    }

    fn start(
        current: Current,
        next_seq: u64,
        limits: Limits,
        keys: Arc<Keyring>,
    ) -> Result<LogWriter, LogError> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            queued: Condvar::new(),
            room: Condvar::new(),
            progress: Mutex::new(Progress::default()),
            synced: Condvar::new(),
            queue_records: limits.queue_records,
            stats: LogStats::default(),
        });
        let (jobs, job_rx) = mpsc::channel();
        let spawn_err = |e| LogError::Io {
            what: "starting the writer threads",
            path: current.dir.clone(),
            source: e,
        };
        let syncer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("journal-log-sync".into())
                .spawn(move || sync_loop(&shared, job_rx))
                .map_err(spawn_err)?
        };
        let appender = {
            let shared = shared.clone();
            let dir = current.dir.clone();
            let mut app = Appender {
                shared,
                current,
                next_seq,
                buf_first_seq: next_seq,
                limits,
                jobs,
                buf: Vec::with_capacity(GROUP_BYTES + ENTRY_BYTES_MAX),
                spare: Spare::start(&dir, limits.segment_bytes),
                taken: Vec::new(),
                spent: Vec::new(),
            };
            std::thread::Builder::new()
                .name("journal-log-append".into())
                .spawn(move || app.run(&keys))
                .map_err(|e| LogError::Io {
                    what: "starting the writer threads",
                    path: dir,
                    source: e,
                })?
        };
        Ok(LogWriter {
            shared,
            threads: vec![appender, syncer],
            first_seq: next_seq,
        })
    }

    /// Queues a group of records, written together; `on_durable` is
    /// called once, on the syncer's thread, with whether they are on
    /// disk. Waits while the queue is full. A group larger than the whole
    /// queue, or one given to a closed or failed writer, is refused (false).
    pub fn append(&self, records: Vec<Record>, on_durable: OnDurable) {
        let mut q = lock(&self.shared.queue);
        if records.len() > self.shared.queue_records || q.closed || self.failed() {
            drop(q);
            on_durable(false);
            return;
        }
        while q.records + records.len() > self.shared.queue_records && !q.closed {
            q.producers_waiting += 1;
            q = self.shared.room.wait(q).unwrap_or_else(|e| e.into_inner());
            q.producers_waiting -= 1;
        }
        self.push(q, records, on_durable);
    }

    /// [`LogWriter::append`] without waiting: a full queue gives the
    /// group back.
    pub fn try_append(
        &self,
        records: Vec<Record>,
        on_durable: OnDurable,
    ) -> Result<(), AppendError> {
        let q = lock(&self.shared.queue);
        if records.len() > self.shared.queue_records || q.closed || self.failed() {
            drop(q);
            on_durable(false);
            return Ok(());
        }
        if q.records + records.len() > self.shared.queue_records {
            return Err(AppendError::Full(records, on_durable));
        }
        self.push(q, records, on_durable);
        Ok(())
    }

    fn push(&self, mut q: MutexGuard<'_, Queue>, records: Vec<Record>, ack: OnDurable) {
        if q.closed {
            drop(q);
            ack(false);
            return;
        }
        let owner = std::thread::current().id();
        let spent = q.take_spent(owner);
        q.records += records.len();
        q.groups.push_back(Group {
            records,
            ack,
            owner,
        });
        let wake = q.appender_waiting;
        drop(q);
        if wake {
            self.shared.queued.notify_one();
        }
        drop(spent);
    }

    /// Waits until everything queued before it is durable; false if the
    /// writer failed or is closed.
    pub fn flush(&self) -> bool {
        let (tx, rx) = mpsc::sync_channel(1);
        self.append(
            Vec::new(),
            Box::new(move |ok| {
                let _ = tx.send(ok);
            }),
        );
        rx.recv().unwrap_or(false)
    }

    /// Whether a write or sync has failed (every later group is refused).
    pub fn failed(&self) -> bool {
        lock(&self.shared.progress).failed
    }

    pub fn stats(&self) -> &LogStats {
        &self.shared.stats
    }

    /// Writes and syncs what is queued, then stops the threads.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.queued.notify_all();
        self.shared.room.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        lock(&self.shared.progress).stopped = true;
        self.shared.synced.notify_all();
    }

    /// A handle that tells how far the log is synced, for its readers.
    pub fn watch(&self) -> SyncWatch {
        SyncWatch {
            shared: self.shared.clone(),
            first: self.first_seq,
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Appender {
    shared: Arc<Shared>,
    current: Current,
    next_seq: u64,
    /// The sequence number of the buffer's first entry.
    buf_first_seq: u64,
    limits: Limits,
    jobs: mpsc::Sender<SyncJob>,
    buf: Vec<u8>,
    /// The next segment, made ahead.
    spare: Spare,
    /// Groups taken from the queue (the vector reused).
    taken: Vec<Group>,
    /// Groups written since the last take, with who queued them.
    spent: Vec<(ThreadId, Vec<Record>)>,
}

impl Appender {
    fn run(&mut self, keys: &Keyring) {
        let mut sealer = Sealer::new(keys);
        while let Some(acks) = self.gather(&mut sealer) {
            let failed = lock(&self.shared.progress).failed;
            let records = self.next_seq - self.buf_first_seq;
            let ok = !failed && (self.buf.is_empty() || self.write().is_ok());
            let acks = acks.into_iter().map(|(a, kept)| (a, kept && ok)).collect();
            let job = SyncJob {
                file: self.current.file.clone(),
                written: lock(&self.shared.progress).written,
                records,
                last_seq: self.next_seq - 1,
                acks,
            };
            if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
                job.acks.into_iter().for_each(|(a, _)| a(false));
            }
        }
    }

    /// Takes queued groups until the buffer holds [`GROUP_BYTES`]: seals
    /// and encodes them (a group that does not encode is refused whole).
    /// `None` once closed and drained.
    fn gather(&mut self, sealer: &mut Sealer<'_>) -> Option<Vec<(OnDurable, bool)>> {
        self.buf.clear();
        self.buf_first_seq = self.next_seq;
        let mut acks = Vec::new();
        while self.buf.len() < GROUP_BYTES {
            if !self.take(acks.is_empty()) {
                return None;
            }
            if self.taken.is_empty() {
                break;
            }
            let mut taken = std::mem::take(&mut self.taken);
            for group in taken.drain(..) {
                let kept = self.encode_group(&group.records, sealer);
                acks.push((group.ack, kept));
                if !group.records.is_empty() {
                    self.spent.push((group.owner, group.records));
                }
            }
            self.taken = taken;
        }
        Some(acks)
    }

    /// Takes up to [`TAKE_RECORDS`] queued records' groups into `taken`
    /// under one lock, waiting for one if `wait`, and leaves the groups
    /// written since for their producers; false once closed and drained.
    fn take(&mut self, wait: bool) -> bool {
        let mut q = lock(&self.shared.queue);
        let mut unkept = Vec::new();
        for (owner, records) in self.spent.drain(..) {
            unkept.extend(q.keep_spent(owner, records));
        }
        while wait && q.groups.is_empty() {
            if q.closed {
                return false;
            }
            q.appender_waiting = true;
            let (guard, waited) = self
                .shared
                .queued
                .wait_timeout(q, SPENT_IDLE)
                .unwrap_or_else(|e| e.into_inner());
            q = guard;
            q.appender_waiting = false;
            if waited.timed_out() && q.groups.is_empty() {
                let idle = q.take_all_spent();
                if !idle.is_empty() {
                    drop(q);
                    drop(idle);
                    q = lock(&self.shared.queue);
                }
            }
        }
        let mut records = 0;
        while records < TAKE_RECORDS {
            let Some(group) = q.groups.pop_front() else {
                break;
            };
            records += group.records.len().max(1);
            q.records -= group.records.len();
            self.taken.push(group);
        }
        let wake = q.producers_waiting > 0;
        drop(q);
        if wake {
            self.shared.room.notify_all();
        }
        drop(unkept);
        true
    }

    fn encode_group(&mut self, records: &[Record], sealer: &mut Sealer<'_>) -> bool {
        let (start, seq) = (self.buf.len(), self.next_seq);
        for r in records {
            if let Err(e) = sealer.encode(self.next_seq, r, &mut self.buf) {
                tracing::error!(error = %e, "journal log: a record over its limits; group refused");
                self.buf.truncate(start);
                self.next_seq = seq;
                return false;
            }
            self.next_seq += 1;
        }
        true
    }

    /// Writes the buffer, first waiting for room in the torn window, and
    /// starting a segment (once the old one is synced) if it is full.
    fn write(&mut self) -> Result<(), ()> {
        let len = self.buf.len() as u64;
        if self.current.len + len > self.current.capacity {
            self.wait_synced(0)?;
            let file = match self.spare.take(self.buf_first_seq) {
                Some(file) => file,
                None => segment::create(
                    &self.current.dir,
                    self.buf_first_seq,
                    self.limits.segment_bytes,
                )
                .map_err(|e| self.fail(&e.to_string()))?,
            };
            self.current.file = Arc::new(file);
            self.current.len = 0;
            self.current.capacity = self.limits.segment_bytes;
        }
        self.wait_synced(TORN_WINDOW_BYTES as u64 - len)?;
        let offset = self.current.len;
        self.current
            .file
            .write_all_at(&self.buf, offset)
            .map_err(|e| self.fail(&e.to_string()))?;
        self.current.len += len;
        lock(&self.shared.progress).written += len;
        self.shared.stats.bytes.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    /// Waits until at most `unsynced` bytes are written and not synced.
    fn wait_synced(&self, unsynced: u64) -> Result<(), ()> {
        let mut p = lock(&self.shared.progress);
        while p.written - p.synced > unsynced && !p.failed {
            p = self
                .shared
                .synced
                .wait(p)
                .unwrap_or_else(|e| e.into_inner());
        }
        if p.failed { Err(()) } else { Ok(()) }
    }

    fn fail(&self, error: &str) {
        tracing::error!(
            error,
            "journal log write failed; the log refuses every later group"
        );
        lock(&self.shared.progress).failed = true;
        self.shared.stats.failures.fetch_add(1, Ordering::Relaxed);
        self.shared.synced.notify_all();
    }
}

/// The syncer: takes every written group waiting, syncs once, then
/// acknowledges them in order.
fn sync_loop(shared: &Shared, jobs: mpsc::Receiver<SyncJob>) {
    let mut batch = Vec::new();
    while let Ok(first) = jobs.recv() {
        batch.push(first);
        batch.extend(jobs.try_iter());
        let written = batch.last().map_or(0, |j| j.written);
        let synced = lock(&shared.progress).synced;
        let mut ok = !lock(&shared.progress).failed;
        let mut took = std::time::Duration::ZERO;
        if ok && written > synced {
            // Jobs of a segment before this one were synced before it started.
            let file = &batch.last().expect("one job").file;
            let started = std::time::Instant::now();
            let synced = file.sync_data();
            took = started.elapsed();
            if let Err(e) = synced {
                tracing::error!(error = %e, "journal log sync failed; the log refuses every later group");
                ok = false;
            }
        }
        {
            let mut p = lock(&shared.progress);
            if ok {
                p.synced = p.synced.max(written);
                let last = batch.iter().map(|j| j.last_seq).max().unwrap_or(0);
                p.synced_seq = p.synced_seq.max(last);
            } else {
                p.failed = true;
            }
        }
        shared.synced.notify_all();
        let mut records = 0;
        for job in batch.drain(..) {
            records += job.records;
            for (ack, kept) in job.acks {
                ack(ok && kept);
            }
        }
        if ok {
            shared.stats.syncs.fetch_add(1, Ordering::Relaxed);
            shared.stats.records.fetch_add(records, Ordering::Relaxed);
            metrics::counter!("cardswitch_journal_log_syncs_total").increment(1);
            metrics::counter!("cardswitch_journal_log_records_total").increment(records);
            metrics::histogram!("cardswitch_journal_log_sync_seconds").record(took.as_secs_f64());
        } else {
            shared.stats.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}
