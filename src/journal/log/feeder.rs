//! The thread that keeps SQLite behind the log: it waits for entries to
//! be synced, reads them back from the segment files ([`super::tail`])
//! and applies them in large transactions ([`super::feed`]), off the
//! switch's path. A failure (SQLite busy or full) is logged and retried
//! from SQLite's watermark: the log holds everything, so nothing is lost
//! and, applied by sequence number, nothing doubles.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::feed::{FEED_BATCH_ENTRIES, FeedError, LogFeed};
use super::tail::LogTail;
use super::writer::SyncWatch;
use super::{LogError, segment};
use crate::journal::sqlite::SqliteJournal;

/// How long the feeder waits for a new entry before looking again.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// A round that found less than a full transaction waits this long
/// before the next, so that transactions stay large under light load;
/// well within the second in which a search must see a record.
const ROUND_MIN: Duration = Duration::from_millis(100);
/// How often segments SQLite holds are looked for to delete.
const RETIRE_EVERY: Duration = Duration::from_secs(1);
/// The wait before trying again after a failure.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The feeder's counters, read by the node's metrics and at shutdown.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Entries applied to SQLite since start (start-up's catch-up included).
    pub applied: AtomicU64,
    /// The largest lag seen: entries synced in the log and not yet in
    /// SQLite (the gauge `cardswitch_journal_feed_lag_records` has the last).
    pub lag_max: AtomicU64,
    pub failures: AtomicU64,
    /// The feeder thread's CPU time, nanoseconds.
    pub cpu_ns: AtomicU64,
}

/// Feeds SQLite until the writer has stopped and SQLite holds all it
/// synced; retries after a failure, once more after the writer stopped.
pub(super) fn run(
    mut sqlite: SqliteJournal,
    dir: PathBuf,
    keep_fed_segments: usize,
    watch: SyncWatch,
    stats: Arc<FeedStats>,
) {
    let started = thread_cpu_ns();
    let place = Place {
        dir: &dir,
        keep_fed_segments,
    };
    loop {
        let Err(e) = feed(&mut sqlite, &place, &watch, &stats, started) else {
            return;
        };
        stats.failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("cardswitch_journal_feed_failures_total").increment(1);
        let (_, stopped) = watch.wait_past(u64::MAX, Duration::ZERO);
        tracing::error!(error = %e, "journal feed to SQLite failed; retrying from its watermark");
        if stopped && stats.failures.load(Ordering::Relaxed) > 1 {
            return;
        }
        std::thread::sleep(RETRY_AFTER);
    }
}

/// One feeder from SQLite's watermark on, until the writer has stopped
/// and everything synced is applied.
fn feed(
    sqlite: &mut SqliteJournal,
    place: &Place<'_>,
    watch: &SyncWatch,
    stats: &FeedStats,
    cpu_started: u64,
) -> Result<(), FeedError> {
    let mut feed = LogFeed::new(sqlite)?;
    let mut tail = LogTail::new(place.dir, feed.last_seq() + 1);
    let mut entries = Vec::with_capacity(FEED_BATCH_ENTRIES);
    let mut retired_at = Instant::now();
    loop {
        let round = Instant::now();
        let (synced, stopped) = watch.wait_past(feed.last_seq(), IDLE_WAIT);
        tail.read(synced, FEED_BATCH_ENTRIES, &mut entries)
            .map_err(|e| FeedError::Log(Box::new(e)))?;
        let taken = entries.len();
        for entry in entries.drain(..) {
            feed.push(entry)?;
        }
        feed.flush()?;
        let lag = synced.saturating_sub(feed.last_seq());
        stats.applied.fetch_add(taken as u64, Ordering::Relaxed);
        stats.lag_max.fetch_max(lag, Ordering::Relaxed);
        let cpu = thread_cpu_ns().saturating_sub(cpu_started);
        stats.cpu_ns.store(cpu, Ordering::Relaxed);
        metrics::gauge!("cardswitch_journal_feed_lag_records").set(lag as f64);
        metrics::counter!("cardswitch_journal_feed_records_total").increment(taken as u64);
        if stopped && lag == 0 {
            return Ok(());
        }
        if retired_at.elapsed() >= RETIRE_EVERY {
            retired_at = Instant::now();
            let n = retire(place.dir, feed.last_seq(), place.keep_fed_segments)
                .map_err(|e| FeedError::Log(Box::new(e)))?;
            metrics::counter!("cardswitch_journal_log_segments_deleted_total").increment(n as u64);
        }
        if taken < FEED_BATCH_ENTRIES && !stopped {
            std::thread::sleep(ROUND_MIN.saturating_sub(round.elapsed()));
        }
    }
}

/// The log's directory and how many fed segments it keeps.
struct Place<'a> {
    dir: &'a Path,
    keep_fed_segments: usize,
}

/// Deletes the oldest segments whose every entry SQLite holds (through
/// `watermark`), keeping the newest `keep` of those; the segment written
/// now is never one (no segment follows it). From the front only, so the
/// log stays one run of entries; the number deleted.
pub fn retire(dir: &Path, watermark: u64, keep: usize) -> Result<usize, LogError> {
    let segments = segment::list(dir)?;
    let fed = segments
        .windows(2)
        .take_while(|w| w[1].0 <= watermark.saturating_add(1))
        .count();
    let doomed = fed.saturating_sub(keep);
    for (_, path) in &segments[..doomed] {
        std::fs::remove_file(path).map_err(LogError::io("deleting a fed segment", path))?;
    }
    if doomed > 0 {
        segment::sync_dir(dir)?;
        tracing::info!(
            deleted = doomed,
            watermark,
            "journal log: segments SQLite holds deleted"
        );
    }
    Ok(doomed)
}

/// This thread's CPU time so far, nanoseconds (0 if the clock fails).
fn thread_cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `t` is.
    #[allow(unsafe_code)]
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } == 0;
    if ok {
        t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
    } else {
        0
    }
}
