//! The link layer: framing codecs, connections, TLS, request matching.
//! No business rules: it moves framed messages and knows nothing of routes.

pub mod admission;
pub mod bind;
pub mod connection;
pub mod connector;
pub mod framing;
pub mod listener;
pub mod log_limit;
pub mod mux;
pub mod tap;
pub mod tls;
