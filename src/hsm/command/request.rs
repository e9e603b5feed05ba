//! Host-command requests: the fields of each command a switch sends, with
//! `encode` (the client) and `decode` (the simulator). Field layouts are
//! payShield's as published; the choices made where the public text is
//! silent are noted at the field.

use super::error::CodecError;
use super::fields::{Reader, Sensitive, check_digits, check_hex, put_hex_number, put_number};
use super::key::{KeyCryptogram, KeyScheme, Untagged};
pub use super::request_keys::{GenerateKey, ImportKey, KeyCheck};

/// The longest PAN in CW / CY.
pub const PAN_DIGITS_MAX: usize = 19;
/// The longest transaction data in KQ (its 2H length field).
pub const KQ_DATA_BYTES_MAX: usize = 255;
/// The longest message M6 / M8 take (the 4H length field).
pub const MAC_MESSAGE_BYTES_MAX: usize = 0xFFFF;

/// CA (from a TPK) and CC (from a ZPK): translate a PIN block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinTranslate {
    pub source_key: KeyCryptogram,
    pub destination_zpk: KeyCryptogram,
    /// Always 12 in practice.
    pub max_pin_len: u8,
    /// 16H: only TDES blocks (formats 01, 05, 47) have a public layout.
    pub pin_block: Sensitive<String>,
    /// payShield format codes: 01 ISO 0, 05 ISO 1, 47 ISO 3.
    pub source_format: u8,
    pub destination_format: u8,
    /// 12N: the PAN's 12 rightmost digits without the check digit.
    pub account: Sensitive<String>,
}

/// G0: translate a PIN block from a DUKPT key (BDK + KSN) to a ZPK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DukptTranslate {
    pub bdk: KeyCryptogram,
    pub zpk: KeyCryptogram,
    /// 3H, e.g. `A05` for a 20-digit KSN (see `ksn_hex_len`).
    pub ksn_descriptor: String,
    pub ksn: String,
    pub pin_block: Sensitive<String>,
    pub source_format: u8,
    pub destination_format: u8,
    pub account: Sensitive<String>,
}

/// The KSN's length in hex digits from its descriptor: key set id
/// digits (first character) + device id digits (third) + 5 for the
/// counter. Inferred from public examples (`605` with a 16-digit KSN);
/// the reference text only says "12 - 20 H".
pub fn ksn_hex_len(descriptor: &str) -> Option<usize> {
    let b = descriptor.as_bytes();
    if b.len() != 3 {
        return None;
    }
    let d = |c: u8| char::from(c).to_digit(16).map(|v| v as usize);
    let n = d(b[0])? + d(b[2])? + 5;
    (12..=20).contains(&n).then_some(n)
}

/// M6 (generate) and M8 (verify, with `mac`): a MAC over a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacCommand {
    /// 0 only block, 1 first, 2 middle, 3 last.
    pub mode: u8,
    /// 0 binary, 1 hex-encoded binary, 2 text.
    pub input_format: u8,
    /// 2N: 01 ISO 9797-1 algorithm 1, 03 algorithm 3.
    pub algorithm: u8,
    /// 0 none, 1 ISO 9797-1 method 1, 2 method 2.
    pub padding: u8,
    /// 3H: 003 TAK, 008 ZAK.
    pub key_type: String,
    pub key: KeyCryptogram,
    /// 16H, present for modes 2 and 3.
    pub iv: Option<String>,
    /// The message as sent (its 4H length counts these bytes).
    pub message: Sensitive<Vec<u8>>,
    /// M8 only: the MAC to verify, 16H (our choice of width and place,
    /// last: the public text found does not show M8's fields).
    pub mac: Option<String>,
}

/// KQ: verify an ARQC and/or generate an ARPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArqcCommand {
    /// 0 verify, 1 verify and generate ARPC, 2 generate ARPC only.
    pub mode: u8,
    /// 0 Visa VSDC / UKIS, 1 Europay / Mastercard M/Chip.
    pub scheme: u8,
    pub mk_ac: KeyCryptogram,
    /// 8B: the pre-formatted PAN / PAN sequence number block.
    pub pan_psn: Sensitive<Vec<u8>>,
    pub atc: [u8; 2],
    pub un: [u8; 4],
    /// Modes 0 and 1: the data the cryptogram covers (1..=255 bytes).
    pub data: Option<Sensitive<Vec<u8>>>,
    pub arqc: [u8; 8],
    /// Modes 1 and 2: the authorisation response code.
    pub arc: Option<[u8; 2]>,
}

