//! The journal log's limits: a segment's size, the writer's queue, the
//! segments kept once SQLite holds them; each checked when the log opens.

use super::LogError;

/// A segment's size by default.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// A segment's size at least (room for a group) and at most.
pub const SEGMENT_BYTES_MIN: u64 = 4 * 1024 * 1024;
pub const SEGMENT_BYTES_MAX: u64 = super::reader::SEGMENT_FILE_BYTES_MAX;
/// Records queued by default and at most.
pub const QUEUE_RECORDS_DEFAULT: usize = 65_536;
pub const QUEUE_RECORDS_MAX: usize = 1 << 20;
/// Segments kept by default, and at most, once SQLite holds all of them.
pub const KEEP_FED_SEGMENTS_DEFAULT: usize = 16;
pub const KEEP_FED_SEGMENTS_MAX: usize = 100_000;

/// The log's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub segment_bytes: u64,
    pub queue_records: usize,
    /// Segments whose every entry SQLite holds that are kept (for backups
    /// and inspection); older ones are deleted by SQLite's feeder. The log
    /// on disk is then at most this many segments plus those not yet fed.
    pub keep_fed_segments: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            queue_records: QUEUE_RECORDS_DEFAULT,
            keep_fed_segments: KEEP_FED_SEGMENTS_DEFAULT,
        }
    }
}

impl Limits {
    pub(super) fn check(&self) -> Result<(), LogError> {
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return Err(LogError::Limits(format!(
                "segment_bytes {} is not within {SEGMENT_BYTES_MIN}..={SEGMENT_BYTES_MAX}",
                self.segment_bytes
            )));
        }
        if self.keep_fed_segments > KEEP_FED_SEGMENTS_MAX {
            return Err(LogError::Limits(format!(
                "keep_fed_segments {} is over {KEEP_FED_SEGMENTS_MAX}",
                self.keep_fed_segments
            )));
        }
        if !(1..=QUEUE_RECORDS_MAX).contains(&self.queue_records) {
            return Err(LogError::Limits(format!(
                "queue_records {} is not within 1..={QUEUE_RECORDS_MAX}",
                self.queue_records
            )));
        }
        Ok(())
    }
}
