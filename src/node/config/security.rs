//! The `security` tables of `[[acquirer]]` and `[[issuer]]` (issue 21):
//! the zone keys a link's PIN blocks and MACs are under, as the HSM holds
//! them. A key is written as its cryptogram under the HSM's LMK with its
//! check value (never in clear: the switch cannot decrypt it and never
//! needs to); start-up asks the HSM for each key's check value and refuses
//! to start on a mismatch. Errors name the key's line, never its value.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::check::Ctx;
use super::file::{Number, Text};
use super::{ConfigError, KEY_EXCHANGE_INTERVAL_S_RANGE, KSN_FIELD_DEFAULT, KSN_FIELD_RANGE};
use crate::hsm::command::{KeyCryptogram, KeyScheme};

/// What a configured key is for; each role has its own LMK key type, so
/// the HSM refuses a key used in the wrong role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Terminal PIN key: PIN blocks from one terminal population.
    Tpk,
    /// Zone PIN key, shared with the peer across the zone.
    Zpk,
    /// DUKPT base derivation key: each terminal's key derives from it.
    Bdk,
    /// Terminal authentication (MAC) key.
    Tak,
    /// Zone authentication (MAC) key.
    Zak,
    /// Zone master key: carries new working keys in a key exchange.
    Zmk,
    /// Issuer master key for application cryptograms (ARQC / ARPC).
    MkAc,
    /// Card verification key pair (CVV, CVV2, iCVV).
    Cvk,
}

impl KeyRole {
    fn parse(written: &str) -> Option<KeyRole> {
        Some(match written {
            "tpk" => KeyRole::Tpk,
            "zpk" => KeyRole::Zpk,
            "bdk" => KeyRole::Bdk,
            "tak" => KeyRole::Tak,
            "zak" => KeyRole::Zak,
            "zmk" => KeyRole::Zmk,
            "mk-ac" => KeyRole::MkAc,
            "cvk" => KeyRole::Cvk,
            _ => return None,
        })
    }

    /// The name written in the file.
    pub fn name(self) -> &'static str {
        match self {
            KeyRole::Tpk => "tpk",
            KeyRole::Zpk => "zpk",
            KeyRole::Bdk => "bdk",
            KeyRole::Tak => "tak",
            KeyRole::Zak => "zak",
            KeyRole::Zmk => "zmk",
            KeyRole::MkAc => "mk-ac",
            KeyRole::Cvk => "cvk",
        }
    }

    /// Roles whose keys are double or triple length only (BDKs, master
    /// keys and CVK pairs are never single DES).
    fn needs_double(self) -> bool {
        matches!(
            self,
            KeyRole::Bdk | KeyRole::MkAc | KeyRole::Cvk | KeyRole::Zmk
        )
    }
}

/// A key as configured: its cryptogram under the LMK and the check value
/// the HSM must report for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredKey {
    pub role: KeyRole,
    pub key: KeyCryptogram,
    /// Six upper-case hex digits.
    pub check_value: String,
    /// The key's line, for the start-up check's refusal.
    pub line: usize,
}

/// An ISO 9564 PIN block format the switch translates from or to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinBlockFormat {
    Iso0,
    Iso1,
    Iso3,
}

impl PinBlockFormat {
    /// The payShield format code (`01` is ISO format 0, `05` format 1,
    /// `47` format 3).
    pub fn hsm_code(self) -> u8 {
        match self {
            PinBlockFormat::Iso0 => 1,
            PinBlockFormat::Iso1 => 5,
            PinBlockFormat::Iso3 => 47,
        }
    }
}

/// The PIN zone of a link: its key and the format its blocks are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinZone {
    pub key: ConfiguredKey,
    pub format: PinBlockFormat,
}

/// An acquirer's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquirerSecurity {
    /// TPK, ZPK or BDK (DUKPT terminals).
    pub pin: Option<PinZone>,
    /// With a BDK: the field each request's KSN comes in.
    pub ksn_field: u16,
    /// TAK or ZAK: with one, requests must carry a MAC that verifies,
    /// and replies get one.
    pub mac_key: Option<ConfiguredKey>,
    /// The field its card-not-present requests carry the CVV2 in (3 or 4
    /// digits, the field's whole value), for stand-in to verify.
    pub cvv2_field: Option<u16>,
}

