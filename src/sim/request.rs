//! The load generator's requests: one generator per connection (one
//! terminal), which draws PANs and amounts from the run's profile, keeps
//! the fields that do not change as shared bytes, and recomputes the
//! time-derived ones once per second of the `now` it is given. Pure: the
//! wall time is passed in and randomness comes from a seeded generator.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::load::{LoadProfile, RRN_SEQUENCE_MODULUS, STAN_MAX, Terminal, pan_digits};
use crate::message::codec::decimal_digits;
use crate::message::time::Civil;
use crate::message::{Message, Mti};

/// What a response must echo from its request, kept while it is in flight.
/// Holds no card data (no PAN, no expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub response_mti: Mti,
    pub stan: Bytes,
    pub rrn: Bytes,
    pub amount: Bytes,
    pub terminal: Bytes,
}

/// Generates the requests of one connection (one terminal). Fields that do
/// not change between requests are kept as shared bytes, and the
/// time-derived ones are recomputed once per second of `now`: a request
/// costs a few small copies, not a dozen formatted strings.
#[derive(Debug)]
pub struct RequestGenerator {
    profile: Arc<LoadProfile>,
    terminal: Terminal,
    connection: u32,
    stan_last: u32,
    rrn_sequence: u64,
    rng: fastrand::Rng,
    /// DE3, DE22, DE25, DE32, DE41, DE42, DE49, in ascending order.
    constant: Vec<(u16, Bytes)>,
    clock: Option<ClockFields>,
}

/// DE7, DE12 and DE13 for one second, and the year for DE14.
#[derive(Debug)]
struct ClockFields {
    unix_secs: u64,
    year: i64,
    transmission: Bytes,
    local_time: Bytes,
    local_date: Bytes,
}

impl RequestGenerator {
    /// The generator of connection `connection` (0-based, below
    /// [`CONNECTIONS_MAX`](super::load::CONNECTIONS_MAX)); `seed` fixes PANs, amounts and the first STAN.
    pub fn new(profile: Arc<LoadProfile>, connection: u32, seed: u64) -> RequestGenerator {
        let mut rng = fastrand::Rng::with_seed(seed);
        // A random first STAN: two runs in the same second rarely repeat a
        // (DE41, DE11, DE7) key that a switch would take as a duplicate.
        let stan_last = rng.u32(0..STAN_MAX);
        let terminal = Terminal::for_connection(connection);
        let text = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let mut constant = vec![
            (3, Bytes::from_static(b"000000")),
            (22, text(profile.layout.pos_entry)),
        ];
        if let Some(c) = profile.layout.pos_condition {
            constant.push((25, text(c)));
        }
        constant.extend([
            (32, text(&profile.acquirer_id)),
            (41, text(&terminal.terminal_id)),
            (42, text(&terminal.merchant_id)),
            (49, text(&profile.currency)),
        ]);
        debug_assert!(constant.windows(2).all(|w| w[0].0 < w[1].0));
        RequestGenerator {
            profile,
            terminal,
            connection,
            stan_last,
            rrn_sequence: 0,
            rng,
            constant,
            clock: None,
        }
    }

    /// Starts the RRN sequence at `first` (distinct RRNs across runs).
    pub fn with_rrn_start(mut self, first: u64) -> RequestGenerator {
        self.rrn_sequence = first;
        self
    }

    pub fn terminal(&self) -> &Terminal {
        &self.terminal
    }

    /// The next STAN after the last one (1..=999999, wrapping) that
    /// `in_use` does not claim; `None` if every STAN is in use.
    pub fn next_stan(&mut self, in_use: impl Fn(u32) -> bool) -> Option<u32> {
        for _ in 0..STAN_MAX {
            self.stan_last = self.stan_last % STAN_MAX + 1;
            if !in_use(self.stan_last) {
                return Some(self.stan_last);
            }
        }
        None
    }

