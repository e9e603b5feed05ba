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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::saf::SafPolicy;
use super::standin::StandInRules;
use crate::link::framing::Framing;
use crate::message::spec_file::{builtin_names, builtin_text};
use crate::message::{Mti, Spec};

/// How long a duplicate key is remembered, by default.
pub const DUPLICATE_WINDOW_S_DEFAULT: u64 = 300;
/// SAF defaults: entries held, first and longest retry delay, expiry (24 h,
/// as jPOS-EE) and delivery attempts.
pub const SAF_QUEUE_MAX_DEFAULT: u64 = 100_000;
pub const SAF_RETRY_MIN_MS_DEFAULT: u64 = 1_000;
pub const SAF_RETRY_MAX_MS_DEFAULT: u64 = 60_000;
/// jPOS-EE's SAF waits 60 s; 10 s matches a POS time-out.
pub const SAF_RESPONSE_WAIT_MS_DEFAULT: u64 = 10_000;
pub const SAF_EXPIRY_S_DEFAULT: u64 = 86_400;
pub const SAF_MAX_ATTEMPTS_DEFAULT: u64 = 50;
/// Acquirer defaults.
pub const ACQUIRER_CONNECTIONS_MAX_DEFAULT: u64 = 1024;
pub const ACQUIRER_IN_FLIGHT_MAX_DEFAULT: u64 = 256;
pub const ACQUIRER_IDLE_TIMEOUT_S_DEFAULT: u64 = 300;
/// Link limits against silent and greedy peers (default, then the allowed
/// range): a TLS handshake's time, a first frame's wait after connecting,
/// connections from one peer address, and the kernel's accept backlog
/// (a reconnect storm of thousands of terminals; Linux caps it at
/// net.core.somaxconn).
pub const HANDSHAKE_TIMEOUT_MS_DEFAULT: u64 = 10_000;
pub const HANDSHAKE_TIMEOUT_MS_RANGE: RangeInclusive<u64> = 100..=60_000;
pub const ACQUIRER_FIRST_FRAME_TIMEOUT_MS_DEFAULT: u64 = 30_000;
pub const ACQUIRER_FIRST_FRAME_TIMEOUT_MS_RANGE: RangeInclusive<u64> = 100..=600_000;
pub const ACQUIRER_CONNECTIONS_PER_PEER_MAX_DEFAULT: u64 = 256;
pub const ACQUIRER_CONNECTIONS_PER_PEER_MAX_RANGE: RangeInclusive<u64> = 1..=1_000_000;
pub const ACQUIRER_LISTEN_BACKLOG_DEFAULT: u64 = 8192;
pub const ACQUIRER_LISTEN_BACKLOG_RANGE: RangeInclusive<u64> = 1..=65_535;
/// Issuer defaults; `timeout_ms` is the time-out of the routes to it.
pub const ISSUER_CONNECTIONS_DEFAULT: u64 = 2;
pub const ISSUER_TIMEOUT_MS_DEFAULT: u64 = 10_000;
pub const ISSUER_ECHO_INTERVAL_S_DEFAULT: u64 = 30;
pub const ISSUER_IN_FLIGHT_MAX_DEFAULT: u64 = 4096;
/// BIN prefixes are 6 to 11 digits (ISO/IEC 7812 issuer identification
/// numbers are 6 or 8; longer prefixes split an issuer's ranges).
pub const BIN_DIGITS_MIN: usize = 6;
pub const BIN_DIGITS_MAX: usize = 11;
/// Institution ids (DE32, DE33) are n..11.
const INSTITUTION_DIGITS_MAX: usize = 11;
/// Names appear in logs and metric labels: short, plain characters.
const NAME_BYTES_MAX: usize = 64;

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
}

/// `[journal]`: the durable transaction journal.
#[derive(Debug, Clone)]
pub struct JournalSettings {
    /// The SQLite database file (created if missing).
    pub path: PathBuf,
    /// The key file; without one, the key comes from the environment
    /// (`CARDSWITCH_JOURNAL_KEY`).
    pub key_file: Option<PathBuf>,
    /// Records committed in one group at most.
    pub group_records_max: usize,
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
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
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
}

/// TLS to an issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerTls {
    /// The CA the issuer's certificate must chain to.
    pub ca: PathBuf,
    /// The name checked in its certificate (default: the addresses' host).
    pub server_name: String,
    /// Client certificate and key, for mutual TLS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// One `[[route]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// Line of its `[[route]]` header.
    pub line: usize,
    pub bins: RouteBins,
    /// Index into [`SwitchConfig::issuers`].
    pub issuer: usize,
    /// Conditions; an empty list means any.
    pub mti: Vec<Mti>,
    /// The first two digits of DE3.
    pub processing_code: Vec<[u8; 2]>,
    /// DE49.
    pub currency: Vec<[u8; 3]>,
    /// Overrides the issuer's time-out.
    pub timeout: Option<Duration>,
}

/// The PANs a route covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteBins {
    /// PAN prefixes, 6 to 11 digits each.
    Prefixes(Vec<String>),
    /// Prefixes from `from` to `to` inclusive, both of the same length.
    Range { from: String, to: String },
}

impl RouteConfig {
    /// How many conditions (MTI, processing code, currency) it sets.
    pub fn conditions(&self) -> usize {
        usize::from(!self.mti.is_empty())
            + usize::from(!self.processing_code.is_empty())
            + usize::from(!self.currency.is_empty())
    }
}

/// Where a request goes when no route matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultRoute {
    /// To this issuer (index into [`SwitchConfig::issuers`]).
    Issuer(usize),
    /// Declined with DE39 = 15 (no such issuer).
    Decline,
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

    /// The index of the issuer with that name.
    pub fn issuer_index(&self, name: &str) -> Option<usize> {
        self.issuers.iter().position(|i| i.name == name)
    }
}

// ---------------------------------------------------------------------------
// The file as written. Values whose line an error may name are `Spanned`.

