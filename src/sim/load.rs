//! The load generator's pure parts: terminal identities, PANs from a BIN
//! mix, the run's profile, response checks and tallies (the requests
//! themselves are `sim::request`, latency summaries `sim::latency`). No I/O and no
//! clock: the wall time (for DE7, DE12, DE13, DE14) and every latency are
//! passed in, and randomness comes from a seeded generator, so a test can
//! replay any sequence. The sockets are in `sim::terminal` and
//! `sim::driver`.

use std::str::FromStr;

use serde::Serialize;

use crate::message::mti::{Function, MessageClass};
use crate::message::sensitive::luhn_check_digit;
use crate::message::spec::Length;
use crate::message::{Message, Mti, Spec};
pub use crate::sim::latency::{LATENCY_US_MAX, LatencySummary, latency_histogram, record_latency};
// The generator has its own file; its types stay reachable here.
pub use crate::sim::request::{Expected, RequestGenerator};
use crate::sim::reversal::ReversalTally;

/// Digits of every generated PAN (BIN + random digits + Luhn check digit).
pub const PAN_DIGITS: usize = 16;
/// Longest BIN accepted: at least one random digit stays before the check digit.
pub const BIN_DIGITS_MAX: usize = PAN_DIGITS - 2;
/// Most entries in a BIN mix.
pub const BIN_MIX_ENTRIES_MAX: usize = 64;
/// Largest weight of one BIN.
pub const BIN_WEIGHT_MAX: u32 = 1_000_000;
/// DE11 is six digits; 0 is not used.
pub const STAN_MAX: u32 = 999_999;
/// The RRN carries the connection index in four digits: 0 to 9,999.
pub const CONNECTIONS_MAX: u32 = 10_000;
/// The RRN carries a per-connection sequence in eight digits.
pub(crate) const RRN_SEQUENCE_MODULUS: u64 = 100_000_000;
/// DE4 is twelve digits.
pub const AMOUNT_MAX: u64 = 999_999_999_999;

/// One simulated terminal: its DE41 and DE42. Each connection of the load
/// generator is one terminal, so DE41 + DE11 identifies a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    /// DE41, 8 characters.
    pub terminal_id: String,
    /// DE42, 15 characters.
    pub merchant_id: String,
}

impl Terminal {
    /// The terminal of connection `index` (0-based).
    pub fn for_connection(index: u32) -> Terminal {
        assert!(index < CONNECTIONS_MAX, "connection index out of range");
        let terminal = Terminal {
            terminal_id: format!("LT{index:06}"),
            merchant_id: format!("LOADGEN{index:08}"),
        };
        debug_assert_eq!(terminal.terminal_id.len(), 8);
        debug_assert_eq!(terminal.merchant_id.len(), 15);
        terminal
    }
}

/// A bad `--bins` list or load profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A BIN is empty, too long or not all digits.
    #[error("BIN {0:?} must be 1 to {BIN_DIGITS_MAX} digits")]
    BadBin(String),
    /// A weight is not a number from 1 to the maximum.
    #[error("weight {0:?} must be a whole number from 1 to {BIN_WEIGHT_MAX}")]
    BadWeight(String),
    /// The list has no entries or too many.
    #[error("a BIN mix needs 1 to {BIN_MIX_ENTRIES_MAX} entries")]
    EntryCount,
    /// The amount range is empty or wider than DE4 allows.
    #[error("amount range {min}..={max} is empty or exceeds {AMOUNT_MAX}")]
    AmountRange { min: u64, max: u64 },
    /// The MTI is not an authorization or financial request.
    #[error("MTI {0} is not an authorization or financial request")]
    Mti(String),
    /// DE32 must be 1 to 11 digits.
    #[error("acquirer id {0:?} must be 1 to 11 digits")]
    AcquirerId(String),
    /// DE49 must be 3 digits.
    #[error("currency {0:?} must be 3 digits")]
    Currency(String),
}

/// BINs with weights, e.g. `476173:3,545454:1` (a missing weight is 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinMix {
    /// (BIN, cumulative weight up to and including this entry).
    entries: Vec<(String, u64)>,
}

