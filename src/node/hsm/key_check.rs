//! Start-up check of the configured keys (issue 21): the HSM gives each
//! key's check value (BU) and it must be the one written beside the key.
//! A key typed or pasted wrong, or meant for another LMK, stops the start
//! with its line, instead of failing every PIN later. Never shows a key.

use super::payshield::PayShield;
use crate::hsm::command::KeyScheme;
use crate::hsm::command::request::KeyCheck;
use crate::node::config::{ConfiguredKey, KeyRole, SwitchConfig};
use crate::node::start_error::StartError;

/// Each check's own wait: a start is not a hot path (as the start's NC).
const STARTUP_CHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// payShield's 3H key type code of each role (variant LMK key types).
pub fn key_type_code(role: KeyRole) -> &'static str {
    match role {
        KeyRole::Zmk => "000",
        KeyRole::Zpk => "001",
        KeyRole::Tpk => "002",
        KeyRole::Tak => "003",
        KeyRole::Zak => "008",
        KeyRole::Bdk => "009",
        KeyRole::MkAc => "109",
        KeyRole::Cvk => "402",
    }
}

/// Every key of every link, with its link's section name.
fn configured(config: &SwitchConfig) -> Vec<(String, &ConfiguredKey)> {
    let mut keys = Vec::new();
    for a in &config.acquirers {
        let s = &a.security;
        let section = format!("acquirer '{}'", a.name);
        for k in s.pin.iter().map(|z| &z.key).chain(&s.mac_key) {
            keys.push((section.clone(), k));
        }
    }
    for i in &config.issuers {
        let s = &i.security;
        let section = format!("issuer '{}'", i.name);
        let pin = s.pin.iter().map(|z| &z.key);
        let arqc = s.arqc.iter().map(|(k, _)| k);
        for k in pin
            .chain(&s.mac_key)
            .chain(&s.zone_master_key)
            .chain(arqc)
            .chain(&s.cvv_key)
        {
            keys.push((section.clone(), k));
        }
    }
    keys
}

/// Checks every configured key's check value with the HSM.
pub(crate) async fn check_keys(config: &SwitchConfig, hsm: &PayShield) -> Result<(), StartError> {
    for (link, key) in configured(config) {
        let fail = |reason: String| StartError::Key {
            file: config.file.clone(),
            line: key.line,
            link: link.clone(),
            reason,
        };
        let length_flag = match (key.key.scheme, key.key.hex.as_str().len()) {
            (KeyScheme::Z, _) | (KeyScheme::Untagged, 16) => 0,
            (KeyScheme::T | KeyScheme::Y, _) => 2,
            _ => 1,
        };
        let check = KeyCheck {
            key_type_code: "FF".into(),
            length_flag,
            key: key.key.clone(),
            key_type: Some(key_type_code(key.role).into()),
        };
        let role = key.role.name();
        let kcv = hsm
            .key_check_within(check, STARTUP_CHECK_WAIT)
            .await
            .map_err(|e| fail(format!("{role} key: the HSM cannot check it: {e}")))?;
        let got = kcv.get(..6).unwrap_or(&kcv).to_ascii_uppercase();
        if got != key.check_value {
            return Err(fail(format!(
                "{role} key: check value {} written, the HSM computes {got} (wrong key, or another LMK)",
                key.check_value
            )));
        }
    }
    Ok(())
}
