//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod certs;
pub mod hsm_keys;
pub mod ledger;
pub mod load_codes;
pub mod process;
pub mod wait;
