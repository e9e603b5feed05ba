//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod certs;
pub mod ledger;
pub mod process;
pub mod wait;
