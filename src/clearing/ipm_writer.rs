//! Writes a Mastercard IPM clearing file: a 1644/697 header, one 1240/200
//! first presentment per captured transaction, a 1644/695 trailer with the
//! file totals, then the zero-length end-of-file record; EBCDIC (cp500) via
//! the `mastercard-ipm` spec, blocked in 1014-byte blocks or unblocked.
//! Streams: memory use does not grow with the number of records.

use std::io::Write;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::blocking::Blocker;
use crate::message::codec::decimal_digits;
use crate::message::{Message, MessageError, Mti, Spec, pds};

/// The IPM spec's shipped name.
pub const IPM_SPEC: &str = "mastercard-ipm";
/// File type of an outgoing (member to Mastercard) clearing file in PDS 0105.
pub const FILE_TYPE_OUTGOING: &str = "001";

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpmWriteError {
    #[error("writing the clearing file: {0}")]
    Io(#[from] std::io::Error),
    /// A record the IPM spec refuses (names the field; never its content).
    #[error("record {message_number} ({what}): {source}")]
    Build {
        message_number: u64,
        what: &'static str,
        source: MessageError,
    },
    #[error("record {message_number}: PDS {source}")]
    Pds {
        message_number: u64,
        source: pds::PdsError,
    },
    #[error("the IPM spec could not be loaded: {0}")]
    Spec(String),
    #[error("file id must be 25 digits (type 3, YYMMDD, member 11, sequence 5)")]
    FileId,
    #[error("DE4 total exceeds the 16 digits of PDS 0301")]
    TotalOverflow,
}

/// The file-level values of header and trailer.
#[derive(Debug, Clone)]
pub struct FileParams {
    /// PDS 0105, 25 digits.
    pub ipm_file_id: String,
    /// PDS 0122: production ('P') or test ('T').
    pub production: bool,
    /// 1014-byte blocking (the default) or the bare RDW stream.
    pub blocked: bool,
    /// DE94 of every presentment: our member id (up to 11 digits).
    pub originator_id: String,
}

/// One first presentment's data, all in logical (ASCII) form.
#[derive(Debug, Clone, Copy)]
pub struct Presentment<'a> {
    pub pan: &'a [u8],
    pub processing_code: &'a str,
    pub amount_minor: u64,
    /// DE12, YYMMDDhhmmss.
    pub local_date_time: &'a str,
    /// DE22, 12 characters (one of a few constants).
    pub pos_data_code: &'static str,
    pub mcc: &'a str,
    pub arn: &'a str,
    pub approval_code: &'a str,
    pub merchant_id: &'a str,
    pub name_location: &'a str,
    pub currency: &'a str,
}

/// What a finished file holds (as its trailer states it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileTotals {
    /// Messages including header and trailer (PDS 0306).
    pub message_count: u64,
    /// Sum of DE4 over all messages (PDS 0301).
    pub amount_sum: u64,
    pub bytes: u64,
}

/// The largest PDS 0301 value.
const AMOUNT_SUM_MAX: u64 = 9_999_999_999_999_999;

/// A clearing file being written.
pub struct IpmWriter<W: Write> {
    out: W,
    spec: Arc<Spec>,
    params: FileParams,
    blocker: Option<Blocker>,
    buf: Vec<u8>,
    /// DE48 and DE94 of every presentment, built once.
    presentment_de48: Bytes,
    originator: Bytes,
    messages: u64,
    amount_sum: u64,
    bytes: u64,
}

fn mti(digits: &[u8; 4]) -> Mti {
    Mti::from_digits(*digits).expect("constant MTI of four digits")
}

