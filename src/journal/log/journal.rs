//! The journal with the log as its durability point (issue 22): records
//! are durable once the log has synced them; SQLite, the queryable store,
//! is fed from the log behind the switch's back ([`super::feeder`]).
//!
//! Start-up: the log is read (a torn tail cut off and reported), every
//! entry SQLite does not hold yet is applied to it on the way (its
//! watermark), and then what a restart must pick up is read from SQLite,
//! which at that moment holds exactly the log's records plus what
//! operators changed beside them (a requeue). Then the writer and the
//! feeder start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use super::feed::{FeedError, LogFeed};
use super::feeder::{self, FeedStats};
use super::writer::{AppendError, Limits, LogWriter, Recovered};
use super::{LogError, TailDamage};
use crate::journal::crypto::Keyring;
use crate::journal::record::Record;
use crate::journal::sqlite::SqliteJournal;
use crate::journal::store::{JournalError, JournalStore, Recovery};
use crate::journal::writer::OnDurable;

/// Why the journal did not open. Never carries card data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// What opening found and did.
#[derive(Debug)]
pub struct Opened {
    /// What a restart must pick up.
    pub recovery: Recovery,
    /// Whole entries in the log, and the torn tail cut off, if any.
    pub log_records: u64,
    pub tail: Option<TailDamage>,
    /// Entries applied to SQLite at start (it was behind by that many).
    pub caught_up: u64,
}

/// The journal's writer side: the log's writer and SQLite's feeder.
pub struct LogJournal {
    writer: Option<LogWriter>,
    feeder: Option<JoinHandle<()>>,
    stats: Arc<FeedStats>,
}

impl LogJournal {
    /// Opens the log in `dir` and the SQLite journal at `sqlite`, catches
    /// SQLite up, reads the recovery, and starts the writer and feeder.
    pub fn open(
        sqlite: &Path,
        dir: &Path,
        limits: Limits,
        keys: Arc<Keyring>,
    ) -> Result<(LogJournal, Opened), OpenError> {
        let mut store = SqliteJournal::open(sqlite, keys.clone())?;
        store.relax_sync()?;
        let (writer, found, caught_up) = catch_up(&mut store, dir, limits, keys)?;
        let recovery = store.recover()?;
        let stats = Arc::new(FeedStats::default());
        stats.applied.store(caught_up, Ordering::Relaxed);
        let feeder = {
            let (watch, stats, path) = (writer.watch(), stats.clone(), PathBuf::from(dir));
            std::thread::Builder::new()
                .name("journal-feed".into())
                .spawn(move || feeder::run(store, path, limits.keep_fed_segments, watch, stats))
                .map_err(LogError::io("starting the feeder thread", dir))?
        };
        let opened = Opened {
            recovery,
            log_records: found.records,
            tail: found.tail,
            caught_up,
        };
        let journal = LogJournal {
            writer: Some(writer),
            feeder: Some(feeder),
            stats,
        };
        Ok((journal, opened))
    }

    /// Queues a group; `on_durable` says when the log has synced it (or
    /// failed). A full queue gives the group back.
    pub fn try_append(
        &self,
        records: Vec<Record>,
        on_durable: OnDurable,
    ) -> Result<(), AppendError> {
        match &self.writer {
            Some(w) => w.try_append(records, on_durable),
            None => {
                on_durable(false);
                Ok(())
            }
        }
    }

    /// Queues a group, waiting while the queue is full (blocks the thread).
    pub fn append(&self, records: Vec<Record>, on_durable: OnDurable) {
        match &self.writer {
            Some(w) => w.append(records, on_durable),
            None => on_durable(false),
        }
    }

    /// Waits (blocking) until everything queued is synced.
    pub fn flush(&self) -> bool {
        self.writer.as_ref().is_some_and(LogWriter::flush)
    }

    /// Whether a write or sync has failed.
    pub fn failed(&self) -> bool {
        self.writer.as_ref().is_none_or(LogWriter::failed)
    }

    /// Syncs what is queued, stops the writer, and waits until SQLite
    /// holds everything (blocks the thread).
    pub fn close(&mut self) {
        if let Some(w) = self.writer.take() {
            w.close();
        }
        if let Some(f) = self.feeder.take() {
            let _ = f.join();
        }
        let applied = self.stats.applied.load(Ordering::Relaxed);
        let cpu_ns = self.stats.cpu_ns.load(Ordering::Relaxed);
        tracing::info!(
            applied,
            cpu_us_per_record = cpu_ns as f64 / 1000.0 / applied.max(1) as f64,
            lag_max = self.stats.lag_max.load(Ordering::Relaxed),
            "journal feed to SQLite stopped"
        );
    }
}

impl Drop for LogJournal {
    fn drop(&mut self) {
        self.close();
    }
}

/// Opens the writer, applying to SQLite the entries it does not hold
/// on the way; the writer, what it found, and the entries applied.
fn catch_up(
    store: &mut SqliteJournal,
    dir: &Path,
    limits: Limits,
    keys: Arc<Keyring>,
) -> Result<(LogWriter, Recovered, u64), OpenError> {
    let mut feed = LogFeed::new(store)?;
    let before = feed.last_seq();
    let mut failed = None;
    let (writer, found) = LogWriter::open_with(dir, limits, keys, &mut |entry| {
        if failed.is_none()
            && let Err(e) = feed.push(entry)
        {
            failed = Some(e);
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    feed.flush()?;
    // SQLite ahead of the log: its records would be lost on the next
    // catch-up, and the log would reuse their sequence numbers.
    if feed.last_seq() >= found.next_seq {
        return Err(FeedError::Ahead {
            watermark: feed.last_seq(),
            log_next: found.next_seq,
        }
        .into());
    }
    let caught_up = feed.last_seq() - before;
    Ok((writer, found, caught_up))
}
