//! Compiling routes into per-length intervals, with the precedence among
//! the routes of one interval, and finding two routes that tie.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use super::{BIN_DIGITS_MAX, Level, RouteBins, RouteConfig};

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
pub(super) fn compile(routes: &[RouteConfig]) -> (Vec<Level>, Vec<u32>, Option<Ambiguity>) {
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
        levels.push(sweep(
            routes,
            digits,
            &covers,
            &mut candidates,
            &mut ambiguous,
        ));
    }
    (levels, candidates, ambiguous)
}

/// The disjoint intervals of one prefix length, from the covers of every
/// route at that length: each interval's candidates (in precedence order)
/// go to `candidates`, and the first tie found to `ambiguous`. Adjacent
/// intervals with the same candidates are merged.
fn sweep(
    routes: &[RouteConfig],
    digits: usize,
    covers: &[Cover],
    candidates: &mut Vec<u32>,
    ambiguous: &mut Option<Ambiguity>,
) -> Level {
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
            *ambiguous = find_tie(routes, &here, digits, position, end);
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
    level
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
