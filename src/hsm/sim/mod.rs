//! The software HSM behind `cardswitch hsm-sim`: a pure dispatcher from a
//! payShield host command ([`Request`]) to its answer ([`Response`]). Keys
//! arrive as cryptograms under the simulator's LMK ([`lmk`]), are
//! decrypted by the key type the command expects, used with
//! [`crate::hsm::soft`] and never leave in the clear. Errors are answered
//! with the codes a payShield gives (10 / 11 parity, 20 / 23 / 24 PIN
//! block, 01 verification failure, 27 key length, 15 input data).
//!
//! Pure: no I/O, no clock; the random bytes a command needs (a new key,
//! PIN block fill) are passed in with each request. Only the simulator
//! and tests use this module (`tests/layering.rs`).

mod card;
mod keys;
pub mod lmk;
mod mac;
mod pin;
#[cfg(test)]
mod published;
#[cfg(test)]
mod tests;

use crate::hsm::command::response::response_code;
use crate::hsm::command::{ErrorCode, KeyCryptogram, Request, Response, ResponseBody};
use crate::hsm::soft::{Secret, TdesKey};

pub use lmk::{KeyType, Lmk, LmkError};

/// Random bytes per request: bytes 0..24 make a generated key, 24..32
/// the fill of a PIN block (formats 1 and 3).
pub type Random = Secret<32>;

/// The firmware number NC reports (9 characters).
pub const FIRMWARE: &str = "CSWSIM001";

/// What a command's work gives: its fields, or the error code to answer.
type Answer = Result<ResponseBody, ErrorCode>;

/// Keys kept decrypted at most (each a zeroized `TdesKey`): a switch
/// uses a handful of zone keys, so the cache rarely fills; when it does it
/// starts again.
const KEYS_CACHED_MAX: usize = 1024;

/// A cached key: its type (pair, variant) and its cryptogram's field.
type CachedKey = (usize, u8, String);

/// The simulated HSM: its LMK, and the keys it decrypted from under it
/// (a real HSM decrypts them in hardware each time; in software the LMK's
/// DES took about a fifth of each command).
pub struct Hsm {
    lmk: Lmk,
    keys: std::sync::Mutex<std::collections::HashMap<CachedKey, TdesKey>>,
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hsm(..)")
    }
}

impl Hsm {
    /// An HSM holding `lmk`.
    pub fn new(lmk: Lmk) -> Hsm {
        Hsm {
            lmk,
            keys: Default::default(),
        }
    }

    /// The LMK, for forming and generating keys at the console.
    pub fn lmk(&self) -> &Lmk {
        &self.lmk
    }

    /// Answers one command.
    pub fn handle(&self, request: &Request, random: &Random) -> Response {
        let (error, body) = match request {
            // A6 alone may answer an advice (01) with its fields.
            Request::A6(c) => keys::import(self, c).unwrap_or_else(|e| (e, ResponseBody::Empty)),
            other => match self.answer(other, random) {
                Ok(body) => (ErrorCode::NoError, body),
                Err(e) => (e, ResponseBody::Empty),
            },
        };
        Response {
            // Every request code has its response code in the codec's table.
            code: response_code(request.code()).unwrap_or(*b"ZZ"),
            error,
            body,
        }
    }

    fn answer(&self, request: &Request, random: &Random) -> Answer {
        match request {
            Request::Ca(c) => pin::translate(self, c, KeyType::TPK, random),
            Request::Cc(c) => pin::translate(self, c, KeyType::ZPK, random),
            Request::G0(c) => pin::dukpt(self, c, random),
            Request::M6(c) => mac::generate(self, c),
            Request::M8(c) => mac::verify(self, c),
            Request::Kq(c) => card::arqc(self, c),
            Request::Cw(c) | Request::Cy(c) => card::cvv(self, c),
            Request::A0(c) => keys::generate(self, c, random),
            Request::Bu(c) => keys::check(self, c),
            Request::Nc => Ok(ResponseBody::Diagnostics {
                lmk_check: self.lmk.check_value(),
                firmware: FIRMWARE.into(),
            }),
            // A6 is answered in `handle`; a command added to the codec
            // but not here is not licensed.
            _ => Err(ErrorCode::NotLicensed),
        }
    }

    /// The clear key of `c` under the LMK for `t`; a parity failure is
    /// answered with `parity` (10 for a source key, 11 for a destination).
    fn key(&self, t: KeyType, c: &KeyCryptogram, parity: ErrorCode) -> Result<TdesKey, ErrorCode> {
        let id = (t.pair, t.variant, c.to_field());
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = keys.get(&id) {
            return Ok(k.clone());
        }
        // Only keys that decrypt are kept: a refusal is decided each time.
        let key = self.lmk.decrypt(t, c).map_err(|e| lmk_code(e, parity))?;
        if keys.len() >= KEYS_CACHED_MAX {
            keys.clear();
        }
        keys.insert(id, key.clone());
        Ok(key)
    }
}

/// The payShield code for an LMK error.
fn lmk_code(e: LmkError, parity: ErrorCode) -> ErrorCode {
    match e {
        LmkError::Parity => parity,
        LmkError::Length => ErrorCode::KeyLength,
        LmkError::KeyType => ErrorCode::InvalidKeyTypeCode,
        _ => ErrorCode::InputData,
    }
}
