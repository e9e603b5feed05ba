//! What a terminal does when its request gets no answer in time: the
//! outcome is unknown (the issuer may have approved), so it reverses the
//! request, and repeats the reversal (0401/0421) until it is answered or a
//! bounded number of repeats is spent. Pure: messages in, messages out,
//! time passed in. The sockets are in `sim::terminal`.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::time::Instant;

use crate::message::{Message, Mti, Spec};

/// Repeats of one reversal after its first send, at most.
pub const REVERSAL_REPEATS_MAX: u32 = 3;
/// Reversals waiting for an answer on one connection, at most: past this a
/// timed-out request is counted as not reversed (`not_sent`).
pub const REVERSALS_PENDING_MAX: usize = 4_096;

/// The message a terminal reverses with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReversalMti {
    /// 0400, a reversal request (repeat 0401).
    Request,
    /// 0420, a reversal advice (repeat 0421).
    Advice,
}

/// A `--reversal-mti` that is neither 0400 nor 0420.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reversal MTI {0:?} must be 0400 or 0420")]
pub struct BadReversalMti(pub String);

impl FromStr for ReversalMti {
    type Err = BadReversalMti;

    fn from_str(text: &str) -> Result<ReversalMti, BadReversalMti> {
        match text {
            "0400" => Ok(ReversalMti::Request),
            "0420" => Ok(ReversalMti::Advice),
            other => Err(BadReversalMti(other.to_string())),
        }
    }
}

impl ReversalMti {
    /// The MTI in a dialect's version (1420 in a 1993 spec).
    pub fn mti(self, version: u8) -> Mti {
        let text = match self {
            ReversalMti::Request => "0400",
            ReversalMti::Advice => "0420",
        };
        text.parse::<Mti>()
            .expect("constant MTI")
            .with_version(version)
    }
}

/// The reversal of `original` (built in `spec`'s dialect) with its own
/// STAN and transmission time (DE7, `MMDDhhmmss`): the switch's own
/// reversal layout ([`crate::switch::reversal::reversal`]), without the
/// 1993 fields the dialect lacks.
pub fn reversal_of(
    spec: &Spec,
    original: &Message,
    kind: ReversalMti,
    stan: u32,
    transmission: &str,
) -> Message {
    let mti = kind.mti(spec.version.digit());
    let mut rev = crate::switch::reversal::reversal(mti, original, stan, transmission);
    for n in [24, 25] {
        if spec.field(n).is_none() {
            rev.remove(n);
        }
    }
    rev
}

/// Counts of reversals (of a connection or a run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReversalTally {
    /// Timed-out requests reversed (first sends).
    pub reversals_sent: u64,
    /// Repeats (0401/0421) sent.
    pub reversal_repeats: u64,
    /// Reversals that got their response.
    pub reversals_answered: u64,
    /// Reversals given up after the last repeat, or whose connection ended.
    pub reversals_unanswered: u64,
    /// Timed-out requests not reversed: too many reversals pending.
    pub reversals_not_sent: u64,
}

impl ReversalTally {
    pub fn add(&mut self, other: &ReversalTally) {
        self.reversals_sent += other.reversals_sent;
        self.reversal_repeats += other.reversal_repeats;
        self.reversals_answered += other.reversals_answered;
        self.reversals_unanswered += other.reversals_unanswered;
        self.reversals_not_sent += other.reversals_not_sent;
    }
}

/// The original request a reversal undoes, for the record (no card data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    pub rrn: Bytes,
    pub stan: Bytes,
    pub terminal: Bytes,
}

impl Original {
    pub fn of(request: &Message) -> Original {
        let get = |n: u16| request.get(n).cloned().unwrap_or_default();
        Original {
            rrn: get(37),
            stan: get(11),
            terminal: get(41),
        }
    }
}

/// A reversal waiting for its answer.
#[derive(Debug, Clone)]
pub struct Pending {
    /// As first sent; repeats change only the MTI.
    pub message: Message,
    pub original: Original,
    /// Sends so far (the first and its repeats).
    pub sends: u32,
    pub deadline: Instant,
}

/// What [`Reversals::due`] asks for.
#[derive(Debug)]
pub enum Due {
    /// Send this repeat now.
    Repeat(Message),
    /// Given up after the last repeat.
    GaveUp(Pending),
}

/// One connection's reversals in flight, by STAN.
#[derive(Debug)]
pub struct Reversals {
    pending: HashMap<u32, Pending>,
    /// How long each send waits for its answer.
    timeout: Duration,
    /// Repeats after the first send before giving up.
    repeats_max: u32,
    pub tally: ReversalTally,
}

