//! The security module's pure parts (issue 21): the software cryptography
//! that `cardswitch hsm-sim`, the load generator's terminals and the tests
//! use ([`soft`]), and the Thales payShield host-command codec that the
//! switch's HSM client and the simulator share ([`command`]).
//!
//! Pure like `message/`: no I/O, no clock, no randomness of its own (the
//! caller passes random fill in), and it imports nothing above it. The
//! switch itself never calls [`soft`] for PIN work: it asks an HSM, through
//! [`command`].

pub mod command;
pub mod sim;
pub mod soft;
