//! The switch's configuration: one TOML file with the switch's own settings,
//! the acquirer listeners, the issuer links, the routes and the default
//! route. Everything is checked at load, before anything listens or
//! connects: a bad file is refused with the file, the line and the reason
//! (`switch.toml:12: route 3: issuer 'x' is not defined`).
//!
//! Relative paths (spec files, TLS files) are taken relative to the
//! directory of the configuration file, like a spec's `base`; the loaded
//! configuration holds them resolved. The key reference is
//! `docs/switch-config.md`.

mod check;
mod file;
mod hsm;
mod invariants;
mod limits;
mod links;
mod routes;
mod security;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hsm;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_security;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::link::framing::Framing;
use crate::message::{Mti, Spec};
use crate::switch::saf::SafPolicy;
use crate::switch::standin::StandInRules;

use check::parse;
pub use limits::*;
pub use security::{
    AcquirerSecurity, ArqcScheme, ConfiguredKey, IssuerSecurity, KeyRole, PinBlockFormat, PinZone,
};
// The route types are routing's: the configuration checks its file into
// them, and they stay reachable here for the code that reads a config.
pub use crate::switch::routing::{
    BIN_DIGITS_MAX, BIN_DIGITS_MIN, DefaultRoute, RouteBins, RouteConfig,
};
use crate::switch::routing::{IssuerRef, RouteTable};

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{file}: cannot read: {reason}")]
    Io { file: String, reason: String },
    /// Not valid TOML, an unknown key, a missing key or a value of the
    /// wrong type.
    #[error("{file}:{line}:{column}: {reason}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        reason: String,
    },
    /// A value is well-formed but unusable; `section` names the entry
    /// (`switch`, `acquirer 'pos'`, `issuer 'visa'`, `route 3`,
    /// `default_route`).
    #[error("{file}:{line}: {section}: {reason}")]
    Invalid {
        file: String,
        line: usize,
        section: String,
        reason: String,
    },
    /// Something the whole file lacks (no acquirer, no issuer).
    #[error("{file}: {reason}")]
    Missing { file: String, reason: String },
}

impl ConfigError {
    /// The line the error is on, when it is on one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Syntax { line, .. } | ConfigError::Invalid { line, .. } => Some(*line),
            ConfigError::Io { .. } | ConfigError::Missing { .. } => None,
        }
    }
}

/// The whole configuration, checked.
#[derive(Debug, Clone)]
pub struct SwitchConfig {
    /// The file it was read from (for messages).
    pub file: String,
    pub switch: SwitchSettings,
    pub acquirers: Vec<AcquirerConfig>,
    pub issuers: Vec<IssuerConfig>,
    /// In file order; route `n` in messages is `routes[n - 1]`.
    pub routes: Vec<RouteConfig>,
    pub default_route: DefaultRoute,
    /// `[journal]`: where every exchange is recorded; none runs without.
    pub journal: Option<JournalSettings>,
    /// `[hsm]`: the security module's client settings.
    pub hsm: Option<crate::node::hsm::HsmSettings>,
}

/// `[journal]`: the durable transaction journal.
#[derive(Debug, Clone)]
pub struct JournalSettings {
    /// Line of its `[journal]` header.
    pub line: usize,
    /// The SQLite database file (created if missing).
    pub path: PathBuf,
    /// Line of its `path` key.
    pub path_line: usize,
    /// The key file; without one, the key comes from the environment
    /// (`CARDSWITCH_JOURNAL_KEY`).
    pub key_file: Option<PathBuf>,
    /// Line of its `key_file` key, when given.
    pub key_file_line: Option<usize>,
    /// Records committed in one group at most.
    pub group_records_max: usize,
    /// The journal log, the durability point (`durability = "log"`, the
    /// default); `None`: records are durable once SQLite has committed
    /// them (`durability = "sqlite"`).
    pub log: Option<JournalLogSettings>,
}

/// The journal log's place and limits.
#[derive(Debug, Clone)]
pub struct JournalLogSettings {
    /// Its directory (default: the SQLite file's path with `-log` added).
    pub dir: PathBuf,
    pub limits: crate::journal::log::Limits,
}

/// `[switch]`.
#[derive(Debug, Clone)]
pub struct SwitchSettings {
    /// The switch's forwarding institution id (DE33), 1 to 11 digits.
    pub institution_id: String,
    /// Where to serve Prometheus metrics (`host:port`).
    pub metrics: Option<String>,
    pub saf: SafSettings,
    /// How long a request key is remembered to detect duplicates.
    pub duplicate_window: Duration,
}