impl<W: Write> IpmWriter<W> {
    /// Starts a file: writes the 1644/697 header.
    pub fn start(out: W, params: FileParams) -> Result<IpmWriter<W>, IpmWriteError> {
        if params.ipm_file_id.len() != 25 || !params.ipm_file_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(IpmWriteError::FileId);
        }
        let spec = Spec::resolve(IPM_SPEC).map_err(|e| IpmWriteError::Spec(e.to_string()))?;
        let blocker = params.blocked.then(Blocker::default);
        // 0023 terminal type (POI: point of interaction), 0158 business
        // activity (card program MCC, service level), 0165 settlement
        // indicator (M: settled by Mastercard).
        let mut de48 = BytesMut::with_capacity(32);
        for (tag, value) in [(23, &b"POI"[..]), (158, b"MCC1"), (165, b"M")] {
            pds::write(tag, value, &mut de48).map_err(|source| IpmWriteError::Pds {
                message_number: 0,
                source,
            })?;
        }
        let originator = Bytes::copy_from_slice(params.originator_id.as_bytes());
        let mut w = IpmWriter {
            out,
            spec,
            params,
            blocker,
            buf: Vec::with_capacity(64 * 1024),
            presentment_de48: de48.freeze(),
            originator,
            messages: 0,
            amount_sum: 0,
            bytes: 0,
        };
        let mut header = Message::new(mti(b"1644"));
        let number = w.messages + 1;
        let build = |source| IpmWriteError::Build {
            message_number: number,
            what: "header",
            source,
        };
        header.set_str(24, "697").map_err(build)?;
        let mut de48 = BytesMut::new();
        let pds_err = |source| IpmWriteError::Pds {
            message_number: number,
            source,
        };
        pds::write(105, w.params.ipm_file_id.as_bytes(), &mut de48).map_err(pds_err)?;
        let mode: &[u8] = if w.params.production { b"P" } else { b"T" };
        pds::write(122, mode, &mut de48).map_err(pds_err)?;
        header.set(48, de48.freeze()).map_err(build)?;
        w.push_message(header, "header")?;
        Ok(w)
    }

    /// Appends one 1240/200 first presentment.
    pub fn presentment(&mut self, p: &Presentment<'_>) -> Result<(), IpmWriteError> {
        let number = self.messages + 1;
        let build = |source| IpmWriteError::Build {
            message_number: number,
            what: "presentment",
            source,
        };
        let mut m = Message::new(mti(b"1240"));
        m.set(2, Bytes::copy_from_slice(p.pan)).map_err(build)?;
        m.set_str(3, p.processing_code).map_err(build)?;
        m.set(
            4,
            Bytes::copy_from_slice(&decimal_digits::<12>(p.amount_minor)),
        )
        .map_err(build)?;
        m.set_str(12, p.local_date_time).map_err(build)?;
        m.set(22, Bytes::from_static(p.pos_data_code.as_bytes()))
            .map_err(build)?;
        m.set(24, Bytes::from_static(b"200")).map_err(build)?;
        m.set_str(26, p.mcc).map_err(build)?;
        m.set_str(31, p.arn).map_err(build)?;
        m.set_str(38, p.approval_code).map_err(build)?;
        m.set_str(42, p.merchant_id).map_err(build)?;
        m.set_str(43, p.name_location).map_err(build)?;
        m.set(48, self.presentment_de48.clone()).map_err(build)?;
        m.set_str(49, p.currency).map_err(build)?;
        self.amount_sum = self
            .amount_sum
            .checked_add(p.amount_minor)
            .filter(|s| *s <= AMOUNT_SUM_MAX)
            .ok_or(IpmWriteError::TotalOverflow)?;
        // DE71 is set in push_message, in field order.
        m.set(94, self.originator.clone()).map_err(build)?;
        self.push_message(m, "presentment")
    }

    /// Writes the trailer and the end-of-file record, pads the last block.
    pub fn finish(mut self) -> Result<(FileTotals, W), IpmWriteError> {
        let number = self.messages + 1;
        let build = |source| IpmWriteError::Build {
            message_number: number,
            what: "trailer",
            source,
        };
        let pds_err = |source| IpmWriteError::Pds {
            message_number: number,
            source,
        };
        let mut trailer = Message::new(mti(b"1644"));
        trailer.set_str(24, "695").map_err(build)?;
        let mut de48 = BytesMut::new();
        pds::write(105, self.params.ipm_file_id.as_bytes(), &mut de48).map_err(pds_err)?;
        pds::write(
            301,
            format!("{:016}", self.amount_sum).as_bytes(),
            &mut de48,
        )
        .map_err(pds_err)?;
        pds::write(306, format!("{:08}", number).as_bytes(), &mut de48).map_err(pds_err)?;
        trailer.set(48, de48.freeze()).map_err(build)?;
        self.push_message(trailer, "trailer")?;
        self.push_raw(&0u32.to_be_bytes());
        if let Some(b) = self.blocker.as_mut() {
            b.finish(&mut self.buf);
        }
        self.flush_buf()?;
        self.out.flush()?;
        let totals = FileTotals {
            message_count: self.messages,
            amount_sum: self.amount_sum,
            bytes: self.bytes,
        };
        Ok((totals, self.out))
    }

    fn push_message(&mut self, mut m: Message, what: &'static str) -> Result<(), IpmWriteError> {
        self.messages += 1;
        let number = self.messages;
        m.set(71, Bytes::copy_from_slice(&decimal_digits::<8>(number)))
            .and_then(|()| self.spec.build(&m))
            .map_err(|source| IpmWriteError::Build {
                message_number: number,
                what,
                source,
            })
            .map(|record| {
                let rdw = (record.len() as u32).to_be_bytes();
                self.push_raw(&rdw);
                self.push_raw(&record);
            })?;
        if self.buf.len() >= 60 * 1024 {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn push_raw(&mut self, data: &[u8]) {
        match self.blocker.as_mut() {
            Some(b) => b.push(data, &mut self.buf),
            None => self.buf.extend_from_slice(data),
        }
    }

    fn flush_buf(&mut self) -> Result<(), IpmWriteError> {
        self.out.write_all(&self.buf)?;
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}
