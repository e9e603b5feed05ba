//! The routing table as text, one line per route and one for the default
//! route, for the start-up log: what the operator configured, after the
//! issuer time-outs were filled in.

use super::{Compiled, IssuerRef, RouteBins, RouteConfig, RouteDecision};

/// The lines of [`super::RouteTable::describe`]; `compiled[n]` is
/// `routes[n]` with its time-out resolved.
pub(super) fn describe_routes(
    routes: &[RouteConfig],
    issuers: &[IssuerRef<'_>],
    compiled: &[Compiled],
    default: RouteDecision,
) -> Vec<String> {
    let issuer_name = |i: usize| issuers.get(i).map_or("?", |x| x.name);
    let join = |items: Vec<String>| items.join("|");
    let mut lines = Vec::with_capacity(routes.len() + 1);
    for (n, (route, c)) in routes.iter().zip(compiled).enumerate() {
        let cards = match &route.bins {
            RouteBins::Prefixes(bins) => format!("BIN {}", bins.join(", ")),
            RouteBins::Range { from, to } => format!("BINs {from}-{to}"),
        };
        let mut line = format!(
            "route {} (line {}): {cards} -> {}, timeout {} ms",
            n + 1,
            route.line,
            issuer_name(c.issuer),
            c.timeout.as_millis()
        );
        let mut conditions = Vec::new();
        if !route.mti.is_empty() {
            conditions.push(format!(
                "mti {}",
                join(route.mti.iter().map(|m| m.to_string()).collect())
            ));
        }
        if !route.processing_code.is_empty() {
            conditions.push(format!(
                "processing code {}",
                join(
                    route
                        .processing_code
                        .iter()
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect()
                )
            ));
        }
        if !route.currency.is_empty() {
            conditions.push(format!(
                "currency {}",
                join(
                    route
                        .currency
                        .iter()
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect()
                )
            ));
        }
        if !conditions.is_empty() {
            line.push_str(", if ");
            line.push_str(&conditions.join(", "));
        }
        lines.push(line);
    }
    lines.push(match default {
        RouteDecision::Issuer { issuer, timeout } => format!(
            "default route -> {}, timeout {} ms",
            issuer_name(issuer),
            timeout.as_millis()
        ),
        RouteDecision::Decline { response_code } => {
            format!("default route: decline with {response_code} (no such issuer)")
        }
    });
    lines
}
