//! The link layer: framing codecs, connections, TLS, request matching.
//! No business rules: it moves framed messages and knows nothing of routes.

pub mod connection;
pub mod connector;
pub mod framing;
pub mod key_bytes;
pub mod listener;
pub mod mux;
pub mod netmgmt;
pub mod tap;
pub mod tls;
