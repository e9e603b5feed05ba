//! The route types: what a checked `[[route]]` and `[default_route]` hold,
//! and what routing needs to know of an issuer. They live with routing,
//! which compiles them; the configuration checks its file into them.

use std::time::Duration;

use crate::message::Mti;

/// BIN prefixes are 6 to 11 digits (ISO/IEC 7812 issuer identification
/// numbers are 6 or 8; longer prefixes split an issuer's ranges).
pub const BIN_DIGITS_MIN: usize = 6;
pub const BIN_DIGITS_MAX: usize = 11;

/// What routing needs of one configured issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuerRef<'a> {
    /// For the start-up log.
    pub name: &'a str,
    /// How long to wait for its answer when the route sets no time-out.
    pub timeout: Duration,
}

/// One `[[route]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// Line of its `[[route]]` header.
    pub line: usize,
    pub bins: RouteBins,
    /// Index into the configured issuers.
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
    /// To this issuer (index into the configured issuers).
    Issuer(usize),
    /// Declined with DE39 = 15 (no such issuer).
    Decline,
}
