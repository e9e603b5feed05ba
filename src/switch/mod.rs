//! The switch: routing, dialect translation, flows, time-outs,
//! store-and-forward, duplicates and stand-in. Decisions are pure (time is
//! passed in); the core (`core/`) decides with them, and the node
//! (`src/node/`) wires it to links.

pub mod chip;
pub mod core;
pub mod cvv2;
pub mod duplicates;
pub mod hooks;
pub mod records;
pub mod responses;
pub mod reversal;
pub mod routing;
pub mod saf;
pub mod security;
pub mod standin;
pub mod translate;
