//! cardswitch: an ISO 8583 card switch and acquirer processor.
//!
//! Layers, dependencies pointing down only:
//! - [`message`]: specs as data, parse and build, masking (no I/O).
//! - [`link`]: framing codecs and connections (no business rules).
//! - [`sim`]: simulators for testing and demos.
//! - [`cli`]: the `cardswitch` command line on top.
#![forbid(unsafe_code)]

pub mod capture;
pub mod clearing;
pub mod cli;
pub mod journal;
pub mod link;
pub mod message;
pub mod sim;
pub mod switch;
