//! Reads and checks a Mastercard IPM clearing file: the blocking and its
//! padding, every record length, each record against the `mastercard-ipm`
//! spec (bitmaps, field lengths and classes), PDS lengths in DE48 / DE62 /
//! DE123-125, the DE71 sequence, the header / trailer pair with one PDS
//! 0105, and the trailer's totals. Every fault is a typed error with the
//! file offset; none carries field content.

use std::sync::Arc;

use bytes::Bytes;

use super::blocking::{self, BlockingError, PAD, file_offset};
use super::ipm_writer::IPM_SPEC;
use crate::message::{Message, MessageError, Spec, pds};

/// The largest record accepted (an IPM record of every field at its
/// maximum stays well below this).
pub const RECORD_BYTES_MAX: usize = 32 * 1024;
/// Fields that carry PDS.
const PDS_FIELDS: [u16; 5] = [48, 62, 123, 124, 125];

/// A fault in a file; `offset` is the file offset of the faulty byte or of
/// the record's length prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpmReadError {
    #[error(transparent)]
    Blocking(#[from] BlockingError),
    #[error("offset {offset}: record length prefix truncated ({available} of 4 bytes)")]
    TruncatedRdw { offset: usize, available: usize },
    #[error("offset {offset}: record of {length} bytes exceeds {RECORD_BYTES_MAX}")]
    RecordTooLong { offset: usize, length: usize },
    #[error("offset {offset}: record of {length} bytes truncated, {available} remain")]
    TruncatedRecord {
        offset: usize,
        length: usize,
        available: usize,
    },
    /// A record the spec refuses; the inner offset counts from the record's MTI.
    #[error("record {record} at offset {offset} (data starts at {data_offset}): {source}")]
    Record {
        record: u64,
        offset: usize,
        data_offset: usize,
        source: MessageError,
    },
    #[error("record {record} at offset {offset}: field {field}: {source}")]
    Pds {
        record: u64,
        offset: usize,
        field: u16,
        source: pds::PdsError,
    },
    #[error("offset {offset}: no end-of-file (zero-length) record")]
    NoEndOfFile { offset: usize },
    #[error("offset {offset}: byte {found:#04X} after the end-of-file record is not padding 0x40")]
    Padding { offset: usize, found: u8 },
    #[error("offset {offset}: {length} bytes after the end-of-file record of an unblocked file")]
    TrailingBytes { offset: usize, length: usize },
    #[error("record {record} at offset {offset}: DE71 is {found:?}, expected {expected}")]
    Sequence {
        record: u64,
        offset: usize,
        expected: u64,
        found: Option<String>,
    },
    #[error("record 1 at offset {offset}: not a 1644/697 file header")]
    NoHeader { offset: usize },
    #[error("record {record} at offset {offset}: the last record is not a 1644/695 file trailer")]
    NoTrailer { record: u64, offset: usize },
    #[error("record {record} at offset {offset}: a second file header or trailer")]
    MisplacedControl { record: u64, offset: usize },
    #[error("record {record} at offset {offset}: PDS {tag} missing or malformed")]
    MissingPds {
        record: u64,
        offset: usize,
        tag: u16,
    },
    #[error("record {record} at offset {offset}: DE4 missing or not 12 digits")]
    BadAmount { record: u64, offset: usize },
    #[error("trailer at offset {offset}: PDS 0105 differs from the header's")]
    FileIdMismatch { offset: usize },
    #[error("trailer at offset {offset}: PDS 0301 states {stated}, the DE4 sum is {computed}")]
    AmountTotal {
        offset: usize,
        stated: u64,
        computed: u64,
    },
    #[error(
        "trailer at offset {offset}: PDS 0306 states {stated} messages, the file has {computed}"
    )]
    CountTotal {
        offset: usize,
        stated: u64,
        computed: u64,
    },
    #[error("the file is empty")]
    Empty,
}

/// One record and where it starts in the file.
#[derive(Debug, Clone)]
pub struct Record {
    /// File offset of the record's length prefix.
    pub offset: usize,
    pub message: Message,
}

