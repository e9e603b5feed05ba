//! The journal's one writer: a thread that owns the store and commits
//! records in groups. While one group's commit (and its fsync) runs, the
//! next group gathers in a bounded channel, so durability costs one fsync
//! per group rather than one per record. Callers that need durability
//! (a request before it is forwarded) wait for their group's commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tracing::error;

use super::log::journal::LogJournal;
use super::log::writer::AppendError;
use super::record::Record;
use super::store::{JournalError, JournalStore};

/// Records waiting for the writer at most; senders wait when it is full.
pub const QUEUE_RECORDS_MAX: usize = 65_536;
/// Records in one commit at most.
pub const GROUP_RECORDS_MAX: usize = 4_096;

/// Called once, on the writer's thread, with whether a group of records
/// is durable: keep it short (the switch's node sends itself an input).
pub type OnDurable = Box<dyn FnOnce(bool) + Send>;

/// Who waits for a commit.
enum Ack {
    Channel(oneshot::Sender<bool>),
    Call(OnDurable),
}

impl Ack {
    fn send(self, ok: bool) {
        match self {
            Ack::Channel(tx) => {
                let _ = tx.send(ok);
            }
            Ack::Call(f) => f(ok),
        }
    }
}

enum Command {
    Record(Record, Option<Ack>),
    Group(Vec<Record>, Option<Ack>),
    Flush(Ack),
}

/// Counters of the writer's work.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub records: AtomicU64,
    pub commits: AtomicU64,
    pub failures: AtomicU64,
}

/// A handle on the journal writer; cheap to clone. Behind it, either
/// the journal log ([`crate::journal::log::journal`], the default: durable
/// once the log is synced, SQLite fed behind it) or a store written
/// directly (durable once its commit returns).
#[derive(Clone)]
pub struct Journal {
    backend: Backend,
    pub stats: Arc<WriterStats>,
    failed: Arc<AtomicBool>,
}

#[derive(Clone)]
enum Backend {
    Store(mpsc::Sender<Command>),
    Log(Arc<LogJournal>),
}

impl Journal {
    /// Starts the writer thread on `store`. It stops when every handle is
    /// dropped, after committing what was queued.
    pub fn start(
        store: Box<dyn JournalStore>,
        group_records_max: usize,
    ) -> (Journal, std::thread::JoinHandle<()>) {
        // A group gathers from the queue, so it cannot usefully be larger;
        // the configuration refuses more (a group's records are memory).
        assert!(
            (1..=QUEUE_RECORDS_MAX).contains(&group_records_max),
            "a group holds 1 to {QUEUE_RECORDS_MAX} records, not {group_records_max}"
        );
        let (tx, rx) = mpsc::channel(QUEUE_RECORDS_MAX);
        let stats = Arc::new(WriterStats::default());
        let failed = Arc::new(AtomicBool::new(false));
        let thread = {
            let stats = stats.clone();
            let failed = failed.clone();
            std::thread::Builder::new()
                .name("journal-writer".into())
                .spawn(move || write_loop(store, rx, group_records_max, &stats, &failed))
                .expect("spawning the journal writer thread")
        };
        let journal = Journal {
            backend: Backend::Store(tx),
            stats,
            failed,
        };
        (journal, thread)
    }

    /// A handle on the journal log's writer.
    pub fn on_log(log: LogJournal) -> Journal {
        Journal {
            backend: Backend::Log(Arc::new(log)),
            stats: Arc::default(),
            failed: Arc::default(),
        }
    }

    fn store(&self) -> Result<&mpsc::Sender<Command>, JournalError> {
        match &self.backend {
            Backend::Store(tx) => Ok(tx),
            Backend::Log(_) => Err(JournalError::Closed),
        }
    }

