//! Simulators: an issuer that answers by rules, and the load generator's
//! terminals (their requests, pacing, connections and reversals) and the
//! run that drives them (`driver`).

pub mod connect;
pub mod driver;
pub mod issuer;
pub mod issuer_keys;
pub mod latency;
pub mod load;
pub mod load_report;
pub mod network;
pub mod pacing;
pub mod pin_pad;
pub mod record;
pub mod request;
pub mod reversal;
pub mod terminal;
