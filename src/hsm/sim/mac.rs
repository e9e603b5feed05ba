//! M6 and M8: an ISO 9797-1 MAC (algorithm 1 or 3, padding 0, 1 or 2)
//! over a message, under a TAK (003) or ZAK (008). M6 takes a long
//! message in pieces too: mode 1 (first), 2 (middle) and 3 (last) carry
//! the CBC chain between commands as a 16H IV (clear: it is a MAC
//! prefix, not a key); the pieces before the last are whole blocks and
//! are not padded. M8 takes the whole message (mode 0) only.

use super::{Answer, Hsm, KeyType};
use crate::hsm::command::request::MacCommand;
use crate::hsm::command::{ErrorCode, ResponseBody};
use crate::hsm::soft::mac::{self, Padding};
use crate::hsm::soft::{CryptoError, DesKeyLength, TdesKey};

/// The key, padding and message bytes of a MAC command.
struct Input {
    key: TdesKey,
    padding: Padding,
    data: Vec<u8>,
}

fn input(hsm: &Hsm, c: &MacCommand) -> Result<Input, ErrorCode> {
    let key_type = match c.key_type.as_str() {
        "003" => KeyType::TAK,
        "008" => KeyType::ZAK,
        _ => return Err(ErrorCode::InvalidKeyTypeCode),
    };
    let key = hsm.key(key_type, &c.key, ErrorCode::SourceKeyParity)?;
    let padding = match c.padding {
        0 => Padding::None,
        1 => Padding::Method1,
        2 => Padding::Method2,
        _ => return Err(ErrorCode::InputData),
    };
    let data = match c.input_format {
        1 => hex::decode(&c.message.0).map_err(|_| ErrorCode::InputData)?,
        _ => c.message.0.clone(),
    };
    if c.algorithm == 3 && key.length() != DesKeyLength::Double {
        return Err(ErrorCode::KeyLength);
    }
    if c.algorithm != 1 && c.algorithm != 3 {
        return Err(ErrorCode::InputData);
    }
    Ok(Input { key, padding, data })
}

/// The whole-message MAC (mode 0), all 8 bytes.
fn whole(c: &MacCommand, i: &Input) -> Result<[u8; 8], ErrorCode> {
    let out = match c.algorithm {
        1 => mac::alg1(&i.key, &i.data, i.padding),
        _ => mac::alg3(&i.key, &i.data, i.padding),
    };
    out.map_err(|e| match e {
        CryptoError::KeyLength { .. } => ErrorCode::KeyLength,
        CryptoError::DataLength { .. } => ErrorCode::DataLength,
        _ => ErrorCode::InputData,
    })
}

/// One piece of a long message (modes 1 to 3): the chain on from the IV;
/// the last piece padded and, for algorithm 3, finished with the right
/// half's decryption and the left half's encryption.
fn piece(c: &MacCommand, i: &Input) -> Result<[u8; 8], ErrorCode> {
    let mut chain = [0u8; 8];
    if let Some(iv) = &c.iv {
        hex::decode_to_slice(iv, &mut chain).map_err(|_| ErrorCode::InputData)?;
    }
    let last = c.mode == 3;
    let data = if last {
        mac::pad(&i.data, i.padding).map_err(|_| ErrorCode::DataLength)?
    } else if !i.data.is_empty() && i.data.len().is_multiple_of(8) {
        i.data.clone()
    } else {
        return Err(ErrorCode::DataLength);
    };
    let part = |n: usize| TdesKey::from_bytes(i.key.part(n).expose()).expect("8-byte part");
    let cipher = if c.algorithm == 3 {
        part(0).cipher()
    } else {
        i.key.cipher()
    };
    let mut chain = cipher
        .cbc_last(chain, &data)
        .map_err(|_| ErrorCode::DataLength)?;
    if last && c.algorithm == 3 {
        part(1).decrypt_block(&mut chain);
        cipher.encrypt_block(&mut chain);
    }
    Ok(chain)
}

/// M6: the MAC (modes 0 and 3) or the IV to pass on (modes 1 and 2), 16H.
pub(super) fn generate(hsm: &Hsm, c: &MacCommand) -> Answer {
    let i = input(hsm, c)?;
    let out = if c.mode == 0 {
        whole(c, &i)?
    } else {
        piece(c, &i)?
    };
    Ok(ResponseBody::Mac(hex::encode_upper(out)))
}

/// M8: 00 if the MAC given is the one computed, else 01.
pub(super) fn verify(hsm: &Hsm, c: &MacCommand) -> Answer {
    if c.mode != 0 {
        return Err(ErrorCode::InputData);
    }
    let computed = whole(c, &input(hsm, c)?)?;
    let given = c.mac.as_deref().ok_or(ErrorCode::InputData)?;
    let mut want = [0u8; 8];
    hex::decode_to_slice(given, &mut want).map_err(|_| ErrorCode::InputData)?;
    if mac::verify(&computed, &want) {
        Ok(ResponseBody::Empty)
    } else {
        Err(ErrorCode::VerificationFailure)
    }
}
