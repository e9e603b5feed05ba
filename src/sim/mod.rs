//! Simulators: an issuer that answers by rules, and (later) load generation.

pub mod issuer;
pub mod load;
