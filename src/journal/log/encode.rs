//! Encoding a log entry ([`super::record`] has the format): the header
//! written last, over the payload's length and checksum, and every length
//! checked against its limit, a typed [`EncodeError`] when one is over
//! (`out` then left as it was). Pure, like the decoder.

use super::record::*;

/// Appends one entry (header and payload) to `out`; on error `out` is
/// left as it was.
pub fn encode_entry(seq: u64, record: &LogRecord, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_entry_with(seq, out, |enc| enc.record(record))
}

/// Appends one entry whose payload `payload` writes (the sealer writes
/// the switch's records with it, without building a [`LogRecord`]).
pub(super) fn encode_entry_with(
    seq: u64,
    out: &mut Vec<u8>,
    payload: impl FnOnce(&mut Enc<'_>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_BYTES]);
    let result = payload(&mut Enc(out)).and_then(|()| {
        let len = out.len() - start - HEADER_BYTES;
        if len > PAYLOAD_BYTES_MAX {
            return Err(EncodeError {
                field: "payload",
                len,
                max: PAYLOAD_BYTES_MAX,
            });
        }
        Ok(len)
    });
    match result {
        Ok(len) => {
            let header = &mut out[start..start + HEADER_BYTES];
            header[0] = MAGIC;
            header[5..9].copy_from_slice(&(len as u32).to_le_bytes());
            header[9..17].copy_from_slice(&seq.to_le_bytes());
            let crc = crc32c::crc32c(&out[start + 5..]);
            out[start + 1..start + 5].copy_from_slice(&crc.to_le_bytes());
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// The payload writer: little-endian integers, texts and blobs behind
/// their lengths, options behind a 0/1 byte.
pub(super) struct Enc<'a>(pub(super) &'a mut Vec<u8>);

impl Enc<'_> {
    pub(super) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn opt_u64(&mut self, v: Option<u64>) {
        self.u8(v.is_some().into());
        if let Some(v) = v {
            self.u64(v);
        }
    }
    pub(super) fn opt_i64(&mut self, v: Option<i64>) {
        self.u8(v.is_some().into());
        if let Some(v) = v {
            self.i64(v);
        }
    }
    pub(super) fn short(&mut self, field: &'static str, s: &str) -> Result<(), EncodeError> {
        let len = s.len();
        if len > SHORT_BYTES_MAX {
            return Err(EncodeError {
                field,
                len,
                max: SHORT_BYTES_MAX,
            });
        }
        self.u8(len as u8);
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
    pub(super) fn opt_short(
        &mut self,
        field: &'static str,
        s: &Option<String>,
    ) -> Result<(), EncodeError> {
        self.u8(s.is_some().into());
        match s {
            Some(s) => self.short(field, s),
            None => Ok(()),
        }
    }
    pub(super) fn long(
        &mut self,
        field: &'static str,
        b: &[u8],
        max: usize,
    ) -> Result<(), EncodeError> {
        if b.len() > max {
            return Err(EncodeError {
                field,
                len: b.len(),
                max,
            });
        }
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
        Ok(())
    }
    /// A sealed value: its key id, then its length and bytes, which `s`
    /// writes straight into the entry (sealing them there, or copying).
    pub(super) fn sealed(
        &mut self,
        field: &'static str,
        s: impl SealedSource,
    ) -> Result<(), EncodeError> {
        self.short("key id", s.key_id())?;
        let len = s.bytes();
        if len > SEALED_BYTES_MAX {
            return Err(EncodeError {
                field,
                len,
                max: SEALED_BYTES_MAX,
            });
        }
        self.u32(len as u32);
        let start = self.0.len();
        s.write(self.0);
        debug_assert_eq!(self.0.len() - start, len, "{field}: the length written");
        Ok(())
    }

    fn record(&mut self, r: &LogRecord) -> Result<(), EncodeError> {
        match r {
            LogRecord::Accepted(a) => self.accepted(a)?,
            LogRecord::Answered(a) => self.answered(AnsweredRef {
                id: a.id,
                response_code: &a.response_code,
                approval_code: &a.approval_code,
                outcome: &a.outcome,
                response_at_ms: a.response_at_ms,
                sent_at_ms: a.sent_at_ms,
            })?,
            LogRecord::Delivery {
                id,
                at_ms,
                delivered,
            } => {
                self.u8(TAG_DELIVERY);
                self.u64(*id);
                self.i64(*at_ms);
                self.u8((*delivered).into());
            }
            LogRecord::Event {
                txn_id,
                at_ms,
                kind,
                detail,
            } => {
                self.u8(TAG_EVENT);
                self.opt_u64(*txn_id);
                self.i64(*at_ms);
                self.short("event kind", kind)?;
                self.long("event detail", detail.as_bytes(), DETAIL_BYTES_MAX)?;
            }
            LogRecord::SafQueued(q) => {
                self.u8(TAG_SAF_QUEUED);
                self.u64(q.id);
                self.opt_u64(q.txn_id);
                self.short("saf kind", &q.kind)?;
                self.short("saf issuer", &q.issuer)?;
                self.sealed("saf message", q.message.view())?;
                self.i64(q.queued_at_ms);
            }
            LogRecord::SafAttempted { id, attempts } => {
                self.u8(TAG_SAF_ATTEMPTED);
                self.u64(*id);
                self.u32(*attempts);
            }
            LogRecord::SafDone {
                id,
                delivered,
                attempts,
                at_ms,
            } => {
                self.u8(TAG_SAF_DONE);
                self.u64(*id);
                self.u8((*delivered).into());
                self.u32(*attempts);
                self.i64(*at_ms);
            }
        }
        Ok(())
    }

    fn accepted(&mut self, a: &LogAccepted) -> Result<(), EncodeError> {
        let head = AcceptedHead {
            id: a.id,
            received_at_ms: a.received_at_ms,
            acquirer: &a.acquirer,
            request_mti: &a.request_mti,
            texts: accepted_texts!(a),
            amount_minor: a.amount_minor,
            replacement_amount: a.replacement_amount,
        };
        let pan = a
            .pan
            .as_ref()
            .map(|p| (p.sealed.view(), &p.hash, p.masked.as_str()));
        let route = a
            .route
            .as_ref()
            .map(|r| (r.issuer.as_str(), r.issuer_stan.as_str(), r.message.view()));
        self.accepted_parts(&head, pan, route)
    }

    /// The one layout of an accepted request, from either form.
    pub(super) fn accepted_parts(
        &mut self,
        a: &AcceptedHead<'_>,
        pan: Option<(impl SealedSource, &[u8; 32], &str)>,
        route: Option<(&str, &str, impl SealedSource)>,
    ) -> Result<(), EncodeError> {
        self.u8(TAG_ACCEPTED);
        self.u64(a.id);
        self.i64(a.received_at_ms);
        self.short("acquirer", a.acquirer)?;
        self.short("request mti", a.request_mti)?;
        for (field, value) in ACCEPTED_TEXTS.iter().zip(a.texts) {
            self.opt_short(field, value)?;
        }
        self.opt_i64(a.amount_minor);
        self.opt_i64(a.replacement_amount);
        self.u8(pan.is_some().into());
        if let Some((sealed, hash, masked)) = pan {
            self.sealed("sealed pan", sealed)?;
            self.0.extend_from_slice(hash);
            self.short("masked pan", masked)?;
        }
        self.u8(route.is_some().into());
        if let Some((issuer, issuer_stan, message)) = route {
            self.short("issuer", issuer)?;
            self.short("issuer stan", issuer_stan)?;
            self.sealed("forwarded message", message)?;
        }
        Ok(())
    }

    /// The one layout of an answer, from either form.
    pub(super) fn answered(&mut self, a: AnsweredRef<'_>) -> Result<(), EncodeError> {
        self.u8(TAG_ANSWERED);
        self.u64(a.id);
        self.opt_short("response code", a.response_code)?;
        self.opt_short("approval code", a.approval_code)?;
        self.short("outcome", a.outcome)?;
        self.opt_i64(a.response_at_ms);
        self.opt_i64(a.sent_at_ms);
        Ok(())
    }
}

/// Sealed bytes by reference.
#[derive(Clone, Copy)]
pub(super) struct SealedRef<'a> {
    pub key_id: &'a str,
    pub blob: &'a [u8],
}

/// What [`Enc::sealed`] writes: bytes sealed already ([`SealedRef`]) or
/// bytes sealed as they are written (`seal::ToSeal`), so the hot path
/// seals into the group's buffer without a buffer of its own.
pub(super) trait SealedSource {
    fn key_id(&self) -> &str;
    /// How many bytes [`SealedSource::write`] appends.
    fn bytes(&self) -> usize;
    fn write(self, out: &mut Vec<u8>);
}

impl SealedSource for SealedRef<'_> {
    fn key_id(&self) -> &str {
        self.key_id
    }
    fn bytes(&self) -> usize {
        self.blob.len()
    }
    fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.blob);
    }
}

impl Sealed {
    pub(super) fn view(&self) -> SealedRef<'_> {
        SealedRef {
            key_id: &self.key_id,
            blob: &self.blob,
        }
    }
}

/// An accepted request's fields other than its card data, by reference.
pub(super) struct AcceptedHead<'a> {
    pub id: u64,
    pub received_at_ms: i64,
    pub acquirer: &'a str,
    pub request_mti: &'a str,
    /// In [`ACCEPTED_TEXTS`] order.
    pub texts: [&'a Option<String>; 14],
    pub amount_minor: Option<i64>,
    pub replacement_amount: Option<i64>,
}

/// An answer's fields by reference.
pub(super) struct AnsweredRef<'a> {
    pub id: u64,
    pub response_code: &'a Option<String>,
    pub approval_code: &'a Option<String>,
    pub outcome: &'a str,
    pub response_at_ms: Option<i64>,
    pub sent_at_ms: Option<i64>,
}
