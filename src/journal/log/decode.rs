//! Decoding a log entry ([`super::record`] has the format): every read
//! checks the bytes left and every length its limit first, so arbitrary
//! input gives a typed [`DecodeError`], never a panic or a large
//! allocation. Pure, like the encoder.

use super::record::*;

/// Decodes the entry at the start of `buf`: the entry and its length.
pub fn decode_entry(buf: &[u8]) -> Result<(Entry, usize), DecodeError> {
    let (seq, total) = check_frame(buf)?;
    let mut d = Dec {
        buf: &buf[HEADER_BYTES..total],
    };
    let record = d.record()?;
    if !d.buf.is_empty() {
        return Err(malformed("payload", "bytes after the record"));
    }
    Ok((Entry { seq, record }, total))
}

fn malformed(field: &'static str, problem: &'static str) -> DecodeError {
    DecodeError::Malformed { field, problem }
}

/// The payload reader: each read checks the bytes left first.
struct Dec<'a> {
    buf: &'a [u8],
}

impl<'a> Dec<'a> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(malformed(field, "payload ends inside it"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(field, 1)?[0])
    }
    fn flag(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(malformed(field, "a flag that is neither 0 nor 1")),
        }
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(
            self.take(field, 4)?.try_into().expect("4"),
        ))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(
            self.take(field, 8)?.try_into().expect("8"),
        ))
    }
    fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(
            self.take(field, 8)?.try_into().expect("8"),
        ))
    }
    fn opt_u64(&mut self, field: &'static str) -> Result<Option<u64>, DecodeError> {
        Ok(if self.flag(field)? {
            Some(self.u64(field)?)
        } else {
            None
        })
    }
    fn opt_i64(&mut self, field: &'static str) -> Result<Option<i64>, DecodeError> {
        Ok(if self.flag(field)? {
            Some(self.i64(field)?)
        } else {
            None
        })
    }
    fn text(field: &'static str, b: &[u8]) -> Result<String, DecodeError> {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| malformed(field, "not UTF-8"))
    }
    fn short(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let len = self.u8(field)? as usize;
        Self::text(field, self.take(field, len)?)
    }
    fn opt_short(&mut self, field: &'static str) -> Result<Option<String>, DecodeError> {
        Ok(if self.flag(field)? {
            Some(self.short(field)?)
        } else {
            None
        })
    }
    fn long(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)? as usize;
        if len > max {
            return Err(malformed(field, "longer than its limit"));
        }
        self.take(field, len)
    }
    fn sealed(&mut self, field: &'static str) -> Result<Sealed, DecodeError> {
        let key_id = self.short("key id")?;
        let blob = self.long(field, SEALED_BYTES_MAX)?.to_vec();
        Ok(Sealed { key_id, blob })
    }

    fn record(&mut self) -> Result<LogRecord, DecodeError> {
        Ok(match self.u8("record tag")? {
            TAG_ACCEPTED => LogRecord::Accepted(Box::new(self.accepted()?)),
            TAG_ANSWERED => LogRecord::Answered(LogAnswered {
                id: self.u64("answer id")?,
                response_code: self.opt_short("response code")?,
                approval_code: self.opt_short("approval code")?,
                outcome: self.short("outcome")?.into(),
                response_at_ms: self.opt_i64("response at")?,
                sent_at_ms: self.opt_i64("sent at")?,
            }),
            TAG_DELIVERY => LogRecord::Delivery {
                id: self.u64("delivery id")?,
                at_ms: self.i64("delivery at")?,
                delivered: self.flag("delivered")?,
            },
            TAG_EVENT => LogRecord::Event {
                txn_id: self.opt_u64("event txn id")?,
                at_ms: self.i64("event at")?,
                kind: self.short("event kind")?.into(),
                detail: Self::text("event detail", self.long("event detail", DETAIL_BYTES_MAX)?)?,
            },
            TAG_SAF_QUEUED => LogRecord::SafQueued(LogSafQueued {
                id: self.u64("saf id")?,
                txn_id: self.opt_u64("saf txn id")?,
                kind: self.short("saf kind")?.into(),
                issuer: self.short("saf issuer")?,
                message: self.sealed("saf message")?,
                queued_at_ms: self.i64("saf queued at")?,
            }),
            TAG_SAF_ATTEMPTED => LogRecord::SafAttempted {
                id: self.u64("saf id")?,
                attempts: self.u32("saf attempts")?,
            },
            TAG_SAF_DONE => LogRecord::SafDone {
                id: self.u64("saf id")?,
                delivered: self.flag("saf delivered")?,
                attempts: self.u32("saf attempts")?,
                at_ms: self.i64("saf done at")?,
            },
            _ => return Err(malformed("record tag", "unknown")),
        })
    }

    fn accepted(&mut self) -> Result<LogAccepted, DecodeError> {
        let id = self.u64("id")?;
        let received_at_ms = self.i64("received at")?;
        let acquirer = self.short("acquirer")?;
        let request_mti = self.short("request mti")?;
        let mut texts: [Option<String>; 14] = Default::default();
        for (slot, field) in texts.iter_mut().zip(ACCEPTED_TEXTS) {
            *slot = self.opt_short(field)?;
        }
        let [
            processing_code,
            transmission_at,
            stan,
            local_time,
            local_date,
            mcc,
            pos_entry_mode,
            acquirer_inst,
            rrn,
            terminal_id,
            merchant_id,
            merchant_name_loc,
            currency,
            original_data,
        ] = texts;
        let amount_minor = self.opt_i64("amount")?;
        let replacement_amount = self.opt_i64("replacement amount")?;
        let pan = if self.flag("pan")? {
            let sealed = self.sealed("sealed pan")?;
            let hash = self.take("pan hash", 32)?.try_into().expect("32");
            let masked = self.short("masked pan")?;
            Some(LogPan {
                sealed,
                hash,
                masked,
            })
        } else {
            None
        };
        let route = if self.flag("route")? {
            Some(LogRoute {
                issuer: self.short("issuer")?,
                issuer_stan: self.short("issuer stan")?,
                message: self.sealed("forwarded message")?,
            })
        } else {
            None
        };
        Ok(LogAccepted {
            id,
            received_at_ms,
            acquirer,
            request_mti,
            processing_code,
            amount_minor,
            transmission_at,
            stan,
            local_time,
            local_date,
            mcc,
            pos_entry_mode,
            acquirer_inst,
            rrn,
            terminal_id,
            merchant_id,
            merchant_name_loc,
            currency,
            original_data,
            replacement_amount,
            pan,
            route,
        })
    }
}