/// CW (generate, `cvv` none) and CY (verify, `cvv` given): a Visa CVV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvvCommand {
    pub cvk: KeyCryptogram,
    pub cvv: Option<Sensitive<String>>,
    pub pan: Sensitive<String>,
    pub expiry: Sensitive<String>,
    pub service_code: String,
}

/// A host command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    Ca(PinTranslate),
    Cc(PinTranslate),
    G0(DukptTranslate),
    M6(MacCommand),
    M8(MacCommand),
    Kq(ArqcCommand),
    Cw(CvvCommand),
    Cy(CvvCommand),
    A0(GenerateKey),
    Bu(KeyCheck),
    A6(ImportKey),
    Nc,
}

impl Request {
    /// The command code.
    pub fn code(&self) -> &'static [u8; 2] {
        match self {
            Request::Ca(_) => b"CA",
            Request::Cc(_) => b"CC",
            Request::G0(_) => b"G0",
            Request::M6(_) => b"M6",
            Request::M8(_) => b"M8",
            Request::Kq(_) => b"KQ",
            Request::Cw(_) => b"CW",
            Request::Cy(_) => b"CY",
            Request::A0(_) => b"A0",
            Request::Bu(_) => b"BU",
            Request::A6(_) => b"A6",
            Request::Nc => b"NC",
        }
    }

    /// Appends the message (code and fields) to `out`.
    /// About how many bytes `encode` writes (room reserved up front).
    pub fn size_hint(&self) -> usize {
        let data = match self {
            Request::M6(c) | Request::M8(c) => c.message.0.len(),
            Request::Kq(c) => c.data.as_ref().map_or(0, |d| d.0.len()),
            _ => 0,
        };
        160 + data
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(self.code());
        match self {
            Request::Ca(c) | Request::Cc(c) => c.write(out),
            Request::G0(c) => c.write(out),
            Request::M6(c) | Request::M8(c) => c.write(out),
            Request::Kq(c) => c.write(out),
            Request::Cw(c) | Request::Cy(c) => c.write(out),
            Request::A0(c) => c.write(out),
            Request::Bu(c) => c.write(out),
            Request::A6(c) => c.write(out),
            Request::Nc => Ok(()),
        }
    }

    /// Decodes a message (code and fields; no header).
    pub fn decode(message: &[u8]) -> Result<Request, CodecError> {
        let mut r = Reader::new(message);
        let code = r.take(2, "command code")?;
        let req = match code {
            b"CA" => Request::Ca(PinTranslate::read(&mut r)?),
            b"CC" => Request::Cc(PinTranslate::read(&mut r)?),
            b"G0" => Request::G0(DukptTranslate::read(&mut r)?),
            b"M6" => Request::M6(MacCommand::read(&mut r, false)?),
            b"M8" => Request::M8(MacCommand::read(&mut r, true)?),
            b"KQ" => Request::Kq(ArqcCommand::read(&mut r)?),
            b"CW" => Request::Cw(CvvCommand::read(&mut r, false)?),
            b"CY" => Request::Cy(CvvCommand::read(&mut r, true)?),
            b"A0" => Request::A0(GenerateKey::read(&mut r)?),
            b"BU" => Request::Bu(KeyCheck::read(&mut r)?),
            b"A6" => Request::A6(ImportKey::read(&mut r)?),
            b"NC" => Request::Nc,
            other => {
                return Err(CodecError::UnknownCommand {
                    code: String::from_utf8_lossy(other).into_owned(),
                });
            }
        };
        r.finish()?;
        Ok(req)
    }
}

pub(super) fn read_scheme(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<KeyScheme, CodecError> {
    let c = r.take(1, field)?[0];
    KeyScheme::from_field(c).ok_or(CodecError::KeyScheme { field })
}

pub(super) fn flag(r: &mut Reader<'_>, max: u8, field: &'static str) -> Result<u8, CodecError> {
    let v = r.number(1, field)? as u8;
    if v > max {
        Err(CodecError::Value { field })
    } else {
        Ok(v)
    }
}

impl PinTranslate {
    fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let source_key = KeyCryptogram::read(r, Untagged::Single, "source key")?;
        let destination_zpk = KeyCryptogram::read(r, Untagged::Single, "destination ZPK")?;
        let max_pin_len = r.number(2, "maximum PIN length")? as u8;
        let pin_block = Sensitive(r.hex(16, "PIN block")?);
        let (source_format, destination_format, account) = formats_and_account(r)?;
        Ok(PinTranslate {
            source_key,
            destination_zpk,
            max_pin_len,
            pin_block,
            source_format,
            destination_format,
            account,
        })
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.source_key.write(out, Untagged::Single, "source key")?;
        self.destination_zpk
            .write(out, Untagged::Single, "destination ZPK")?;
        put_number(out, self.max_pin_len.into(), 2, "maximum PIN length")?;
        check_hex(self.pin_block.as_str(), 16, "PIN block")?;
        out.extend_from_slice(self.pin_block.as_str().as_bytes());
        put_formats_and_account(
            out,
            self.source_format,
            self.destination_format,
            &self.account,
        )
    }
}