    /// A request with DE11 = `stan` at wall time `now`, and what its
    /// response must echo.
    pub fn request(&mut self, stan: u32, now: SystemTime) -> (Message, Expected) {
        assert!((1..=STAN_MAX).contains(&stan), "STAN out of range");
        let clock = self.clock_fields(now);
        let (transmission, local_time, local_date, year) = (
            clock.transmission.clone(),
            clock.local_time.clone(),
            clock.local_date.clone(),
            clock.year,
        );
        let p = &*self.profile;
        let bin = p.bins.pick(&mut self.rng);
        let pan = pan_digits(bin, &mut self.rng);
        let amount = Bytes::copy_from_slice(&decimal_digits::<12>(
            self.rng.u64(p.amount_min..=p.amount_max),
        ));
        let stan_bytes = Bytes::copy_from_slice(&decimal_digits::<6>(u64::from(stan)));
        // Expiry one to three years ahead: always in the future.
        let expiry_yy = (year + 1 + i64::from(self.rng.u8(0..3))).rem_euclid(100) as u64;
        let expiry = expiry_yy * 100 + u64::from(self.rng.u8(1..=12));
        // RRN: four digits of connection index, eight of sequence: unique
        // within a run up to 10^8 requests per connection.
        let mut rrn = [0u8; 12];
        rrn[..4].copy_from_slice(&decimal_digits::<4>(u64::from(self.connection)));
        rrn[4..].copy_from_slice(&decimal_digits::<8>(
            self.rrn_sequence % RRN_SEQUENCE_MODULUS,
        ));
        self.rrn_sequence += 1;
        let rrn = Bytes::copy_from_slice(&rrn);
        let mut m = Message::new(p.mti);
        let variable = [
            (2, Bytes::copy_from_slice(&pan)),
            (4, amount.clone()),
            (7, transmission),
            (11, stan_bytes.clone()),
            (12, local_time),
            (13, local_date),
            (14, Bytes::copy_from_slice(&decimal_digits::<4>(expiry))),
            (37, rrn.clone()),
        ];
        // Both lists ascend: merging them appends every field at the end.
        let mut constant = self.constant.iter().peekable();
        let mut set = |n: u16, v: Bytes| m.set(n, v).expect("field numbers are constants");
        for (n, v) in variable {
            while let Some((c, cv)) = constant.next_if(|(c, _)| *c < n) {
                set(*c, cv.clone());
            }
            set(n, v);
        }
        for (c, cv) in constant {
            set(*c, cv.clone());
        }
        let expected = Expected {
            response_mti: p.mti.response().expect("a request has a response"),
            stan: stan_bytes,
            rrn,
            amount,
            terminal: m.get(41).cloned().expect("DE41 is constant"),
        };
        (m, expected)
    }

