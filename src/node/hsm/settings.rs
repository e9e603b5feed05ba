//! The payShield client's settings (`[hsm]` in the node's configuration),
//! with the default and the allowed range of every value next to it, so
//! the configuration check, the tests and the docs share them.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::node::config::IssuerTls;

/// Connections in the pool: a payShield serves a handful of host
/// connections per client; each is a pair of tasks and a socket.
pub const HSM_CONNECTIONS_DEFAULT: u64 = 2;
pub const HSM_CONNECTIONS_RANGE: RangeInclusive<u64> = 1..=64;
/// Requests in flight per connection: the HSM answers them in order, so
/// a deeper pipe only adds queueing behind a slow command.
pub const HSM_PIPELINE_DEPTH_DEFAULT: u64 = 16;
pub const HSM_PIPELINE_DEPTH_RANGE: RangeInclusive<u64> = 1..=256;
/// One command's wait: an HSM answers in milliseconds; a minute is
/// already far beyond an acquirer's own time-out.
pub const HSM_TIMEOUT_MS_DEFAULT: u64 = 1_000;
pub const HSM_TIMEOUT_MS_RANGE: RangeInclusive<u64> = 1..=60_000;
/// NC on every connection this often.
pub const HSM_HEALTH_INTERVAL_S_DEFAULT: u64 = 30;
pub const HSM_HEALTH_INTERVAL_S_RANGE: RangeInclusive<u64> = 1..=3_600;
/// A TCP connect's wait.
pub const HSM_CONNECT_TIMEOUT_MS_DEFAULT: u64 = 2_000;
pub const HSM_CONNECT_TIMEOUT_MS_RANGE: RangeInclusive<u64> = 1..=60_000;
/// The header: its length is configured on the HSM (4 characters is the
/// usual setting) and it is echoed back. No public text found gives the
/// HSM's limits; at least one character, and the codec's 255 at most.
pub const HSM_HEADER_DEFAULT: &str = "0000";
pub const HSM_HEADER_BYTES_RANGE: RangeInclusive<usize> =
    1..=crate::hsm::command::frame::HEADER_BYTES_MAX;

/// How to reach and keep the HSM (`[hsm]`). The TLS files are built into
/// a client at start, like an issuer link's.
#[derive(Clone)]
pub struct HsmSettings {
    /// `host:port`.
    pub address: String,
    /// Line of the `[hsm]` header, for the errors of a start.
    pub line: usize,
    /// TLS to the HSM (CA, server name, client identity), or plain TCP.
    pub tls: Option<IssuerTls>,
    /// A TLS handshake not done in this time fails the attempt.
    pub handshake_timeout: Duration,
    /// Sent before every command and expected back unchanged.
    pub header: Vec<u8>,
    pub connections: usize,
    pub pipeline_depth: usize,
    /// A command's wait; a late answer closes its connection.
    pub timeout: Duration,
    pub health_interval: Duration,
    pub connect_timeout: Duration,
    /// First and longest wait between reconnect attempts.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl HsmSettings {
    /// The defaults, for `address`.
    pub fn new(address: &str) -> HsmSettings {
        HsmSettings {
            address: address.to_string(),
            line: 0,
            tls: None,
            handshake_timeout: crate::link::tls::HANDSHAKE_TIMEOUT_DEFAULT,
            header: HSM_HEADER_DEFAULT.as_bytes().to_vec(),
            connections: HSM_CONNECTIONS_DEFAULT as usize,
            pipeline_depth: HSM_PIPELINE_DEPTH_DEFAULT as usize,
            timeout: Duration::from_millis(HSM_TIMEOUT_MS_DEFAULT),
            health_interval: Duration::from_secs(HSM_HEALTH_INTERVAL_S_DEFAULT),
            connect_timeout: Duration::from_millis(HSM_CONNECT_TIMEOUT_MS_DEFAULT),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for HsmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmSettings")
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .field("header_bytes", &self.header.len())
            .field("connections", &self.connections)
            .field("pipeline_depth", &self.pipeline_depth)
            .field("timeout", &self.timeout)
            .field("health_interval", &self.health_interval)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}