impl FromStr for BinMix {
    type Err = ProfileError;

    fn from_str(text: &str) -> Result<BinMix, ProfileError> {
        let mut entries = Vec::new();
        let mut total = 0u64;
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (bin, weight) = match item.split_once(':') {
                Some((b, w)) => (b.trim(), w.trim()),
                None => (item, "1"),
            };
            if bin.is_empty()
                || bin.len() > BIN_DIGITS_MAX
                || !bin.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(ProfileError::BadBin(bin.to_string()));
            }
            let weight: u32 = weight
                .parse()
                .ok()
                .filter(|w| (1..=BIN_WEIGHT_MAX).contains(w))
                .ok_or_else(|| ProfileError::BadWeight(weight.to_string()))?;
            total += u64::from(weight);
            entries.push((bin.to_string(), total));
        }
        if entries.is_empty() || entries.len() > BIN_MIX_ENTRIES_MAX {
            return Err(ProfileError::EntryCount);
        }
        Ok(BinMix { entries })
    }
}

impl BinMix {
    /// The sum of all weights.
    pub fn total_weight(&self) -> u64 {
        self.entries.last().map_or(0, |(_, w)| *w)
    }

    /// The BINs in order.
    pub fn bins(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(b, _)| b.as_str())
    }

    /// The BIN chosen by `ticket`, a number below the total weight: BIN i
    /// owns `weight_i` consecutive tickets.
    pub fn bin_for_ticket(&self, ticket: u64) -> &str {
        let i = self.entries.partition_point(|(_, upto)| *upto <= ticket);
        // A ticket at or past the total falls on the last entry.
        &self.entries[i.min(self.entries.len() - 1)].0
    }

    /// A BIN drawn with probability proportional to its weight.
    pub fn pick(&self, rng: &mut fastrand::Rng) -> &str {
        self.bin_for_ticket(rng.u64(0..self.total_weight()))
    }

    /// A 16-digit PAN from a BIN drawn from the mix.
    pub fn pan(&self, rng: &mut fastrand::Rng) -> String {
        pan_for_bin(self.pick(rng), rng)
    }
}

/// A 16-digit PAN: `bin`, random digits, and the Luhn check digit.
pub fn pan_for_bin(bin: &str, rng: &mut fastrand::Rng) -> String {
    String::from_utf8(pan_digits(bin, rng).to_vec()).expect("ASCII digits")
}

/// [`pan_for_bin`] as bytes, without allocating.
pub fn pan_digits(bin: &str, rng: &mut fastrand::Rng) -> [u8; PAN_DIGITS] {
    assert!(
        !bin.is_empty() && bin.len() <= BIN_DIGITS_MAX,
        "BIN length checked by BinMix"
    );
    let mut pan = [0u8; PAN_DIGITS];
    pan[..bin.len()].copy_from_slice(bin.as_bytes());
    for d in &mut pan[bin.len()..PAN_DIGITS - 1] {
        *d = rng.u8(b'0'..=b'9');
    }
    pan[PAN_DIGITS - 1] = luhn_check_digit(&pan[..PAN_DIGITS - 1]);
    pan
}

/// How DE12, DE22 and DE25 look in a dialect, and the MTI version digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// First MTI digit (0 for 1987, 1 for 1993).
    pub version: u8,
    /// DE12 is `YYMMDDhhmmss` (1993) rather than `hhmmss` (1987).
    pub local_time_with_date: bool,
    /// DE22: 3 digits (1987 entry mode) or 12 characters (1993 POS data code).
    pub pos_entry: &'static str,
    /// DE25 when the dialect's is the 2-digit condition code; `None` omits it.
    pub pos_condition: Option<&'static str>,
}

impl Layout {
    /// The 1987 layout.
    pub const ISO87: Layout = Layout {
        version: 0,
        local_time_with_date: false,
        // 05x: chip read; 1: PIN entry capability.
        pos_entry: "051",
        // 00: normal presentment.
        pos_condition: Some("00"),
    };

