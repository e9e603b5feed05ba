//! Following the log while it is written: the entries from a sequence
//! number on, read back from the segment files up to what the writer has
//! synced (never further: bytes past it may be a group still being
//! written). SQLite's feeder reads the log this way, so that what it
//! applies is what is on disk, and a feeder that falls behind catches up
//! from the files instead of holding entries in memory.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::LogError;
use super::decode::decode_entry;
use super::reader::TailReason;
use super::record::{DecodeError, ENTRY_BYTES_MAX, Entry};
use super::segment;

/// Bytes read from a segment at a time, at most (more than one entry's
/// maximum) and at first. A read follows what the last one consumed, so a
/// feeder that keeps up does not read (and the kernel zero-fill) a
/// megabyte of preallocated space every round.
const READ_BYTES_MAX: usize = 1024 * 1024;
const READ_BYTES_MIN: usize = 16 * 1024;
const _: () = assert!(READ_BYTES_MAX > ENTRY_BYTES_MAX);

/// The reader's place in the log.
pub struct LogTail {
    dir: PathBuf,
    /// The segment read now, its path, and the offset of the next entry.
    file: Option<(File, PathBuf)>,
    offset: u64,
    /// The sequence number of the next entry handed out.
    next_seq: u64,
    buf: Vec<u8>,
    /// The next read's size.
    read_bytes: usize,
}

impl LogTail {
    /// Follows the log in `dir` from entry `next_seq` on.
    pub fn new(dir: &Path, next_seq: u64) -> LogTail {
        LogTail {
            dir: dir.to_path_buf(),
            file: None,
            offset: 0,
            next_seq: next_seq.max(1),
            buf: Vec::new(),
            read_bytes: READ_BYTES_MIN,
        }
    }

    /// The sequence number of the next entry [`LogTail::read`] hands out.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends to `out` the entries from the next one through `synced`,
    /// at most `max` of them. An entry missing or damaged below `synced`
    /// is an error: the writer acknowledged it.
    pub fn read(&mut self, synced: u64, max: usize, out: &mut Vec<Entry>) -> Result<(), LogError> {
        let wanted = out.len() + max;
        while self.next_seq <= synced && out.len() < wanted {
            if self.file.is_none() {
                self.open_segment()?;
            }
            if self.read_chunk(synced, wanted, out)? == 0 {
                // Nothing more in this segment: the next entry starts the next one.
                self.next_segment()?;
            }
        }
        Ok(())
    }

    /// Decodes entries from one chunk of the current segment until `out`
    /// holds `wanted`; the bytes consumed (0 at the segment's end).
    fn read_chunk(
        &mut self,
        synced: u64,
        wanted: usize,
        out: &mut Vec<Entry>,
    ) -> Result<usize, LogError> {
        let (file, path) = self.file.as_ref().expect("a segment is open");
        self.buf.resize(self.read_bytes, 0);
        let n = read_at_most(file, &mut self.buf, self.offset)
            .map_err(LogError::io("reading a segment", path.as_path()))?;
        let full = n == self.buf.len();
        let mut at = 0;
        while out.len() < wanted && self.next_seq <= synced {
            match decode_entry(&self.buf[at..n]) {
                Ok((entry, len)) if entry.seq < self.next_seq => at += len,
                Ok((entry, len)) if entry.seq == self.next_seq => {
                    at += len;
                    self.next_seq += 1;
                    out.push(entry);
                }
                Ok((entry, _)) => {
                    let reason = TailReason::SequenceGap {
                        expected: self.next_seq,
                        found: entry.seq,
                    };
                    return Err(self.corrupt(at, reason));
                }
                // An entry larger than this read: read more at once.
                Err(DecodeError::Truncated { .. })
                    if at == 0 && full && self.read_bytes < READ_BYTES_MAX =>
                {
                    self.read_bytes = (self.read_bytes * 2).min(READ_BYTES_MAX);
                    return self.read_chunk(synced, wanted, out);
                }
                // The chunk's end, or the segment's (zeros, or its file's end).
                Err(DecodeError::Zeroes | DecodeError::Truncated { .. }) => break,
                Err(e) => return Err(self.corrupt(at, super::reader::reason_of(&e))),
            }
        }
        self.offset += at as u64;
        // Next time about twice what this round found, within the bounds.
        self.read_bytes = (2 * at).clamp(READ_BYTES_MIN, READ_BYTES_MAX);
        Ok(at)
    }

    /// Opens the segment holding the next entry: the last whose first
    /// entry is at or before it.
    fn open_segment(&mut self) -> Result<(), LogError> {
        let segments = segment::list(&self.dir)?;
        let Some((_, path)) = segments
            .iter()
            .rev()
            .find(|(first, _)| *first <= self.next_seq)
        else {
            return Err(self.missing());
        };
        let file = File::open(path).map_err(LogError::io("opening a segment", path.as_path()))?;
        self.file = Some((file, path.clone()));
        self.offset = 0;
        Ok(())
    }

    /// Moves to the segment that starts with the next entry.
    fn next_segment(&mut self) -> Result<(), LogError> {
        let path = self.dir.join(segment::name(self.next_seq));
        match File::open(&path) {
            Ok(file) => {
                self.file = Some((file, path));
                self.offset = 0;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(self.missing()),
            Err(e) => Err(LogError::io("opening a segment", path)(e)),
        }
    }

    fn missing(&self) -> LogError {
        LogError::Missing {
            dir: self.dir.clone(),
            seq: self.next_seq,
        }
    }

    fn corrupt(&self, at: usize, reason: TailReason) -> LogError {
        let segment = self.file.as_ref().map(|f| f.1.clone()).unwrap_or_default();
        LogError::Corrupt {
            segment,
            offset: self.offset + at as u64,
            reason,
            later: 0,
        }
    }
}

/// Reads what there is at `offset`, up to `buf`'s length (short at the
/// file's end).
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