type Text = Spanned<String>;
type TextList = Spanned<Vec<Spanned<String>>>;
type Number = Option<Spanned<u64>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    switch: Spanned<SwitchFile>,
    #[serde(default)]
    acquirer: Vec<Spanned<AcquirerFile>>,
    #[serde(default)]
    issuer: Vec<Spanned<IssuerFile>>,
    #[serde(default)]
    route: Vec<Spanned<RouteFile>>,
    default_route: Option<Spanned<DefaultRouteFile>>,
    journal: Option<Spanned<JournalFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalFile {
    path: Text,
    key_file: Option<Text>,
    group_records_max: Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchFile {
    institution_id: Text,
    metrics: Option<Text>,
    saf: Option<SafFile>,
    duplicate_window_s: Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SafFile {
    queue_max: Number,
    retry_min_ms: Number,
    retry_max_ms: Number,
    expiry_s: Number,
    max_attempts: Number,
    response_wait_ms: Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcquirerFile {
    name: Text,
    listen: Text,
    spec: Text,
    framing: Spanned<Framing>,
    tls: Option<AcquirerTlsFile>,
    allowed_institutions: Option<TextList>,
    connections_max: Number,
    in_flight_max: Number,
    idle_timeout_s: Number,
    handshake_timeout_ms: Number,
    first_frame_timeout_ms: Number,
    connections_per_peer_max: Number,
    listen_backlog: Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcquirerTlsFile {
    cert: Text,
    key: Text,
    client_ca: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerFile {
    name: Text,
    addresses: TextList,
    spec: Text,
    framing: Spanned<Framing>,
    tls: Option<Spanned<IssuerTlsFile>>,
    connections: Number,
    timeout_ms: Number,
    echo_interval_s: Number,
    #[serde(default)]
    sign_on: bool,
    in_flight_max: Number,
    stand_in: Option<Spanned<StandInRules>>,
    handshake_timeout_ms: Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerTlsFile {
    ca: Text,
    server_name: Option<Text>,
    cert: Option<Text>,
    key: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    bins: Option<TextList>,
    bin_range: Option<Spanned<BinRangeFile>>,
    issuer: Text,
    mti: Option<TextList>,
    processing_code: Option<TextList>,
    currency: Option<TextList>,
    timeout_ms: Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BinRangeFile {
    from: Text,
    to: Text,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultRouteFile {
    issuer: Option<Text>,
    decline: Option<Spanned<bool>>,
}

// ---------------------------------------------------------------------------
// Checking.

/// Where we are: for line numbers, messages and relative paths.
struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
    dir: Option<&'a Path>,
    /// Specs already resolved, by the name or path as resolved.
    specs: HashMap<String, Arc<Spec>>,
}

fn line_of(text: &str, byte: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..byte.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, column)
}

impl Ctx<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        line_of(self.text, span.start).0
    }

    fn invalid(&self, span: Range<usize>, section: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            line: self.line(span),
            section: section.to_string(),
            reason: reason.into(),
        }
    }

    fn missing(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::Missing {
            file: self.file.to_string(),
            reason: reason.into(),
        }
    }

    /// A path as written, relative to the configuration's directory.
    fn path(&self, written: &str) -> PathBuf {
        let p = Path::new(written);
        match self.dir {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// A file that must exist (TLS certificates and keys).
    fn existing_file(
        &self,
        value: &Text,
        section: &str,
        key: &str,
    ) -> Result<PathBuf, ConfigError> {
        let path = self.path(value.get_ref());
        if path.is_file() {
            Ok(path)
        } else {
            Err(self.invalid(
                value.span(),
                section,
                format!("{key}: file '{}' not found", path.display()),
            ))
        }
    }

    fn spec(&mut self, value: &Text, section: &str) -> Result<Arc<Spec>, ConfigError> {
        let written = value.get_ref();
        let key = if builtin_text(written).is_some() {
            written.clone()
        } else {
            let path = self.path(written);
            if !path.is_file() {
                let known = builtin_names().collect::<Vec<_>>().join(", ");
                return Err(self.invalid(
                    value.span(),
                    section,
                    format!(
                        "spec: unknown spec '{written}': not a shipped spec ({known}) and no file {}",
                        path.display()
                    ),
                ));
            }
            path.display().to_string()
        };
        if let Some(spec) = self.specs.get(&key) {
            return Ok(Arc::clone(spec));
        }
        let spec = Spec::resolve(&key)
            .map_err(|e| self.invalid(value.span(), section, format!("spec: {e}")))?;
        self.specs.insert(key, Arc::clone(&spec));
        Ok(spec)
    }

    /// An optional count or duration: its default when absent, never zero.
    fn positive(
        &self,
        value: &Number,
        default: u64,
        section: &str,
        key: &str,
    ) -> Result<u64, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) if *v.get_ref() == 0 => {
                Err(self.invalid(v.span(), section, format!("{key} must be at least 1")))
            }
            Some(v) => Ok(*v.get_ref()),
        }
    }

    fn positive_usize(
        &self,
        value: &Number,
        default: u64,
        section: &str,
        key: &str,
    ) -> Result<usize, ConfigError> {
        let n = self.positive(value, default, section, key)?;
        usize::try_from(n).map_err(|_| {
            let span = value.as_ref().map_or(0..0, Spanned::span);
            self.invalid(span, section, format!("{key} is too large"))
        })
    }
}

fn parse(text: &str, file: &str, dir: Option<&Path>) -> Result<SwitchConfig, ConfigError> {
    let raw: ConfigFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_of(text, s.start));
        ConfigError::Syntax {
            file: file.to_string(),
            line,
            column,
            reason: e.message().trim().to_string(),
        }
    })?;
    let mut ctx = Ctx {
        text,
        file,
        dir,
        specs: HashMap::new(),
    };
    let switch = check_switch(&ctx, &raw.switch)?;
    if raw.acquirer.is_empty() {
        return Err(ctx.missing("no [[acquirer]]: the switch needs at least one listener"));
    }
    if raw.issuer.is_empty() {
        return Err(ctx.missing("no [[issuer]]: the switch needs at least one issuer"));
    }
    let mut names: HashMap<String, (&'static str, usize)> = HashMap::new();
    let mut acquirers = Vec::with_capacity(raw.acquirer.len());
    for a in &raw.acquirer {
        let acquirer = check_acquirer(&mut ctx, a, &mut names)?;
        check_listen_conflicts(&ctx, a, &acquirer, &acquirers)?;
        acquirers.push(acquirer);
    }
    if let (Some(metrics), Some(written)) = (&switch.metrics, &raw.switch.get_ref().metrics) {
        for a in &acquirers {
            if addresses_collide(metrics, &a.listen) {
                return Err(ctx.invalid(
                    written.span(),
                    "switch",
                    format!(
                        "metrics address '{metrics}' is also the listen address of acquirer '{}' (line {})",
                        a.name, a.line
                    ),
                ));
            }
        }
    }
    let mut issuers = Vec::with_capacity(raw.issuer.len());
    for i in &raw.issuer {
        issuers.push(check_issuer(&mut ctx, i, &mut names)?);
    }
    let mut routes = Vec::with_capacity(raw.route.len());
    for (n, r) in raw.route.iter().enumerate() {
        routes.push(check_route(&ctx, r, n + 1, &issuers)?);
    }
    if let Some(a) = super::routing::ambiguity(&routes) {
        return Err(ctx.invalid(
            raw.route[a.second].span(),
            &format!("route {}", a.second + 1),
            format!(
                "matches the same cards ({}) and messages as route {} (line {}) with as many conditions, so neither takes precedence; make one more specific",
                a.cards,
                a.first + 1,
                routes[a.first].line,
            ),
        ));
    }
    let default_route = check_default_route(&ctx, raw.default_route.as_ref(), &issuers)?;
    let journal = match &raw.journal {
        Some(j) => {
            let j = j.get_ref();
            if j.path.get_ref().trim().is_empty() {
                return Err(ctx.invalid(j.path.span(), "journal", "path is empty"));
            }
            Some(JournalSettings {
                path: ctx.path(j.path.get_ref()),
                key_file: j.key_file.as_ref().map(|k| ctx.path(k.get_ref())),
                group_records_max: ctx.positive_usize(
                    &j.group_records_max,
                    crate::journal::writer::GROUP_RECORDS_MAX as u64,
                    "journal",
                    "group_records_max",
                )?,
            })
        }
        None => None,
    };
    Ok(SwitchConfig {
        file: file.to_string(),
        switch,
        acquirers,
        issuers,
        routes,
        default_route,
        journal,
    })
}

