//! CA, CC and G0: a PIN block from a terminal key (TPK), a zone key (ZPK)
//! or a DUKPT key (BDK + KSN) to a ZPK. The block is read back to its PIN
//! on the way, so a wrong key, PAN or format is an error (20), never a
//! silently wrong PIN.

use super::{Answer, Hsm, KeyType, Random};
use crate::hsm::command::request::{DukptTranslate, PinTranslate};
use crate::hsm::command::{ErrorCode, ResponseBody, Sensitive};
use crate::hsm::soft::dukpt::{self, KeyUsage, Ksn};
use crate::hsm::soft::pin_block::PinBlockFormat;
use crate::hsm::soft::translate::{self, PinBlock, PinKey, PinZone};
use crate::hsm::soft::{CryptoError, Secret, TdesKey};

/// The payShield PIN block format code for an ISO format.
fn format_of(code: u8) -> Result<PinBlockFormat, ErrorCode> {
    match code {
        1 => Ok(PinBlockFormat::Iso0),
        5 => Ok(PinBlockFormat::Iso1),
        47 => Ok(PinBlockFormat::Iso3),
        _ => Err(ErrorCode::InvalidPinBlockFormat),
    }
}

/// What the two sides and the block of a translation share.
struct Job<'a> {
    from: TdesKey,
    to: TdesKey,
    max_pin_len: u8,
    block: &'a str,
    formats: (u8, u8),
    account: &'a str,
}

/// CA (`source` TPK) and CC (`source` ZPK).
pub(super) fn translate(hsm: &Hsm, c: &PinTranslate, source: KeyType, random: &Random) -> Answer {
    let job = Job {
        from: hsm.key(source, &c.source_key, ErrorCode::SourceKeyParity)?,
        to: hsm.key(
            KeyType::ZPK,
            &c.destination_zpk,
            ErrorCode::DestinationKeyParity,
        )?,
        max_pin_len: c.max_pin_len,
        block: c.pin_block.as_str(),
        formats: (c.source_format, c.destination_format),
        account: c.account.as_str(),
    };
    run(job, random)
}

/// G0: the source key is the BDK's DUKPT PIN key for the KSN.
pub(super) fn dukpt(hsm: &Hsm, c: &DukptTranslate, random: &Random) -> Answer {
    let bdk = hsm.key(KeyType::BDK, &c.bdk, ErrorCode::SourceKeyParity)?;
    let to = hsm.key(KeyType::ZPK, &c.zpk, ErrorCode::DestinationKeyParity)?;
    // A KSN shorter than 20 digits is padded on the left with F.
    let padded = format!("{:F>20}", c.ksn);
    let ksn = Ksn::from_hex(&padded).map_err(|_| ErrorCode::InputData)?;
    let from = dukpt::host_key(&bdk, &ksn, KeyUsage::Pin).map_err(|_| ErrorCode::InputData)?;
    let job = Job {
        from,
        to,
        max_pin_len: 12,
        block: c.pin_block.as_str(),
        formats: (c.source_format, c.destination_format),
        account: c.account.as_str(),
    };
    run(job, random)
}

fn run(job: Job<'_>, random: &Random) -> Answer {
    let from_format = format_of(job.formats.0)?;
    let to_format = format_of(job.formats.1)?;
    if !(4..=12).contains(&job.max_pin_len) {
        return Err(ErrorCode::InputData);
    }
    let mut bytes = Secret::<8>::zeroed();
    hex::decode_to_slice(job.block, bytes.expose_mut()).map_err(|_| ErrorCode::InputData)?;
    let block = PinBlock::Tdes(bytes);
    // The account number is the PAN's 12 digits before its check digit:
    // any check digit gives it back.
    let pan = format!("{}0", job.account);
    let (from_key, to_key) = (PinKey::Tdes(job.from), PinKey::Tdes(job.to));
    let from = PinZone {
        key: &from_key,
        format: from_format,
    };
    let to = PinZone {
        key: &to_key,
        format: to_format,
    };
    let mut fill = [0u8; 8];
    fill.copy_from_slice(&random.expose()[24..32]);
    let t = translate::translate(from, to, &block, &pan, &fill).map_err(pin_code)?;
    if t.pin_len > usize::from(job.max_pin_len) {
        return Err(ErrorCode::PinLength);
    }
    Ok(ResponseBody::PinTranslated {
        pin_len: t.pin_len as u8,
        pin_block: Sensitive(t.block.to_hex()),
        format: job.formats.1,
    })
}

/// The payShield code for a PIN block that did not read back.
fn pin_code(e: CryptoError) -> ErrorCode {
    match e {
        CryptoError::Pan => ErrorCode::InvalidAccount,
        CryptoError::FormatKey { .. } | CryptoError::BlockLength { .. } => {
            ErrorCode::InvalidPinBlockFormat
        }
        _ => ErrorCode::PinBlockData,
    }
}
