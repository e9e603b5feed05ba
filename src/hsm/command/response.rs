//! Host-command responses: the response code (the command's with its
//! second character advanced: CA -> CB, G0 -> G1), the 2-digit error code,
//! then the fields, present when the error code is 00 (and for A7's
//! advice 01). Encoded by the simulator, decoded by the client.

use super::error::CodecError;
use super::error_code::ErrorCode;
use super::fields::{Reader, Sensitive, check_digits, check_hex, put_number};
use super::key::{KeyCryptogram, Untagged};

/// What a successful response carries, by command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseBody {
    /// An error response, or one whose command returns nothing more (M9,
    /// CZ, KR in mode 0).
    Empty,
    /// CB, CD, G1: the PIN's length, the new block and its format code.
    PinTranslated {
        pin_len: u8,
        pin_block: Sensitive<String>,
        format: u8,
    },
    /// M7: the MAC (or the IV for modes 1 and 2), 16H.
    Mac(String),
    /// KR in modes 1 and 2: the ARPC.
    Arpc([u8; 8]),
    /// CX: the CVV.
    Cvv(Sensitive<String>),
    /// A1: the key under the LMK, under the ZMK (mode 1) and its 6H KCV.
    GeneratedKey {
        lmk: KeyCryptogram,
        zmk: Option<KeyCryptogram>,
        kcv: String,
    },
    /// BV: the check value, 16H or 6H.
    Kcv(String),
    /// A7: the key under the LMK and its 6H KCV.
    ImportedKey { lmk: KeyCryptogram, kcv: String },
    /// ND: the LMK check value (16H) and the firmware number (9A).
    Diagnostics { lmk_check: String, firmware: String },
}

/// A response message (without the frame's header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The response code, e.g. `CB`.
    pub code: [u8; 2],
    pub error: ErrorCode,
    pub body: ResponseBody,
}

/// The response codes this codec reads, with the command each answers.
const CODES: &[(&[u8; 2], &[u8; 2])] = &[
    (b"CA", b"CB"),
    (b"CC", b"CD"),
    (b"G0", b"G1"),
    (b"M6", b"M7"),
    (b"M8", b"M9"),
    (b"KQ", b"KR"),
    (b"CW", b"CX"),
    (b"CY", b"CZ"),
    (b"A0", b"A1"),
    (b"BU", b"BV"),
    (b"A6", b"A7"),
    (b"NC", b"ND"),
];

/// The response code for a command code: second character advanced.
pub fn response_code(command: &[u8; 2]) -> Option<[u8; 2]> {
    CODES.iter().find(|(c, _)| *c == command).map(|(_, r)| **r)
}

impl Response {
    /// An error response to `command`, with no fields.
    pub fn error(command: &[u8; 2], error: ErrorCode) -> Option<Response> {
        Some(Response {
            code: response_code(command)?,
            error,
            body: ResponseBody::Empty,
        })
    }

    /// Appends the message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(&self.code);
        put_number(out, self.error.number().into(), 2, "error code")?;
        write_body(&self.body, out)
    }

    /// Decodes a message (response code, error code, fields; no header).
    pub fn decode(message: &[u8]) -> Result<Response, CodecError> {
        let mut r = Reader::new(message);
        let code = r.array::<2>("response code")?;
        if !CODES.iter().any(|(_, c)| **c == code) {
            return Err(CodecError::UnknownResponse {
                code: String::from_utf8_lossy(&code).into_owned(),
            });
        }
        let error = ErrorCode::from_number(r.number(2, "error code")? as u8);
        let has_fields =
            error.is_ok() || (&code == b"A7" && error == ErrorCode::VerificationFailure);
        let body = if has_fields {
            read_body(&code, &mut r)?
        } else {
            ResponseBody::Empty
        };
        r.finish()?;
        Ok(Response { code, error, body })
    }
}

