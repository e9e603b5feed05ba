//! The Thales payShield host-command codec, both directions: the switch's
//! HSM client builds requests and reads responses, `hsm-sim` reads
//! requests and builds responses. Pure (no I/O) and built without the
//! `runtime` feature, so the fuzz targets run it.
//!
//! - [`frame`]: 2-byte big-endian length, a fixed-length header echoed
//!   back, then the message.
//! - [`request`] / [`response`]: the commands a switch uses (CA, CC, G0,
//!   M6, M8, KQ, CW, CY, A0, BU, A6, NC) and their answers.
//! - [`error_code`]: the HSM's 2-digit error codes.
//! - [`key`]: keys as cryptograms in fields (`U` + 32 hex and the like).
//! - `fields`: the cursor and field checks the decoders share.
//!
//! Layouts follow the payShield host command reference as published
//! (docs/security.md names each source); where the public text gives no
//! layout, the module says which choice it made.

mod error;
pub mod error_code;
mod fields;
pub mod frame;
pub mod key;
pub mod request;
mod request_keys;
pub mod response;
#[cfg(test)]
mod tests;

pub use error::CodecError;
pub use error_code::ErrorCode;
pub use fields::{Sensitive, upper_hex};
pub use key::{KeyCryptogram, KeyScheme};
pub use request::Request;
pub use response::{Response, ResponseBody};