impl Reversals {
    pub fn new(timeout: Duration) -> Reversals {
        Reversals {
            pending: HashMap::new(),
            timeout,
            repeats_max: REVERSAL_REPEATS_MAX,
            tally: ReversalTally::default(),
        }
    }

    /// Repeats every reversal until it is answered, as a terminal that
    /// keeps its reversal across a host's restart does (the run's own end
    /// bounds it).
    pub fn until_answered(mut self) -> Reversals {
        self.repeats_max = u32::MAX;
        self
    }

    /// The connection was lost: every reversal in flight is repeated as
    /// soon as there is a connection again (the host may not have seen it).
    pub fn repeat_all_now(&mut self, now: Instant) {
        for p in self.pending.values_mut() {
            p.deadline = p.deadline.min(now);
        }
    }

    /// Whether `stan` belongs to a reversal in flight.
    pub fn uses(&self, stan: u32) -> bool {
        self.pending.contains_key(&stan)
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether another reversal may start (see [`REVERSALS_PENDING_MAX`]);
    /// counts the one refused.
    pub fn admit(&mut self) -> bool {
        let room = self.pending.len() < REVERSALS_PENDING_MAX;
        if !room {
            self.tally.reversals_not_sent += 1;
        }
        room
    }

    /// Tracks `message` (with DE11 = `stan`), just sent at `now`.
    pub fn sent(&mut self, stan: u32, message: Message, original: Original, now: Instant) {
        self.tally.reversals_sent += 1;
        let deadline = now + self.timeout;
        let pending = Pending {
            message,
            original,
            sends: 1,
            deadline,
        };
        self.pending.insert(stan, pending);
    }

    /// Takes the reversal that `response` (of STAN `stan`) answers, if any:
    /// the response MTI must be the reversal's.
    pub fn answer(&mut self, stan: u32, response: &Message) -> Option<Pending> {
        let pending = self.pending.get(&stan)?;
        if pending.message.mti().response() != Some(response.mti()) {
            return None;
        }
        self.tally.reversals_answered += 1;
        self.pending.remove(&stan)
    }

    /// Repeats and give-ups due at `now`.
    pub fn due(&mut self, now: Instant) -> Vec<Due> {
        let mut out = Vec::new();
        let mut done = Vec::new();
        for (stan, p) in self.pending.iter_mut().filter(|(_, p)| p.deadline <= now) {
            if p.sends > self.repeats_max {
                done.push(*stan);
                continue;
            }
            p.sends += 1;
            p.deadline = now + self.timeout;
            let mti = p.message.mti().as_repeat();
            p.message.set_mti(mti);
            self.tally.reversal_repeats += 1;
            out.push(Due::Repeat(p.message.clone()));
        }
        for stan in done {
            if let Some(p) = self.pending.remove(&stan) {
                self.tally.reversals_unanswered += 1;
                out.push(Due::GaveUp(p));
            }
        }
        out
    }

    /// The earliest deadline, for the connection's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// The connection ended: every reversal in flight is unanswered.
    pub fn abandon(&mut self) -> Vec<Pending> {
        self.tally.reversals_unanswered += self.pending.len() as u64;
        self.pending.drain().map(|(_, p)| p).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original(spec: &Spec) -> Message {
        let mut m = Message::new(
            "0100"
                .parse::<Mti>()
                .expect("mti")
                .with_version(spec.version.digit()),
        );
        for (n, v) in [
            (2, "4761739001010119"),
            (3, "000000"),
            (4, "000000001234"),
            (7, "1123143005"),
            (11, "000042"),
            (14, "2812"),
            (32, "400001"),
            (37, "000300000007"),
            (41, "LT000003"),
            (42, "LOADGEN00000003"),
            (49, "978"),
        ] {
            m.set_str(n, v).expect("set");
        }
        let de12 = if spec.version.digit() == 0 {
            "143005"
        } else {
            "251123143005"
        };
        m.set_str(12, de12).expect("set");
        m
    }

    #[test]
    fn a_1987_reversal_carries_the_original_and_de90() {
        let spec = Spec::resolve("iso87-ascii").expect("spec");
        let o = original(&spec);
        let r = reversal_of(&spec, &o, ReversalMti::Advice, 77, "1123143010");
        assert_eq!(r.mti().to_string(), "0420");
        for n in [2, 3, 4, 32, 37, 41, 42, 49] {
            assert_eq!(r.get(n), o.get(n), "DE{n}");
        }
        assert_eq!(r.get_str(11), Some("000077"));
        assert_eq!(r.get_str(7), Some("1123143010"));
        assert_eq!(r.get_str(39), Some("68"));
        assert_eq!(
            r.get_str(90),
            Some("010000004211231430050000040000100000000000")
        );
        // It builds in the dialect and reads back the same.
        let bytes = spec.build(&r).expect("build");
        assert_eq!(spec.parse(&bytes).expect("parse"), r);
        let request = reversal_of(&spec, &o, ReversalMti::Request, 78, "1123143010");
        assert_eq!(request.mti().to_string(), "0400");
    }

    #[test]
    fn a_1993_reversal_refers_by_de56() {
        let spec = Spec::resolve("iso93-ascii").expect("spec");
        let o = original(&spec);
        let r = reversal_of(&spec, &o, ReversalMti::Advice, 5, "1123143010");
        assert_eq!(r.mti().to_string(), "1420");
        assert_eq!(r.get_str(56), Some("110000004225112314300506400001"));
        assert_eq!(r.get_str(24), Some("400"));
        assert_eq!(r.get_str(25), Some("4021"));
        assert!(!r.has(90) && !r.has(39));
        let bytes = spec.build(&r).expect("build");
        assert_eq!(spec.parse(&bytes).expect("parse"), r);
    }

    #[test]
    fn bad_reversal_mtis_are_refused() {
        assert_eq!("0420".parse(), Ok(ReversalMti::Advice));
        assert_eq!("0400".parse(), Ok(ReversalMti::Request));
        assert!("0200".parse::<ReversalMti>().is_err());
    }

    fn response(to: &Message) -> Message {
        let mut r = to.clone();
        r.set_mti(to.mti().response().expect("response"));
        r.set_str(39, "00").expect("set");
        r
    }

    #[test]
    fn unanswered_reversals_are_repeated_then_given_up() {
        let spec = Spec::resolve("iso87-ascii").expect("spec");
        let o = original(&spec);
        let rev = reversal_of(&spec, &o, ReversalMti::Advice, 9, "1123143010");
        let t0 = Instant::now();
        let step = Duration::from_millis(100);
        let mut r = Reversals::new(step);
        assert!(r.admit());
        r.sent(9, rev.clone(), Original::of(&o), t0);
        assert!(r.uses(9) && !r.uses(10));
        assert_eq!(r.next_deadline(), Some(t0 + step));
        assert!(r.due(t0).is_empty());
        for k in 1..=REVERSAL_REPEATS_MAX {
            let due = r.due(t0 + step * k);
            let [Due::Repeat(m)] = due.as_slice() else {
                panic!("{due:?}");
            };
            assert_eq!(m.mti().to_string(), "0421");
            assert_eq!(m.get_str(11), Some("000009"));
        }
        let due = r.due(t0 + step * (REVERSAL_REPEATS_MAX + 1));
        let [Due::GaveUp(p)] = due.as_slice() else {
            panic!("{due:?}");
        };
        assert_eq!(p.original.rrn.as_ref(), b"000300000007");
        assert_eq!(p.message.mti().to_string(), "0421");
        assert_eq!(p.sends, REVERSAL_REPEATS_MAX + 1);
        assert!(r.is_empty());
        assert_eq!(r.tally.reversals_sent, 1);
        assert_eq!(r.tally.reversal_repeats, u64::from(REVERSAL_REPEATS_MAX));
        assert_eq!(r.tally.reversals_unanswered, 1);
    }

    #[test]
    fn answers_are_matched_by_stan_and_mti() {
        let spec = Spec::resolve("iso87-ascii").expect("spec");
        let o = original(&spec);
        let rev = reversal_of(&spec, &o, ReversalMti::Advice, 9, "1123143010");
        let t0 = Instant::now();
        let mut r = Reversals::new(Duration::from_secs(1));
        r.sent(9, rev.clone(), Original::of(&o), t0);
        // The original's response is not the reversal's.
        assert!(r.answer(9, &response(&o)).is_none());
        // A repeat is answered by the same 0430.
        let _ = r.due(t0 + Duration::from_secs(1));
        let done = r.answer(9, &response(&rev)).expect("answered");
        assert_eq!(done.sends, 2);
        assert_eq!(r.tally.reversals_answered, 1);
        assert!(r.answer(9, &response(&rev)).is_none());
        // A connection that ends leaves its reversals unanswered.
        r.sent(10, rev, Original::of(&o), t0);
        assert_eq!(r.abandon().len(), 1);
        assert_eq!(r.tally.reversals_unanswered, 1);
    }
}