fn check_switch(ctx: &Ctx, raw: &Spanned<SwitchFile>) -> Result<SwitchSettings, ConfigError> {
    let s = raw.get_ref();
    let section = "switch";
    let id = &s.institution_id;
    if !is_digits(id.get_ref(), 1, INSTITUTION_DIGITS_MAX) {
        return Err(ctx.invalid(
            id.span(),
            section,
            format!(
                "institution_id '{}' must be 1 to {INSTITUTION_DIGITS_MAX} digits",
                id.get_ref()
            ),
        ));
    }
    let metrics = match &s.metrics {
        Some(m) => {
            host_port(m.get_ref())
                .map_err(|reason| ctx.invalid(m.span(), section, format!("metrics: {reason}")))?;
            Some(m.get_ref().clone())
        }
        None => None,
    };
    let none = SafFile {
        queue_max: None,
        retry_min_ms: None,
        retry_max_ms: None,
        expiry_s: None,
        max_attempts: None,
        response_wait_ms: None,
    };
    let saf = s.saf.as_ref().unwrap_or(&none);
    let section_saf = "switch.saf";
    let queue_max = ctx.positive_usize(
        &saf.queue_max,
        SAF_QUEUE_MAX_DEFAULT,
        section_saf,
        "queue_max",
    )?;
    let retry_min_ms = ctx.positive(
        &saf.retry_min_ms,
        SAF_RETRY_MIN_MS_DEFAULT,
        section_saf,
        "retry_min_ms",
    )?;
    let retry_max_ms = ctx.positive(
        &saf.retry_max_ms,
        SAF_RETRY_MAX_MS_DEFAULT,
        section_saf,
        "retry_max_ms",
    )?;
    if retry_min_ms > retry_max_ms {
        let span = saf
            .retry_max_ms
            .as_ref()
            .or(saf.retry_min_ms.as_ref())
            .map_or(raw.span(), Spanned::span);
        return Err(ctx.invalid(
            span,
            section_saf,
            format!("retry_min_ms ({retry_min_ms}) is above retry_max_ms ({retry_max_ms})"),
        ));
    }
    let expiry_s = ctx.positive(&saf.expiry_s, SAF_EXPIRY_S_DEFAULT, section_saf, "expiry_s")?;
    let max_attempts = ctx.positive(
        &saf.max_attempts,
        SAF_MAX_ATTEMPTS_DEFAULT,
        section_saf,
        "max_attempts",
    )?;
    let attempts_max = u32::try_from(max_attempts).map_err(|_| {
        let span = saf.max_attempts.as_ref().map_or(0..0, Spanned::span);
        ctx.invalid(span, section_saf, "max_attempts is too large")
    })?;
    let response_wait_ms = ctx.positive(
        &saf.response_wait_ms,
        SAF_RESPONSE_WAIT_MS_DEFAULT,
        section_saf,
        "response_wait_ms",
    )?;
    let window_s = ctx.positive(
        &s.duplicate_window_s,
        DUPLICATE_WINDOW_S_DEFAULT,
        section,
        "duplicate_window_s",
    )?;
    Ok(SwitchSettings {
        institution_id: id.get_ref().clone(),
        metrics,
        saf: SafSettings {
            queue_max,
            policy: SafPolicy {
                retry_min: Duration::from_millis(retry_min_ms),
                retry_max: Duration::from_millis(retry_max_ms),
                expiry: Duration::from_secs(expiry_s),
                attempts_max,
            },
            response_wait: Duration::from_millis(response_wait_ms),
        },
        duplicate_window: Duration::from_secs(window_s),
    })
}

