//! Checking the `[[acquirer]]` and `[[issuer]]` sections.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::check::{Ctx, addresses_collide, host_port, is_digits};
use super::file::*;
use super::security::{check_acquirer_security, check_issuer_security};
use super::*;
use crate::link::framing::FRAME_BYTES_MAX_DEFAULT;

/// Checks a link name and that no other acquirer or issuer has it (they
/// share log fields and metric labels).
pub(super) fn check_name(
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

pub(super) fn check_framing(
    ctx: &Ctx,
    framing: &Spanned<toml::Table>,
    section: &str,
) -> Result<Framing, ConfigError> {
    let mut table = framing.get_ref().clone();
    // The table's keys carry no lines of their own: the framing's line.
    let limit = match table.remove("frame_bytes_max") {
        None => None,
        Some(toml::Value::Integer(n)) => Some(Spanned::new(framing.span(), n)),
        Some(other) => {
            let reason = format!("framing.frame_bytes_max = {other} is not an integer");
            return Err(ctx.invalid(framing.span(), section, reason));
        }
    };
    let frame_bytes_max = ctx.number(
        &limit,
        FRAME_BYTES_MAX_DEFAULT as u64,
        &FRAME_BYTES_MAX_RANGE,
        section,
        "framing.frame_bytes_max",
    )?;
    let f = Framing::deserialize(toml::Value::Table(table)).map_err(|e| {
        ctx.invalid(
            framing.span(),
            section,
            format!("framing: {}", e.message().trim()),
        )
    })?;
    Ok(f.with_frame_bytes_max(frame_bytes_max))
}

pub(super) fn check_acquirer(
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
    let tls = a
        .tls
        .as_ref()
        .map(|t| check_acquirer_tls(ctx, t, &section))
        .transpose()?;
    let allowed_institutions = check_institutions(ctx, a.allowed_institutions.as_ref(), &section)?;
    Ok(AcquirerConfig {
        name,
        line: ctx.line(raw.span()),
        listen: a.listen.get_ref().clone(),
        listen_line: ctx.line(a.listen.span()),
        spec_name: a.spec.get_ref().clone(),
        spec,
        framing,
        tls,
        allowed_institutions,
        connections_max: ctx.number(
            &a.connections_max,
            ACQUIRER_CONNECTIONS_MAX_DEFAULT,
            &ACQUIRER_CONNECTIONS_MAX_RANGE,
            &section,
            "connections_max",
        )?,
        in_flight_max: ctx.number(
            &a.in_flight_max,
            ACQUIRER_IN_FLIGHT_MAX_DEFAULT,
            &ACQUIRER_IN_FLIGHT_MAX_RANGE,
            &section,
            "in_flight_max",
        )?,
        idle_timeout: Duration::from_secs(ctx.number(
            &a.idle_timeout_s,
            ACQUIRER_IDLE_TIMEOUT_S_DEFAULT,
            &ACQUIRER_IDLE_TIMEOUT_S_RANGE,
            &section,
            "idle_timeout_s",
        )?),
        link: check_acquirer_link_limits(ctx, a, &section)?,
        security: a
            .security
            .as_ref()
            .map(|s| check_acquirer_security(ctx, s, &section))
            .transpose()?
            .unwrap_or_default(),
    })
}

fn check_acquirer_link_limits(
    ctx: &Ctx,
    a: &AcquirerFile,
    section: &str,
) -> Result<AcquirerLinkLimits, ConfigError> {
    let ms = |value, default, range, key| {
        ctx.number(value, default, range, section, key)
            .map(Duration::from_millis)
    };
    Ok(AcquirerLinkLimits {
        handshake_timeout: ms(
            &a.handshake_timeout_ms,
            HANDSHAKE_TIMEOUT_MS_DEFAULT,
            &HANDSHAKE_TIMEOUT_MS_RANGE,
            "handshake_timeout_ms",
        )?,
        first_frame_timeout: ms(
            &a.first_frame_timeout_ms,
            ACQUIRER_FIRST_FRAME_TIMEOUT_MS_DEFAULT,
            &ACQUIRER_FIRST_FRAME_TIMEOUT_MS_RANGE,
            "first_frame_timeout_ms",
        )?,
        connections_per_peer_max: ctx.number(
            &a.connections_per_peer_max,
            ACQUIRER_CONNECTIONS_PER_PEER_MAX_DEFAULT,
            &ACQUIRER_CONNECTIONS_PER_PEER_MAX_RANGE,
            section,
            "connections_per_peer_max",
        )?,
        listen_backlog: ctx.number(
            &a.listen_backlog,
            ACQUIRER_LISTEN_BACKLOG_DEFAULT,
            &ACQUIRER_LISTEN_BACKLOG_RANGE,
            section,
            "listen_backlog",
        )?,
    })
}

fn check_acquirer_tls(
    ctx: &Ctx,
    t: &AcquirerTlsFile,
    section: &str,
) -> Result<AcquirerTls, ConfigError> {
    Ok(AcquirerTls {
        cert: ctx.existing_file(&t.cert, section, "tls.cert")?,
        cert_line: ctx.line(t.cert.span()),
        key: ctx.existing_file(&t.key, section, "tls.key")?,
        key_line: ctx.line(t.key.span()),
        client_ca: t
            .client_ca
            .as_ref()
            .map(|ca| ctx.existing_file(ca, section, "tls.client_ca"))
            .transpose()?,
        client_ca_line: t.client_ca.as_ref().map(|ca| ctx.line(ca.span())),
    })
}

/// `allowed_institutions`: DE32 ids, duplicates dropped.
fn check_institutions(
    ctx: &Ctx,
    list: Option<&TextList>,
    section: &str,
) -> Result<Vec<String>, ConfigError> {
    let mut allowed = Vec::new();
    for id in list.map_or(&[][..], |l| l.get_ref()) {
        if !is_digits(id.get_ref(), 1, INSTITUTION_DIGITS_MAX) {
            return Err(ctx.invalid(
                id.span(),
                section,
                format!(
                    "allowed_institutions: '{}' is not 1 to {INSTITUTION_DIGITS_MAX} digits",
                    id.get_ref()
                ),
            ));
        }
        if !allowed.contains(id.get_ref()) {
            allowed.push(id.get_ref().clone());
        }
    }
    Ok(allowed)
}

/// `stand_in`: each limit in its range, the per-transaction maximum no
/// more than the daily amount.
fn check_stand_in(
    ctx: &Ctx,
    raw: &Spanned<StandInFile>,
    section: &str,
) -> Result<StandInRules, ConfigError> {
    let s = raw.get_ref();
    let amount = |value: &Spanned<i64>, key: &str| {
        let start = *STAND_IN_AMOUNT_RANGE.start();
        ctx.number(
            &Some(value.clone()),
            start,
            &STAND_IN_AMOUNT_RANGE,
            section,
            key,
        )
    };
    let rules = StandInRules {
        per_transaction_max: amount(&s.per_transaction_max, "stand_in.per_transaction_max")?,
        per_card_daily_count: ctx.number(
            &Some(s.per_card_daily_count.clone()),
            *STAND_IN_DAILY_COUNT_RANGE.start(),
            &STAND_IN_DAILY_COUNT_RANGE,
            section,
            "stand_in.per_card_daily_count",
        )?,
        per_card_daily_amount: amount(&s.per_card_daily_amount, "stand_in.per_card_daily_amount")?,
    };
    if rules.per_transaction_max > rules.per_card_daily_amount {
        return Err(ctx.invalid(
            raw.span(),
            section,
            format!(
                "stand_in.per_transaction_max ({}) is above per_card_daily_amount ({})",
                rules.per_transaction_max, rules.per_card_daily_amount
            ),
        ));
    }
    Ok(rules)
}

/// Two acquirers cannot listen on the same address (the second bind fails
/// at start; better to say so with its line).
pub(super) fn check_listen_conflicts(
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

pub(super) fn check_issuer(
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
    let given = i.addresses.get_ref().len();
    if given > ISSUER_ADDRESSES_MAX {
        return Err(ctx.invalid(
            i.addresses.span(),
            &section,
            format!("addresses: {given} endpoints, at most {ISSUER_ADDRESSES_MAX}"),
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
    let stand_in = i
        .stand_in
        .as_ref()
        .map(|s| check_stand_in(ctx, s, &section))
        .transpose()?;
    let security = match &i.security {
        None => IssuerSecurity::default(),
        Some(raw) => {
            let s = check_issuer_security(ctx, raw, &section)?;
            if stand_in.is_none() && (s.arqc.is_some() || s.cvv_key.is_some()) {
                let reason =
                    "security: arqc_key and cvv_key are for stand-in, and there is no stand_in";
                return Err(ctx.invalid(raw.span(), &section, reason));
            }
            s
        }
    };
    let echo_interval_s: u64 = ctx.number(
        &i.echo_interval_s,
        ISSUER_ECHO_INTERVAL_S_DEFAULT,
        &ISSUER_ECHO_INTERVAL_S_RANGE,
        &section,
        "echo_interval_s",
    )?;
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
        connections: ctx.number(
            &i.connections,
            ISSUER_CONNECTIONS_DEFAULT,
            &ISSUER_CONNECTIONS_RANGE,
            &section,
            "connections",
        )?,
        timeout: Duration::from_millis(ctx.number(
            &i.timeout_ms,
            ISSUER_TIMEOUT_MS_DEFAULT,
            &ISSUER_TIMEOUT_MS_RANGE,
            &section,
            "timeout_ms",
        )?),
        echo_interval: (echo_interval_s > 0).then(|| Duration::from_secs(echo_interval_s)),
        sign_on: i.sign_on,
        in_flight_max: ctx.number(
            &i.in_flight_max,
            ISSUER_IN_FLIGHT_MAX_DEFAULT,
            &ISSUER_IN_FLIGHT_MAX_RANGE,
            &section,
            "in_flight_max",
        )?,
        stand_in,
        handshake_timeout: Duration::from_millis(ctx.number(
            &i.handshake_timeout_ms,
            HANDSHAKE_TIMEOUT_MS_DEFAULT,
            &HANDSHAKE_TIMEOUT_MS_RANGE,
            &section,
            "handshake_timeout_ms",
        )?),
        security,
    })
}

pub(super) fn check_issuer_tls(
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
        ca_line: ctx.line(t.ca.span()),
        server_name,
        cert,
        key,
        cert_line: t.cert.as_ref().map(|c| ctx.line(c.span())),
        key_line: t.key.as_ref().map(|k| ctx.line(k.span())),
    })
}