/// A whole, checked file.
#[derive(Debug, Clone)]
pub struct IpmFile {
    pub records: Vec<Record>,
    /// PDS 0105 of header and trailer.
    pub ipm_file_id: String,
    /// PDS 0301 and 0306 of the trailer, as checked.
    pub amount_sum: u64,
    pub message_count: u64,
}

/// The IPM spec, loaded once.
pub fn ipm_spec() -> Result<Arc<Spec>, crate::message::SpecError> {
    Spec::resolve(IPM_SPEC)
}

/// Reads and checks a file held in memory.
pub fn read(file: &[u8], blocked: bool, spec: &Spec) -> Result<IpmFile, IpmReadError> {
    let mut records = Vec::new();
    let summary = for_each_record(file, blocked, spec, |r| {
        records.push(r);
        Ok(())
    })?;
    Ok(IpmFile {
        records,
        ipm_file_id: summary.ipm_file_id,
        amount_sum: summary.amount_sum,
        message_count: summary.message_count,
    })
}

/// The trailer's checked totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub ipm_file_id: String,
    pub amount_sum: u64,
    pub message_count: u64,
}

/// Reads and checks a file, handing each record to `visit` as it goes (so
/// a large file is not held as messages all at once). A `visit` error stops
/// the reading and is returned.
pub fn for_each_record(
    file: &[u8],
    blocked: bool,
    spec: &Spec,
    mut visit: impl FnMut(Record) -> Result<(), IpmReadError>,
) -> Result<Summary, IpmReadError> {
    if file.is_empty() {
        return Err(IpmReadError::Empty);
    }
    let unblocked;
    let data: &[u8] = if blocked {
        unblocked = blocking::unblock(file)?;
        &unblocked
    } else {
        file
    };
    let at = |data_offset: usize| file_offset(data_offset, blocked);
    let mut pos = 0usize;
    let mut check = Checker::default();
    loop {
        let rest = &data[pos..];
        if rest.len() < 4 {
            // A blocked file whose data ran out inside the padding has no EOF record.
            if rest.is_empty() || (blocked && rest.iter().all(|&b| b == PAD)) {
                return Err(IpmReadError::NoEndOfFile { offset: at(pos) });
            }
            return Err(IpmReadError::TruncatedRdw {
                offset: at(pos),
                available: rest.len(),
            });
        }
        // Padding where a length should be: the records stopped without an
        // end-of-file record (0x40404040 is beyond any record length).
        if blocked && rest[..4] == [PAD; 4] {
            return Err(IpmReadError::NoEndOfFile { offset: at(pos) });
        }
        let length = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if length == 0 {
            check.finish(at(pos))?;
            let after = pos + 4;
            if blocked {
                if let Some(i) = data[after..].iter().position(|&b| b != PAD) {
                    return Err(IpmReadError::Padding {
                        offset: at(after + i),
                        found: data[after + i],
                    });
                }
            } else if after < data.len() {
                return Err(IpmReadError::TrailingBytes {
                    offset: after,
                    length: data.len() - after,
                });
            }
            return Ok(check.summary());
        }
        if length > RECORD_BYTES_MAX {
            return Err(IpmReadError::RecordTooLong {
                offset: at(pos),
                length,
            });
        }
        if rest.len() - 4 < length {
            return Err(IpmReadError::TruncatedRecord {
                offset: at(pos),
                length,
                available: rest.len() - 4,
            });
        }
        let offset = at(pos);
        let record_number = check.records + 1;
        let message =
            spec.parse_slice(&rest[4..4 + length])
                .map_err(|source| IpmReadError::Record {
                    record: record_number,
                    offset,
                    data_offset: at(pos + 4),
                    source,
                })?;
        check.record(&message, offset)?;
        visit(Record { offset, message })?;
        pos += 4 + length;
    }
}

