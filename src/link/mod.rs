//! The link layer: framing codecs, connections, TLS, request matching.
//! No business rules: it moves framed messages and knows nothing of routes.

#[cfg(feature = "runtime")]
pub mod admission;
#[cfg(feature = "runtime")]
pub mod bind;
#[cfg(feature = "runtime")]
pub mod connection;
#[cfg(feature = "runtime")]
pub mod connector;
#[cfg(feature = "runtime")]
mod frame_reader;
pub mod framing;
#[cfg(feature = "runtime")]
pub mod listener;
#[cfg(feature = "runtime")]
pub mod log_limit;
#[cfg(feature = "runtime")]
pub mod mux;
#[cfg(feature = "runtime")]
pub mod peer_requests;
#[cfg(feature = "runtime")]
pub mod tap;
#[cfg(feature = "runtime")]
pub mod tls;
