//! The switch's HSM client (issue 21): the [`Hsm`] interface and its
//! payShield implementation over a pool of pipelined connections.
//!
//! - `settings`: `[hsm]` as loaded, with every limit.
//! - `connection`: one connection, commands pipelined and answers matched
//!   in order.
//! - `pool`: the connections kept up (backoff, NC health checks).
//! - `operations`: the typed interface; `payshield`: its implementation.
//! - `errors`: failures and their ISO 8583 response codes; `metrics`.
//!
//! The node never does PIN cryptography itself (tests/layering.rs): it
//! only speaks `hsm::command` to an HSM.

pub mod ask;
mod connection;
mod errors;
mod key_check;
mod metrics;
mod operations;
mod payshield;
mod pool;
mod settings;
mod startup;

pub use errors::{HsmError, ProtocolError};
pub(crate) use key_check::check_keys;
pub use key_check::key_type_code;
pub use metrics::{
    COMMANDS_TOTAL, CONNECTIONS_CLOSED_TOTAL, CONNECTIONS_UP, ERRORS_TOTAL, LATENCY_SECONDS,
};
pub use operations::*;
pub use payshield::PayShield;
pub use pool::Pool;
pub use settings::*;
pub(crate) use startup::start_hsm;
