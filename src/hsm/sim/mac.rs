//! M6 and M8: an ISO 9797-1 MAC (algorithm 1 or 3, padding 0, 1 or 2)
//! over a message, under a TAK (003) or ZAK (008). Only mode 0 (the whole
//! message in one command) is taken; the multi-block modes answer 15.

use super::{Answer, Hsm, KeyType};
use crate::hsm::command::request::MacCommand;
use crate::hsm::command::{ErrorCode, ResponseBody};
use crate::hsm::soft::mac::{self, Padding};
use crate::hsm::soft::{CryptoError, TdesKey};

/// The MAC M6 would answer, all 8 bytes.
fn compute(hsm: &Hsm, c: &MacCommand) -> Result<[u8; 8], ErrorCode> {
    let key_type = match c.key_type.as_str() {
        "003" => KeyType::TAK,
        "008" => KeyType::ZAK,
        _ => return Err(ErrorCode::InvalidKeyTypeCode),
    };
    if c.mode != 0 {
        return Err(ErrorCode::InputData);
    }
    let key: TdesKey = hsm.key(key_type, &c.key, ErrorCode::SourceKeyParity)?;
    let padding = match c.padding {
        0 => Padding::None,
        1 => Padding::Method1,
        2 => Padding::Method2,
        _ => return Err(ErrorCode::InputData),
    };
    let hex_data;
    let data: &[u8] = match c.input_format {
        1 => {
            hex_data = hex::decode(&c.message.0).map_err(|_| ErrorCode::InputData)?;
            &hex_data
        }
        _ => &c.message.0,
    };
    let out = match c.algorithm {
        1 => mac::alg1(&key, data, padding),
        3 => mac::alg3(&key, data, padding),
        _ => return Err(ErrorCode::InputData),
    };
    out.map_err(|e| match e {
        CryptoError::KeyLength { .. } => ErrorCode::KeyLength,
        CryptoError::DataLength { .. } => ErrorCode::DataLength,
        _ => ErrorCode::InputData,
    })
}

/// M6: the MAC, 16H.
pub(super) fn generate(hsm: &Hsm, c: &MacCommand) -> Answer {
    Ok(ResponseBody::Mac(hex::encode_upper(compute(hsm, c)?)))
}

/// M8: 00 if the MAC given is the one computed, else 01.
pub(super) fn verify(hsm: &Hsm, c: &MacCommand) -> Answer {
    let computed = compute(hsm, c)?;
    let given = c.mac.as_deref().ok_or(ErrorCode::InputData)?;
    let mut want = [0u8; 8];
    hex::decode_to_slice(given, &mut want).map_err(|_| ErrorCode::InputData)?;
    if mac::verify(&computed, &want) {
        Ok(ResponseBody::Empty)
    } else {
        Err(ErrorCode::VerificationFailure)
    }
}
