//! `cardswitch demo --hsm`: the demo with the security module. An
//! `hsm-sim` holds the keys under its test LMK; the terminals are DUKPT
//! PIN pads that sign their requests; every PIN block is translated from
//! the terminals' BDK to each issuer's ZPK, MACs are checked and made on
//! the terminal link and on issuer-b's, and the issuers read each PIN
//! back (a PIN that did not arrive under their key is declined 55).
//! Published test keys only: the demo's keys are no secret.

use super::CliError;
use super::hsm_sim::test_key_under_lmk;
use super::pin_pad_args::PinPadArgs;

/// The X9.24 examples' BDK.
const BDK: &str = "0123456789ABCDEFFEDCBA9876543210";
const TAK: &str = "0123456789ABCDEF0123456789ABCDEF";
const ZPK_A: &str = "89ABCDEF01234567FEDCBA9876543210";
const ZPK_B: &str = "FEDCBA987654321089ABCDEF01234567";
const ZAK_B: &str = "FEDCBA98765432100123456789ABCDEF";
/// The PIN every terminal enters and the issuers expect.
const PIN: &str = "1234";
/// iso87-binary's DE53 is 16 digits: the 20-hex-digit KSN travels in a
/// private field.
const KSN_FIELD: u16 = 62;

/// The configuration's tables for the demo's keys.
pub(super) struct SecureTables {
    pub hsm: String,
    pub acquirer: String,
    pub issuer_a: String,
    pub issuer_b: String,
}

fn key(role: &str, key_type: &str, clear: &str) -> Result<String, CliError> {
    let (key, check) = test_key_under_lmk(key_type, clear)?;
    Ok(format!(
        "{{ role = \"{role}\", key = \"{key}\", check_value = \"{check}\" }}"
    ))
}

/// The tables for a switch whose HSM listens on `hsm`.
pub(super) fn tables(hsm: &str) -> Result<SecureTables, CliError> {
    Ok(SecureTables {
        hsm: format!("[hsm]\naddress = \"{hsm}\"\nconnections = 2\n"),
        acquirer: format!(
            "[acquirer.security]\npin_key = {}\nksn_field = {KSN_FIELD}\nmac_key = {}\n",
            key("bdk", "BDK", BDK)?,
            key("tak", "TAK", TAK)?
        ),
        issuer_a: format!(
            "[issuer.security]\npin_key = {}\n",
            key("zpk", "ZPK", ZPK_A)?
        ),
        issuer_b: format!(
            "[issuer.security]\npin_key = {}\nmac_key = {}\n",
            key("zpk", "ZPK", ZPK_B)?,
            key("zak", "ZAK", ZAK_B)?
        ),
    })
}

/// `issuer-sim` options for issuer-a (`b` false) or issuer-b: its clear
/// ZPK to read PINs with, issuer-b's ZAK to check and sign MACs.
pub(super) fn issuer_args(b: bool) -> Vec<&'static str> {
    let mut args = vec![
        "--pin-key",
        if b { ZPK_B } else { ZPK_A },
        "--expect-pin",
        PIN,
    ];
    if b {
        args.extend(["--mac-key", ZAK_B]);
    }
    args
}

/// The terminals' PIN pads.
pub(super) fn pin_pads() -> PinPadArgs {
    PinPadArgs {
        dukpt_bdk: Some(BDK.into()),
        key_set_id: "FFFF987654".into(),
        pin: PIN.into(),
        ksn_field: KSN_FIELD,
        mac_key: Some(TAK.into()),
        cvv2_key: None,
        cvv2_field: 48,
    }
}
