//! What the switch asks its HSM about a request (issue 21), decided
//! without one: which MAC to verify, which PIN block to translate from
//! which key to which, which MAC to make. The core sends these as
//! questions and takes the HSM's answers back as inputs; the node speaks
//! the host commands. Pure: no key is ever in clear here, only
//! cryptograms under the HSM's LMK.

use std::fmt;

use bytes::Bytes;
use zeroize::Zeroize;

use crate::hsm::command::KeyCryptogram;
use crate::message::Message;
use crate::message::mac_field::{MAC_BYTES, covered, mac_field};
use crate::message::response_codes::Outcome;
use crate::message::{Class, Spec};
use crate::switch::chip::{ChipKey, Cryptogram};
use crate::switch::cvv2::Cvv2Check;

/// An encrypted PIN block: never shown (`Debug` prints nothing of it),
/// zeroized when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct PinBlock(pub [u8; 8]);

impl Drop for PinBlock {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for PinBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinBlock(..)")
    }
}

/// The key an acquirer's PIN blocks are under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinKey {
    /// A terminal PIN key (CA).
    Tpk(KeyCryptogram),
    /// A zone PIN key shared with the acquirer (CC).
    Zpk(KeyCryptogram),
    /// DUKPT: the BDK; each request's key derives from its KSN (G0).
    Dukpt {
        bdk: KeyCryptogram,
        /// The field the KSN comes in.
        ksn_field: u16,
    },
}

/// A MAC key and whether it is a zone key (ZAK) or a terminal's (TAK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacKey {
    pub key: KeyCryptogram,
    pub zone: bool,
}

/// An acquirer's keys, as the core uses them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcquirerKeys {
    /// Its PIN key and its blocks' payShield format code (01, 05, 47).
    pub pin: Option<(PinKey, u8)>,
    /// With one, every request must carry a MAC that verifies.
    pub mac: Option<MacKey>,
    /// The field its card-not-present requests carry the CVV2 in.
    pub cvv2_field: Option<u16>,
}

/// An issuer's keys, as the core uses them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssuerKeys {
    /// Its ZPK and format code: PIN blocks are translated to it.
    pub pin: Option<(KeyCryptogram, u8)>,
    /// With one, requests sent to it are signed.
    pub mac: Option<MacKey>,
    /// Its MK-AC: stand-in approves a chip card only once its ARQC
    /// verifies.
    pub chip: Option<ChipKey>,
    /// Its CVK pair: stand-in approves a card-not-present card only once
    /// its CVV2 verifies.
    pub cvv: Option<KeyCryptogram>,
    /// Its zone master key: new working keys go to it under this.
    pub zmk: Option<KeyCryptogram>,
    /// How often working keys are exchanged (none: on demand only).
    pub exchange_every: Option<std::time::Duration>,
}

/// One thing to ask the HSM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HsmOp {
    /// Translate `block` from the acquirer's key to the issuer's ZPK.
    TranslatePin {
        from: PinKey,
        /// With DUKPT: the KSN sent with the block.
        ksn: Option<[u8; 10]>,
        to: KeyCryptogram,
        block: PinBlock,
        from_format: u8,
        to_format: u8,
        /// The PAN's 12 rightmost digits before the check digit.
        account: [u8; 12],
    },
    /// Check `mac` over `data`.
    VerifyMac {
        key: MacKey,
        data: Bytes,
        mac: [u8; MAC_BYTES],
    },
    /// Make the MAC of `data`.
    GenerateMac { key: MacKey, data: Bytes },
    /// Make a new key of 3H type `key_type`, under the LMK and `zmk`.
    GenerateKey {
        zmk: KeyCryptogram,
        key_type: &'static str,
    },
    /// Take `key`, of 3H type `key_type`, from under `zmk` to under the LMK
    /// (a key an issuer sent).
    ImportKey {
        zmk: KeyCryptogram,
        key_type: &'static str,
        key: KeyCryptogram,
    },
    /// Verify a chip card's ARQC and make the ARPC for `arc`.
    VerifyArqc {
        key: ChipKey,
        cryptogram: Cryptogram,
        arc: [u8; 2],
    },
    /// Verify a card-not-present card's CVV2 with the issuer's CVK.
    VerifyCvv2 { key: KeyCryptogram, card: Cvv2Check },
}

/// What the HSM answered to one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HsmReply {
    PinBlock(PinBlock),
    Mac([u8; MAC_BYTES]),
    /// A MAC (or cryptogram) verified.
    Verified,
    /// An ARQC verified: the ARPC for the reply.
    Arpc([u8; 8]),
    /// A new key under the LMK and under the ZMK, with its check value.
    NewKey {
        lmk: KeyCryptogram,
        zmk: KeyCryptogram,
        kcv: String,
    },
    /// An imported key under the LMK, with its check value.
    ImportedKey {
        lmk: KeyCryptogram,
        kcv: String,
    },
}