    /// The time-derived fields for `now`, recomputed when the second changes.
    fn clock_fields(&mut self, now: SystemTime) -> &ClockFields {
        let unix_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if self.clock.as_ref().is_none_or(|c| c.unix_secs != unix_secs) {
            let t = Civil::from_system_time(now);
            let two = |v: u64| decimal_digits::<2>(v);
            let (mo, d) = (two(u64::from(t.month)), two(u64::from(t.day)));
            let (h, mi, s) = (two(t.hour), two(t.minute), two(t.second));
            let hms = [h, mi, s].concat();
            let local_time = if self.profile.layout.local_time_with_date {
                [&two(t.year.rem_euclid(100) as u64)[..], &mo, &d, &hms].concat()
            } else {
                hms.clone()
            };
            self.clock = Some(ClockFields {
                unix_secs,
                year: t.year,
                transmission: Bytes::from([&mo[..], &d, &hms].concat()),
                local_time: Bytes::from(local_time),
                local_date: Bytes::from([mo, d].concat()),
            });
        }
        self.clock.as_ref().expect("set above")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;
    use crate::message::Spec;
    use crate::sim::load::tests::{now, profile};
    use crate::sim::load::{CONNECTIONS_MAX, Layout};

    #[test]
    fn requests_carry_every_field_and_build_in_each_spec() {
        let cases = [
            ("iso87-ascii", "0100", "0110"),
            ("iso87-binary", "0200", "0210"),
            ("iso93-ascii", "0100", "1110"),
        ];
        for (spec_name, mti, response) in cases {
            let spec = Spec::resolve(spec_name).expect("spec");
            let mut g = RequestGenerator::new(profile(mti, Layout::for_spec(&spec)), 3, 42);
            let stan = g.next_stan(|_| false).expect("stan");
            let (m, expected) = g.request(stan, now());
            let bytes = spec.build(&m).expect(spec_name);
            let back = spec.parse(&bytes).expect("parse");
            assert_eq!(back, m, "{spec_name}");
            assert_eq!(expected.response_mti.to_string(), response);
            for n in [2, 3, 4, 7, 11, 12, 13, 14, 22, 32, 37, 41, 42, 49] {
                assert!(m.has(n), "{spec_name} DE{n}");
            }
            assert_eq!(m.get_str(7), Some("1123143005"));
            assert_eq!(m.get_str(13), Some("1123"));
            assert_eq!(m.get_str(41), Some("LT000003"));
            assert_eq!(m.get_str(42), Some("LOADGEN00000003"));
            assert_eq!(m.get_str(32), Some("400001"));
            assert_eq!(m.get_str(49), Some("978"));
            assert_eq!(m.get_u64(11), Some(u64::from(stan)));
            let amount = m.get_u64(4).expect("amount");
            assert!((100..=5_000).contains(&amount));
            // Expiry in the future (today is 2511).
            let exp = m.get_u64(14).expect("expiry");
            assert!(exp > 2511 && (1..=12).contains(&(exp % 100)), "{exp}");
        }
        let spec93 = Spec::resolve("iso93-ascii").expect("spec");
        let mut g = RequestGenerator::new(profile("0100", Layout::for_spec(&spec93)), 0, 1);
        let (m, _) = g.request(1, now());
        assert_eq!(m.mti().to_string(), "1100");
        assert_eq!(m.get_str(12), Some("251123143005"));
        assert!(!m.has(25));
        let mut g = RequestGenerator::new(profile("0100", Layout::ISO87), 0, 1);
        let (m, _) = g.request(1, now());
        assert_eq!(m.get_str(12), Some("143005"));
        // The time fields follow the clock passed in.
        let (later, _) = g.request(2, now() + Duration::from_secs(3_600 * 10));
        assert_eq!(later.get_str(7), Some("1124003005"));
        assert_eq!(later.get_str(12), Some("003005"));
        assert_eq!(later.get_str(13), Some("1124"));
        assert_eq!(m.get_str(22), Some("051"));
        assert_eq!(m.get_str(25), Some("00"));
    }

    #[test]
    fn stans_skip_those_in_use_and_wrap() {
        let mut g = RequestGenerator::new(profile("0100", Layout::ISO87), 0, 9);
        g.stan_last = STAN_MAX - 1;
        let busy: HashSet<u32> = [STAN_MAX, 1, 2].into();
        assert_eq!(g.next_stan(|s| busy.contains(&s)), Some(3));
        assert_eq!(g.next_stan(|_| false), Some(4));
        assert_eq!(g.next_stan(|_| true), None);
    }

    #[test]
    fn rrns_are_unique_across_connections() {
        let mut seen = HashSet::new();
        for conn in [0, 1, 12, CONNECTIONS_MAX - 1] {
            let mut g = RequestGenerator::new(profile("0200", Layout::ISO87), conn, 5);
            for _ in 0..1_000 {
                let stan = g.next_stan(|_| false).expect("stan");
                let (m, _) = g.request(stan, now());
                let rrn = m.get_str(37).expect("rrn").to_string();
                assert_eq!(rrn.len(), 12);
                assert!(seen.insert(rrn));
            }
        }
    }
}
