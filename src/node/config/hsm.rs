//! `[hsm]`: the payShield the switch asks for PIN, MAC and cryptogram
//! work. Only the parsing hook lives here; the settings type and its
//! limits are the client's (`node::hsm::settings`).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::check::{Ctx, host_port};
use super::file::{IssuerTlsFile, Number, Text};
use super::links::check_issuer_tls;
use super::{ConfigError, HANDSHAKE_TIMEOUT_MS_DEFAULT, HANDSHAKE_TIMEOUT_MS_RANGE};
use crate::node::hsm::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HsmFile {
    address: Text,
    /// As an issuer's: present means on.
    tls: Option<Spanned<IssuerTlsFile>>,
    header: Option<Text>,
    connections: Number,
    pipeline_depth: Number,
    timeout_ms: Number,
    health_interval_s: Number,
    connect_timeout_ms: Number,
    handshake_timeout_ms: Number,
}

/// The header: printable ASCII, no spaces, within the codec's length.
fn check_header(ctx: &Ctx, header: Option<&Text>) -> Result<Vec<u8>, ConfigError> {
    let Some(t) = header else {
        return Ok(HSM_HEADER_DEFAULT.as_bytes().to_vec());
    };
    let text = t.get_ref();
    let (min, max) = (HSM_HEADER_BYTES_RANGE.start(), HSM_HEADER_BYTES_RANGE.end());
    if !HSM_HEADER_BYTES_RANGE.contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ctx.invalid(
            t.span(),
            "hsm",
            format!("header: {min} to {max} printable ASCII characters, no spaces"),
        ));
    }
    Ok(text.as_bytes().to_vec())
}

pub(super) fn check_hsm(ctx: &Ctx, raw: &Spanned<HsmFile>) -> Result<HsmSettings, ConfigError> {
    let h = raw.get_ref();
    let section = "hsm";
    let (host, port) = host_port(h.address.get_ref())
        .map_err(|reason| ctx.invalid(h.address.span(), section, format!("address: {reason}")))?;
    if port == 0 {
        return Err(ctx.invalid(h.address.span(), section, "address: port 0"));
    }
    let header = check_header(ctx, h.header.as_ref())?;
    let tls = match &h.tls {
        Some(t) => Some(check_issuer_tls(ctx, t, &[host], section)?),
        None => None,
    };
    let ms = |value, default, range, key| {
        ctx.number(value, default, range, section, key)
            .map(Duration::from_millis)
    };
    let mut s = HsmSettings::new(h.address.get_ref());
    s.line = ctx.line(raw.span());
    s.tls = tls;
    s.header = header;
    s.connections = ctx.number(
        &h.connections,
        HSM_CONNECTIONS_DEFAULT,
        &HSM_CONNECTIONS_RANGE,
        section,
        "connections",
    )?;
    s.pipeline_depth = ctx.number(
        &h.pipeline_depth,
        HSM_PIPELINE_DEPTH_DEFAULT,
        &HSM_PIPELINE_DEPTH_RANGE,
        section,
        "pipeline_depth",
    )?;
    s.timeout = ms(
        &h.timeout_ms,
        HSM_TIMEOUT_MS_DEFAULT,
        &HSM_TIMEOUT_MS_RANGE,
        "timeout_ms",
    )?;
    s.health_interval = Duration::from_secs(ctx.number(
        &h.health_interval_s,
        HSM_HEALTH_INTERVAL_S_DEFAULT,
        &HSM_HEALTH_INTERVAL_S_RANGE,
        section,
        "health_interval_s",
    )?);
    s.connect_timeout = ms(
        &h.connect_timeout_ms,
        HSM_CONNECT_TIMEOUT_MS_DEFAULT,
        &HSM_CONNECT_TIMEOUT_MS_RANGE,
        "connect_timeout_ms",
    )?;
    s.handshake_timeout = ms(
        &h.handshake_timeout_ms,
        HANDSHAKE_TIMEOUT_MS_DEFAULT,
        &HANDSHAKE_TIMEOUT_MS_RANGE,
        "handshake_timeout_ms",
    )?;
    Ok(s)
}