/// One operation's result: the reply, or the outcome to decline with (the
/// node maps the HSM's error: 55 for a PIN the HSM says is wrong, 63 for a
/// MAC that does not verify, 96 for a fault, a time-out or no HSM).
pub type HsmResult = Result<HsmReply, Outcome>;

/// The PAN's 12 rightmost digits before the check digit (ISO 9564's
/// account number for format 0 and 3 PIN blocks).
pub fn account_number(pan: &[u8]) -> Option<[u8; 12]> {
    if pan.len() < 13 || pan.len() > 19 || !pan.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let body = &pan[..pan.len() - 1];
    let mut out = [0u8; 12];
    out.copy_from_slice(&body[body.len() - 12..]);
    Some(out)
}

/// The KSN in field `field` of `request`: 10 raw bytes in a binary field,
/// else 20 hex characters.
pub fn ksn_of(spec: &Spec, request: &Message, field: u16) -> Option<[u8; 10]> {
    let value = request.value(field)?;
    let mut ksn = [0u8; 10];
    match spec.field(field).map(|f| f.class) {
        Some(Class::B) if value.len() == 10 => ksn.copy_from_slice(value),
        _ if value.len() == 20 => hex::decode_to_slice(value, &mut ksn).ok()?,
        _ => return None,
    }
    Some(ksn)
}

/// The check of the MAC `message` carries, over its frame as received
/// (`None`: it has no MAC, or changed since it was received).
pub fn verify_mac(key: &MacKey, spec: &Spec, message: &Message) -> Option<HsmOp> {
    let field = mac_field(message);
    let mac = <[u8; MAC_BYTES]>::try_from(message.value(field)?).ok()?;
    let frame = message.frame_as_received()?;
    let data = frame.slice_ref(covered(spec, frame, field)?);
    Some(HsmOp::VerifyMac {
        key: key.clone(),
        data,
        mac,
    })
}

/// What to ask about a request from an acquirer with `acq` keys, in `spec`,
/// going to an issuer with `iss` keys: verify its MAC (over the frame as
/// received), translate its PIN block. Empty: nothing to ask. Refused with
/// the outcome to decline with: a MAC required and missing (63), a PIN
/// block with no zone to translate it to or from (96), or no KSN or PAN
/// to translate with (30).
pub fn inbound_ops(
    acq: &AcquirerKeys,
    iss: &IssuerKeys,
    spec: &Spec,
    request: &Message,
) -> Result<Vec<HsmOp>, Outcome> {
    let mut ops = Vec::new();
    if let Some(key) = &acq.mac {
        let Some(op) = verify_mac(key, spec, request) else {
            return Err(Outcome::SecurityViolation);
        };
        ops.push(op);
    }
    let Some(block) = request.value(52) else {
        return Ok(ops);
    };
    let ((from, from_format), (to, to_format)) = match (&acq.pin, &iss.pin) {
        (None, None) => return Ok(ops),
        (Some(a), Some(i)) => (a, i),
        // One side has no PIN zone: the block cannot reach the issuer
        // under its key, so it is not forwarded at all.
        _ => return Err(Outcome::SystemMalfunction),
    };
    let block = PinBlock(<[u8; 8]>::try_from(block).map_err(|_| Outcome::FormatError)?);
    let pan = request.value(2).ok_or(Outcome::FormatError)?;
    let account = account_number(pan).ok_or(Outcome::FormatError)?;
    let ksn = match from {
        PinKey::Dukpt { ksn_field, .. } => {
            Some(ksn_of(spec, request, *ksn_field).ok_or(Outcome::FormatError)?)
        }
        _ => None,
    };
    ops.push(HsmOp::TranslatePin {
        from: from.clone(),
        ksn,
        to: to.clone(),
        block,
        from_format: *from_format,
        to_format: *to_format,
        account,
    });
    Ok(ops)
}

/// Applies the HSM's answers to `inbound_ops` to the message forwarded:
/// the translated PIN block replaces DE52. The first failure declines.
pub fn apply_inbound(results: Vec<HsmResult>, forwarded: &mut Message) -> Result<(), Outcome> {
    for result in results {
        match result? {
            HsmReply::PinBlock(block) => {
                forwarded
                    .set(52, Bytes::copy_from_slice(&block.0))
                    .map_err(|_| Outcome::SystemMalfunction)?;
            }
            HsmReply::Verified => {}
            // Not asked for on the way in.
            HsmReply::Mac(_)
            | HsmReply::Arpc(_)
            | HsmReply::NewKey { .. }
            | HsmReply::ImportedKey { .. } => {
                return Err(Outcome::SystemMalfunction);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
