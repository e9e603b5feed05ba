//! SQLite fed from the journal log, idempotently by sequence number: the
//! last entry applied (the watermark) is kept in SQLite and moved in the
//! same commit as the rows, entries at or below it are skipped, and the
//! rest go in large transactions ([`FEED_BATCH_ENTRIES`]). A crash
//! between two commits leaves SQLite at a watermark; feeding the log
//! again from any point before it gives the same rows as feeding it once.
//! The card data is stored as the log sealed it (never sealed twice).

use super::record::{Entry, LogRecord};
use crate::journal::sqlite::SqliteJournal;
use crate::journal::store::JournalError;

/// Entries per SQLite transaction at most.
pub const FEED_BATCH_ENTRIES: usize = 4096;

/// Why the feed stopped. Nothing of the failed batch is in SQLite.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    #[error("log feed: {0}")]
    Journal(#[from] JournalError),
    /// An entry missing after the watermark: SQLite would lose records.
    #[error("log feed: entry {found} after entry {after}: the entries between are missing")]
    Gap { after: u64, found: u64 },
    /// SQLite keeps one key per row for the PAN and the message.
    #[error("log feed: entry {seq} seals its PAN and message under different keys")]
    MixedKeys { seq: u64 },
    /// SQLite holds entries the log does not (the log was replaced or
    /// lost): feeding it would skip the new log's first entries.
    #[error(
        "log feed: SQLite holds the log's entries through {watermark}, but the log's next entry is {log_next}: the log is not the one SQLite was fed from"
    )]
    Ahead { watermark: u64, log_next: u64 },
    /// The log itself cannot be read back.
    #[error("log feed: {0}")]
    Log(Box<super::LogError>),
    #[error("log feed: batch of {0} entries, 1 to {FEED_BATCH_ENTRIES} allowed")]
    BatchSize(usize),
}

/// The feeder: give it the log's entries in order with [`LogFeed::push`]
/// (as [`super::LogWriter::open_with`] or the reader hands them over),
/// then [`LogFeed::flush`].
pub struct LogFeed<'j> {
    journal: &'j mut SqliteJournal,
    batch_entries: usize,
    /// The last entry applied or batched.
    next_after: u64,
    batch: Vec<Entry>,
    skipped: u64,
}

impl<'j> LogFeed<'j> {
    /// A feeder starting after `journal`'s watermark.
    pub fn new(journal: &'j mut SqliteJournal) -> Result<LogFeed<'j>, FeedError> {
        LogFeed::with_batch(journal, FEED_BATCH_ENTRIES)
    }

    /// [`LogFeed::new`] with smaller transactions (tests, a lagging feed).
    pub fn with_batch(
        journal: &'j mut SqliteJournal,
        batch_entries: usize,
    ) -> Result<LogFeed<'j>, FeedError> {
        if !(1..=FEED_BATCH_ENTRIES).contains(&batch_entries) {
            return Err(FeedError::BatchSize(batch_entries));
        }
        let next_after = journal.log_watermark()?;
        Ok(LogFeed {
            journal,
            batch_entries,
            next_after,
            batch: Vec::with_capacity(batch_entries),
            skipped: 0,
        })
    }

    /// Takes the next entry: skipped if SQLite holds it already, else
    /// batched, and the batch committed when full.
    pub fn push(&mut self, entry: Entry) -> Result<(), FeedError> {
        if entry.seq <= self.next_after {
            self.skipped += 1;
            return Ok(());
        }
        if entry.seq != self.next_after + 1 {
            return Err(FeedError::Gap {
                after: self.next_after,
                found: entry.seq,
            });
        }
        if let LogRecord::Accepted(a) = &entry.record
            && let (Some(p), Some(r)) = (&a.pan, &a.route)
            && p.sealed.key_id != r.message.key_id
        {
            return Err(FeedError::MixedKeys { seq: entry.seq });
        }
        self.next_after = entry.seq;
        self.batch.push(entry);
        if self.batch.len() >= self.batch_entries {
            self.flush()?;
        }
        Ok(())
    }

    /// Commits the entries batched so far. On an error nothing of them
    /// is in SQLite and the feeder must be made again (from the watermark).
    pub fn flush(&mut self) -> Result<(), FeedError> {
        let batch = std::mem::take(&mut self.batch);
        self.journal.apply_log_entries(&batch)?;
        self.batch = batch;
        self.batch.clear();
        Ok(())
    }

    /// Entries skipped as already applied.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The last entry taken (applied once flushed).
    pub fn last_seq(&self) -> u64 {
        self.next_after
    }
}