/// Checks a link name and that no other acquirer or issuer has it (they
/// share log fields and metric labels).
fn check_name(
    ctx: &Ctx,
    name: &Text,
    kind: &'static str,
    names: &mut HashMap<String, (&'static str, usize)>,
) -> Result<String, ConfigError> {
    let n = name.get_ref();
    let section = format!("{kind} '{n}'");
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if n.is_empty() || n.len() > NAME_BYTES_MAX || !n.bytes().all(plain) {
        return Err(ctx.invalid(
            name.span(),
            &section,
            format!(
                "a name is 1 to {NAME_BYTES_MAX} letters, digits, '-', '_' or '.' (it labels logs and metrics)"
            ),
        ));
    }
    let line = ctx.line(name.span());
    if let Some((other_kind, other_line)) = names.insert(n.clone(), (kind, line)) {
        return Err(ctx.invalid(
            name.span(),
            &section,
            format!("name already used by {other_kind} '{n}' (line {other_line})"),
        ));
    }
    Ok(n.clone())
}

fn check_framing(
    ctx: &Ctx,
    framing: &Spanned<Framing>,
    section: &str,
) -> Result<Framing, ConfigError> {
    let f = framing.get_ref();
    if f.frame_bytes_max == 0 {
        return Err(ctx.invalid(
            framing.span(),
            section,
            "framing: frame_bytes_max must be at least 1",
        ));
    }
    Ok(f.clone())
}

fn check_acquirer(
    ctx: &mut Ctx,
    raw: &Spanned<AcquirerFile>,
    names: &mut HashMap<String, (&'static str, usize)>,
) -> Result<AcquirerConfig, ConfigError> {
    let a = raw.get_ref();
    let name = check_name(ctx, &a.name, "acquirer", names)?;
    let section = format!("acquirer '{name}'");
    host_port(a.listen.get_ref())
        .map_err(|reason| ctx.invalid(a.listen.span(), &section, format!("listen: {reason}")))?;
    let spec = ctx.spec(&a.spec, &section)?;
    let framing = check_framing(ctx, &a.framing, &section)?;
    let tls = match &a.tls {
        Some(t) => Some(AcquirerTls {
            cert: ctx.existing_file(&t.cert, &section, "tls.cert")?,
            key: ctx.existing_file(&t.key, &section, "tls.key")?,
            client_ca: t
                .client_ca
                .as_ref()
                .map(|ca| ctx.existing_file(ca, &section, "tls.client_ca"))
                .transpose()?,
        }),
        None => None,
    };
    let mut allowed_institutions = Vec::new();
    if let Some(list) = &a.allowed_institutions {
        for id in list.get_ref() {
            if !is_digits(id.get_ref(), 1, INSTITUTION_DIGITS_MAX) {
                return Err(ctx.invalid(
                    id.span(),
                    &section,
                    format!(
                        "allowed_institutions: '{}' is not 1 to {INSTITUTION_DIGITS_MAX} digits",
                        id.get_ref()
                    ),
                ));
            }
            if !allowed_institutions.contains(id.get_ref()) {
                allowed_institutions.push(id.get_ref().clone());
            }
        }
    }
    Ok(AcquirerConfig {
        name,
        line: ctx.line(raw.span()),
        listen: a.listen.get_ref().clone(),
        spec_name: a.spec.get_ref().clone(),
        spec,
        framing,
        tls,
        allowed_institutions,
        connections_max: ctx.positive_usize(
            &a.connections_max,
            ACQUIRER_CONNECTIONS_MAX_DEFAULT,
            &section,
            "connections_max",
        )?,
        in_flight_max: ctx.positive_usize(
            &a.in_flight_max,
            ACQUIRER_IN_FLIGHT_MAX_DEFAULT,
            &section,
            "in_flight_max",
        )?,
        idle_timeout: Duration::from_secs(ctx.positive(
            &a.idle_timeout_s,
            ACQUIRER_IDLE_TIMEOUT_S_DEFAULT,
            &section,
            "idle_timeout_s",
        )?),
        link: check_acquirer_link_limits(ctx, a, &section)?,
    })
}

fn check_acquirer_link_limits(
    ctx: &Ctx,
    a: &AcquirerFile,
    section: &str,
) -> Result<AcquirerLinkLimits, ConfigError> {
    let ms = |value, default, range, key| {
        ranged(ctx, value, default, range, (section, key)).map(Duration::from_millis)
    };
    Ok(AcquirerLinkLimits {
        handshake_timeout: ms(
            &a.handshake_timeout_ms,
            HANDSHAKE_TIMEOUT_MS_DEFAULT,
            HANDSHAKE_TIMEOUT_MS_RANGE,
            "handshake_timeout_ms",
        )?,
        first_frame_timeout: ms(
            &a.first_frame_timeout_ms,
            ACQUIRER_FIRST_FRAME_TIMEOUT_MS_DEFAULT,
            ACQUIRER_FIRST_FRAME_TIMEOUT_MS_RANGE,
            "first_frame_timeout_ms",
        )?,
        // Both ranges fit the narrower types.
        connections_per_peer_max: ranged(
            ctx,
            &a.connections_per_peer_max,
            ACQUIRER_CONNECTIONS_PER_PEER_MAX_DEFAULT,
            ACQUIRER_CONNECTIONS_PER_PEER_MAX_RANGE,
            (section, "connections_per_peer_max"),
        )? as usize,
        listen_backlog: ranged(
            ctx,
            &a.listen_backlog,
            ACQUIRER_LISTEN_BACKLOG_DEFAULT,
            ACQUIRER_LISTEN_BACKLOG_RANGE,
            (section, "listen_backlog"),
        )? as u32,
    })
}

/// An optional number within `range` (both ends allowed): its default
/// when absent; out of range, refused on its line with the range.
fn ranged(
    ctx: &Ctx,
    value: &Number,
    default: u64,
    range: RangeInclusive<u64>,
    (section, key): (&str, &str),
) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if range.contains(v.get_ref()) => Ok(*v.get_ref()),
        Some(v) => Err(ctx.invalid(
            v.span(),
            section,
            format!(
                "{key} = {} is outside {}..={}",
                v.get_ref(),
                range.start(),
                range.end()
            ),
        )),
    }
}

/// Two acquirers cannot listen on the same address (the second bind fails
/// at start; better to say so with its line).
fn check_listen_conflicts(
    ctx: &Ctx,
    raw: &Spanned<AcquirerFile>,
    new: &AcquirerConfig,
    earlier: &[AcquirerConfig],
) -> Result<(), ConfigError> {
    for other in earlier {
        if addresses_collide(&new.listen, &other.listen) {
            return Err(ctx.invalid(
                raw.get_ref().listen.span(),
                &format!("acquirer '{}'", new.name),
                format!(
                    "listen address '{}' is already used by acquirer '{}' (line {})",
                    new.listen, other.name, other.line
                ),
            ));
        }
    }
    Ok(())
}