/// The checks that span records.
#[derive(Debug, Default)]
struct Checker {
    records: u64,
    amount_sum: u64,
    header_file_id: Option<String>,
    /// The trailer seen, with its offset, file id, 0301 and 0306.
    trailer: Option<(usize, String, u64, u64)>,
}

fn pds_value(msg: &Message, tag: u16) -> Option<Bytes> {
    let de48 = msg.get(48)?;
    let items = pds::parse(de48).ok()?;
    items
        .iter()
        .find(|p| p.tag == tag)
        .map(|p| de48.slice_ref(p.value))
}

fn digits_u64(v: &[u8], len: usize) -> Option<u64> {
    (v.len() == len && v.iter().all(u8::is_ascii_digit))
        .then(|| v.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0')))
}

impl Checker {
    fn record(&mut self, msg: &Message, offset: usize) -> Result<(), IpmReadError> {
        self.records += 1;
        let record = self.records;
        for field in PDS_FIELDS {
            if let Some(v) = msg.get(field) {
                pds::parse(v).map_err(|source| IpmReadError::Pds {
                    record,
                    offset,
                    field,
                    source,
                })?;
            }
        }
        let de71 = msg.get(71);
        if de71.and_then(|v| digits_u64(v, 8)) != Some(record) {
            return Err(IpmReadError::Sequence {
                record,
                offset,
                expected: record,
                found: de71.map(|v| String::from_utf8_lossy(v).into_owned()),
            });
        }
        if let Some(amount) = msg.get(4) {
            let amount =
                digits_u64(amount, 12).ok_or(IpmReadError::BadAmount { record, offset })?;
            // 12-digit amounts cannot overflow u64 within RECORD limits of a file in memory.
            self.amount_sum = self.amount_sum.saturating_add(amount);
        }
        let function = msg.get_str(24);
        let is_control = msg.mti().as_str() == "1644";
        let missing = |tag| IpmReadError::MissingPds {
            record,
            offset,
            tag,
        };
        if self.trailer.is_some() {
            return Err(IpmReadError::MisplacedControl { record, offset });
        }
        match (is_control, function) {
            (true, Some("697")) if record == 1 => {
                let id = pds_value(msg, 105)
                    .filter(|v| v.len() == 25 && v.iter().all(u8::is_ascii_digit));
                let id = id.ok_or(missing(105))?;
                self.header_file_id = Some(String::from_utf8_lossy(&id).into_owned());
            }
            _ if record == 1 => return Err(IpmReadError::NoHeader { offset }),
            (true, Some("697")) => return Err(IpmReadError::MisplacedControl { record, offset }),
            (true, Some("695")) => {
                let id = pds_value(msg, 105).ok_or(missing(105))?;
                let amount = pds_value(msg, 301)
                    .and_then(|v| digits_u64(&v, 16))
                    .ok_or(missing(301))?;
                let count = pds_value(msg, 306)
                    .and_then(|v| digits_u64(&v, 8))
                    .ok_or(missing(306))?;
                self.trailer = Some((
                    offset,
                    String::from_utf8_lossy(&id).into_owned(),
                    amount,
                    count,
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(&self, eof_offset: usize) -> Result<(), IpmReadError> {
        let Some((offset, id, amount, count)) = &self.trailer else {
            return Err(IpmReadError::NoTrailer {
                record: self.records,
                offset: eof_offset,
            });
        };
        if self.header_file_id.as_deref() != Some(id.as_str()) {
            return Err(IpmReadError::FileIdMismatch { offset: *offset });
        }
        if *amount != self.amount_sum {
            return Err(IpmReadError::AmountTotal {
                offset: *offset,
                stated: *amount,
                computed: self.amount_sum,
            });
        }
        if *count != self.records {
            return Err(IpmReadError::CountTotal {
                offset: *offset,
                stated: *count,
                computed: self.records,
            });
        }
        Ok(())
    }

    fn summary(&self) -> Summary {
        let (_, id, amount, count) = self.trailer.clone().unwrap_or_default();
        Summary {
            ipm_file_id: id,
            amount_sum: amount,
            message_count: count,
        }
    }
}
