//! Checking the file as written: the whole file, the `[switch]` section,
//! and the small checks the sections share.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::file::*;
use super::links::{check_acquirer, check_issuer, check_listen_conflicts};
use super::routes::{check_default_route, check_route};
use super::*;
use crate::message::spec_file::{builtin_names, builtin_text};

/// Where we are: for line numbers, messages and relative paths.
pub(super) struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
    dir: Option<&'a Path>,
    /// Specs already resolved, by the name or path as resolved.
    specs: HashMap<String, Arc<Spec>>,
}

pub(super) fn line_of(text: &str, byte: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..byte.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, column)
}

impl Ctx<'_> {
    pub(super) fn file_name(&self) -> &str {
        self.file
    }

    pub(super) fn line(&self, span: Range<usize>) -> usize {
        line_of(self.text, span.start).0
    }

    pub(super) fn invalid(
        &self,
        span: Range<usize>,
        section: &str,
        reason: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            line: self.line(span),
            section: section.to_string(),
            reason: reason.into(),
        }
    }

    pub(super) fn missing(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::Missing {
            file: self.file.to_string(),
            reason: reason.into(),
        }
    }

    /// A path as written, relative to the configuration's directory.
    pub(super) fn path(&self, written: &str) -> PathBuf {
        let p = Path::new(written);
        match self.dir {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// A file that must exist (TLS certificates and keys).
    pub(super) fn existing_file(
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

    pub(super) fn spec(&mut self, value: &Text, section: &str) -> Result<Arc<Spec>, ConfigError> {
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

    /// A count, size or duration: `default` when the key is absent, else
    /// the value written, which must lie in `range` (refused naming the
    /// key, its line and the range), in the type its consumer takes. Every
    /// numeric key goes through here, so none is unbounded.
    pub(super) fn number<T: TryFrom<u64>>(
        &self,
        value: &Number,
        default: u64,
        range: &RangeInclusive<u64>,
        section: &str,
        key: &str,
    ) -> Result<T, ConfigError> {
        debug_assert!(range.contains(&default), "{key}: default outside its range");
        let out_of_range = |shown: &dyn std::fmt::Display, span: Range<usize>| {
            let (min, max) = (range.start(), range.end());
            let reason = format!("{key} = {shown} is out of range {min}..={max}");
            self.invalid(span, section, reason)
        };
        let n = match value {
            None => default,
            Some(v) => u64::try_from(*v.get_ref())
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| out_of_range(v.get_ref(), v.span()))?,
        };
        // A range wider than the consumer's type is a programming error;
        // it is still refused rather than truncated.
        let span = value.as_ref().map_or(0..0, Spanned::span);
        T::try_from(n).map_err(|_| out_of_range(&n, span))
    }
}

pub(super) fn parse(
    text: &str,
    file: &str,
    dir: Option<&Path>,
) -> Result<SwitchConfig, ConfigError> {
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
    if let Some(a) = crate::switch::routing::ambiguity(&routes) {
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
    let journal = raw
        .journal
        .as_ref()
        .map(|j| check_journal(&ctx, j))
        .transpose()?;
    let hsm = raw
        .hsm
        .as_ref()
        .map(|h| super::hsm::check_hsm(&ctx, h))
        .transpose()?;
    if hsm.is_none() {
        keys_need_an_hsm(&ctx, &acquirers, &issuers)?;
    }
    Ok(SwitchConfig {
        file: file.to_string(),
        switch,
        acquirers,
        issuers,
        routes,
        default_route,
        journal,
        hsm,
    })
}

/// Keys are used through the HSM only: a link with keys and no `[hsm]`
/// is refused on the first key's line.
fn keys_need_an_hsm(
    ctx: &Ctx,
    acquirers: &[AcquirerConfig],
    issuers: &[IssuerConfig],
) -> Result<(), ConfigError> {
    let acquirer_keys = acquirers.iter().filter_map(|a| {
        let s = &a.security;
        let first = s.pin.as_ref().map(|z| &z.key).or(s.mac_key.as_ref())?;
        Some((format!("acquirer '{}'", a.name), first.line))
    });
    let issuer_keys = issuers.iter().filter_map(|i| {
        let s = &i.security;
        let first = (s.pin.as_ref().map(|z| &z.key))
            .or(s.mac_key.as_ref())
            .or(s.zone_master_key.as_ref())
            .or(s.arqc.as_ref().map(|(k, _)| k))
            .or(s.cvv_key.as_ref())?;
        Some((format!("issuer '{}'", i.name), first.line))
    });
    match acquirer_keys.chain(issuer_keys).next() {
        None => Ok(()),
        Some((section, line)) => Err(ConfigError::Invalid {
            file: ctx.file_name().to_string(),
            line,
            section,
            reason: "security: keys are used through an HSM, and there is no [hsm] section".into(),
        }),
    }
}

/// `[journal]`: the lines of its keys are kept for the errors a start
/// may meet (a key file that cannot be read, a database that cannot open).
fn check_journal(ctx: &Ctx, raw: &Spanned<JournalFile>) -> Result<JournalSettings, ConfigError> {
    let j = raw.get_ref();
    if j.path.get_ref().trim().is_empty() {
        return Err(ctx.invalid(j.path.span(), "journal", "path is empty"));
    }
    let log = check_journal_log(ctx, j)?;
    Ok(JournalSettings {
        log,
        line: ctx.line(raw.span()),
        path: ctx.path(j.path.get_ref()),
        path_line: ctx.line(j.path.span()),
        key_file: j.key_file.as_ref().map(|k| ctx.path(k.get_ref())),
        key_file_line: j.key_file.as_ref().map(|k| ctx.line(k.span())),
        group_records_max: ctx.number(
            &j.group_records_max,
            crate::journal::writer::GROUP_RECORDS_MAX as u64,
            &JOURNAL_GROUP_RECORDS_MAX_RANGE,
            "journal",
            "group_records_max",
        )?,
    })
}

/// `durability` and the log's keys: the log unless `"sqlite"`.
fn check_journal_log(
    ctx: &Ctx,
    j: &JournalFile,
) -> Result<Option<JournalLogSettings>, ConfigError> {
    match j
        .durability
        .as_ref()
        .map(|d| (d.get_ref().as_str(), d.span()))
    {
        None | Some(("log", _)) => {}
        Some(("sqlite", _)) => return Ok(None),
        Some((other, span)) => {
            let reason = format!("durability '{other}' is not \"log\" or \"sqlite\"");
            return Err(ctx.invalid(span, "journal", reason));
        }
    }
    let dir = match &j.log_dir {
        Some(d) if d.get_ref().trim().is_empty() => {
            return Err(ctx.invalid(d.span(), "journal", "log_dir is empty"));
        }
        Some(d) => ctx.path(d.get_ref()),
        None => ctx.path(&format!("{}-log", j.path.get_ref())),
    };
    let mib: u64 = ctx.number(
        &j.log_segment_mib,
        crate::journal::log::writer::SEGMENT_BYTES_DEFAULT >> 20,
        &JOURNAL_LOG_SEGMENT_MIB_RANGE,
        "journal",
        "log_segment_mib",
    )?;
    let queue_records = ctx.number(
        &j.log_queue_records,
        crate::journal::log::writer::QUEUE_RECORDS_DEFAULT as u64,
        &JOURNAL_LOG_QUEUE_RECORDS_RANGE,
        "journal",
        "log_queue_records",
    )?;
    let keep_fed_segments = ctx.number(
        &j.log_keep_fed_segments,
        crate::journal::log::writer::KEEP_FED_SEGMENTS_DEFAULT as u64,
        &JOURNAL_LOG_KEEP_FED_SEGMENTS_RANGE,
        "journal",
        "log_keep_fed_segments",
    )?;
    let limits = crate::journal::log::Limits {
        segment_bytes: mib << 20,
        queue_records,
        keep_fed_segments,
    };
    Ok(Some(JournalLogSettings { dir, limits }))
}

pub(super) fn check_switch(
    ctx: &Ctx,
    raw: &Spanned<SwitchFile>,
) -> Result<SwitchSettings, ConfigError> {
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
    let window_s = ctx.number(
        &s.duplicate_window_s,
        DUPLICATE_WINDOW_S_DEFAULT,
        &DUPLICATE_WINDOW_S_RANGE,
        section,
        "duplicate_window_s",
    )?;
    Ok(SwitchSettings {
        institution_id: id.get_ref().clone(),
        metrics,
        saf: check_saf(ctx, saf, raw)?,
        duplicate_window: Duration::from_secs(window_s),
    })
}

/// `[switch.saf]`: every key in its range, and the first retry no later
/// than the longest.
fn check_saf(
    ctx: &Ctx,
    saf: &SafFile,
    raw: &Spanned<SwitchFile>,
) -> Result<SafSettings, ConfigError> {
    let section = "switch.saf";
    let retry_min_ms: u64 = ctx.number(
        &saf.retry_min_ms,
        SAF_RETRY_MIN_MS_DEFAULT,
        &SAF_RETRY_MIN_MS_RANGE,
        section,
        "retry_min_ms",
    )?;
    let retry_max_ms: u64 = ctx.number(
        &saf.retry_max_ms,
        SAF_RETRY_MAX_MS_DEFAULT,
        &SAF_RETRY_MAX_MS_RANGE,
        section,
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
            section,
            format!("retry_min_ms ({retry_min_ms}) is above retry_max_ms ({retry_max_ms})"),
        ));
    }
    let expiry_s = ctx.number(
        &saf.expiry_s,
        SAF_EXPIRY_S_DEFAULT,
        &SAF_EXPIRY_S_RANGE,
        section,
        "expiry_s",
    )?;
    let response_wait_ms = ctx.number(
        &saf.response_wait_ms,
        SAF_RESPONSE_WAIT_MS_DEFAULT,
        &SAF_RESPONSE_WAIT_MS_RANGE,
        section,
        "response_wait_ms",
    )?;
    Ok(SafSettings {
        queue_max: ctx.number(
            &saf.queue_max,
            SAF_QUEUE_MAX_DEFAULT,
            &SAF_QUEUE_MAX_RANGE,
            section,
            "queue_max",
        )?,
        policy: SafPolicy {
            retry_min: Duration::from_millis(retry_min_ms),
            retry_max: Duration::from_millis(retry_max_ms),
            expiry: Duration::from_secs(expiry_s),
            attempts_max: ctx.number(
                &saf.max_attempts,
                SAF_MAX_ATTEMPTS_DEFAULT,
                &SAF_MAX_ATTEMPTS_RANGE,
                section,
                "max_attempts",
            )?,
        },
        response_wait: Duration::from_millis(response_wait_ms),
    })
}

// ---------------------------------------------------------------------------
// Small checks.

pub(super) fn is_digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn digits_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    let bytes: [u8; N] = s.as_bytes().try_into().ok()?;
    bytes.iter().all(u8::is_ascii_digit).then_some(bytes)
}

/// Checks `host:port` (an IP address, `[v6]:port` or a DNS name); returns
/// the host (lowercase) and the port.
pub(super) fn host_port(s: &str) -> Result<(String, u16), String> {
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
pub(super) fn addresses_collide(a: &str, b: &str) -> bool {
    let (Ok((host_a, port_a)), Ok((host_b, port_b))) = (host_port(a), host_port(b)) else {
        return false;
    };
    let wildcard = |h: &str| h == "0.0.0.0" || h == "::";
    port_a != 0 && port_a == port_b && (host_a == host_b || wildcard(&host_a) || wildcard(&host_b))
}
