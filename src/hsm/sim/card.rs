//! KQ (verify an ARQC, generate an ARPC) and CW / CY (generate / verify a
//! Visa CVV): the card's keys derived or taken as the schemes say.
//!
//! KQ's keys, our reading of the public text: the MK-AC is the issuer
//! master key; the card's master key is derived from it by EMV option A
//! over the PAN / PAN sequence number block. Scheme 0 (Visa) uses the card
//! key itself with padding method 1; scheme 1 (M/Chip) a session key from
//! ATC and UN with padding method 2. The ARPC (method 1) is made with the
//! key that checked the ARQC.

use super::{Answer, Hsm, KeyType};
use crate::hsm::command::request::{ArqcCommand, CvvCommand};
use crate::hsm::command::{ErrorCode, ResponseBody, Sensitive};
use crate::hsm::soft::mac::Padding;
use crate::hsm::soft::{CryptoError, TdesKey, cvv as soft_cvv, emv};

/// The payShield code for a refusal of the card cryptography.
fn crypto_code(e: CryptoError) -> ErrorCode {
    match e {
        CryptoError::KeyLength { .. } => ErrorCode::KeyLength,
        _ => ErrorCode::InputData,
    }
}

/// PAN digits and sequence number back from KQ's 8-byte block (16 BCD
/// digits: the PAN's rightmost 14, then the 2-digit PSN).
fn pan_and_psn(block: &[u8]) -> Result<(String, u8), ErrorCode> {
    let mut digits = String::with_capacity(16);
    for b in block {
        for n in [b >> 4, b & 0x0F] {
            if n > 9 {
                return Err(ErrorCode::InputData);
            }
            digits.push(char::from(b'0' + n));
        }
    }
    if digits.len() != 16 {
        return Err(ErrorCode::InputData);
    }
    let psn = digits[14..].parse().map_err(|_| ErrorCode::InputData)?;
    digits.truncate(14);
    Ok((digits, psn))
}

/// The key and padding the ARQC is checked with.
fn ac_key(hsm: &Hsm, c: &ArqcCommand) -> Result<(TdesKey, Padding), ErrorCode> {
    let imk = hsm.key(KeyType::MK_AC, &c.mk_ac, ErrorCode::SourceKeyParity)?;
    let (pan, psn) = pan_and_psn(&c.pan_psn.0)?;
    let mk = emv::icc_master_key(&imk, &pan, psn).map_err(crypto_code)?;
    match c.scheme {
        0 => Ok((mk, Padding::Method1)),
        _ => {
            let sk = emv::session_key(&mk, emv::r_mchip(c.atc, c.un)).map_err(crypto_code)?;
            Ok((sk, Padding::Method2))
        }
    }
}

/// KQ: mode 0 verifies, 1 verifies and makes the ARPC, 2 makes it only.
pub(super) fn arqc(hsm: &Hsm, c: &ArqcCommand) -> Answer {
    let (key, padding) = ac_key(hsm, c)?;
    if c.mode <= 1 {
        let data = c.data.as_ref().ok_or(ErrorCode::InputData)?;
        let ok = emv::verify_arqc(&key, &data.0, padding, &c.arqc).map_err(crypto_code)?;
        if !ok {
            return Err(ErrorCode::VerificationFailure);
        }
    }
    if c.mode == 0 {
        return Ok(ResponseBody::Empty);
    }
    let arc = c.arc.ok_or(ErrorCode::InputData)?;
    let arpc = emv::arpc_method1(&key, &c.arqc, arc).map_err(crypto_code)?;
    Ok(ResponseBody::Arpc(arpc))
}

/// CW (no CVV given: answer it) and CY (CVV given: 00 or 01).
pub(super) fn cvv(hsm: &Hsm, c: &CvvCommand) -> Answer {
    let cvk = hsm.key(KeyType::CVK, &c.cvk, ErrorCode::SourceKeyParity)?;
    let computed = soft_cvv::cvv(&cvk, c.pan.as_str(), c.expiry.as_str(), &c.service_code)
        .map_err(crypto_code)?;
    let text = String::from_utf8_lossy(computed.expose()).into_owned();
    match &c.cvv {
        None => Ok(ResponseBody::Cvv(Sensitive(text))),
        Some(given) => {
            if crate::hsm::soft::secret::ct_eq(given.as_str().as_bytes(), computed.expose()) {
                Ok(ResponseBody::Empty)
            } else {
                Err(ErrorCode::VerificationFailure)
            }
        }
    }
}
