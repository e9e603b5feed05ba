//! The key-management commands: A0 (generate a key, under the LMK and
//! optionally a ZMK), BU (a key's check value), A6 (import a key from
//! under a ZMK). Check values are 6H (the first 3 bytes of the key
//! encrypting zeros).

use super::lmk::{self, KeyType, LmkError};
use super::{Answer, Hsm, Random, lmk_code};
use crate::hsm::command::request::{GenerateKey, ImportKey, KeyCheck};
use crate::hsm::command::{ErrorCode, KeyCryptogram, KeyScheme, ResponseBody};
use crate::hsm::soft::TdesKey;

/// A key type code, or 04.
fn key_type(code: &str) -> Result<KeyType, ErrorCode> {
    KeyType::from_code(code).map_err(|_| ErrorCode::InvalidKeyTypeCode)
}

/// The length in bytes a scheme letter asks for (`0`: single).
fn scheme_bytes(s: KeyScheme) -> usize {
    match s {
        KeyScheme::Untagged | KeyScheme::Z => 8,
        KeyScheme::U | KeyScheme::X => 16,
        KeyScheme::T | KeyScheme::Y => 24,
    }
}

/// Refuses an untagged scheme for a key longer than single: A1's and
/// A7's key fields read an untagged key as 16H, so such an answer could
/// not be read back (27).
fn answerable(key: &TdesKey, scheme: KeyScheme) -> Result<(), ErrorCode> {
    if scheme == KeyScheme::Untagged && key.as_bytes().len() != 8 {
        Err(ErrorCode::KeyLength)
    } else {
        Ok(())
    }
}

/// A single-length key as answer fields carry it: 16H, no `Z` tag (the
/// field is "16H or 1A+32H or 1A+48H"; `Z` names the scheme asked for).
fn as_field(c: KeyCryptogram) -> KeyCryptogram {
    match c.scheme {
        KeyScheme::Z => KeyCryptogram::new(KeyScheme::Untagged, c.hex.as_str()),
        _ => c,
    }
}

/// A new key of `bytes` length from the random bytes, odd parity forced.
pub(crate) fn random_key(random: &Random, bytes: usize) -> TdesKey {
    // bytes is 8, 16 or 24 and random holds 32: from_bytes cannot fail.
    TdesKey::from_bytes(&random.expose()[..bytes])
        .expect("8, 16 or 24 bytes")
        .with_odd_parity()
}

/// A0: mode 0 under the LMK; mode 1 also under the ZMK given.
pub(super) fn generate(hsm: &Hsm, c: &GenerateKey, random: &Random) -> Answer {
    let t = key_type(&c.key_type)?;
    let key = random_key(random, scheme_bytes(c.lmk_scheme));
    let under_lmk = hsm
        .lmk
        .encrypt(t, &key, c.lmk_scheme)
        .map_err(|e| lmk_code(e, ErrorCode::SourceKeyParity))?;
    let under_zmk = match &c.zmk {
        Some((zmk, scheme)) => {
            let zmk = hsm.key(KeyType::ZMK, zmk, ErrorCode::SourceKeyParity)?;
            answerable(&key, *scheme)?;
            let c = lmk::wrap(&zmk, &key, *scheme).map_err(|_| ErrorCode::KeyLength)?;
            Some(as_field(c))
        }
        None => None,
    };
    Ok(ResponseBody::GeneratedKey {
        lmk: as_field(under_lmk),
        zmk: under_zmk,
        kcv: key.kcv_hex(),
    })
}

/// BU: the key's check value, by LMK pair code or (`FF`) key type.
pub(super) fn check(hsm: &Hsm, c: &KeyCheck) -> Answer {
    let t = match (c.key_type_code.as_str(), &c.key_type) {
        ("FF", Some(code)) => key_type(code)?,
        ("FF", None) => return Err(ErrorCode::InputData),
        (pair, _) => KeyType::from_pair_code(pair).map_err(|_| ErrorCode::InvalidKeyTypeCode)?,
    };
    let key = hsm.key(t, &c.key, ErrorCode::SourceKeyParity)?;
    let want = match c.length_flag {
        0 => 8,
        1 => 16,
        2 => 24,
        _ => return Err(ErrorCode::InvalidKeyLengthFlag),
    };
    if key.as_bytes().len() != want {
        return Err(ErrorCode::InvalidKeyLengthFlag);
    }
    Ok(ResponseBody::Kcv(key.kcv_hex()))
}

/// A6: the key from under the ZMK to under the LMK. A key of bad parity
/// is imported with the advice 01 (the answer's fields still present).
pub(super) fn import(hsm: &Hsm, c: &ImportKey) -> Result<(ErrorCode, ResponseBody), ErrorCode> {
    let t = key_type(&c.key_type)?;
    let zmk = hsm.key(KeyType::ZMK, &c.zmk, ErrorCode::SourceKeyParity)?;
    let key = lmk::unwrap_unchecked(&zmk, &c.key).map_err(|e| match e {
        LmkError::Length => ErrorCode::KeyLength,
        _ => ErrorCode::InputData,
    })?;
    answerable(&key, c.lmk_scheme)?;
    let under_lmk = hsm
        .lmk
        .encrypt(t, &key, c.lmk_scheme)
        .map_err(|e| lmk_code(e, ErrorCode::DestinationKeyParity))?;
    let code = if key.has_odd_parity() {
        ErrorCode::NoError
    } else {
        ErrorCode::VerificationFailure
    };
    let body = ResponseBody::ImportedKey {
        lmk: as_field(under_lmk),
        kcv: key.kcv_hex(),
    };
    Ok((code, body))
}