    /// Queues a group of records (committed together) without waiting;
    /// `on_durable`, if given, is called once they are on disk (true) or
    /// the commit failed. Waits only while the queue is full.
    pub async fn submit(&self, records: Vec<Record>, on_durable: Option<OnDurable>) {
        let tx = match &self.backend {
            Backend::Store(tx) => tx,
            Backend::Log(log) => return submit_to_log(log, records, on_durable).await,
        };
        let cmd = Command::Group(records, on_durable.map(Ack::Call));
        let unsent = match tx.try_send(cmd) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(cmd)) => tx.send(cmd).await.err().map(|e| e.0),
            Err(mpsc::error::TrySendError::Closed(cmd)) => Some(cmd),
        };
        // The writer has stopped: nothing of the group is durable.
        if let Some(Command::Group(_, Some(ack))) = unsent {
            ack.send(false);
        }
    }

    /// Queues a record and waits until it is durable.
    pub async fn durable(&self, record: Record) -> Result<(), JournalError> {
        let (ack, done) = oneshot::channel();
        self.store()?
            .send(Command::Record(record, Some(Ack::Channel(ack))))
            .await
            .map_err(|_| JournalError::Closed)?;
        match done.await {
            Ok(true) => Ok(()),
            _ => Err(JournalError::Closed),
        }
    }

    /// Queues a record without waiting for its commit (waits only while
    /// the queue is full).
    pub async fn record(&self, record: Record) {
        let Ok(tx) = self.store() else {
            return self.submit(vec![record], None).await;
        };
        if let Err(mpsc::error::TrySendError::Full(cmd)) =
            tx.try_send(Command::Record(record, None))
        {
            let _ = tx.send(cmd).await;
        }
    }

    /// Waits until everything queued before it is durable.
    pub async fn flush(&self) -> Result<(), JournalError> {
        if let Backend::Log(log) = &self.backend {
            let log = log.clone();
            return match tokio::task::spawn_blocking(move || log.flush()).await {
                Ok(true) => Ok(()),
                _ => Err(JournalError::Closed),
            };
        }
        let (ack, done) = oneshot::channel();
        self.store()?
            .send(Command::Flush(Ack::Channel(ack)))
            .await
            .map_err(|_| JournalError::Closed)?;
        match done.await {
            Ok(true) => Ok(()),
            _ => Err(JournalError::Closed),
        }
    }

    /// Lets go of this handle; the last one on the log closes it: the
    /// writer syncs what is queued and SQLite is fed all of it.
    pub async fn close(self) {
        if let Backend::Log(log) = self.backend {
            let _ = tokio::task::spawn_blocking(move || drop(log)).await;
        }
    }

    /// Whether a commit has failed since start (the switch then refuses
    /// to forward until restarted with a working journal).
    pub fn has_failed(&self) -> bool {
        match &self.backend {
            Backend::Log(log) => log.failed(),
            Backend::Store(_) => self.failed.load(Ordering::Relaxed),
        }
    }
}

/// Queues a group on the log without blocking the runtime's thread: a
/// full queue is waited for on a blocking thread.
async fn submit_to_log(log: &Arc<LogJournal>, records: Vec<Record>, on_durable: Option<OnDurable>) {
    let ack = on_durable.unwrap_or_else(|| Box::new(|_| {}));
    if let Err(AppendError::Full(records, ack)) = log.try_append(records, ack) {
        let log = log.clone();
        let _ = tokio::task::spawn_blocking(move || log.append(records, ack)).await;
    }
}

fn write_loop(
    mut store: Box<dyn JournalStore>,
    mut rx: mpsc::Receiver<Command>,
    group_records_max: usize,
    stats: &WriterStats,
    failed: &AtomicBool,
) {
    // Room for a default group up front; a larger one grows as records
    // arrive, and keeps its room for the next group.
    let reserved = group_records_max.min(GROUP_RECORDS_MAX);
    let mut records = Vec::with_capacity(reserved);
    let mut acks = Vec::with_capacity(reserved);
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Record(r, ack) => {
                    records.push(r);
                    acks.extend(ack);
                }
                Command::Group(group, ack) => {
                    records.extend(group);
                    acks.extend(ack);
                }
                Command::Flush(ack) => acks.push(ack),
            }
            if records.len() < group_records_max {
                next = rx.try_recv().ok();
            }
        }
        let started = Instant::now();
        let ok = records.is_empty() || {
            match store.append(&records) {
                Ok(()) => true,
                Err(e) => {
                    error!(error = %e, records = records.len(), "journal commit failed");
                    false
                }
            }
        };
        if ok {
            stats
                .records
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            stats.commits.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("cardswitch_journal_records_total").increment(records.len() as u64);
            metrics::counter!("cardswitch_journal_commits_total").increment(1);
            metrics::histogram!("cardswitch_journal_commit_seconds")
                .record(started.elapsed().as_secs_f64());
        } else {
            failed.store(true, Ordering::Relaxed);
            stats.failures.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("cardswitch_journal_failures_total").increment(1);
        }
        for ack in acks.drain(..) {
            ack.send(ok);
        }
        records.clear();
    }
}