fn read_body(code: &[u8; 2], r: &mut Reader<'_>) -> Result<ResponseBody, CodecError> {
    Ok(match code {
        b"CB" | b"CD" | b"G1" => ResponseBody::PinTranslated {
            pin_len: r.number(2, "PIN length")? as u8,
            pin_block: Sensitive(r.hex(16, "PIN block")?),
            format: r.number(2, "PIN block format")? as u8,
        },
        b"M7" => ResponseBody::Mac(r.hex(16, "MAC")?),
        b"KR" if r.remaining() > 0 => ResponseBody::Arpc(r.array::<8>("ARPC")?),
        b"CX" => ResponseBody::Cvv(Sensitive(r.digits(3, "CVV")?)),
        b"A1" => {
            let lmk = KeyCryptogram::read(r, Untagged::Single, "key (LMK)")?;
            let zmk = if r.remaining() > 6 {
                Some(KeyCryptogram::read(r, Untagged::Single, "key (ZMK)")?)
            } else {
                None
            };
            ResponseBody::GeneratedKey {
                lmk,
                zmk,
                kcv: r.hex(6, "key check value")?,
            }
        }
        b"BV" => {
            let n = if r.remaining() >= 16 { 16 } else { 6 };
            ResponseBody::Kcv(r.hex(n, "key check value")?)
        }
        b"A7" => ResponseBody::ImportedKey {
            lmk: KeyCryptogram::read(r, Untagged::Single, "key (LMK)")?,
            kcv: r.hex(6, "key check value")?,
        },
        b"ND" => {
            let lmk_check = r.hex(16, "LMK check value")?;
            let fw = r.take(9, "firmware number")?;
            if !fw.iter().all(|c| c.is_ascii_graphic()) {
                return Err(CodecError::Value {
                    field: "firmware number",
                });
            }
            ResponseBody::Diagnostics {
                lmk_check,
                firmware: String::from_utf8_lossy(fw).into(),
            }
        }
        _ => ResponseBody::Empty,
    })
}

fn put_hex(out: &mut Vec<u8>, text: &str, n: usize, field: &'static str) -> Result<(), CodecError> {
    check_hex(text, n, field)?;
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

fn write_body(body: &ResponseBody, out: &mut Vec<u8>) -> Result<(), CodecError> {
    match body {
        ResponseBody::Empty => {}
        ResponseBody::PinTranslated {
            pin_len,
            pin_block,
            format,
        } => {
            put_number(out, (*pin_len).into(), 2, "PIN length")?;
            put_hex(out, pin_block.as_str(), 16, "PIN block")?;
            put_number(out, (*format).into(), 2, "PIN block format")?;
        }
        ResponseBody::Mac(m) => put_hex(out, m, 16, "MAC")?,
        ResponseBody::Arpc(a) => out.extend_from_slice(a),
        ResponseBody::Cvv(c) => {
            check_digits(c.as_str(), 3, 3, "CVV")?;
            out.extend_from_slice(c.as_str().as_bytes());
        }
        ResponseBody::GeneratedKey { lmk, zmk, kcv } => {
            lmk.write(out, Untagged::Single, "key (LMK)")?;
            if let Some(z) = zmk {
                z.write(out, Untagged::Single, "key (ZMK)")?;
            }
            put_hex(out, kcv, 6, "key check value")?;
        }
        ResponseBody::Kcv(k) => put_hex(
            out,
            k,
            if k.len() == 16 { 16 } else { 6 },
            "key check value",
        )?,
        ResponseBody::ImportedKey { lmk, kcv } => {
            lmk.write(out, Untagged::Single, "key (LMK)")?;
            put_hex(out, kcv, 6, "key check value")?;
        }
        ResponseBody::Diagnostics {
            lmk_check,
            firmware,
        } => {
            put_hex(out, lmk_check, 16, "LMK check value")?;
            if firmware.len() != 9 || !firmware.bytes().all(|c| c.is_ascii_graphic()) {
                return Err(CodecError::Encode {
                    field: "firmware number",
                    why: "not 9 characters",
                });
            }
            out.extend_from_slice(firmware.as_bytes());
        }
    }
    Ok(())
}
