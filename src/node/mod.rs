//! The node: sockets, TLS, clock, tasks, the journal writer and the
//! configuration around the switch's pure core (`switch::core`). One loop
//! owns the core; it turns I/O into the core's inputs and the core's
//! actions into I/O (docs/core.md).

mod acquirer;
pub mod config;
mod confirm;
pub mod core_config;
mod event_loop;
pub mod hsm;
mod in_flight;
mod inbound;
mod link_settings;
mod metrics;
mod perform;
mod restore;
mod start;
mod start_error;
mod timers;

pub use core_config::core_config;
pub use event_loop::NodeHandle;
pub use inbound::{Inbound, inbound, parse_or_reject};
pub use start::{Running, start, start_with_rules};
pub use start_error::StartError;
