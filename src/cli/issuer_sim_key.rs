//! `issuer-sim --send-new-key`: the issuer starts a key exchange, as
//! issuers do: on each connection it sends an 0800 with DE70 = 161 and, in
//! DE48, the key type (001, a ZPK), the new key under the zone master key
//! (`U` + 32H, as an HSM wraps it) and its check value. It prints the
//! answer's DE39 ("new key answered 00") for tests to read, never a key.

use std::io::Write;
use std::time::SystemTime;

use super::CliError;
use crate::hsm::command::KeyScheme;
use crate::hsm::sim::lmk;
use crate::hsm::soft::TdesKey;
use crate::message::{Message, Spec, netmgmt};

/// The 0800's DE48, made once from the clear test keys.
pub(super) struct NewKey {
    de48: String,
}

impl NewKey {
    /// From `--send-new-key` and `--zone-master-key` (clear hex).
    pub(super) fn from_args(
        key: Option<&str>,
        zmk: Option<&str>,
    ) -> Result<Option<NewKey>, CliError> {
        let Some(key) = key else {
            return Ok(None);
        };
        let clear = |hex: &str, name: &str| {
            TdesKey::from_hex(hex).map_err(|_| CliError::Input(format!("{name}: 32 hex digits")))
        };
        let zmk =
            zmk.ok_or_else(|| CliError::Input("--send-new-key needs --zone-master-key".into()))?;
        let (key, zmk) = (
            clear(key, "--send-new-key")?,
            clear(zmk, "--zone-master-key")?,
        );
        let wrapped = lmk::wrap(&zmk, &key, KeyScheme::U)
            .map_err(|_| CliError::Input("--send-new-key: a double-length key".into()))?;
        Ok(Some(NewKey {
            de48: format!("001{}{}", wrapped.to_field(), key.kcv_hex()),
        }))
    }

    /// The 0800 bringing the key, in `spec`'s version, under `stan`.
    pub(super) fn request(&self, spec: &Spec, stan: u32) -> Option<Message> {
        let has_de70 = spec.field(70).is_some();
        netmgmt::new_key_request(
            spec.version.digit(),
            stan,
            SystemTime::now(),
            has_de70,
            &self.de48,
        )
    }
}

/// Prints the switch's answer to the key sent (its DE39).
pub(super) fn print_answer(answer: &Message) {
    println!("new key answered {}", answer.get_str(39).unwrap_or("-"));
    let _ = std::io::stdout().flush();
}
