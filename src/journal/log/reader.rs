//! Reading the log back at start-up: segments in order, entries in
//! sequence, and the torn tail a crash leaves found and cut off.
//!
//! The rule that tells a torn tail from corruption: the writer never has
//! more than [`TORN_WINDOW_BYTES`] written but not yet synced, and starts
//! a segment only once the one before is synced. So what a crash can tear
//! lies within that many bytes of the first damaged byte, in the last
//! segment written. Damage (a cut entry, a bad checksum, zeroed pages, a
//! sequence gap) is a torn tail when no whole entry starts
//! [`TORN_WINDOW_BYTES`] or more past it and no later segment holds an
//! entry: the damage and everything after it are dropped. Otherwise it is
//! corruption of synced data, [`LogError::Corrupt`], and start-up stops.
//! An entry whose checksum holds but whose payload does not decode was
//! written so: [`LogError::Malformed`], never dropped silently.

use std::fmt;
use std::path::{Path, PathBuf};

use super::LogError;
use super::record::{self, DecodeError, Entry, MAGIC};
use super::segment;

/// Bytes the writer may have written and not synced, at most (a format
/// constant: the reader's rule depends on it).
pub const TORN_WINDOW_BYTES: usize = 4 * 1024 * 1024;
/// A segment file's bytes at most, read whole at start-up.
pub const SEGMENT_FILE_BYTES_MAX: u64 = 1 << 30;

/// What the damage at a torn tail looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailReason {
    /// An entry runs past the end of the file.
    Cut,
    BadChecksum,
    /// Zero bytes where an entry starts, with data after them.
    Zeroed,
    BadMagic,
    LengthOverLimit,
    /// A whole entry with another sequence number than the next.
    SequenceGap {
        expected: u64,
        found: u64,
    },
}

impl fmt::Display for TailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TailReason::Cut => f.write_str("cut entry"),
            TailReason::BadChecksum => f.write_str("bad checksum"),
            TailReason::Zeroed => f.write_str("zeroed bytes"),
            TailReason::BadMagic => f.write_str("bad magic byte"),
            TailReason::LengthOverLimit => f.write_str("length over the limit"),
            TailReason::SequenceGap { expected, found } => {
                write!(f, "sequence {found} where {expected} was next")
            }
        }
    }
}

/// Damage within one segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub offset: usize,
    /// From the damage to the last non-zero byte (preallocated zeros not
    /// counted).
    pub dropped_bytes: usize,
    /// Whole entries found after the damage, dropped with it.
    pub dropped_records: u64,
    pub reason: TailReason,
}

/// How one segment's bytes end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceEnd {
    /// The byte after the last whole entry kept.
    pub end: usize,
    pub next_seq: u64,
    pub records: u64,
    pub damage: Option<Damage>,
}

/// Why a slice's damage is not a torn tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SliceError {
    Corrupt {
        offset: usize,
        reason: TailReason,
        later: usize,
    },
    Malformed {
        offset: usize,
        error: DecodeError,
    },
}

/// Reads the entries of one segment's bytes, from sequence `first_seq`,
/// handing each to `on_entry`; pure, so the fuzz target runs it too.
pub fn scan_slice(
    bytes: &[u8],
    first_seq: u64,
    on_entry: &mut dyn FnMut(Entry),
) -> Result<SliceEnd, SliceError> {
    let mut pos = 0;
    let mut seq = first_seq;
    let mut records = 0;
    let reason = loop {
        if pos == bytes.len() {
            break None;
        }
        match record::decode_entry(&bytes[pos..]) {
            Ok((entry, n)) if entry.seq == seq => {
                on_entry(entry);
                pos += n;
                seq = seq.wrapping_add(1);
                records += 1;
            }
            Ok((entry, _)) => {
                break Some(TailReason::SequenceGap {
                    expected: seq,
                    found: entry.seq,
                });
            }
            Err(error @ DecodeError::Malformed { .. }) => {
                return Err(SliceError::Malformed { offset: pos, error });
            }
            Err(DecodeError::Zeroes) if all_zero(&bytes[pos..]) => break None,
            Err(e) => break Some(reason_of(&e)),
        }
    };
    let damage = match reason {
        None => None,
        Some(reason) => Some(classify(bytes, pos, reason)?),
    };
    Ok(SliceEnd {
        end: pos,
        next_seq: seq,
        records,
        damage,
    })
}

pub(super) fn reason_of(e: &DecodeError) -> TailReason {
    match e {
        DecodeError::Truncated { .. } => TailReason::Cut,
        DecodeError::Zeroes => TailReason::Zeroed,
        DecodeError::BadMagic(_) => TailReason::BadMagic,
        DecodeError::LengthOverLimit(_) => TailReason::LengthOverLimit,
        DecodeError::Checksum { .. } | DecodeError::Malformed { .. } => TailReason::BadChecksum,
    }
}

