//! The `Hsm` interface: the typed operations the switch needs from a
//! security module. Object safe (each returns a boxed future), so tests
//! and the core's glue can put another implementation behind
//! `Arc<dyn Hsm>`. Keys travel as cryptograms; PIN blocks, PANs, CVVs and
//! MAC'd data in `Sensitive` buffers that are zeroized on drop and print
//! as `Sensitive(..)`.

use std::future::Future;
use std::pin::Pin;

use super::errors::HsmError;
use crate::hsm::command::request::{GenerateKey, ImportKey, KeyCheck};
use crate::hsm::command::{KeyCryptogram, Sensitive};

/// What every operation returns.
pub type HsmFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, HsmError>> + Send + 'a>>;

/// ISO 9564 PIN block formats the translation commands take. Format 4
/// (AES, 32H, whole PAN) has no public CA / CC / G0 layout, so the codec
/// does not take it and neither does this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinFormat {
    Iso0,
    Iso1,
    Iso3,
}

impl PinFormat {
    /// payShield's format code.
    pub fn code(self) -> u8 {
        match self {
            PinFormat::Iso0 => 1,
            PinFormat::Iso1 => 5,
            PinFormat::Iso3 => 47,
        }
    }

    /// The format for payShield's code.
    pub fn from_code(code: u8) -> Option<PinFormat> {
        [PinFormat::Iso0, PinFormat::Iso1, PinFormat::Iso3]
            .into_iter()
            .find(|f| f.code() == code)
    }
}

/// An encrypted PIN block (16H) and its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinBlock {
    pub hex: Sensitive<String>,
    pub format: PinFormat,
}

/// The account number field of a PIN translation: the PAN's 12 rightmost
/// digits without the check digit (format 1 ignores it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account(pub Sensitive<String>);

impl Account {
    /// From a PAN of 13 to 19 digits; `None` for anything else.
    pub fn from_pan(pan: &str) -> Option<Account> {
        crate::switch::security::account_number(pan.as_bytes()).map(Account::from_digits)
    }

    /// From the 12 digits already taken from the PAN.
    pub fn from_digits(digits: [u8; 12]) -> Account {
        Account(Sensitive(String::from_utf8_lossy(&digits).into_owned()))
    }
}

/// CA (from a TPK) or CC (from a ZPK): one PIN block to under a ZPK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinTranslation {
    pub source_key: KeyCryptogram,
    pub destination_zpk: KeyCryptogram,
    pub pin_block: PinBlock,
    pub destination_format: PinFormat,
    pub account: Account,
}

/// G0: a PIN block under a DUKPT key (BDK + KSN) to under a ZPK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DukptTranslation {
    pub bdk: KeyCryptogram,
    pub zpk: KeyCryptogram,
    /// The KSN, 16 to 20 hex digits (its descriptor is derived).
    pub ksn: String,
    pub pin_block: PinBlock,
    pub destination_format: PinFormat,
    pub account: Account,
}

/// A translated PIN block and the PIN's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslatedPin {
    pub pin_block: PinBlock,
    pub pin_len: u8,
}

/// MAC algorithms M6 / M8 take (ISO 9797-1). The codec has no AES-CMAC
/// code (none found in public text), so neither does this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacAlgorithm {
    /// Algorithm 1: CBC-MAC.
    Iso9797Alg1,
    /// Algorithm 3: the retail MAC (X9.19).
    Iso9797Alg3,
}

/// ISO 9797-1 padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacPadding {
    Method1,
    Method2,
}

/// The MAC key's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacKeyType {
    /// Terminal authentication key (003).
    Tak,
    /// Zone authentication key (008).
    Zak,
}

/// A MAC over a whole message (M6, M8), binary input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacInput {
    pub key: KeyCryptogram,
    pub key_type: MacKeyType,
    pub algorithm: MacAlgorithm,
    pub padding: MacPadding,
    /// The message as sent (at most 65535 bytes).
    pub message: Sensitive<Vec<u8>>,
}