    /// The layout a spec expects, from its version and field sizes.
    pub fn for_spec(spec: &Spec) -> Layout {
        let fixed = |n: u16| match spec.field(n).map(|f| f.length) {
            Some(Length::Fixed(size)) => Some(size),
            _ => None,
        };
        Layout {
            version: spec.version.digit(),
            local_time_with_date: fixed(12) == Some(12),
            // 1993 DE22: chip read, PIN verified online, terminal attended.
            pos_entry: if fixed(22) == Some(12) {
                "510101511341"
            } else {
                "051"
            },
            // 1993 DE25 is a 4-digit message reason code: none for a request.
            pos_condition: (fixed(25) == Some(2)).then_some("00"),
        }
    }
}

/// What every request of a run has in common.
#[derive(Debug, Clone)]
pub struct LoadProfile {
    /// The request MTI in the dialect's version (0100, 0200, 1100, ...).
    pub mti: Mti,
    pub layout: Layout,
    pub bins: BinMix,
    /// DE4 is drawn uniformly from this range (minor units), inclusive.
    pub amount_min: u64,
    pub amount_max: u64,
    /// DE32.
    pub acquirer_id: String,
    /// DE49 (ISO 4217 numeric).
    pub currency: String,
}

impl LoadProfile {
    /// A checked profile; `mti` is given in 1987 form (0100 or 0200) and
    /// takes the layout's version digit.
    pub fn new(
        mti: Mti,
        layout: Layout,
        bins: BinMix,
        amount: (u64, u64),
        acquirer_id: &str,
        currency: &str,
    ) -> Result<LoadProfile, ProfileError> {
        let request = matches!(
            mti.class(),
            MessageClass::Authorization | MessageClass::Financial
        ) && mti.function() == Function::Request
            && !mti.is_repeat();
        if !request {
            return Err(ProfileError::Mti(mti.to_string()));
        }
        let (amount_min, amount_max) = amount;
        if amount_min > amount_max || amount_max > AMOUNT_MAX {
            return Err(ProfileError::AmountRange {
                min: amount_min,
                max: amount_max,
            });
        }
        let digits = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(acquirer_id, 11) {
            return Err(ProfileError::AcquirerId(acquirer_id.to_string()));
        }
        if !(digits(currency, 3) && currency.len() == 3) {
            return Err(ProfileError::Currency(currency.to_string()));
        }
        Ok(LoadProfile {
            mti: mti.with_version(layout.version),
            layout,
            bins,
            amount_min,
            amount_max,
            acquirer_id: acquirer_id.to_string(),
            currency: currency.to_string(),
        })
    }
}

/// Which check a response failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mismatch {
    Mti,
    Stan,
    Rrn,
    Amount,
    Terminal,
    /// DE39 absent.
    NoResponseCode,
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// DE39 = 00.
    Approved,
    /// Any other DE39.
    Declined,
    /// The response does not belong to the request it was matched to.
    Mismatched(Mismatch),
    /// No response within the time limit.
    TimedOut,
}

/// Checks a response against its request: MTI, DE11, DE37, DE4 and DE41
/// echoed, DE39 present; then 00 (or the 1993 action code 000) is an
/// approval and anything else a decline.
pub fn check_response(expected: &Expected, response: &Message) -> Outcome {
    if response.mti() != expected.response_mti {
        return Outcome::Mismatched(Mismatch::Mti);
    }
    let checks = [
        (11, &expected.stan, Mismatch::Stan),
        (37, &expected.rrn, Mismatch::Rrn),
        (4, &expected.amount, Mismatch::Amount),
        (41, &expected.terminal, Mismatch::Terminal),
    ];
    for (n, want, mismatch) in checks {
        if response.get(n) != Some(want) {
            return Outcome::Mismatched(mismatch);
        }
    }
    match response.get(39) {
        None => Outcome::Mismatched(Mismatch::NoResponseCode),
        // 00 in 1987; 000 (action code) in 1993 and 2003.
        Some(code) if !code.is_empty() && code.iter().all(|&b| b == b'0') => Outcome::Approved,
        Some(_) => Outcome::Declined,
    }
}