/// The EMV scheme an issuer's chip cards follow, for the session key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArqcScheme {
    /// Common session key with the ATC and the unpredictable number.
    Mchip,
    /// Visa VSDC (CVN 10/18): the ATC-based session key.
    Vsdc,
}

/// An issuer's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssuerSecurity {
    /// Its ZPK: PIN blocks are translated to it before forwarding.
    pub pin: Option<PinZone>,
    /// ZAK (or TAK): MACs verified on its answers, generated on requests.
    pub mac_key: Option<ConfiguredKey>,
    /// Its ZMK, for key exchange by 0800.
    pub zone_master_key: Option<ConfiguredKey>,
    /// How often to exchange working keys (none: on demand only).
    pub key_exchange_interval: Option<Duration>,
    /// MK-AC and scheme: stand-in checks ARQCs with it.
    pub arqc: Option<(ConfiguredKey, ArqcScheme)>,
    /// CVK pair: stand-in checks CVV2 with it.
    pub cvv_key: Option<ConfiguredKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyFile {
    pub(super) role: Text,
    pub(super) key: Text,
    pub(super) check_value: Text,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AcquirerSecurityFile {
    pub(super) pin_key: Option<Spanned<KeyFile>>,
    pub(super) pin_block_format: Number,
    pub(super) ksn_field: Number,
    pub(super) mac_key: Option<Spanned<KeyFile>>,
    pub(super) cvv2_field: Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IssuerSecurityFile {
    pub(super) pin_key: Option<Spanned<KeyFile>>,
    pub(super) pin_block_format: Number,
    pub(super) mac_key: Option<Spanned<KeyFile>>,
    pub(super) zone_master_key: Option<Spanned<KeyFile>>,
    pub(super) key_exchange_interval_s: Number,
    pub(super) arqc_key: Option<Spanned<KeyFile>>,
    pub(super) arqc_scheme: Option<Text>,
    pub(super) cvv_key: Option<Spanned<KeyFile>>,
}

/// One key table: its role among `allowed`, a well-formed cryptogram,
/// six hex digits of check value.
fn check_key(
    ctx: &Ctx,
    raw: &Spanned<KeyFile>,
    section: &str,
    name: &str,
    allowed: &[KeyRole],
) -> Result<ConfiguredKey, ConfigError> {
    let k = raw.get_ref();
    let names = allowed.iter().map(|r| r.name()).collect::<Vec<_>>();
    let role = KeyRole::parse(k.role.get_ref())
        .filter(|r| allowed.contains(r))
        .ok_or_else(|| {
            let reason = format!("{name}.role: one of {}", names.join(", "));
            ctx.invalid(k.role.span(), section, reason)
        })?;
    let key = parse_cryptogram(k.key.get_ref(), role.needs_double()).map_err(|what| {
        // The value is never repeated: only what is wrong with it.
        ctx.invalid(k.key.span(), section, format!("{name}.key: {what}"))
    })?;
    let kcv = k.check_value.get_ref();
    if kcv.len() != 6 || !kcv.bytes().all(|b| b.is_ascii_hexdigit()) {
        let reason = format!("{name}.check_value: six hex digits, as the HSM prints them");
        return Err(ctx.invalid(k.check_value.span(), section, reason));
    }
    Ok(ConfiguredKey {
        role,
        key,
        check_value: kcv.to_ascii_uppercase(),
        line: ctx.line(raw.span()),
    })
}

/// A key cryptogram as written: a scheme letter then its hex (`Z` 16, `U`
/// or `X` 32, `T` or `Y` 48), or 16 / 32 bare hex digits.
fn parse_cryptogram(written: &str, needs_double: bool) -> Result<KeyCryptogram, &'static str> {
    const FORM: &str =
        "a key under the LMK: Z + 16, U or X + 32, T or Y + 48 hex digits (or 16 / 32 bare)";
    let bytes = written.as_bytes();
    let (scheme, hex) = match bytes.first() {
        Some(&c) if c.is_ascii_hexdigit() => (KeyScheme::Untagged, written),
        Some(&c) => (
            KeyScheme::from_tag(c).ok_or(FORM)?,
            written.get(1..).ok_or(FORM)?,
        ),
        None => return Err(FORM),
    };
    let want: &[usize] = match scheme {
        KeyScheme::Untagged => &[16, 32],
        KeyScheme::Z => &[16],
        KeyScheme::U | KeyScheme::X => &[32],
        KeyScheme::T | KeyScheme::Y => &[48],
    };
    if !want.contains(&hex.len()) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FORM);
    }
    if needs_double && hex.len() == 16 {
        return Err("this role's keys are double or triple length");
    }
    Ok(KeyCryptogram::new(scheme, hex))
}

