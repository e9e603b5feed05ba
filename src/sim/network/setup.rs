//! The simulated switch's configuration: one or two issuers (a 1987 and a
//! 1993 ASCII host, so translation runs), acquirers on iso87-ascii, small
//! limits (a core is made per seed and per restart), stand-in on the
//! first issuer in some seeds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::hsm::command::{KeyCryptogram, KeyScheme};
use crate::message::Spec;
use crate::node::config::SwitchConfig;
use crate::switch::core::{AcquirerSide, Core, CoreConfig, IssuerSide, Mutation};
use crate::switch::saf::SafPolicy;
use crate::switch::security::{AcquirerKeys, IssuerKeys, PinKey};
use crate::switch::standin::{StandIn, StandInRules};

/// The stand-in rules of the first issuer, when it has them.
pub const STAND_IN: StandInRules = StandInRules {
    per_transaction_max: 30_000,
    per_card_daily_count: 2,
    per_card_daily_amount: 50_000,
};

/// The issuers' names, specs, BIN prefixes and time-outs.
pub const ISSUERS: [(&str, &str, &str); 2] = [
    ("visa", "iso87-ascii", "476173"),
    ("mc", "iso93-ascii", "545400"),
];

const ROUTES: &str = r#"
[switch]
institution_id = "99000000001"
[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = { length = "binary2" }
[[issuer]]
name = "visa"
addresses = ["127.0.0.1:9"]
spec = "iso87-ascii"
framing = { length = "binary2" }
[[issuer]]
name = "mc"
addresses = ["127.0.0.1:9"]
spec = "iso93-ascii"
framing = { length = "binary2" }
[[route]]
bins = ["476173"]
issuer = "visa"
timeout_ms = 2000
[[route]]
bins = ["545400"]
issuer = "mc"
timeout_ms = 3000
"#;

/// What a seed's switch is: fixed for the whole run, restarts included.
#[derive(Clone)]
pub struct Setup {
    pub acquirer_spec: Arc<Spec>,
    pub issuer_specs: Vec<Arc<Spec>>,
    pub acquirers: usize,
    pub issuers: usize,
    pub stand_in: bool,
    /// PIN zones on every link: PIN blocks translated by a simulated HSM.
    pub hsm: bool,
    pub mutation: Option<Mutation>,
}

/// A zone key's cryptogram (the simulated HSM never reads it).
fn zone_key(c: char) -> KeyCryptogram {
    KeyCryptogram::new(KeyScheme::U, &c.to_string().repeat(32))
}

/// The core's keyed hashes, fixed: their values never change a decision,
/// and a fixed seed keeps every run of a scenario the same.
const HASH_SEED: u64 = 0x5eed;

/// A spec shipped with the binary (they are embedded: never missing),
/// loaded once per process and shared by every seed's world: loading one
/// from its TOML took a third of a seed's time. A spec's plan cache
/// changes how fast it parses, never what.
fn spec(name: &str) -> Arc<Spec> {
    static LOADED: Mutex<Vec<(String, Arc<Spec>)>> = Mutex::new(Vec::new());
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, spec)) = loaded.iter().find(|(n, _)| n == name) {
        return spec.clone();
    }
    let spec = Spec::resolve(name).expect("shipped spec");
    loaded.push((name.to_string(), spec.clone()));
    spec
}

impl Setup {
    pub fn new(
        acquirers: usize,
        issuers: usize,
        stand_in: bool,
        mutation: Option<Mutation>,
    ) -> Setup {
        Setup {
            acquirer_spec: spec("iso87-ascii"),
            issuer_specs: ISSUERS.iter().map(|(_, s, _)| spec(s)).collect(),
            acquirers,
            issuers,
            stand_in,
            hsm: false,
            mutation,
        }
    }

    /// With PIN zones on every link (a simulated HSM translates).
    pub fn with_hsm(mut self, on: bool) -> Setup {
        self.hsm = on;
        self
    }

    pub fn acquirer_name(i: usize) -> String {
        format!("acq{i}")
    }

    /// A fresh core on this configuration (at start and after a crash).
    pub fn core(&self) -> Core {
        let cfg = SwitchConfig::from_toml(ROUTES, "simulate.toml").expect("simulator routes");
        let acquirers = (0..self.acquirers)
            .map(|i| AcquirerSide {
                name: Setup::acquirer_name(i),
                spec: self.acquirer_spec.clone(),
                allowed_institutions: Vec::new(),
                keys: AcquirerKeys {
                    pin: self.hsm.then(|| (PinKey::Zpk(zone_key('A')), 1)),
                    mac: None,
                    cvv2_field: self.hsm.then_some(super::acquirer::SIM_CVV2_FIELD),
                },
            })
            .collect();
        // Both issuers are always configured (the route table names them);
        // a seed with one issuer sends no traffic to the second.
        let issuers = ISSUERS
            .iter()
            .enumerate()
            .map(|(i, (name, _, _))| IssuerSide {
                name: (*name).to_string(),
                spec: self.issuer_specs[i].clone(),
                stand_in: (i == 0 && self.stand_in).then(|| StandIn::new(STAND_IN, 100, HASH_SEED)),
                keys: IssuerKeys {
                    pin: self.hsm.then(|| (zone_key('B'), 1)),
                    cvv: self.hsm.then(|| zone_key('C')),
                    ..Default::default()
                },
            })
            .collect();
        let mut core = Core::new(CoreConfig {
            institution_id: Bytes::from_static(b"99000000001"),
            acquirers,
            issuers,
            routes: cfg.route_table(),
            saf_policy: SafPolicy {
                retry_min: Duration::from_secs(1),
                retry_max: Duration::from_secs(30),
                expiry: Duration::from_secs(24 * 3600),
                attempts_max: 1_000,
            },
            saf_entries_max: 2_000,
            transactions_max: 200,
            duplicate_window: Duration::from_secs(120),
            duplicate_keys_max: 1_000,
            journal: true,
            saf_response_wait: Duration::from_secs(5),
            rules: None,
            seed: HASH_SEED,
        });
        if let Some(m) = self.mutation {
            core.set_mutation(m);
        }
        core
    }
}