impl DukptTranslate {
    fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let bdk = KeyCryptogram::read(r, Untagged::Double, "BDK")?;
        let zpk = KeyCryptogram::read(r, Untagged::Single, "ZPK")?;
        let ksn_descriptor = r.hex(3, "KSN descriptor")?;
        let n = ksn_hex_len(&ksn_descriptor).ok_or(CodecError::Value {
            field: "KSN descriptor",
        })?;
        let ksn = r.hex(n, "KSN")?;
        let pin_block = Sensitive(r.hex(16, "PIN block")?);
        let (source_format, destination_format, account) = formats_and_account(r)?;
        Ok(DukptTranslate {
            bdk,
            zpk,
            ksn,
            ksn_descriptor,
            pin_block,
            source_format,
            destination_format,
            account,
        })
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.bdk.write(out, Untagged::Double, "BDK")?;
        self.zpk.write(out, Untagged::Single, "ZPK")?;
        let n = ksn_hex_len(&self.ksn_descriptor).ok_or(CodecError::Encode {
            field: "KSN descriptor",
            why: "not a valid descriptor",
        })?;
        check_hex(&self.ksn_descriptor, 3, "KSN descriptor")?;
        check_hex(&self.ksn, n, "KSN")?;
        check_hex(self.pin_block.as_str(), 16, "PIN block")?;
        for s in [&self.ksn_descriptor, &self.ksn, self.pin_block.as_str()] {
            out.extend_from_slice(s.as_bytes());
        }
        put_formats_and_account(
            out,
            self.source_format,
            self.destination_format,
            &self.account,
        )
    }
}

impl MacCommand {
    fn read(r: &mut Reader<'_>, verify: bool) -> Result<Self, CodecError> {
        let mode = flag(r, 3, "mode flag")?;
        let input_format = flag(r, 2, "input format flag")?;
        let algorithm = r.number(2, "MAC algorithm")? as u8;
        let padding = flag(r, 9, "padding method")?;
        let key_type = r.hex(3, "key type")?;
        let key = KeyCryptogram::read(r, Untagged::Single, "MAC key")?;
        let iv = if mode >= 2 {
            Some(r.hex(16, "IV")?)
        } else {
            None
        };
        let len = usize::from(r.hex_number(4, "message length")?);
        let message = Sensitive(r.take(len, "message")?.to_vec());
        let mac = if verify {
            Some(r.hex(16, "MAC")?)
        } else {
            None
        };
        Ok(MacCommand {
            mode,
            input_format,
            algorithm,
            padding,
            key_type,
            key,
            iv,
            message,
            mac,
        })
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        put_number(out, self.mode.into(), 1, "mode flag")?;
        put_number(out, self.input_format.into(), 1, "input format flag")?;
        put_number(out, self.algorithm.into(), 2, "MAC algorithm")?;
        put_number(out, self.padding.into(), 1, "padding method")?;
        check_hex(&self.key_type, 3, "key type")?;
        out.extend_from_slice(self.key_type.as_bytes());
        self.key.write(out, Untagged::Single, "MAC key")?;
        match (&self.iv, self.mode >= 2) {
            (Some(iv), true) => {
                check_hex(iv, 16, "IV")?;
                out.extend_from_slice(iv.as_bytes());
            }
            (None, false) => {}
            _ => {
                return Err(CodecError::Encode {
                    field: "IV",
                    why: "needed for modes 2 and 3 only",
                });
            }
        }
        let msg = &self.message.0;
        if msg.len() > MAC_MESSAGE_BYTES_MAX {
            return Err(CodecError::Encode {
                field: "message",
                why: "longer than 4H can say",
            });
        }
        put_hex_number(out, msg.len(), 4, "message length")?;
        out.extend_from_slice(msg);
        if let Some(mac) = &self.mac {
            check_hex(mac, 16, "MAC")?;
            out.extend_from_slice(mac.as_bytes());
        }
        Ok(())
    }
}