fn check_format(ctx: &Ctx, value: &Number, section: &str) -> Result<PinBlockFormat, ConfigError> {
    match value {
        None => Ok(PinBlockFormat::Iso0),
        Some(v) => match *v.get_ref() {
            0 => Ok(PinBlockFormat::Iso0),
            1 => Ok(PinBlockFormat::Iso1),
            3 => Ok(PinBlockFormat::Iso3),
            _ => Err(ctx.invalid(
                v.span(),
                section,
                "pin_block_format: ISO 9564 format 0, 1 or 3",
            )),
        },
    }
}

fn pin_zone(
    ctx: &Ctx,
    key: Option<&Spanned<KeyFile>>,
    format: &Number,
    section: &str,
    roles: &[KeyRole],
) -> Result<Option<PinZone>, ConfigError> {
    let Some(key) = key else {
        if let Some(v) = format {
            let reason = "pin_block_format without a pin_key";
            return Err(ctx.invalid(v.span(), section, reason));
        }
        return Ok(None);
    };
    Ok(Some(PinZone {
        key: check_key(ctx, key, section, "pin_key", roles)?,
        format: check_format(ctx, format, section)?,
    }))
}

impl Default for AcquirerSecurity {
    fn default() -> Self {
        AcquirerSecurity {
            pin: None,
            ksn_field: KSN_FIELD_DEFAULT as u16,
            mac_key: None,
            cvv2_field: None,
        }
    }
}

pub(super) fn check_acquirer_security(
    ctx: &Ctx,
    raw: &AcquirerSecurityFile,
    section: &str,
) -> Result<AcquirerSecurity, ConfigError> {
    let pin_roles = [KeyRole::Tpk, KeyRole::Zpk, KeyRole::Bdk];
    let mac_roles = [KeyRole::Tak, KeyRole::Zak];
    let range = &KSN_FIELD_RANGE;
    let ksn_field = ctx.number(
        &raw.ksn_field,
        KSN_FIELD_DEFAULT,
        range,
        section,
        "ksn_field",
    )?;
    if ksn_field == 52 || ksn_field == 64 || ksn_field == 128 {
        let at = raw.ksn_field.as_ref().map_or(0..0, |v| v.span());
        return Err(ctx.invalid(at, section, "ksn_field: not the PIN or MAC field"));
    }
    let cvv2_field = match &raw.cvv2_field {
        None => None,
        Some(v) => {
            let n: u16 = ctx.number(
                &raw.cvv2_field,
                KSN_FIELD_DEFAULT,
                range,
                section,
                "cvv2_field",
            )?;
            // The CVV2 is a field of its own, never one the switch reads
            // for something else.
            if [2, 14, 35, 52, 55, 64, 128, ksn_field].contains(&n) {
                let why = "cvv2_field: not the PAN, expiry, track, PIN, chip, KSN or MAC field";
                return Err(ctx.invalid(v.span(), section, why));
            }
            Some(n)
        }
    };
    Ok(AcquirerSecurity {
        cvv2_field,
        pin: pin_zone(
            ctx,
            raw.pin_key.as_ref(),
            &raw.pin_block_format,
            section,
            &pin_roles,
        )?,
        ksn_field,
        mac_key: raw
            .mac_key
            .as_ref()
            .map(|k| check_key(ctx, k, section, "mac_key", &mac_roles))
            .transpose()?,
    })
}

