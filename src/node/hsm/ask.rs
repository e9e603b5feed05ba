//! The core's HSM questions as `Hsm` calls: each operation of a question
//! is issued at once (so the pool pipelines them) and the answers come
//! back in order, a failure as the response code the HSM's error maps to.
//! Errors are logged by command and code only.

use std::sync::Arc;

use futures_util::future::join_all;
use tracing::warn;

use super::errors::HsmError;
use super::operations::{
    Account, ArqcInput, CvvInput, CvvKind, DukptTranslation, EmvScheme, Hsm, MacAlgorithm,
    MacInput, MacKeyType, MacPadding, PinBlock, PinFormat, PinTranslation,
};
use crate::hsm::command::request::{GenerateKey, ImportKey};
use crate::hsm::command::{KeyScheme, Sensitive, upper_hex};
use crate::message::response_codes::Outcome;
use crate::switch::chip::ChipScheme;
use crate::switch::security::{self, HsmOp, HsmReply, HsmResult, MacKey, PinKey};

/// Every operation's result, in order.
pub async fn perform(hsm: Arc<dyn Hsm>, ops: Vec<HsmOp>) -> Vec<HsmResult> {
    join_all(ops.into_iter().map(|op| one(hsm.clone(), op))).await
}

async fn one(hsm: Arc<dyn Hsm>, op: HsmOp) -> HsmResult {
    let (command, result) = match op {
        HsmOp::TranslatePin {
            from,
            ksn,
            to,
            block,
            from_format,
            to_format,
            account,
        } => {
            translate(
                hsm.as_ref(),
                from,
                ksn,
                to,
                block,
                (from_format, to_format),
                account,
            )
            .await
        }
        HsmOp::VerifyMac { key, data, mac } => {
            let r = hsm.verify_mac(mac_input(key, &data), mac).await;
            (*b"M8", r.map(|()| HsmReply::Verified))
        }
        HsmOp::GenerateMac { key, data } => {
            let r = hsm.generate_mac(mac_input(key, &data)).await;
            (*b"M6", r.map(HsmReply::Mac))
        }
        HsmOp::GenerateKey { zmk, key_type } => {
            // Double length, variant scheme under both the LMK and the ZMK.
            let scheme = zmk.scheme;
            let g = GenerateKey {
                mode: 1,
                key_type: key_type.to_string(),
                lmk_scheme: KeyScheme::U,
                zmk: Some((
                    zmk,
                    if scheme == KeyScheme::X {
                        KeyScheme::X
                    } else {
                        KeyScheme::U
                    },
                )),
            };
            let r = hsm.generate_key(g).await.and_then(|k| match k.zmk {
                Some(zmk) => Ok(HsmReply::NewKey {
                    lmk: k.lmk,
                    zmk,
                    kcv: k.kcv,
                }),
                None => Err(HsmError::Unavailable),
            });
            (*b"A0", r)
        }
        HsmOp::ImportKey { zmk, key_type, key } => {
            let i = ImportKey {
                key_type: key_type.to_string(),
                zmk,
                key,
                lmk_scheme: KeyScheme::U,
            };
            let r = hsm.import_key(i).await;
            (
                *b"A6",
                r.map(|k| HsmReply::ImportedKey {
                    lmk: k.lmk,
                    kcv: k.kcv,
                }),
            )
        }
        HsmOp::VerifyArqc {
            key,
            cryptogram: c,
            arc,
        } => {
            let input = ArqcInput {
                scheme: match key.scheme {
                    ChipScheme::Mchip => EmvScheme::Mastercard,
                    ChipScheme::Vsdc => EmvScheme::Visa,
                },
                mk_ac: key.key,
                pan_psn: Sensitive(c.pan_psn.to_vec()),
                atc: c.atc,
                un: c.un,
                data: Sensitive(c.data.to_vec()),
                arqc: c.arqc,
            };
            let r = hsm.verify_arqc(input, Some(arc)).await;
            // Asked with an ARC, KQ answers the ARPC.
            let r = r.and_then(|arpc| arpc.map(HsmReply::Arpc).ok_or(HsmError::Unavailable));
            (*b"KQ", r)
        }
        HsmOp::VerifyCvv2 { key, card } => {
            let input = CvvInput {
                cvk: key,
                pan: Sensitive(card.pan.clone()),
                expiry: Sensitive(card.expiry.clone()),
                kind: CvvKind::Cvv2,
            };
            let r = hsm.verify_cvv(input, Sensitive(card.cvv2.clone())).await;
            (*b"CY", r.map(|()| HsmReply::Verified))
        }
    };
    result.map_err(|e| {
        let outcome = e.outcome(&command);
        let command = String::from_utf8_lossy(&command);
        warn!(%command, error = %e, answer = outcome.code(), "HSM command failed");
        outcome
    })
}

/// CA, CC or G0 by the acquirer's key.
async fn translate(
    hsm: &dyn Hsm,
    from: PinKey,
    ksn: Option<[u8; 10]>,
    to: crate::hsm::command::KeyCryptogram,
    block: security::PinBlock,
    (from_format, to_format): (u8, u8),
    account: [u8; 12],
) -> ([u8; 2], Result<HsmReply, HsmError>) {
    let (Some(source), Some(destination)) = (
        PinFormat::from_code(from_format),
        PinFormat::from_code(to_format),
    ) else {
        return (*b"CA", Err(HsmError::Unavailable));
    };
    let pin_block = PinBlock {
        hex: Sensitive(upper_hex(&block.0)),
        format: source,
    };
    let account = Account::from_digits(account);
    let translation = |source_key| PinTranslation {
        source_key,
        destination_zpk: to.clone(),
        pin_block: pin_block.clone(),
        destination_format: destination,
        account: account.clone(),
    };
    let (command, answer) = match from {
        PinKey::Tpk(key) => (*b"CA", hsm.translate_pin_tpk(translation(key)).await),
        PinKey::Zpk(key) => (*b"CC", hsm.translate_pin_zpk(translation(key)).await),
        PinKey::Dukpt { bdk, .. } => {
            let t = DukptTranslation {
                bdk,
                zpk: to.clone(),
                ksn: ksn.map(|k| upper_hex(&k)).unwrap_or_default(),
                pin_block: pin_block.clone(),
                destination_format: destination,
                account: account.clone(),
            };
            (*b"G0", hsm.translate_pin_dukpt(t).await)
        }
    };
    let reply = answer.and_then(|t| {
        let mut out = [0u8; 8];
        hex::decode_to_slice(t.pin_block.hex.as_str(), &mut out)
            .map_err(|_| HsmError::Unavailable)?;
        Ok(HsmReply::PinBlock(security::PinBlock(out)))
    });
    (command, reply)
}

/// The retail MAC (ISO 9797-1 algorithm 3, padding method 1) over `data`.
fn mac_input(key: MacKey, data: &[u8]) -> MacInput {
    MacInput {
        key: key.key,
        key_type: if key.zone {
            MacKeyType::Zak
        } else {
            MacKeyType::Tak
        },
        algorithm: MacAlgorithm::Iso9797Alg3,
        padding: MacPadding::Method1,
        message: Sensitive(data.to_vec()),
    }
}

/// What a question is answered with when no HSM is configured (the
/// configuration refuses keys without `[hsm]`, so only a bug gets here).
pub fn unavailable(ops: &[HsmOp]) -> Vec<HsmResult> {
    ops.iter()
        .map(|_| Err(Outcome::SystemMalfunction))
        .collect()
}