/// `[switch.saf]`: store-and-forward.
#[derive(Debug, Clone, Copy)]
pub struct SafSettings {
    /// Entries held at most; a full queue refuses new work.
    pub queue_max: usize,
    pub policy: SafPolicy,
    /// How long one delivery attempt waits for the issuer's answer.
    pub response_wait: Duration,
}

/// One `[[acquirer]]` listener.
#[derive(Debug, Clone)]
pub struct AcquirerConfig {
    pub name: String,
    /// Line of its `[[acquirer]]` header.
    pub line: usize,
    /// `host:port` to listen on (port 0: any free port).
    pub listen: String,
    /// Line of its `listen` key.
    pub listen_line: usize,
    /// The spec as written (a shipped name or a path).
    pub spec_name: String,
    pub spec: Arc<Spec>,
    pub framing: Framing,
    pub tls: Option<AcquirerTls>,
    /// DE32 acquiring institution ids accepted; empty: any.
    pub allowed_institutions: Vec<String>,
    pub connections_max: usize,
    /// Requests in flight per connection.
    pub in_flight_max: usize,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// Limits against silent and greedy peers.
    pub link: AcquirerLinkLimits,
    /// Its zone keys (none: PIN blocks and MACs pass untouched).
    pub security: AcquirerSecurity,
}

/// An acquirer listener's limits against peers that hold connections
/// without using them, and its backlog for reconnect storms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquirerLinkLimits {
    /// A TLS handshake not done this long after accept is dropped.
    pub handshake_timeout: Duration,
    /// A connection with no frame this long after connecting is closed.
    pub first_frame_timeout: Duration,
    /// Connections open at once from one peer address.
    pub connections_per_peer_max: usize,
    /// The kernel's queue of connections not yet accepted.
    pub listen_backlog: u32,
}

/// TLS on a listener; with `client_ca`, mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquirerTls {
    pub cert: PathBuf,
    /// Line of `tls.cert` (and so on), for the errors of a start.
    pub cert_line: usize,
    pub key: PathBuf,
    pub key_line: usize,
    pub client_ca: Option<PathBuf>,
    pub client_ca_line: Option<usize>,
}

/// One `[[issuer]]` link.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    pub name: String,
    /// Line of its `[[issuer]]` header.
    pub line: usize,
    /// `host:port` endpoints, connected round robin.
    pub addresses: Vec<String>,
    pub spec_name: String,
    pub spec: Arc<Spec>,
    pub framing: Framing,
    pub tls: Option<IssuerTls>,
    /// Connections per address.
    pub connections: usize,
    /// Time-out of the routes to this issuer (a route may override it).
    pub timeout: Duration,
    /// Idle echo (0800) interval; `None` (`echo_interval_s = 0`): no echoes.
    pub echo_interval: Option<Duration>,
    pub sign_on: bool,
    pub in_flight_max: usize,
    pub stand_in: Option<StandInRules>,
    /// A TLS handshake to the issuer not done in this time is given up
    /// (the connection retries with backoff).
    pub handshake_timeout: Duration,
    /// Its zone keys and stand-in keys.
    pub security: IssuerSecurity,
}

/// TLS to an issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerTls {
    /// The CA the issuer's certificate must chain to.
    pub ca: PathBuf,
    /// Line of `tls.ca` (and so on), for the errors of a start.
    pub ca_line: usize,
    /// The name checked in its certificate (default: the addresses' host).
    pub server_name: String,
    /// Client certificate and key, for mutual TLS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub cert_line: Option<usize>,
    pub key_line: Option<usize>,
}

impl SwitchConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: impl AsRef<Path>) -> Result<SwitchConfig, ConfigError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        parse(&text, &file, path.parent())
    }

    /// Checks configuration text; `file_name` is used in messages, and
    /// relative paths in it are taken from the current directory.
    pub fn from_toml(text: &str, file_name: &str) -> Result<SwitchConfig, ConfigError> {
        parse(text, file_name, None)
    }

    /// The routes compiled for lookup (see [`RouteTable::build`]).
    pub fn route_table(&self) -> RouteTable {
        let issuers: Vec<IssuerRef<'_>> = self
            .issuers
            .iter()
            .map(|i| IssuerRef {
                name: &i.name,
                timeout: i.timeout,
            })
            .collect();
        RouteTable::build(&self.routes, self.default_route, &issuers)
    }

    /// The index of the issuer with that name.
    pub fn issuer_index(&self, name: &str) -> Option<usize> {
        self.issuers.iter().position(|i| i.name == name)
    }
}
