//! `cardswitch load`'s PIN pad options (issue 21): the terminals enter a
//! PIN under DUKPT and sign their requests, with clear test keys given on
//! the command line. Test keys only: a production key never appears in
//! clear outside an HSM.

use clap::Args;

use super::CliError;
use crate::hsm::soft::TdesKey;
use crate::sim::pin_pad::{KEY_SET_ID_DEFAULT, PinPadPlan};

#[derive(Debug, Clone, Default, Args)]
pub struct PinPadArgs {
    /// Terminals enter a PIN: ISO format 0 blocks in DE52 under DUKPT keys
    /// derived from this clear test BDK (32 or 48 hex digits).
    #[arg(long)]
    pub dukpt_bdk: Option<String>,
    /// The KSN's key set identifier (10 hex digits).
    #[arg(long, default_value = "FFFF987654")]
    pub key_set_id: String,
    /// The PIN entered (4 to 12 digits).
    #[arg(long, default_value = "1234")]
    pub pin: String,
    /// The field carrying the KSN (raw if the dialect's field is binary,
    /// else 20 hex characters).
    #[arg(long, default_value_t = 53)]
    pub ksn_field: u16,
    /// Terminals sign requests (DE64 / DE128, ISO 9797-1 algorithm 3) with
    /// this clear test MAC key (16, 32 or 48 hex digits).
    #[arg(long)]
    pub mac_key: Option<String>,
    /// Requests carry the card's CVV2, made with this clear test CVK pair
    /// (32 hex digits), as a card-not-present cardholder keys it in.
    #[arg(long)]
    pub cvv2_key: Option<String>,
    /// The field carrying the CVV2.
    #[arg(long, default_value_t = 48)]
    pub cvv2_field: u16,
}

impl PinPadArgs {
    /// The plan, when any PIN pad option asks for one; bad keys are refused
    /// without repeating them.
    pub fn plan(&self) -> Result<Option<PinPadPlan>, CliError> {
        if self.dukpt_bdk.is_none() && self.mac_key.is_none() && self.cvv2_key.is_none() {
            return Ok(None);
        }
        let key = |text: &str, name: &str| {
            TdesKey::from_hex(text)
                .map_err(|_| CliError::Input(format!("{name}: 16, 32 or 48 hex digits")))
        };
        let bdk = self
            .dukpt_bdk
            .as_deref()
            .map(|b| key(b, "--dukpt-bdk"))
            .transpose()?;
        if bdk.as_ref().is_some_and(|k| k.as_bytes().len() == 8) {
            return Err(CliError::Input(
                "--dukpt-bdk: a BDK is 32 or 48 hex digits".into(),
            ));
        }
        let mut key_set_id = KEY_SET_ID_DEFAULT;
        hex::decode_to_slice(&self.key_set_id, &mut key_set_id)
            .map_err(|_| CliError::Input("--key-set-id: 10 hex digits".into()))?;
        let pin_ok =
            (4..=12).contains(&self.pin.len()) && self.pin.bytes().all(|b| b.is_ascii_digit());
        if !pin_ok {
            return Err(CliError::Input("--pin: 4 to 12 digits".into()));
        }
        if !(2..=128).contains(&self.ksn_field) || self.ksn_field == 52 || self.ksn_field == 64 {
            return Err(CliError::Input(
                "--ksn-field: a field from 2 to 128, not 52 or 64".into(),
            ));
        }
        let cvv2 = match self.cvv2_key.as_deref().map(|k| key(k, "--cvv2-key")) {
            None => None,
            Some(Ok(k)) if k.as_bytes().len() == 16 => {
                let f = self.cvv2_field;
                if !(2..=128).contains(&f) || [2, 14, 35, 52, 64, self.ksn_field].contains(&f) {
                    return Err(CliError::Input(
                        "--cvv2-field: a field from 2 to 128, not the PAN, expiry, track, PIN, KSN or MAC".into(),
                    ));
                }
                Some((k, f))
            }
            Some(_) => return Err(CliError::Input("--cvv2-key: 32 hex digits".into())),
        };
        Ok(Some(PinPadPlan {
            cvv2,
            bdk,
            key_set_id,
            pin: self.pin.clone(),
            ksn_field: self.ksn_field,
            mac_key: self
                .mac_key
                .as_deref()
                .map(|k| key(k, "--mac-key"))
                .transpose()?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_a_plan_or_a_clear_refusal() {
        assert!(PinPadArgs::default().plan().unwrap().is_none());
        let bdk = "0123456789ABCDEFFEDCBA9876543210";
        let ok = PinPadArgs {
            dukpt_bdk: Some(bdk.into()),
            key_set_id: "FFFF987654".into(),
            pin: "1234".into(),
            ksn_field: 53,
            mac_key: None,
            cvv2_key: None,
            cvv2_field: 48,
        };
        let plan = ok.plan().unwrap().unwrap();
        assert_eq!(plan.key_set_id, KEY_SET_ID_DEFAULT);
        assert!(plan.mac_key.is_none());
        let refused = |a: PinPadArgs, what: &str| {
            let e = a.plan().expect_err(what).to_string();
            assert!(e.contains(what), "{e}");
            assert!(!e.contains(&bdk[4..]), "a key in the error: {e}");
        };
        refused(
            PinPadArgs {
                dukpt_bdk: Some(format!("{bdk}0")),
                ..ok.clone()
            },
            "--dukpt-bdk",
        );
        refused(
            PinPadArgs {
                dukpt_bdk: Some(bdk[..16].into()),
                ..ok.clone()
            },
            "32 or 48",
        );
        refused(
            PinPadArgs {
                key_set_id: "FFFF".into(),
                ..ok.clone()
            },
            "--key-set-id",
        );
        refused(
            PinPadArgs {
                pin: "12a4".into(),
                ..ok.clone()
            },
            "--pin",
        );
        refused(
            PinPadArgs {
                ksn_field: 52,
                ..ok.clone()
            },
            "--ksn-field",
        );
        refused(
            PinPadArgs {
                cvv2_key: Some(bdk[..16].into()),
                ..ok.clone()
            },
            "--cvv2-key",
        );
        refused(
            PinPadArgs {
                cvv2_key: Some(bdk.into()),
                cvv2_field: 14,
                ..ok.clone()
            },
            "--cvv2-field",
        );
        let cvv2_only = PinPadArgs {
            dukpt_bdk: None,
            cvv2_key: Some(bdk.into()),
            ..ok.clone()
        };
        let plan = cvv2_only
            .plan()
            .unwrap()
            .expect("a CVV2 alone makes a plan");
        assert!(plan.bdk.is_none());
        assert_eq!(plan.cvv2.map(|(_, f)| f), Some(48));
        refused(
            PinPadArgs {
                mac_key: Some("xyz".into()),
                ..ok
            },
            "--mac-key",
        );
    }
}
