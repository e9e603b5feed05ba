//! The routing table: which issuer an authorization goes to, from its PAN,
//! MTI, processing code and currency. Built once from the configuration
//! (pure, no I/O) and consulted on every request, so the lookup allocates
//! nothing and touches a few cache lines.
//!
//! Precedence, most specific first:
//! 1. the longest matching prefix (a `bin_range` counts as the length of its
//!    bounds);
//! 2. among equal lengths, the route with more conditions (MTI, processing
//!    code, currency); a route whose conditions do not match is not a
//!    candidate at all, and shorter prefixes are tried next;
//! 3. then the narrower range (a listed BIN is a range of one), then file
//!    order. The loader refuses two routes that would still tie and could
//!    match the same message ([`ambiguity`]).
//!
//! If nothing matches, the default route: an issuer, or a decline with
//! DE39 = 15 (no such issuer).
//!
//! Layout: per prefix length (longest first), the covered prefixes as
//! disjoint intervals in sorted vectors, each with its candidate routes in
//! precedence order. A lookup reads the PAN's first digits once, then does
//! one binary search per configured length.
//!
//! Files: `routes.rs` the route types the configuration is checked into,
//! `compile.rs` the intervals and the precedence (and the ambiguity check
//! the loader runs), `describe.rs` the start-up log lines. The
//! configuration imports these types; nothing here imports the
//! configuration, so routing can be built and tested from plain values.

mod compile;
mod describe;
mod routes;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::message::Mti;
use compile::compile;
use describe::describe_routes;

pub use compile::{Ambiguity, ambiguity};
pub use routes::{BIN_DIGITS_MAX, BIN_DIGITS_MIN, DefaultRoute, IssuerRef, RouteBins, RouteConfig};

/// DE39 when no route and no default issuer: no such issuer.
pub const NO_SUCH_ISSUER: &str = "15";

/// Where one request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteDecision {
    /// Forward to this issuer (index into the configured issuers) and
    /// wait this long for the answer.
    Issuer { issuer: usize, timeout: Duration },
    /// Answer the acquirer with this DE39.
    Decline { response_code: &'static str },
}

/// The routes, compiled for lookup.
#[derive(Debug, Clone)]
pub struct RouteTable {
    /// Prefix lengths in use, longest first.
    levels: Vec<Level>,
    routes: Vec<Compiled>,
    /// Candidate route indexes of all intervals, each interval's in
    /// precedence order; `Level::slots` points into it.
    candidates: Vec<u32>,
    default: RouteDecision,
    description: Vec<String>,
}

/// The intervals of one prefix length.
#[derive(Debug, Clone)]
struct Level {
    digits: usize,
    /// Interval starts, sorted, disjoint intervals.
    starts: Vec<u64>,
    /// Interval ends (inclusive), same order.
    ends: Vec<u64>,
    /// Per interval: offset and count in `RouteTable::candidates`.
    slots: Vec<(u32, u32)>,
}

/// One route as the lookup needs it.
#[derive(Debug, Clone)]
struct Compiled {
    issuer: usize,
    timeout: Duration,
    mti: Box<[Mti]>,
    processing_code: Box<[[u8; 2]]>,
    currency: Box<[[u8; 3]]>,
}

impl Compiled {
    #[inline]
    fn matches(&self, mti: Mti, processing_code: Option<&[u8]>, currency: Option<&[u8]>) -> bool {
        (self.mti.is_empty() || self.mti.contains(&mti))
            && (self.processing_code.is_empty()
                || processing_code
                    .and_then(|p| p.get(..2))
                    .is_some_and(|p| self.processing_code.iter().any(|c| c[..] == *p)))
            && (self.currency.is_empty()
                || currency.is_some_and(|c| self.currency.iter().any(|x| x[..] == *c)))
    }
}

impl RouteTable {
    /// Compiles the configured routes. Pure; the configuration was checked
    /// when loaded (should two routes tie anyway, the earlier one wins).
    /// `issuers` are the configured issuers in order: routes and the
    /// default route name them by index.
    pub fn build(
        config_routes: &[RouteConfig],
        default_route: DefaultRoute,
        issuers: &[IssuerRef<'_>],
    ) -> RouteTable {
        let issuer_timeout = |i: usize| {
            issuers
                .get(i)
                .map(|issuer| issuer.timeout)
                .expect("a route names a configured issuer (checked at load)")
        };
        let routes = config_routes
            .iter()
            .map(|r| Compiled {
                issuer: r.issuer,
                timeout: r.timeout.unwrap_or_else(|| issuer_timeout(r.issuer)),
                mti: r.mti.clone().into_boxed_slice(),
                processing_code: r.processing_code.clone().into_boxed_slice(),
                currency: r.currency.clone().into_boxed_slice(),
            })
            .collect::<Vec<_>>();
        let (levels, candidates, _) = compile(config_routes);
        let default = match default_route {
            DefaultRoute::Issuer(issuer) => RouteDecision::Issuer {
                issuer,
                timeout: issuer_timeout(issuer),
            },
            DefaultRoute::Decline => RouteDecision::Decline {
                response_code: NO_SUCH_ISSUER,
            },
        };
        let description = describe_routes(config_routes, issuers, &routes, default);
        RouteTable {
            levels,
            routes,
            candidates,
            default,
            description,
        }
    }

    /// Where a request goes. `pan` is DE2 (digits), `processing_code` DE3
    /// (its first two digits are compared), `currency` DE49.
    pub fn route(
        &self,
        pan: &[u8],
        mti: Mti,
        processing_code: Option<&[u8]>,
        currency: Option<&[u8]>,
    ) -> RouteDecision {
        // prefixes[n]: the value of the first n digits.
        let mut prefixes = [0u64; BIN_DIGITS_MAX + 1];
        let mut digits = 0;
        for &b in pan.iter().take(BIN_DIGITS_MAX) {
            if !b.is_ascii_digit() {
                break;
            }
            prefixes[digits + 1] = prefixes[digits] * 10 + u64::from(b - b'0');
            digits += 1;
        }
        for level in &self.levels {
            if level.digits > digits {
                continue;
            }
            let key = prefixes[level.digits];
            let after = level.starts.partition_point(|&start| start <= key);
            let Some(i) = after.checked_sub(1) else {
                continue;
            };
            if key > level.ends[i] {
                continue;
            }
            let (offset, count) = level.slots[i];
            let slot = &self.candidates[offset as usize..(offset + count) as usize];
            for &r in slot {
                let route = &self.routes[r as usize];
                if route.matches(mti, processing_code, currency) {
                    return RouteDecision::Issuer {
                        issuer: route.issuer,
                        timeout: route.timeout,
                    };
                }
            }
        }
        self.default
    }

    /// One line per route, then the default route, for the start-up log.
    pub fn describe(&self) -> Vec<String> {
        self.description.clone()
    }
}
