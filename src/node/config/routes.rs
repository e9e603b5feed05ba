//! Checking the `[[route]]` and `[default_route]` sections.

use std::time::Duration;

use toml::Spanned;

use super::check::{Ctx, digits_array, is_digits};
use super::file::*;
use super::*;

/// Parses a list condition; refuses an empty list (leave the key out to
/// match any).
pub(super) fn check_list<T>(
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

pub(super) fn check_route(
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
        // The range's start stands for the default a required key lacks.
        Some(_) => Some(Duration::from_millis(ctx.number(
            &r.timeout_ms,
            *ROUTE_TIMEOUT_MS_RANGE.start(),
            &ROUTE_TIMEOUT_MS_RANGE,
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

pub(super) fn check_default_route(
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