/// The EMV scheme of KQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmvScheme {
    /// Visa VSDC / UKIS.
    Visa,
    /// Mastercard M/Chip (Europay).
    Mastercard,
}

/// KQ: an ARQC and the data it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArqcInput {
    pub scheme: EmvScheme,
    pub mk_ac: KeyCryptogram,
    /// The 8-byte PAN / PAN sequence number block.
    pub pan_psn: Sensitive<Vec<u8>>,
    pub atc: [u8; 2],
    pub un: [u8; 4],
    /// The data the cryptogram covers (1 to 255 bytes).
    pub data: Sensitive<Vec<u8>>,
    pub arqc: [u8; 8],
}

/// Which Visa CVV (the service code the HSM computes it with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CvvKind {
    /// The magnetic stripe's CVV, with the card's service code.
    Stripe { service_code: String },
    /// The printed CVV2 (service code 000).
    Cvv2,
    /// The chip's iCVV (service code 999).
    Icvv,
}

impl CvvKind {
    pub fn service_code(&self) -> &str {
        match self {
            CvvKind::Stripe { service_code } => service_code,
            CvvKind::Cvv2 => "000",
            CvvKind::Icvv => "999",
        }
    }
}

/// CW / CY: a card's CVV inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvvInput {
    /// The CVK pair (32H or tagged).
    pub cvk: KeyCryptogram,
    pub pan: Sensitive<String>,
    /// YYMM.
    pub expiry: Sensitive<String>,
    pub kind: CvvKind,
}

/// A key and its check value (A1, A7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// Under the LMK.
    pub lmk: KeyCryptogram,
    /// Under the ZMK (A0 mode 1).
    pub zmk: Option<KeyCryptogram>,
    /// 6H.
    pub kcv: String,
}

/// NC's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    pub lmk_check: String,
    pub firmware: String,
}

/// The security module operations the switch uses.
pub trait Hsm: Send + Sync {
    /// CA: a PIN block from under a TPK to under a ZPK.
    fn translate_pin_tpk(&self, t: PinTranslation) -> HsmFuture<'_, TranslatedPin>;
    /// CC: a PIN block from one ZPK to another.
    fn translate_pin_zpk(&self, t: PinTranslation) -> HsmFuture<'_, TranslatedPin>;
    /// G0: a PIN block from a DUKPT key to under a ZPK.
    fn translate_pin_dukpt(&self, t: DukptTranslation) -> HsmFuture<'_, TranslatedPin>;
    /// M6: the MAC (8 bytes) of a message.
    fn generate_mac(&self, m: MacInput) -> HsmFuture<'_, [u8; 8]>;
    /// M8: `Ok` when `mac` is the message's; `Refused(01)` when not.
    fn verify_mac(&self, m: MacInput, mac: [u8; 8]) -> HsmFuture<'_, ()>;
    /// KQ: verifies the ARQC (`Refused(01)` when it does not), and with
    /// `arc` generates the ARPC for that response code.
    fn verify_arqc(&self, a: ArqcInput, arc: Option<[u8; 2]>) -> HsmFuture<'_, Option<[u8; 8]>>;
    /// CW: a CVV (for tests and card issuing).
    fn generate_cvv(&self, c: CvvInput) -> HsmFuture<'_, Sensitive<String>>;
    /// CY: `Ok` when `cvv` is the card's; `Refused(01)` when not.
    fn verify_cvv(&self, c: CvvInput, cvv: Sensitive<String>) -> HsmFuture<'_, ()>;
    /// A0: a new key, under the LMK (and a ZMK), with its check value.
    fn generate_key(&self, g: GenerateKey) -> HsmFuture<'_, NewKey>;
    /// A6: a key from under a ZMK to under the LMK.
    fn import_key(&self, i: ImportKey) -> HsmFuture<'_, NewKey>;
    /// BU: a key's check value (start-up checks of configured keys).
    fn key_check_value(&self, k: KeyCheck) -> HsmFuture<'_, String>;
    /// NC: the HSM's diagnostics (health).
    fn diagnostics(&self) -> HsmFuture<'_, Diagnostics>;
}