fn check_issuer(
    ctx: &mut Ctx,
    raw: &Spanned<IssuerFile>,
    names: &mut HashMap<String, (&'static str, usize)>,
) -> Result<IssuerConfig, ConfigError> {
    let i = raw.get_ref();
    let name = check_name(ctx, &i.name, "issuer", names)?;
    let section = format!("issuer '{name}'");
    if i.addresses.get_ref().is_empty() {
        return Err(ctx.invalid(
            i.addresses.span(),
            &section,
            "addresses: at least one host:port is needed",
        ));
    }
    let mut hosts = Vec::new();
    for address in i.addresses.get_ref() {
        let (host, port) = host_port(address.get_ref()).map_err(|reason| {
            ctx.invalid(address.span(), &section, format!("addresses: {reason}"))
        })?;
        if port == 0 {
            return Err(ctx.invalid(
                address.span(),
                &section,
                format!("addresses: '{}' has port 0", address.get_ref()),
            ));
        }
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    let spec = ctx.spec(&i.spec, &section)?;
    let framing = check_framing(ctx, &i.framing, &section)?;
    let tls = match &i.tls {
        Some(t) => Some(check_issuer_tls(ctx, t, &hosts, &section)?),
        None => None,
    };
    let stand_in = match &i.stand_in {
        Some(s) => {
            let rules = *s.get_ref();
            let zero = [
                ("per_transaction_max", rules.per_transaction_max),
                (
                    "per_card_daily_count",
                    u64::from(rules.per_card_daily_count),
                ),
                ("per_card_daily_amount", rules.per_card_daily_amount),
            ]
            .into_iter()
            .find(|(_, v)| *v == 0);
            if let Some((key, _)) = zero {
                return Err(ctx.invalid(
                    s.span(),
                    &section,
                    format!("stand_in.{key} must be at least 1 (leave stand_in out to disable it)"),
                ));
            }
            if rules.per_transaction_max > rules.per_card_daily_amount {
                return Err(ctx.invalid(
                    s.span(),
                    &section,
                    format!(
                        "stand_in.per_transaction_max ({}) is above per_card_daily_amount ({})",
                        rules.per_transaction_max, rules.per_card_daily_amount
                    ),
                ));
            }
            Some(rules)
        }
        None => None,
    };
    let echo_interval_s = match &i.echo_interval_s {
        Some(v) => *v.get_ref(),
        None => ISSUER_ECHO_INTERVAL_S_DEFAULT,
    };
    Ok(IssuerConfig {
        name,
        line: ctx.line(raw.span()),
        addresses: i
            .addresses
            .get_ref()
            .iter()
            .map(|a| a.get_ref().clone())
            .collect(),
        spec_name: i.spec.get_ref().clone(),
        spec,
        framing,
        tls,
        connections: ctx.positive_usize(
            &i.connections,
            ISSUER_CONNECTIONS_DEFAULT,
            &section,
            "connections",
        )?,
        timeout: Duration::from_millis(ctx.positive(
            &i.timeout_ms,
            ISSUER_TIMEOUT_MS_DEFAULT,
            &section,
            "timeout_ms",
        )?),
        echo_interval: (echo_interval_s > 0).then(|| Duration::from_secs(echo_interval_s)),
        sign_on: i.sign_on,
        in_flight_max: ctx.positive_usize(
            &i.in_flight_max,
            ISSUER_IN_FLIGHT_MAX_DEFAULT,
            &section,
            "in_flight_max",
        )?,
        stand_in,
        handshake_timeout: Duration::from_millis(ranged(
            ctx,
            &i.handshake_timeout_ms,
            HANDSHAKE_TIMEOUT_MS_DEFAULT,
            HANDSHAKE_TIMEOUT_MS_RANGE,
            (&section, "handshake_timeout_ms"),
        )?),
    })
}

fn check_issuer_tls(
    ctx: &Ctx,
    raw: &Spanned<IssuerTlsFile>,
    hosts: &[String],
    section: &str,
) -> Result<IssuerTls, ConfigError> {
    let t = raw.get_ref();
    let ca = ctx.existing_file(&t.ca, section, "tls.ca")?;
    let server_name = match &t.server_name {
        Some(n) => {
            if rustls::pki_types::ServerName::try_from(n.get_ref().as_str()).is_err() {
                return Err(ctx.invalid(
                    n.span(),
                    section,
                    format!(
                        "tls.server_name '{}' is not a DNS name or IP address",
                        n.get_ref()
                    ),
                ));
            }
            n.get_ref().clone()
        }
        None => match hosts {
            [host] => host.clone(),
            _ => {
                return Err(ctx.invalid(
                    raw.span(),
                    section,
                    "tls.server_name is needed: the addresses have different hosts",
                ));
            }
        },
    };
    let (cert, key) = match (&t.cert, &t.key) {
        (Some(c), Some(k)) => (
            Some(ctx.existing_file(c, section, "tls.cert")?),
            Some(ctx.existing_file(k, section, "tls.key")?),
        ),
        (None, None) => (None, None),
        _ => {
            return Err(ctx.invalid(
                raw.span(),
                section,
                "tls.cert and tls.key go together (a client certificate and its key)",
            ));
        }
    };
    Ok(IssuerTls {
        ca,
        server_name,
        cert,
        key,
    })
}

/// Parses a list condition; refuses an empty list (leave the key out to
/// match any).
fn check_list<T>(
    ctx: &Ctx,
    list: &Option<TextList>,
    section: &str,
    key: &str,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<Vec<T>, ConfigError>
where
    T: PartialEq,
{
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    if list.get_ref().is_empty() {
        return Err(ctx.invalid(
            list.span(),
            section,
            format!("{key} is empty: leave it out to match any"),
        ));
    }
    let mut out = Vec::new();
    for item in list.get_ref() {
        let value = parse(item.get_ref()).ok_or_else(|| {
            ctx.invalid(
                item.span(),
                section,
                format!("{key}: '{}' {what}", item.get_ref()),
            )
        })?;
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

fn check_route(
    ctx: &Ctx,
    raw: &Spanned<RouteFile>,
    number: usize,
    issuers: &[IssuerConfig],
) -> Result<RouteConfig, ConfigError> {
    let r = raw.get_ref();
    let section = format!("route {number}");
    let bin_error = |bin: &Text, key: &str| {
        ctx.invalid(
            bin.span(),
            &section,
            format!(
                "{key}: '{}' is not a BIN of {BIN_DIGITS_MIN} to {BIN_DIGITS_MAX} digits",
                bin.get_ref()
            ),
        )
    };
    let is_bin = |s: &str| is_digits(s, BIN_DIGITS_MIN, BIN_DIGITS_MAX);
    let bins = match (&r.bins, &r.bin_range) {
        (Some(_), Some(_)) => {
            return Err(ctx.invalid(raw.span(), &section, "give bins or bin_range, not both"));
        }
        (None, None) => {
            return Err(ctx.invalid(raw.span(), &section, "needs bins or bin_range"));
        }
        (Some(list), None) => {
            if list.get_ref().is_empty() {
                return Err(ctx.invalid(list.span(), &section, "bins is empty"));
            }
            let mut prefixes: Vec<String> = Vec::new();
            for bin in list.get_ref() {
                if !is_bin(bin.get_ref()) {
                    return Err(bin_error(bin, "bins"));
                }
                if !prefixes.contains(bin.get_ref()) {
                    prefixes.push(bin.get_ref().clone());
                }
            }
            RouteBins::Prefixes(prefixes)
        }
        (None, Some(range)) => {
            let BinRangeFile { from, to } = range.get_ref();
            if !is_bin(from.get_ref()) {
                return Err(bin_error(from, "bin_range.from"));
            }
            if !is_bin(to.get_ref()) {
                return Err(bin_error(to, "bin_range.to"));
            }
            let (f, t) = (from.get_ref(), to.get_ref());
            if f.len() != t.len() {
                return Err(ctx.invalid(
                    range.span(),
                    &section,
                    format!(
                        "bin_range: from '{f}' and to '{t}' differ in length ({} and {} digits)",
                        f.len(),
                        t.len()
                    ),
                ));
            }
            // Same length, digits only: text order is number order.
            if f > t {
                return Err(ctx.invalid(
                    range.span(),
                    &section,
                    format!("bin_range: from '{f}' is above to '{t}'"),
                ));
            }
            RouteBins::Range {
                from: f.clone(),
                to: t.clone(),
            }
        }
    };
    let issuer = issuers
        .iter()
        .position(|i| i.name == *r.issuer.get_ref())
        .ok_or_else(|| {
            ctx.invalid(
                r.issuer.span(),
                &section,
                format!("issuer '{}' is not defined", r.issuer.get_ref()),
            )
        })?;
    let mti = check_list(
        ctx,
        &r.mti,
        &section,
        "mti",
        |s| s.parse::<Mti>().ok().filter(|m| !m.is_response()),
        "is not the MTI of a request or advice (four digits, function 0, 2 or 4)",
    )?;
    let processing_code = check_list(
        ctx,
        &r.processing_code,
        &section,
        "processing_code",
        digits_array::<2>,
        "is not two digits (the transaction type, DE3 positions 1-2)",
    )?;
    let currency = check_list(
        ctx,
        &r.currency,
        &section,
        "currency",
        digits_array::<3>,
        "is not a three-digit ISO 4217 code (DE49)",
    )?;
    let timeout = match &r.timeout_ms {
        Some(_) => Some(Duration::from_millis(ctx.positive(
            &r.timeout_ms,
            0,
            &section,
            "timeout_ms",
        )?)),
        None => None,
    };
    Ok(RouteConfig {
        line: ctx.line(raw.span()),
        bins,
        issuer,
        mti,
        processing_code,
        currency,
        timeout,
    })
}

fn check_default_route(
    ctx: &Ctx,
    raw: Option<&Spanned<DefaultRouteFile>>,
    issuers: &[IssuerConfig],
) -> Result<DefaultRoute, ConfigError> {
    let Some(raw) = raw else {
        return Ok(DefaultRoute::Decline);
    };
    let d = raw.get_ref();
    let section = "default_route";
    let decline = d.decline.as_ref().is_some_and(|b| *b.get_ref());
    match (&d.issuer, decline) {
        (Some(_), true) => Err(ctx.invalid(
            raw.span(),
            section,
            "give issuer or decline = true, not both",
        )),
        (None, true) => Ok(DefaultRoute::Decline),
        (None, false) => Err(ctx.invalid(
            raw.span(),
            section,
            "needs issuer = \"NAME\" or decline = true",
        )),
        (Some(name), false) => issuers
            .iter()
            .position(|i| i.name == *name.get_ref())
            .map(DefaultRoute::Issuer)
            .ok_or_else(|| {
                ctx.invalid(
                    name.span(),
                    section,
                    format!("issuer '{}' is not defined", name.get_ref()),
                )
            }),
    }
}

// ---------------------------------------------------------------------------
// Small checks.

fn is_digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fn digits_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    let bytes: [u8; N] = s.as_bytes().try_into().ok()?;
    bytes.iter().all(u8::is_ascii_digit).then_some(bytes)
}

/// Checks `host:port` (an IP address, `[v6]:port` or a DNS name); returns
/// the host (lowercase) and the port.
fn host_port(s: &str) -> Result<(String, u16), String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok((addr.ip().to_string(), addr.port()));
    }
    let bad = || format!("'{s}' is not host:port");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    if !is_digits(port, 1, 5) {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    // All digits and dots but not an IPv4 address (that parsed above): a typo.
    let numeric = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if host.len() > 253 || numeric || !host.split('.').all(label_ok) {
        return Err(bad());
    }
    Ok((host.to_ascii_lowercase(), port))
}

/// Whether two listen addresses would fight over one port: the same port
/// (not 0) on the same host, or on a wildcard address.
fn addresses_collide(a: &str, b: &str) -> bool {
    let (Ok((host_a, port_a)), Ok((host_b, port_b))) = (host_port(a), host_port(b)) else {
        return false;
    };
    let wildcard = |h: &str| h == "0.0.0.0" || h == "::";
    port_a != 0 && port_a == port_b && (host_a == host_b || wildcard(&host_a) || wildcard(&host_b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACQUIRER: &str = r#"
[[acquirer]]
name = "pos"
listen = "127.0.0.1:8583"
spec = "iso87-ascii"
framing = { length = "ascii4" }
"#;

    const ISSUER: &str = r#"
[[issuer]]
name = "issuer-a"
addresses = ["127.0.0.1:9101"]
spec = "iso87-ascii"
framing = { length = "ascii4" }
"#;

    fn config(rest: &str) -> String {
        format!("[switch]\ninstitution_id = \"123456\"\n{ACQUIRER}{ISSUER}{rest}")
    }

    fn load(text: &str) -> Result<SwitchConfig, ConfigError> {
        SwitchConfig::from_toml(text, "switch.toml")
    }

    /// The error, its line, and its text.
    fn refused(text: &str) -> (usize, String) {
        let err = load(text).expect_err("must be refused");
        (err.line().unwrap_or(0), err.to_string())
    }

    /// The 1-based line of the first occurrence of `needle`.
    fn line_with(text: &str, needle: &str) -> usize {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .expect("needle")
    }

    /// The 1-based line of the last line that `pick` accepts.
    fn last_line(text: &str, pick: impl Fn(&str) -> bool) -> usize {
        let lines: Vec<&str> = text.lines().collect();
        lines.iter().rposition(|l| pick(l)).expect("line") + 1
    }

    #[test]
    fn minimal_config_gets_the_defaults() {
        let c = load(&config("")).expect("valid");
        assert_eq!(c.switch.institution_id, "123456");
        assert_eq!(c.switch.duplicate_window, Duration::from_secs(300));
        assert_eq!(c.switch.saf.queue_max, 100_000);
        assert_eq!(c.switch.saf.policy.attempts_max, 50);
        let a = &c.acquirers[0];
        assert_eq!(a.connections_max, 1024);
        assert_eq!(a.in_flight_max, 256);
        assert_eq!(a.idle_timeout, Duration::from_secs(300));
        assert!(a.allowed_institutions.is_empty());
        assert_eq!(a.line, line_with(&config(""), "[[acquirer]]"));
        let i = &c.issuers[0];
        assert_eq!(i.connections, 2);
        assert_eq!(i.timeout, Duration::from_millis(10_000));
        assert_eq!(i.echo_interval, Some(Duration::from_secs(30)));
        assert_eq!(i.in_flight_max, 4096);
        assert!(!i.sign_on);
        assert!(i.stand_in.is_none());
        assert_eq!(c.default_route, DefaultRoute::Decline);
        assert!(c.routes.is_empty());
    }

    #[test]
    fn routes_and_default_route_are_read() {
        let text = config(
            r#"
[[route]]
bins = ["476173", "4761739", "476173"]
issuer = "issuer-a"
mti = ["0100", "0400"]
processing_code = ["00", "01"]
currency = ["840"]
timeout_ms = 2500

[[route]]
bin_range = { from = "545400", to = "545499" }
issuer = "issuer-a"

[default_route]
issuer = "issuer-a"
"#,
        );
        let c = load(&text).expect("valid");
        assert_eq!(c.routes.len(), 2);
        let r = &c.routes[0];
        assert_eq!(
            r.bins,
            RouteBins::Prefixes(vec!["476173".into(), "4761739".into()])
        );
        assert_eq!(r.mti.len(), 2);
        assert_eq!(r.processing_code, vec![*b"00", *b"01"]);
        assert_eq!(r.currency, vec![*b"840"]);
        assert_eq!(r.timeout, Some(Duration::from_millis(2500)));
        assert_eq!(r.conditions(), 3);
        assert_eq!(r.line, line_with(&text, "[[route]]"));
        assert_eq!(
            c.routes[1].bins,
            RouteBins::Range {
                from: "545400".into(),
                to: "545499".into()
            }
        );
        assert_eq!(c.default_route, DefaultRoute::Issuer(0));
    }

    #[test]
    fn an_unknown_issuer_is_refused_with_route_number_and_line() {
        let text = config("\n[[route]]\nbins = [\"476173\"]\nissuer = \"x\"\n");
        let (line, shown) = refused(&text);
        assert_eq!(line, line_with(&text, "issuer = \"x\""));
        assert_eq!(
            shown,
            format!("switch.toml:{line}: route 1: issuer 'x' is not defined")
        );
    }

    #[test]
    fn bad_bins_are_refused_on_their_line() {
        for bad in ["47617", "476173123456", "47617x", ""] {
            let text = config(&format!(
                "\n[[route]]\nbins = [\n  \"476173\",\n  \"{bad}\",\n]\nissuer = \"issuer-a\"\n"
            ));
            let (line, shown) = refused(&text);
            assert_eq!(line, line_with(&text, &format!("  \"{bad}\",")), "{shown}");
            assert!(shown.contains("is not a BIN of 6 to 11 digits"), "{shown}");
        }
        let text = config("\n[[route]]\nbins = []\nissuer = \"issuer-a\"\n");
        assert!(refused(&text).1.contains("bins is empty"));
    }

    #[test]
    fn bad_bin_ranges_are_refused() {
        let cases = [
            (r#"{ from = "545400", to = "5454999" }"#, "differ in length"),
            (r#"{ from = "545499", to = "545400" }"#, "is above to"),
            (r#"{ from = "5454", to = "5455" }"#, "is not a BIN"),
        ];
        for (range, want) in cases {
            let text = config(&format!(
                "\n[[route]]\nbin_range = {range}\nissuer = \"issuer-a\"\n"
            ));
            let (line, shown) = refused(&text);
            assert_eq!(line, line_with(&text, "bin_range"), "{shown}");
            assert!(shown.contains(want), "{shown}");
        }
        let both = config(
            "\n[[route]]\nbins = [\"476173\"]\nbin_range = { from = \"545400\", to = \"545499\" }\nissuer = \"issuer-a\"\n",
        );
        let (line, shown) = refused(&both);
        assert_eq!(line, line_with(&both, "[[route]]"));
        assert!(shown.contains("not both"), "{shown}");
        let neither = config("\n[[route]]\nissuer = \"issuer-a\"\n");
        assert!(refused(&neither).1.contains("needs bins or bin_range"));
    }

    #[test]
    fn bad_conditions_are_refused() {
        let cases = [
            ("mti = [\"0110\"]", "is not the MTI of a request"),
            ("mti = [\"010\"]", "is not the MTI of a request"),
            ("mti = []", "leave it out"),
            ("processing_code = [\"000000\"]", "is not two digits"),
            ("currency = [\"USD\"]", "three-digit ISO 4217"),
            ("timeout_ms = 0", "timeout_ms must be at least 1"),
        ];
        for (condition, want) in cases {
            let text = config(&format!(
                "\n[[route]]\nbins = [\"476173\"]\nissuer = \"issuer-a\"\n{condition}\n"
            ));
            let (line, shown) = refused(&text);
            assert_eq!(line, line_with(&text, condition), "{shown}");
            assert!(shown.contains(want), "{shown}");
        }
    }

    #[test]
    fn ambiguous_routes_are_refused() {
        let text = config(
            r#"
[[route]]
bins = ["476173"]
issuer = "issuer-a"
mti = ["0100"]

[[route]]
bins = ["476173"]
issuer = "issuer-a"
processing_code = ["00"]
"#,
        );
        let (line, shown) = refused(&text);
        assert_eq!(line, last_line(&text, |l| l == "[[route]]"));
        assert!(
            shown.contains("route 2: matches the same cards (BIN 476173)"),
            "{shown}"
        );
        assert!(shown.contains("as route 1"), "{shown}");
        // Disjoint conditions are not ambiguous.
        let fine = config(
            r#"
[[route]]
bins = ["476173"]
issuer = "issuer-a"
mti = ["0100"]

[[route]]
bins = ["476173"]
issuer = "issuer-a"
mti = ["0200"]
"#,
        );
        load(&fine).expect("disjoint conditions");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let text = config(&ISSUER.replace("issuer-a", "pos"));
        let (line, shown) = refused(&text);
        assert_eq!(line, last_line(&text, |l| l == "name = \"pos\""));
        assert!(
            shown.contains("issuer 'pos': name already used by acquirer 'pos'"),
            "{shown}"
        );
        let text = config(&ACQUIRER.replace("8583", "8584"));
        assert!(refused(&text).1.contains("name already used by acquirer"));
    }

    #[test]
    fn two_acquirers_on_one_address_are_refused() {
        let text = config(&ACQUIRER.replace("\"pos\"", "\"atm\""));
        let (line, shown) = refused(&text);
        assert_eq!(line, last_line(&text, |l| l.starts_with("listen")));
        assert!(shown.contains("already used by acquirer 'pos'"), "{shown}");
        let wildcard = config(
            &ACQUIRER
                .replace("\"pos\"", "\"atm\"")
                .replace("127.0.0.1", "0.0.0.0"),
        );
        assert!(refused(&wildcard).1.contains("already used"));
        let ephemeral = format!(
            "[switch]\ninstitution_id = \"1\"\n{}{}{ISSUER}",
            ACQUIRER.replace("8583", "0"),
            ACQUIRER.replace("8583", "0").replace("\"pos\"", "\"atm\"")
        );
        load(&ephemeral).expect("port 0 twice is fine");
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [
            "127.0.0.1",
            "localhost:http",
            ":8583",
            "1.2.3.4.5:80",
            "::1:80",
            "a b:1",
        ] {
            let text = config("").replace("127.0.0.1:8583", bad);
            let (line, shown) = refused(&text);
            assert_eq!(line, line_with(&text, "listen ="), "{shown}");
            assert!(shown.contains("is not host:port"), "{shown}");
        }
        for good in ["localhost:8583", "[::1]:8583", "switch.example.com:8583"] {
            load(&config("").replace("127.0.0.1:8583", good)).expect(good);
        }
        let text = config("").replace("127.0.0.1:9101", "127.0.0.1:0");
        assert!(refused(&text).1.contains("port 0"));
        let text = config("").replace("[\"127.0.0.1:9101\"]", "[]");
        assert!(refused(&text).1.contains("at least one host:port"));
    }

    #[test]
    fn institution_ids_must_be_digits() {
        for bad in ["", "12a", "123456789012"] {
            let text = config("").replace("\"123456\"", &format!("\"{bad}\""));
            let (line, shown) = refused(&text);
            assert_eq!(line, 2, "{shown}");
            assert!(shown.contains("institution_id"), "{shown}");
        }
        let text = config("").replacen(
            "framing = { length = \"ascii4\" }\n",
            "framing = { length = \"ascii4\" }\nallowed_institutions = [\"123\", \"x\"]\n",
            1,
        );
        let (line, shown) = refused(&text);
        assert_eq!(line, line_with(&text, "allowed_institutions"));
        assert!(shown.contains("allowed_institutions: 'x'"), "{shown}");
    }

    #[test]
    fn unknown_specs_are_refused() {
        let text = config("").replacen("spec = \"iso87-ascii\"", "spec = \"no-such-spec\"", 1);
        let (line, shown) = refused(&text);
        assert_eq!(line, line_with(&text, "no-such-spec"));
        assert!(
            shown.contains("acquirer 'pos': spec: unknown spec"),
            "{shown}"
        );
        // A spec file that exists but is malformed: its own error, on the
        // configuration's line.
        let bad_spec = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/specs-bad/bcd-on-ans.toml"
        );
        let text = config("").replacen(
            "spec = \"iso87-ascii\"",
            &format!("spec = \"{bad_spec}\""),
            1,
        );
        let (line, shown) = refused(&text);
        assert_eq!(line, line_with(&text, "bcd-on-ans"));
        assert!(shown.contains("field 43"), "{shown}");
        // A spec file by path.
        let good = concat!(env!("CARGO_MANIFEST_DIR"), "/specs/iso93-ascii.toml");
        let text = config("").replacen("spec = \"iso87-ascii\"", &format!("spec = \"{good}\""), 1);
        assert_eq!(
            load(&text).expect("spec by path").acquirers[0].spec_name,
            good
        );
    }

    #[test]
    fn missing_tls_files_are_refused() {
        let text = config("").replacen(
            "framing = { length = \"ascii4\" }\n",
            "framing = { length = \"ascii4\" }\ntls = { cert = \"/nonexistent/cert.pem\", key = \"/nonexistent/key.pem\" }\n",
            1,
        );
        let (line, shown) = refused(&text);
        assert_eq!(line, line_with(&text, "tls ="));
        assert!(
            shown.contains("tls.cert: file '/nonexistent/cert.pem' not found"),
            "{shown}"
        );
    }

    #[test]
    fn zero_counts_are_refused() {
        for (key, section) in [
            ("connections_max = 0", "acquirer 'pos'"),
            ("in_flight_max = 0", "acquirer 'pos'"),
            ("idle_timeout_s = 0", "acquirer 'pos'"),
        ] {
            let text = config("").replacen(
                "framing = { length = \"ascii4\" }\n",
                &format!("framing = {{ length = \"ascii4\" }}\n{key}\n"),
                1,
            );
            let (line, shown) = refused(&text);
            assert_eq!(line, line_with(&text, key), "{shown}");
            assert!(shown.contains(&format!("{section}: ")), "{shown}");
            assert!(shown.contains("must be at least 1"), "{shown}");
        }
        let text = format!("{}\nconnections = 0\n", config(""));
        assert!(
            refused(&text)
                .1
                .contains("issuer 'issuer-a': connections must be at least 1")
        );
        let text = config("").replace(
            "institution_id = \"123456\"",
            "institution_id = \"123456\"\nsaf = { queue_max = 0 }",
        );
        let (line, shown) = refused(&text);
        assert_eq!(line, 3);
        assert!(shown.contains("switch.saf: queue_max"), "{shown}");
        let text = config("").replace(
            "framing = { length = \"ascii4\" }",
            "framing = { length = \"ascii4\", frame_bytes_max = 0 }",
        );
        assert!(refused(&text).1.contains("frame_bytes_max"));
    }

    #[test]
    fn stand_in_and_echo_settings() {
        let text = format!(
            "{}\necho_interval_s = 0\nsign_on = true\nstand_in = {{ per_transaction_max = 5000, per_card_daily_count = 3, per_card_daily_amount = 10000 }}\n",
            config("")
        );
        let c = load(&text).expect("valid");
        let i = &c.issuers[0];
        assert_eq!(i.echo_interval, None);
        assert!(i.sign_on);
        assert_eq!(i.stand_in.map(|s| s.per_card_daily_count), Some(3));
        let text = text.replace("per_card_daily_count = 3", "per_card_daily_count = 0");
        assert!(refused(&text).1.contains("stand_in.per_card_daily_count"));
        let text = text
            .replace("per_card_daily_count = 0", "per_card_daily_count = 3")
            .replace("10000", "100");
        assert!(refused(&text).1.contains("above per_card_daily_amount"));
    }

    #[test]
    fn default_route_forms() {
        let both = config("\n[default_route]\nissuer = \"issuer-a\"\ndecline = true\n");
        let (line, shown) = refused(&both);
        assert_eq!(line, line_with(&both, "[default_route]"));
        assert!(
            shown.contains("default_route: give issuer or decline"),
            "{shown}"
        );
        let neither = config("\n[default_route]\ndecline = false\n");
        assert!(refused(&neither).1.contains("needs issuer"));
        let unknown = config("\n[default_route]\nissuer = \"nobody\"\n");
        assert!(
            refused(&unknown)
                .1
                .contains("issuer 'nobody' is not defined")
        );
        let decline = config("\n[default_route]\ndecline = true\n");
        assert_eq!(load(&decline).unwrap().default_route, DefaultRoute::Decline);
    }

    #[test]
    fn syntax_errors_and_unknown_keys_name_the_line() {
        let text = config("").replace("institution_id", "sensitive_log = true\ninstitution_id");
        let err = load(&text).expect_err("unknown key");
        assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
        assert!(
            err.to_string().contains("unknown field `sensitive_log`"),
            "{err}"
        );
        let text = config("").replace("\"ascii4\" }", "\"ascii5\" }");
        let (line, shown) = refused(&text);
        assert_eq!(line, line_with(&text, "ascii5"));
        assert!(shown.contains("ascii5"), "{shown}");
        let err = load("[[acquirer]]\nname = \"a\"\n").expect_err("no switch");
        assert!(err.to_string().contains("switch"), "{err}");
    }

    #[test]
    fn acquirers_and_issuers_are_required() {
        let err = load("[switch]\ninstitution_id = \"1\"\n").expect_err("empty");
        assert!(matches!(err, ConfigError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("no [[acquirer]]"), "{err}");
    }

    #[test]
    fn load_reports_unreadable_files_and_resolves_relative_paths() {
        let err = SwitchConfig::load("/nonexistent/switch.toml").expect_err("missing");
        assert!(matches!(err, ConfigError::Io { .. }), "{err}");
        let dir = std::env::temp_dir().join(format!("cardswitch-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), "x").unwrap();
        std::fs::write(dir.join("key.pem"), "x").unwrap();
        let text = config("").replacen(
            "framing = { length = \"ascii4\" }\n",
            "framing = { length = \"ascii4\" }\ntls = { cert = \"cert.pem\", key = \"key.pem\" }\n",
            1,
        );
        std::fs::write(dir.join("switch.toml"), &text).unwrap();
        let c = SwitchConfig::load(dir.join("switch.toml")).expect("valid");
        let tls = c.acquirers[0].tls.clone().expect("tls");
        assert_eq!(tls.cert, dir.join("cert.pem"));
        assert_eq!(tls.client_ca, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(host_port("127.0.0.1:8583"), Ok(("127.0.0.1".into(), 8583)));
        assert_eq!(
            host_port("Switch.Example:1"),
            Ok(("switch.example".into(), 1))
        );
        assert!(host_port("host:65536").is_err());
        assert!(host_port("host:+80").is_err());
        assert!(addresses_collide("0.0.0.0:1", "127.0.0.1:1"));
        assert!(!addresses_collide("127.0.0.1:1", "127.0.0.2:1"));
        assert!(!addresses_collide("127.0.0.1:0", "127.0.0.1:0"));
    }
}