impl ArqcCommand {
    fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let mode = flag(r, 2, "mode flag")?;
        let scheme = flag(r, 1, "scheme id")?;
        let mk_ac = KeyCryptogram::read(r, Untagged::Double, "MK-AC")?;
        let pan_psn = Sensitive(r.take(8, "PAN/PAN sequence number")?.to_vec());
        let atc = r.array::<2>("ATC")?;
        let un = r.array::<4>("unpredictable number")?;
        let data = if mode <= 1 {
            let n = usize::from(r.hex_number(2, "transaction data length")?);
            if n == 0 {
                return Err(CodecError::Value {
                    field: "transaction data length",
                });
            }
            let d = Sensitive(r.take(n, "transaction data")?.to_vec());
            r.expect(b';', "delimiter")?;
            Some(d)
        } else {
            None
        };
        let arqc = r.array::<8>("ARQC")?;
        let arc = if mode >= 1 {
            Some(r.array::<2>("ARC")?)
        } else {
            None
        };
        Ok(ArqcCommand {
            mode,
            scheme,
            mk_ac,
            pan_psn,
            atc,
            un,
            data,
            arqc,
            arc,
        })
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        put_number(out, self.mode.into(), 1, "mode flag")?;
        put_number(out, self.scheme.into(), 1, "scheme id")?;
        self.mk_ac.write(out, Untagged::Double, "MK-AC")?;
        if self.pan_psn.0.len() != 8 {
            return Err(CodecError::Encode {
                field: "PAN/PAN sequence number",
                why: "not 8 bytes",
            });
        }
        out.extend_from_slice(&self.pan_psn.0);
        out.extend_from_slice(&self.atc);
        out.extend_from_slice(&self.un);
        match (&self.data, self.mode <= 1) {
            (Some(d), true) if (1..=KQ_DATA_BYTES_MAX).contains(&d.0.len()) => {
                put_hex_number(out, d.0.len(), 2, "data length")?;
                out.extend_from_slice(&d.0);
                out.push(b';');
            }
            (None, false) => {}
            _ => {
                return Err(CodecError::Encode {
                    field: "transaction data",
                    why: "mode mismatch or length",
                });
            }
        }
        out.extend_from_slice(&self.arqc);
        match (self.arc, self.mode >= 1) {
            (Some(arc), true) => out.extend_from_slice(&arc),
            (None, false) => {}
            _ => {
                return Err(CodecError::Encode {
                    field: "ARC",
                    why: "needed for modes 1 and 2 only",
                });
            }
        }
        Ok(())
    }
}

impl CvvCommand {
    fn read(r: &mut Reader<'_>, verify: bool) -> Result<Self, CodecError> {
        let cvk = KeyCryptogram::read(r, Untagged::Double, "CVK A/B")?;
        let cvv = if verify {
            Some(Sensitive(r.digits(3, "CVV")?))
        } else {
            None
        };
        let pan = Sensitive(r.digits_until(b';', 1, PAN_DIGITS_MAX, "primary account number")?);
        Ok(CvvCommand {
            cvk,
            cvv,
            pan,
            expiry: Sensitive(r.digits(4, "expiration date")?),
            service_code: r.digits(3, "service code")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.cvk.write(out, Untagged::Double, "CVK A/B")?;
        if let Some(cvv) = &self.cvv {
            check_digits(cvv.as_str(), 3, 3, "CVV")?;
            out.extend_from_slice(cvv.as_str().as_bytes());
        }
        check_digits(
            self.pan.as_str(),
            1,
            PAN_DIGITS_MAX,
            "primary account number",
        )?;
        check_digits(self.expiry.as_str(), 4, 4, "expiration date")?;
        check_digits(&self.service_code, 3, 3, "service code")?;
        out.extend_from_slice(self.pan.as_str().as_bytes());
        out.push(b';');
        out.extend_from_slice(self.expiry.as_str().as_bytes());
        out.extend_from_slice(self.service_code.as_bytes());
        Ok(())
    }
}

/// The tail a PIN translation's request ends with: the source and
/// destination PIN block formats and the account number (12 digits).
fn formats_and_account(r: &mut Reader<'_>) -> Result<(u8, u8, Sensitive<String>), CodecError> {
    Ok((
        r.number(2, "source PIN block format")? as u8,
        r.number(2, "destination PIN block format")? as u8,
        Sensitive(r.digits(12, "account number")?),
    ))
}

fn put_formats_and_account(
    out: &mut Vec<u8>,
    source: u8,
    destination: u8,
    account: &Sensitive<String>,
) -> Result<(), CodecError> {
    put_number(out, source.into(), 2, "source PIN block format")?;
    put_number(out, destination.into(), 2, "destination PIN block format")?;
    check_digits(account.as_str(), 12, 12, "account number")?;
    out.extend_from_slice(account.as_str().as_bytes());
    Ok(())
}
