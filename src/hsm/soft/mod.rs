//! Software cryptography for payment keys and data: what an HSM computes,
//! written from the public standards, for the simulator (`hsm-sim`), test
//! terminals and tests only. The switch never runs PIN cryptography here.
//!
//! - [`secret`]: zeroized buffers whose `Debug` never shows their bytes.
//! - [`des`]: our own table-driven DES / TDES (speed; not constant time).
//! - [`keys`]: DES / TDES and AES keys, check values, parity.
//! - [`pin_block`] (ISO 9564 formats 0, 1, 3) and [`pin_block4`] (format 4,
//!   AES), [`translate`] (a PIN block from one key and format to another).
//! - [`dukpt`] (ANSI X9.24-1 TDES DUKPT, host side) and [`dukpt_terminal`]
//!   (the terminal's future-key registers).
//! - [`mac`]: ISO 9797-1 algorithms 1 and 3, AES-CMAC.
//! - [`emv`]: card master keys, session keys, ARQC, ARPC.
//! - [`cvv`]: the Visa CVV / CVV2 / iCVV.

pub mod cvv;
pub mod des;
pub mod dukpt;
pub mod dukpt_terminal;
pub mod emv;
mod error;
pub mod keys;
pub mod mac;
pub mod pin_block;
pub mod pin_block4;
pub mod secret;
pub mod translate;

pub use error::CryptoError;
pub use keys::{AesKey, DesKeyLength, TdesKey};
pub use secret::Secret;