pub(super) fn check_issuer_security(
    ctx: &Ctx,
    raw: &Spanned<IssuerSecurityFile>,
    section: &str,
) -> Result<IssuerSecurity, ConfigError> {
    let s = raw.get_ref();
    let one = |k: &Option<Spanned<KeyFile>>, name: &str, role: KeyRole| {
        k.as_ref()
            .map(|k| check_key(ctx, k, section, name, &[role]))
            .transpose()
    };
    let security = IssuerSecurity {
        pin: pin_zone(
            ctx,
            s.pin_key.as_ref(),
            &s.pin_block_format,
            section,
            &[KeyRole::Zpk],
        )?,
        mac_key: s
            .mac_key
            .as_ref()
            .map(|k| check_key(ctx, k, section, "mac_key", &[KeyRole::Zak, KeyRole::Tak]))
            .transpose()?,
        zone_master_key: one(&s.zone_master_key, "zone_master_key", KeyRole::Zmk)?,
        key_exchange_interval: s
            .key_exchange_interval_s
            .as_ref()
            .map(|_| {
                let range = &KEY_EXCHANGE_INTERVAL_S_RANGE;
                let key = "key_exchange_interval_s";
                ctx.number(
                    &s.key_exchange_interval_s,
                    *range.start(),
                    range,
                    section,
                    key,
                )
                .map(Duration::from_secs)
            })
            .transpose()?,
        arqc: match one(&s.arqc_key, "arqc_key", KeyRole::MkAc)? {
            None => None,
            Some(k) => Some((k, check_arqc_scheme(ctx, s.arqc_scheme.as_ref(), section)?)),
        },
        cvv_key: one(&s.cvv_key, "cvv_key", KeyRole::Cvk)?,
    };
    check_issuer_pairs(ctx, raw, &security, section)?;
    Ok(security)
}

fn check_arqc_scheme(
    ctx: &Ctx,
    written: Option<&Text>,
    section: &str,
) -> Result<ArqcScheme, ConfigError> {
    match written.map(|t| (t.get_ref().as_str(), t.span())) {
        None => Ok(ArqcScheme::Mchip),
        Some(("mchip", _)) => Ok(ArqcScheme::Mchip),
        Some(("vsdc", _)) => Ok(ArqcScheme::Vsdc),
        Some((_, span)) => Err(ctx.invalid(span, section, "arqc_scheme: \"mchip\" or \"vsdc\"")),
    }
}

/// Keys that only make sense together: a key exchange needs the ZMK and a
/// working key to replace; an ARQC scheme needs its key.
fn check_issuer_pairs(
    ctx: &Ctx,
    raw: &Spanned<IssuerSecurityFile>,
    s: &IssuerSecurity,
    section: &str,
) -> Result<(), ConfigError> {
    let file = raw.get_ref();
    let no_exchange = s.zone_master_key.is_none() || (s.pin.is_none() && s.mac_key.is_none());
    if let (Some(v), true) = (&file.key_exchange_interval_s, no_exchange) {
        let reason = "key_exchange_interval_s needs a zone_master_key and a pin_key or mac_key";
        return Err(ctx.invalid(v.span(), section, reason));
    }
    if let (Some(t), None) = (&file.arqc_scheme, &s.arqc) {
        return Err(ctx.invalid(t.span(), section, "arqc_scheme without an arqc_key"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cryptograms_by_scheme() {
        let u = format!("U{}", "0123456789ABCDEF".repeat(2));
        assert_eq!(parse_cryptogram(&u, true).unwrap().to_field(), u);
        assert!(parse_cryptogram(&format!("T{}", "A".repeat(48)), true).is_ok());
        assert!(parse_cryptogram(&"b".repeat(16), false).is_ok());
        assert!(parse_cryptogram(&"b".repeat(16), true).is_err());
        assert!(parse_cryptogram(&format!("U{}", "A".repeat(31)), false).is_err());
        assert!(parse_cryptogram(&format!("Q{}", "A".repeat(32)), false).is_err());
        assert!(parse_cryptogram(&format!("U{}G", "A".repeat(31)), false).is_err());
        assert!(parse_cryptogram("", false).is_err());
    }
}
