//! cardswitch: an ISO 8583 card switch and acquirer processor.
//!
//! Layers, dependencies pointing down only:
//! - [`message`]: specs as data, parse and build, masking (no I/O).
//! - [`hsm`]: the security module's pure parts: software cryptography for
//!   the simulator and tests, the payShield host-command codec (no I/O).
//! - [`link`]: framing codecs and connections (no business rules).
//! - [`journal`]: the durable record of every exchange, card data sealed.
//! - [`switch`]: routing, translation, flows, time-outs, store-and-forward.
//! - [`clearing`], [`capture`]: acquirer processing (IPM files,
//!   settlement) and testers' tools (captures, replay), above the switch.
//! - [`sim`]: simulators for testing and demos.
//! - [`cli`]: the `cardswitch` command line on top.
// No `unsafe` but audited calls into SIMD code (`message::swar`,
// `message::ebcdic`).
#![deny(unsafe_code)]
// Without the `runtime` feature (on by default) only the pure codecs
// build: messages, framing, the capture readers and the IPM reader, which
// is all the fuzz targets need, without the switch's runtime dependencies.

pub mod capture;
pub mod clearing;
#[cfg(feature = "runtime")]
pub mod cli;
pub mod hsm;
pub mod journal;
pub mod link;
pub mod message;
#[cfg(feature = "runtime")]
pub mod node;
pub mod private_file;
#[cfg(feature = "runtime")]
pub mod sim;
#[cfg(feature = "runtime")]
pub mod switch;
#[doc(hidden)]
pub mod test_dir;