fn all_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// Damage at `at`: a torn tail, or corruption if a whole entry starts
/// beyond the window.
fn classify(bytes: &[u8], at: usize, reason: TailReason) -> Result<Damage, SliceError> {
    let written_end = bytes.iter().rposition(|&b| b != 0).map_or(at, |i| i + 1);
    let mut dropped_records = 0;
    let mut p = at;
    while p < written_end {
        if bytes[p] == MAGIC
            && let Ok((_, n)) = record::check_frame(&bytes[p..])
        {
            if p - at >= TORN_WINDOW_BYTES {
                return Err(SliceError::Corrupt {
                    offset: at,
                    reason,
                    later: p,
                });
            }
            dropped_records += 1;
            p += n;
        } else {
            p += 1;
        }
    }
    Ok(Damage {
        offset: at,
        dropped_bytes: written_end.max(at) - at,
        dropped_records,
        reason,
    })
}

/// A torn tail found at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailDamage {
    pub segment: PathBuf,
    pub offset: u64,
    pub dropped_bytes: u64,
    pub dropped_records: u64,
    pub reason: TailReason,
}

/// Where the log ends after a read.
#[derive(Debug, Clone, Default)]
pub struct LogEnd {
    pub next_seq: u64,
    pub records: u64,
    /// The last segment kept (path, first sequence, end of its entries).
    pub last: Option<(PathBuf, u64, u64)>,
    pub tail: Option<TailDamage>,
    /// Segments after a torn tail, holding no entry: removed by
    /// [`truncate_to_last_whole`].
    pub empty_after: Vec<PathBuf>,
}

/// Reads every segment in `dir` in order, handing each entry to
/// `on_entry`. An empty or missing log ends at sequence 1.
pub fn read_log(dir: &Path, on_entry: &mut dyn FnMut(Entry)) -> Result<LogEnd, LogError> {
    let segments = segment::list(dir)?;
    let mut end = LogEnd {
        next_seq: segments.first().map_or(1, |s| s.0),
        ..LogEnd::default()
    };
    for (i, (first, path)) in segments.iter().enumerate() {
        if *first != end.next_seq {
            return Err(LogError::SegmentGap {
                segment: path.clone(),
                expected: end.next_seq,
                found: *first,
            });
        }
        let bytes = read_segment(path)?;
        let scanned = scan_slice(&bytes, *first, on_entry).map_err(|e| slice_error(path, e))?;
        end.next_seq = scanned.next_seq;
        end.records += scanned.records;
        end.last = Some((path.clone(), *first, scanned.end as u64));
        if let Some(d) = scanned.damage {
            let rest = &segments[i + 1..];
            check_rest_empty(path, &d, rest)?;
            end.tail = Some(TailDamage {
                segment: path.clone(),
                offset: d.offset as u64,
                dropped_bytes: d.dropped_bytes as u64,
                dropped_records: d.dropped_records,
                reason: d.reason,
            });
            end.empty_after = rest.iter().map(|s| s.1.clone()).collect();
            break;
        }
    }
    Ok(end)
}

fn read_segment(path: &Path) -> Result<Vec<u8>, LogError> {
    let size = std::fs::metadata(path)
        .map_err(LogError::io("reading a segment", path))?
        .len();
    if size > SEGMENT_FILE_BYTES_MAX {
        return Err(LogError::Oversized {
            path: path.to_path_buf(),
            size,
            max: SEGMENT_FILE_BYTES_MAX,
        });
    }
    std::fs::read(path).map_err(LogError::io("reading a segment", path))
}

fn slice_error(path: &Path, e: SliceError) -> LogError {
    match e {
        SliceError::Corrupt {
            offset,
            reason,
            later,
        } => LogError::Corrupt {
            segment: path.to_path_buf(),
            offset: offset as u64,
            reason,
            later: later as u64,
        },
        SliceError::Malformed { offset, error } => LogError::Malformed {
            segment: path.to_path_buf(),
            offset: offset as u64,
            error,
        },
    }
}

/// Damage in a segment followed by a segment holding entries is
/// corruption: the writer syncs a segment before it starts the next.
fn check_rest_empty(path: &Path, d: &Damage, rest: &[(u64, PathBuf)]) -> Result<(), LogError> {
    for (_, later) in rest {
        let bytes = read_segment(later)?;
        if !all_zero(&bytes) {
            return Err(LogError::Corrupt {
                segment: path.to_path_buf(),
                offset: d.offset as u64,
                reason: d.reason,
                later: 0,
            });
        }
    }
    Ok(())
}

/// Cuts a torn tail off: the damaged segment is cut at its last whole
/// entry (and sized back with zeros, keeping its room), the empty
/// segments after it removed, all of it made durable.
pub fn truncate_to_last_whole(dir: &Path, end: &LogEnd) -> Result<(), LogError> {
    let Some(tail) = &end.tail else {
        return Ok(());
    };
    let file = segment::open_for_append(&tail.segment)?;
    let what = "cutting a torn tail";
    let size = file
        .metadata()
        .map_err(LogError::io(what, &tail.segment))?
        .len();
    file.set_len(tail.offset)
        .and_then(|()| file.set_len(size))
        .and_then(|()| file.sync_all())
        .map_err(LogError::io(what, &tail.segment))?;
    for path in &end.empty_after {
        std::fs::remove_file(path).map_err(LogError::io("removing an empty segment", path))?;
    }
    segment::sync_dir(dir)
}
