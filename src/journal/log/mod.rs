//! Issue 22's append-only journal log, the journal's durability point:
//! the switch forwards a request once the log has synced it, and SQLite is
//! fed from the log behind it ([`journal`], [`feeder`], [`tail`]).
//! Entries ([`record`]) in preallocated, rotated segment files
//! ([`segment`]), written by one appender with pipelined group commit
//! ([`writer`]) and read back at start-up, a torn tail cut off
//! ([`reader`]). The format: docs/journal-log.md.

mod decode;
mod encode;
#[cfg(feature = "runtime")]
pub mod feed;
#[cfg(feature = "runtime")]
pub mod feeder;
#[cfg(feature = "runtime")]
pub mod journal;
#[cfg(feature = "runtime")]
pub mod limits;
#[cfg(feature = "runtime")]
mod queue;
pub mod reader;
pub mod record;
#[cfg(feature = "runtime")]
pub mod recover;
#[cfg(feature = "runtime")]
pub mod seal;
pub mod segment;
#[cfg(feature = "runtime")]
mod spare;
#[cfg(feature = "runtime")]
pub mod tail;
#[cfg(feature = "runtime")]
pub mod writer;

#[cfg(test)]
mod feed_tests;
#[cfg(test)]
mod journal_tests;
#[cfg(test)]
mod recover_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod writer_tests;

use std::path::PathBuf;

pub use reader::{TailDamage, TailReason};
#[cfg(feature = "runtime")]
pub use writer::{Limits, LogWriter, Recovered, SyncWatch};

/// Why the log cannot be read or written. Never carries card data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("journal log {path}: {what}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Damage followed by whole entries the writer could not have had in
    /// flight: corruption, not a torn write. Start-up stops here.
    #[error(
        "journal log {segment}: corrupt at byte {offset} ({reason}), whole entries follow at byte {later}"
    )]
    Corrupt {
        segment: PathBuf,
        offset: u64,
        reason: TailReason,
        later: u64,
    },
    /// An entry whose checksum holds but whose payload does not decode.
    #[error("journal log {segment}: entry at byte {offset} does not decode: {error}")]
    Malformed {
        segment: PathBuf,
        offset: u64,
        error: record::DecodeError,
    },
    /// A segment does not start where the one before it ended.
    #[error("journal log {segment}: starts at sequence {found}, {expected} expected")]
    SegmentGap {
        segment: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("journal log {path}: {size} bytes, over the segment limit {max}")]
    Oversized { path: PathBuf, size: u64, max: u64 },
    /// An entry the writer synced is in no segment file.
    #[error("journal log {dir}: entry {seq} is in no segment")]
    Missing { dir: PathBuf, seq: u64 },
    #[error("journal log limits: {0}")]
    Limits(String),
}

impl LogError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { what, path, source }
    }
}
