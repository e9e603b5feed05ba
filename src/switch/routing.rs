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

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::Duration;

use super::config::{BIN_DIGITS_MAX, DefaultRoute, RouteBins, RouteConfig, SwitchConfig};
use crate::message::Mti;

/// DE39 when no route and no default issuer: no such issuer.
pub const NO_SUCH_ISSUER: &str = "15";

/// Where one request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteDecision {
    /// Forward to this issuer (index into [`SwitchConfig::issuers`]) and
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

/// Two routes that cover the same cards with as many conditions, whose
/// conditions can all hold at once: neither takes precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ambiguity {
    /// The earlier route (index into the routes).
    pub first: usize,
    /// The later one.
    pub second: usize,
    /// The cards both cover (`BIN 476173`, `BINs 545400-545449`).
    pub cards: String,
}

/// The first pair of routes that tie on precedence and can match the same
/// message, if any (the loader refuses such a configuration).
pub fn ambiguity(routes: &[RouteConfig]) -> Option<Ambiguity> {
    compile(routes).2
}

impl RouteTable {
    /// Compiles the configured routes. Pure; the configuration was checked
    /// when loaded (should two routes tie anyway, the earlier one wins).
    pub fn build(config: &SwitchConfig) -> RouteTable {
        let issuer_timeout = |i: usize| {
            config
                .issuers
                .get(i)
                .map(|issuer| issuer.timeout)
                .expect("a route names a configured issuer (checked at load)")
        };
        let routes = config
            .routes
            .iter()
            .map(|r| Compiled {
                issuer: r.issuer,
                timeout: r.timeout.unwrap_or_else(|| issuer_timeout(r.issuer)),
                mti: r.mti.clone().into_boxed_slice(),
                processing_code: r.processing_code.clone().into_boxed_slice(),
                currency: r.currency.clone().into_boxed_slice(),
            })
            .collect::<Vec<_>>();
        let (levels, candidates, _) = compile(&config.routes);
        let default = match config.default_route {
            DefaultRoute::Issuer(issuer) => RouteDecision::Issuer {
                issuer,
                timeout: issuer_timeout(issuer),
            },
            DefaultRoute::Decline => RouteDecision::Decline {
                response_code: NO_SUCH_ISSUER,
            },
        };
        let description = describe_routes(config, &routes, default);
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

/// One interval of prefixes of one length, covered by one route.
#[derive(Clone, Copy)]
struct Cover {
    start: u64,
    end: u64,
    route: u32,
}

/// Precedence among routes on the same interval: more conditions, then
/// narrower, then earlier.
fn precedence(routes: &[RouteConfig], r: u32) -> (Reverse<usize>, u64, u32) {
    let route = &routes[r as usize];
    let width = match &route.bins {
        RouteBins::Prefixes(_) => 1,
        RouteBins::Range { from, to } => match (from.parse::<u64>(), to.parse::<u64>()) {
            (Ok(f), Ok(t)) => t.saturating_sub(f) + 1,
            _ => u64::MAX,
        },
    };
    (Reverse(route.conditions()), width, r)
}

/// Whether two routes' conditions can all hold for one message.
fn conditions_overlap(a: &RouteConfig, b: &RouteConfig) -> bool {
    fn meet<T: PartialEq>(x: &[T], y: &[T]) -> bool {
        x.is_empty() || y.is_empty() || x.iter().any(|v| y.contains(v))
    }
    meet(&a.mti, &b.mti)
        && meet(&a.processing_code, &b.processing_code)
        && meet(&a.currency, &b.currency)
}

fn prefix_value(s: &str) -> Option<(usize, u64)> {
    let digits = s.len();
    if !(1..=BIN_DIGITS_MAX).contains(&digits) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().map(|v| (digits, v))
}

/// The levels, the candidate lists, and the first ambiguity found.
fn compile(routes: &[RouteConfig]) -> (Vec<Level>, Vec<u32>, Option<Ambiguity>) {
    let mut by_digits: BTreeMap<usize, Vec<Cover>> = BTreeMap::new();
    for (r, route) in routes.iter().enumerate() {
        let route_index = u32::try_from(r).expect("fewer than 2^32 routes");
        let mut add = |from: &str, to: &str| {
            if let (Some((digits, start)), Some((to_digits, end))) =
                (prefix_value(from), prefix_value(to))
                && digits == to_digits
                && start <= end
            {
                by_digits.entry(digits).or_default().push(Cover {
                    start,
                    end,
                    route: route_index,
                });
            }
        };
        match &route.bins {
            RouteBins::Prefixes(bins) => bins.iter().for_each(|b| add(b, b)),
            RouteBins::Range { from, to } => add(from, to),
        }
    }
    let mut levels = Vec::with_capacity(by_digits.len());
    let mut candidates: Vec<u32> = Vec::new();
    let mut ambiguous: Option<Ambiguity> = None;
    for (digits, covers) in by_digits.into_iter().rev() {
        let mut level = Level {
            digits,
            starts: Vec::new(),
            ends: Vec::new(),
            slots: Vec::new(),
        };
        // A sweep over interval boundaries: (position, is_start, route).
        // Removals sort before additions at the same position.
        let mut events: Vec<(u64, bool, u32)> = covers
            .iter()
            .flat_map(|c| [(c.start, true, c.route), (c.end + 1, false, c.route)])
            .collect();
        events.sort_unstable();
        let mut active: BTreeMap<u32, usize> = BTreeMap::new();
        let mut i = 0;
        while i < events.len() {
            let position = events[i].0;
            while let Some(&(p, is_start, r)) = events.get(i)
                && p == position
            {
                if is_start {
                    *active.entry(r).or_insert(0) += 1;
                } else if let Some(n) = active.get_mut(&r) {
                    *n -= 1;
                    if *n == 0 {
                        active.remove(&r);
                    }
                }
                i += 1;
            }
            if active.is_empty() {
                continue;
            }
            // Every start has its end event later, so there is a next one.
            let end = events[i].0 - 1;
            let mut here: Vec<u32> = active.keys().copied().collect();
            here.sort_by_key(|&r| precedence(routes, r));
            if ambiguous.is_none() {
                ambiguous = find_tie(routes, &here, digits, position, end);
            }
            let same_as_last = level.ends.last() == Some(&(position - 1))
                && level.slots.last().is_some_and(|&(offset, count)| {
                    candidates[offset as usize..(offset + count) as usize] == here[..]
                });
            if same_as_last {
                *level.ends.last_mut().expect("checked above") = end;
                continue;
            }
            let offset = u32::try_from(candidates.len()).expect("fewer than 2^32 candidates");
            let count = u32::try_from(here.len()).expect("fewer than 2^32 routes");
            candidates.extend_from_slice(&here);
            level.starts.push(position);
            level.ends.push(end);
            level.slots.push((offset, count));
        }
        levels.push(level);
    }
    (levels, candidates, ambiguous)
}

/// Two candidates of one interval that tie on precedence (except file
/// order) and can match the same message.
fn find_tie(
    routes: &[RouteConfig],
    ordered: &[u32],
    digits: usize,
    start: u64,
    end: u64,
) -> Option<Ambiguity> {
    for (n, &a) in ordered.iter().enumerate() {
        let (conditions_a, width_a, _) = precedence(routes, a);
        for &b in &ordered[n + 1..] {
            let (conditions_b, width_b, _) = precedence(routes, b);
            if (conditions_a, width_a) != (conditions_b, width_b) {
                break;
            }
            if conditions_overlap(&routes[a as usize], &routes[b as usize]) {
                let cards = if start == end {
                    format!("BIN {start:0digits$}")
                } else {
                    format!("BINs {start:0digits$}-{end:0digits$}")
                };
                return Some(Ambiguity {
                    first: a.min(b) as usize,
                    second: a.max(b) as usize,
                    cards,
                });
            }
        }
    }
    None
}

fn describe_routes(
    config: &SwitchConfig,
    compiled: &[Compiled],
    default: RouteDecision,
) -> Vec<String> {
    let issuer_name = |i: usize| config.issuers.get(i).map_or("?", |x| x.name.as_str());
    let join = |items: Vec<String>| items.join("|");
    let mut lines = Vec::with_capacity(config.routes.len() + 1);
    for (n, (route, c)) in config.routes.iter().zip(compiled).enumerate() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mti(s: &str) -> Mti {
        s.parse().expect("mti")
    }

    /// A configuration with issuers `a`, `b`, `c` (timeouts 1, 2, 3 s) and
    /// the given routes and default route.
    fn table(routes: &str) -> RouteTable {
        let mut text = String::from(
            "[switch]\ninstitution_id = \"1\"\n\n[[acquirer]]\nname = \"pos\"\nlisten = \"127.0.0.1:0\"\nspec = \"iso87-ascii\"\nframing = { length = \"ascii4\" }\n",
        );
        for (n, name) in ["a", "b", "c"].iter().enumerate() {
            text.push_str(&format!(
                "\n[[issuer]]\nname = \"{name}\"\naddresses = [\"127.0.0.1:{}\"]\nspec = \"iso87-ascii\"\nframing = {{ length = \"ascii4\" }}\ntimeout_ms = {}\n",
                9101 + n,
                (n + 1) * 1000
            ));
        }
        text.push_str(routes);
        let config = SwitchConfig::from_toml(&text, "test.toml").expect("valid config");
        RouteTable::build(&config)
    }

    fn to(issuer: usize, ms: u64) -> RouteDecision {
        RouteDecision::Issuer {
            issuer,
            timeout: Duration::from_millis(ms),
        }
    }

    const DECLINE: RouteDecision = RouteDecision::Decline {
        response_code: NO_SUCH_ISSUER,
    };

    fn auth(t: &RouteTable, pan: &str) -> RouteDecision {
        t.route(pan.as_bytes(), mti("0100"), Some(b"000000"), Some(b"840"))
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table(
            r#"
[[route]]
bins = ["476173"]
issuer = "a"

[[route]]
bins = ["4761739"]
issuer = "b"

[[route]]
bins = ["47617391234"]
issuer = "c"
"#,
        );
        assert_eq!(auth(&t, "4761731234567890"), to(0, 1000));
        assert_eq!(auth(&t, "4761739000000000"), to(1, 2000));
        assert_eq!(auth(&t, "4761739123456789"), to(2, 3000));
        assert_eq!(auth(&t, "4761749123456789"), DECLINE);
    }

    #[test]
    fn ranges_count_as_their_length() {
        let t = table(
            r#"
[[route]]
bin_range = { from = "545400", to = "545499" }
issuer = "a"

[[route]]
bin_range = { from = "54545000", to = "54545099" }
issuer = "b"

[[route]]
bins = ["545410"]
issuer = "c"
timeout_ms = 500
"#,
        );
        assert_eq!(auth(&t, "5454000000000000"), to(0, 1000));
        assert_eq!(auth(&t, "5454991234567890"), to(0, 1000));
        assert_eq!(auth(&t, "5455001234567890"), DECLINE);
        assert_eq!(auth(&t, "5453991234567890"), DECLINE);
        // The 8-digit range beats the 6-digit one.
        assert_eq!(auth(&t, "5454505012345678"), to(1, 2000));
        assert_eq!(auth(&t, "5454510012345678"), to(0, 1000));
        // Same length: the listed BIN is narrower than the range.
        assert_eq!(auth(&t, "5454101234567890"), to(2, 500));
    }

    #[test]
    fn more_matching_conditions_win_and_failing_conditions_exclude() {
        let t = table(
            r#"
[[route]]
bins = ["476173"]
issuer = "a"

[[route]]
bins = ["476173"]
issuer = "b"
mti = ["0100", "0101"]

[[route]]
bins = ["476173"]
issuer = "c"
mti = ["0100"]
processing_code = ["01"]
currency = ["840", "978"]

[[route]]
bins = ["4761731"]
issuer = "c"
currency = ["826"]
"#,
        );
        let pan = b"4761731234567890".as_slice();
        // All three match: the one with three conditions wins.
        assert_eq!(
            t.route(pan, mti("0100"), Some(b"010000"), Some(b"978")),
            to(2, 3000)
        );
        // Processing code 00: route 3 is excluded, route 2 has more
        // conditions than route 1.
        assert_eq!(
            t.route(pan, mti("0100"), Some(b"000000"), Some(b"978")),
            to(1, 2000)
        );
        // A 0200: only route 1.
        assert_eq!(
            t.route(pan, mti("0200"), Some(b"010000"), Some(b"840")),
            to(0, 1000)
        );
        // Missing DE3 excludes a route that asks for a processing code.
        assert_eq!(t.route(pan, mti("0100"), None, Some(b"840")), to(1, 2000));
        // The 7-digit route matches only in pounds; otherwise the 6-digit
        // routes are tried.
        assert_eq!(
            t.route(pan, mti("0200"), Some(b"00"), Some(b"826")),
            to(2, 3000)
        );
        assert_eq!(t.route(pan, mti("0200"), Some(b"00"), None), to(0, 1000));
    }

    #[test]
    fn default_route_declines_or_forwards() {
        let t = table("\n[[route]]\nbins = [\"476173\"]\nissuer = \"a\"\n");
        assert_eq!(auth(&t, "5454001234567890"), DECLINE);
        let t = table(
            "\n[[route]]\nbins = [\"476173\"]\nissuer = \"a\"\n\n[default_route]\nissuer = \"c\"\n",
        );
        assert_eq!(auth(&t, "5454001234567890"), to(2, 3000));
        let t = table("\n[default_route]\ndecline = true\n");
        assert_eq!(auth(&t, "4761731234567890"), DECLINE);
    }

    #[test]
    fn short_or_malformed_pans_use_what_digits_there_are() {
        let t = table(
            "\n[[route]]\nbins = [\"476173\"]\nissuer = \"a\"\n\n[[route]]\nbins = [\"47617312\"]\nissuer = \"b\"\n",
        );
        assert_eq!(auth(&t, "476173"), to(0, 1000));
        assert_eq!(auth(&t, "4761731"), to(0, 1000));
        assert_eq!(auth(&t, "47617312"), to(1, 2000));
        assert_eq!(auth(&t, "47617"), DECLINE);
        assert_eq!(auth(&t, ""), DECLINE);
        assert_eq!(auth(&t, "4761=3123"), DECLINE);
        assert_eq!(auth(&t, "476173=123"), to(0, 1000));
    }

    #[test]
    fn adjacent_bins_share_an_interval_and_leading_zeros_count() {
        let t = table(
            "\n[[route]]\nbins = [\"000100\", \"000101\", \"000102\", \"000104\"]\nissuer = \"a\"\n",
        );
        assert_eq!(t.levels.len(), 1);
        assert_eq!(t.levels[0].starts, vec![100, 104]);
        assert_eq!(t.levels[0].ends, vec![102, 104]);
        assert_eq!(auth(&t, "0001011234567890"), to(0, 1000));
        assert_eq!(auth(&t, "0001031234567890"), DECLINE);
        assert_eq!(auth(&t, "0001041234567890"), to(0, 1000));
        // 100 as six digits is not "100000".
        assert_eq!(auth(&t, "1000001234567890"), DECLINE);
    }

    #[test]
    fn overlapping_ranges_split_into_intervals() {
        let t = table(
            r#"
[[route]]
bin_range = { from = "545400", to = "545499" }
issuer = "a"

[[route]]
bin_range = { from = "545420", to = "545429" }
issuer = "b"

[[route]]
bin_range = { from = "545425", to = "545460" }
issuer = "c"
mti = ["0200"]
"#,
        );
        assert_eq!(auth(&t, "5454191234567890"), to(0, 1000));
        assert_eq!(auth(&t, "5454201234567890"), to(1, 2000));
        assert_eq!(auth(&t, "5454291234567890"), to(1, 2000));
        assert_eq!(auth(&t, "5454301234567890"), to(0, 1000));
        let pan = b"5454261234567890".as_slice();
        assert_eq!(t.route(pan, mti("0200"), None, None), to(2, 3000));
        assert_eq!(t.route(pan, mti("0100"), None, None), to(1, 2000));
        let pan = b"5454501234567890".as_slice();
        assert_eq!(t.route(pan, mti("0200"), None, None), to(2, 3000));
    }

    #[test]
    fn ties_are_found_only_when_conditions_can_coincide() {
        let route = |bins: RouteBins, mti: &[&str], currency: &[&[u8; 3]]| RouteConfig {
            line: 1,
            bins,
            issuer: 0,
            mti: mti.iter().map(|m| m.parse().unwrap()).collect(),
            processing_code: Vec::new(),
            currency: currency.iter().map(|c| **c).collect(),
            timeout: None,
        };
        let bin = |b: &str| RouteBins::Prefixes(vec![b.to_string()]);
        let range = |f: &str, t: &str| RouteBins::Range {
            from: f.into(),
            to: t.into(),
        };
        let same = [
            route(bin("476173"), &[], &[]),
            route(bin("476173"), &[], &[]),
        ];
        assert_eq!(
            ambiguity(&same),
            Some(Ambiguity {
                first: 0,
                second: 1,
                cards: "BIN 476173".into()
            })
        );
        let disjoint = [
            route(bin("476173"), &["0100"], &[]),
            route(bin("476173"), &["0200"], &[]),
        ];
        assert_eq!(ambiguity(&disjoint), None);
        let crossing = [
            route(bin("476173"), &["0100"], &[]),
            route(bin("476173"), &[], &[b"840"]),
        ];
        assert!(ambiguity(&crossing).is_some());
        let ranges = [
            route(range("545400", "545449"), &[], &[]),
            route(range("545420", "545469"), &[], &[]),
        ];
        assert_eq!(
            ambiguity(&ranges).map(|a| a.cards),
            Some("BINs 545420-545449".into())
        );
        let nested = [
            route(range("545400", "545499"), &[], &[]),
            route(range("545420", "545429"), &[], &[]),
        ];
        assert_eq!(ambiguity(&nested), None);
    }

    #[test]
    fn describe_lists_routes_and_default() {
        let t = table(
            r#"
[[route]]
bins = ["476173", "4761739"]
issuer = "a"
mti = ["0100"]
processing_code = ["00"]

[[route]]
bin_range = { from = "545400", to = "545499" }
issuer = "b"
timeout_ms = 1500
"#,
        );
        let lines = t.describe();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("route 1 (line ")
                && lines[0].ends_with(
                    "BIN 476173, 4761739 -> a, timeout 1000 ms, if mti 0100, processing code 00"
                ),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].ends_with("BINs 545400-545499 -> b, timeout 1500 ms"),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], "default route: decline with 15 (no such issuer)");
    }
}
