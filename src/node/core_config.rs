//! The core's configuration, made from the switch's: its acquirers,
//! issuers, routes and limits.

use std::sync::Arc;

use bytes::Bytes;

use crate::node::config::{
    AcquirerSecurity, ArqcScheme, ConfiguredKey, IssuerSecurity, KeyRole, SwitchConfig,
};
use crate::switch::chip::{ChipKey, ChipScheme};
use crate::switch::core::{AcquirerSide, CoreConfig, IssuerSide};
use crate::switch::hooks::AcquirerRules;
use crate::switch::security::{AcquirerKeys, IssuerKeys, MacKey, PinKey};
use crate::switch::standin::StandIn;

/// Cards tracked by one issuer's stand-in counters at most.
const STAND_IN_CARDS_MAX: usize = 1_000_000;
/// Request keys remembered for duplicate detection at most (about 400
/// bytes each with the response kept).
const DUPLICATE_KEYS_MAX: usize = 200_000;
/// Transactions open at once at most (about 2 KiB each): beyond the
/// acquirers' own limits, a bound the machine can hold.
const TRANSACTIONS_MAX: usize = 100_000;

/// A secret seed for the core's keyed hashes, drawn from the operating
/// system's randomness (through std's hash keys) at every start.
fn secret_seed(salt: u64) -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(salt)
}

pub fn core_config(config: &SwitchConfig, rules: Option<Arc<dyn AcquirerRules>>) -> CoreConfig {
    let acquirers = config
        .acquirers
        .iter()
        .map(|a| AcquirerSide {
            name: a.name.clone(),
            spec: a.spec.clone(),
            allowed_institutions: a
                .allowed_institutions
                .iter()
                .map(|s| Bytes::from(s.clone()))
                .collect(),
            keys: acquirer_keys(&a.security),
        })
        .collect();
    let issuers = config
        .issuers
        .iter()
        .map(|i| IssuerSide {
            name: i.name.clone(),
            spec: i.spec.clone(),
            stand_in: i
                .stand_in
                .map(|r| StandIn::new(r, STAND_IN_CARDS_MAX, secret_seed(1))),
            keys: issuer_keys(&i.security),
        })
        .collect();
    let open_max: usize = config
        .acquirers
        .iter()
        .map(|a| a.in_flight_max.saturating_mul(a.connections_max))
        .fold(0, usize::saturating_add);
    CoreConfig {
        institution_id: Bytes::from(config.switch.institution_id.clone()),
        acquirers,
        issuers,
        routes: config.route_table(),
        saf_policy: config.switch.saf.policy,
        saf_entries_max: config.switch.saf.queue_max,
        transactions_max: open_max.clamp(1, TRANSACTIONS_MAX),
        duplicate_window: config.switch.duplicate_window,
        duplicate_keys_max: DUPLICATE_KEYS_MAX,
        journal: config.journal.is_some(),
        saf_response_wait: config.switch.saf.response_wait,
        rules,
        seed: secret_seed(0),
    }
}

/// An acquirer's keys as the core asks the HSM with them.
fn acquirer_keys(s: &AcquirerSecurity) -> AcquirerKeys {
    AcquirerKeys {
        pin: s.pin.as_ref().map(|z| {
            let key = z.key.key.clone();
            let from = match z.key.role {
                KeyRole::Tpk => PinKey::Tpk(key),
                KeyRole::Bdk => PinKey::Dukpt {
                    bdk: key,
                    ksn_field: s.ksn_field,
                },
                _ => PinKey::Zpk(key),
            };
            (from, z.format.hsm_code())
        }),
        mac: s.mac_key.as_ref().map(mac_key),
        cvv2_field: s.cvv2_field,
    }
}

fn issuer_keys(s: &IssuerSecurity) -> IssuerKeys {
    IssuerKeys {
        pin: s
            .pin
            .as_ref()
            .map(|z| (z.key.key.clone(), z.format.hsm_code())),
        mac: s.mac_key.as_ref().map(mac_key),
        chip: s.arqc.as_ref().map(|(k, scheme)| ChipKey {
            key: k.key.clone(),
            scheme: match scheme {
                ArqcScheme::Mchip => ChipScheme::Mchip,
                ArqcScheme::Vsdc => ChipScheme::Vsdc,
            },
        }),
        cvv: s.cvv_key.as_ref().map(|k| k.key.clone()),
        zmk: s.zone_master_key.as_ref().map(|k| k.key.clone()),
        exchange_every: s.key_exchange_interval,
    }
}

fn mac_key(k: &ConfiguredKey) -> MacKey {
    MacKey {
        key: k.key.clone(),
        zone: k.role == KeyRole::Zak,
    }
}