/// Counts of a run (or of one connection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Requests written.
    pub sent: u64,
    pub approved: u64,
    pub declined: u64,
    pub timed_out: u64,
    /// Responses to requests that had already timed out (counted there),
    /// and answers to a reversal's earlier send.
    pub late: u64,
    /// Responses that failed the checks against their request.
    pub mismatched: u64,
    /// Responses whose STAN matches no request in flight or recently timed
    /// out (unknown or duplicate), or late ones that fail the checks.
    pub unmatched: u64,
    /// Connection failures, undecodable responses, and requests still in
    /// flight when their connection ended.
    pub errors: u64,
    /// Reversals of timed-out requests.
    #[serde(flatten)]
    pub reversals: ReversalTally,
}

impl Tally {
    /// Counts one finished request.
    pub fn record(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Approved => self.approved += 1,
            Outcome::Declined => self.declined += 1,
            Outcome::Mismatched(_) => self.mismatched += 1,
            Outcome::TimedOut => self.timed_out += 1,
        }
    }

    pub fn add(&mut self, other: &Tally) {
        self.sent += other.sent;
        self.approved += other.approved;
        self.declined += other.declined;
        self.timed_out += other.timed_out;
        self.late += other.late;
        self.mismatched += other.mismatched;
        self.unmatched += other.unmatched;
        self.errors += other.errors;
        self.reversals.add(&other.reversals);
    }

    /// Requests that got a response in time (checked or not).
    pub fn answered(&self) -> u64 {
        self.approved + self.declined + self.mismatched
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::message::sensitive::luhn_valid;

    /// A profile of `mti` over the default BIN mix, shared by the tests of
    /// the generator (`sim::request`).
    pub(crate) fn profile(mti: &str, layout: Layout) -> Arc<LoadProfile> {
        Arc::new(
            LoadProfile::new(
                mti.parse().expect("mti"),
                layout,
                "476173:3,545454:1".parse().expect("bins"),
                (100, 5_000),
                "400001",
                "978",
            )
            .expect("profile"),
        )
    }

    /// 2025-11-23 14:30:05 UTC.
    pub(crate) fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(20_415 * 86_400 + 14 * 3600 + 30 * 60 + 5)
    }

    #[test]
    fn terminals_have_fixed_width_ids() {
        let t = Terminal::for_connection(7);
        assert_eq!(t.terminal_id, "LT000007");
        assert_eq!(t.merchant_id, "LOADGEN00000007");
        let last = Terminal::for_connection(CONNECTIONS_MAX - 1);
        assert_eq!(last.terminal_id.len(), 8);
        assert_eq!(last.merchant_id.len(), 15);
    }

    #[test]
    fn bin_mix_parses_and_rejects() {
        let mix: BinMix = "476173:3, 545454:1,222300".parse().expect("mix");
        assert_eq!(mix.total_weight(), 5);
        assert_eq!(
            mix.bins().collect::<Vec<_>>(),
            ["476173", "545454", "222300"]
        );
        assert_eq!(mix.bin_for_ticket(0), "476173");
        assert_eq!(mix.bin_for_ticket(2), "476173");
        assert_eq!(mix.bin_for_ticket(3), "545454");
        assert_eq!(mix.bin_for_ticket(4), "222300");
        assert_eq!(mix.bin_for_ticket(99), "222300");
        for bad in ["", "47x173:1", "476173:0", "476173:-1", "123456789012345:1"] {
            assert!(bad.parse::<BinMix>().is_err(), "{bad:?}");
        }
        let many = vec!["4"; BIN_MIX_ENTRIES_MAX + 1].join(",");
        assert_eq!(many.parse::<BinMix>(), Err(ProfileError::EntryCount));
    }

    #[test]
    fn bin_weights_shape_the_draw() {
        let mix: BinMix = "476173:3,545454:1".parse().expect("mix");
        let mut rng = fastrand::Rng::with_seed(1);
        let n = 40_000;
        let visa = (0..n).filter(|_| mix.pick(&mut rng) == "476173").count();
        // Expect 3/4 = 30,000; allow a wide margin (sd is ~87).
        assert!((29_000..31_000).contains(&visa), "{visa}");
    }

    #[test]
    fn pans_are_16_digits_start_with_the_bin_and_pass_luhn() {
        let mix: BinMix = "4:1,545454:1,12345678901234:1".parse().expect("mix");
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..5_000 {
            let pan = mix.pan(&mut rng);
            assert_eq!(pan.len(), PAN_DIGITS, "{pan}");
            assert!(mix.bins().any(|b| pan.starts_with(b)));
            assert!(luhn_valid(pan.as_bytes()));
        }
    }

    #[test]
    fn responses_are_checked_against_their_request() {
        let mut g = RequestGenerator::new(profile("0100", Layout::ISO87), 0, 11);
        let (req, expected) = g.request(17, now());
        let answer = |code: Option<&str>| {
            let mut r = req.clone();
            r.set_mti("0110".parse().expect("mti"));
            r.remove(2);
            if let Some(c) = code {
                r.set_str(39, c).expect("set");
            }
            r
        };
        assert_eq!(
            check_response(&expected, &answer(Some("00"))),
            Outcome::Approved
        );
        assert_eq!(
            check_response(&expected, &answer(Some("000"))),
            Outcome::Approved
        );
        assert_eq!(
            check_response(&expected, &answer(Some("51"))),
            Outcome::Declined
        );
        assert_eq!(
            check_response(&expected, &answer(Some("100"))),
            Outcome::Declined
        );
        assert_eq!(
            check_response(&expected, &answer(None)),
            Outcome::Mismatched(Mismatch::NoResponseCode)
        );
        let altered = |n: u16, v: &str| {
            let mut r = answer(Some("00"));
            r.set_str(n, v).expect("set");
            check_response(&expected, &r)
        };
        assert_eq!(altered(11, "000018"), Outcome::Mismatched(Mismatch::Stan));
        assert_eq!(
            altered(37, "999999999999"),
            Outcome::Mismatched(Mismatch::Rrn)
        );
        assert_eq!(
            altered(4, "000000000001"),
            Outcome::Mismatched(Mismatch::Amount)
        );
        assert_eq!(
            altered(41, "LT999999"),
            Outcome::Mismatched(Mismatch::Terminal)
        );
        let mut wrong_mti = answer(Some("00"));
        wrong_mti.set_mti("0210".parse().expect("mti"));
        assert_eq!(
            check_response(&expected, &wrong_mti),
            Outcome::Mismatched(Mismatch::Mti)
        );
        let mut missing = answer(Some("00"));
        missing.remove(37);
        assert_eq!(
            check_response(&expected, &missing),
            Outcome::Mismatched(Mismatch::Rrn)
        );
    }

    #[test]
    fn tallies_count_and_add() {
        let mut a = Tally {
            sent: 4,
            ..Tally::default()
        };
        a.record(Outcome::Approved);
        a.record(Outcome::Declined);
        a.record(Outcome::Mismatched(Mismatch::Amount));
        a.record(Outcome::TimedOut);
        let mut total = Tally::default();
        total.add(&a);
        total.add(&a);
        assert_eq!(total.sent, 8);
        assert_eq!(total.answered(), 6);
        assert_eq!(total.timed_out, 2);
    }

    #[test]
    fn profiles_are_checked() {
        let mix: BinMix = "476173".parse().expect("mix");
        let make = |mti: &str, amount: (u64, u64), acq: &str, cur: &str| {
            LoadProfile::new(
                mti.parse().expect("mti"),
                Layout::ISO87,
                mix.clone(),
                amount,
                acq,
                cur,
            )
        };
        assert!(make("0100", (1, 1), "1", "978").is_ok());
        assert!(matches!(
            make("0110", (1, 1), "1", "978"),
            Err(ProfileError::Mti(_))
        ));
        assert!(matches!(
            make("0800", (1, 1), "1", "978"),
            Err(ProfileError::Mti(_))
        ));
        assert!(matches!(
            make("0100", (2, 1), "1", "978"),
            Err(ProfileError::AmountRange { .. })
        ));
        assert!(make("0100", (1, AMOUNT_MAX + 1), "1", "978").is_err());
        assert!(make("0100", (1, 1), "123456789012", "978").is_err());
        assert!(make("0100", (1, 1), "1", "97").is_err());
    }
}
