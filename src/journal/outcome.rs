//! What became of a transaction, as the journal stores it in
//! `transactions.outcome`. One enum, so the core that decides it, the
//! stores that write it and every reader (recovery, clearing's capture,
//! the `journal` commands, the simulator) agree on one set of words; the
//! words themselves ([`TxnOutcome::as_str`]) are the on-disk format and
//! never change.

use std::fmt;

/// A transaction's stored outcome. Named `TxnOutcome` because
/// `message::response_codes::Outcome` is another thing: the switch's own
/// reasons for a response code (DE39). The core decides the first six;
/// the journal itself writes the last two ([`TxnOutcome::Undelivered`]
/// when a decided reply did not reach the acquirer's connection,
/// [`TxnOutcome::Unknown`] when recovery abandons a request never
/// answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnOutcome {
    /// The issuer approved (DE39 00, 000 or 001).
    Approved,
    /// The issuer declined, or the request could not be forwarded.
    Declined,
    /// The issuer did not answer in time (or its answer was unusable).
    TimedOut,
    /// Approved by the issuer's stand-in rules (an 0120 advice follows).
    StandIn,
    /// The switch refused the request itself (format, routing, journal).
    Rejected,
    /// An advice acknowledged once durably queued.
    AdviceAcked,
    /// The reply was decided but not handed to the acquirer.
    Undelivered,
    /// Recovery closed a request whose answer was never recorded.
    Unknown,
}

/// A stored outcome this build does not know (a corrupt or newer
/// journal): readers report it rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown journal outcome {stored:?}")]
pub struct UnknownOutcome {
    /// The stored text, cut to [`UnknownOutcome::SHOWN_CHARS_MAX`]
    /// characters: it is only shown.
    pub stored: String,
}

impl UnknownOutcome {
    /// How much of an unknown stored text an error keeps.
    pub const SHOWN_CHARS_MAX: usize = 32;

    fn of(stored: &[u8]) -> UnknownOutcome {
        let text = String::from_utf8_lossy(stored);
        UnknownOutcome {
            stored: text.chars().take(Self::SHOWN_CHARS_MAX).collect(),
        }
    }
}

impl TxnOutcome {
    /// Every outcome, in declaration order.
    pub const ALL: [TxnOutcome; 8] = [
        TxnOutcome::Approved,
        TxnOutcome::Declined,
        TxnOutcome::TimedOut,
        TxnOutcome::StandIn,
        TxnOutcome::Rejected,
        TxnOutcome::AdviceAcked,
        TxnOutcome::Undelivered,
        TxnOutcome::Unknown,
    ];

    /// The stored word: the journal's on-disk format.
    pub const fn as_str(self) -> &'static str {
        match self {
            TxnOutcome::Approved => "approved",
            TxnOutcome::Declined => "declined",
            TxnOutcome::TimedOut => "timed_out",
            TxnOutcome::StandIn => "stand_in",
            TxnOutcome::Rejected => "rejected",
            TxnOutcome::AdviceAcked => "advice_acked",
            TxnOutcome::Undelivered => "undelivered",
            TxnOutcome::Unknown => "unknown",
        }
    }

    /// The outcome a stored word names, `None` for any other text.
    pub fn parse(stored: &str) -> Option<TxnOutcome> {
        Self::parse_bytes(stored.as_bytes())
    }

    /// [`TxnOutcome::parse`] on the stored bytes, for readers that borrow
    /// rows without decoding them (clearing's capture).
    pub fn parse_bytes(stored: &[u8]) -> Option<TxnOutcome> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str().as_bytes() == stored)
    }

    /// [`TxnOutcome::parse_bytes`] with the reason when it fails.
    pub fn from_stored(stored: &[u8]) -> Result<TxnOutcome, UnknownOutcome> {
        Self::parse_bytes(stored).ok_or_else(|| UnknownOutcome::of(stored))
    }

    /// Whether the acquirer was given an approval it may act on.
    pub fn approves(self) -> bool {
        matches!(self, TxnOutcome::Approved | TxnOutcome::StandIn)
    }
}

impl std::str::FromStr for TxnOutcome {
    type Err = UnknownOutcome;

    fn from_str(s: &str) -> Result<TxnOutcome, UnknownOutcome> {
        TxnOutcome::from_stored(s.as_bytes())
    }
}

impl fmt::Display for TxnOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialized as its stored word, so JSON exports keep their text.
impl serde::Serialize for TxnOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_words_are_the_on_disk_format() {
        let words: Vec<&str> = TxnOutcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            words,
            [
                "approved",
                "declined",
                "timed_out",
                "stand_in",
                "rejected",
                "advice_acked",
                "undelivered",
                "unknown",
            ]
        );
    }

    #[test]
    fn every_outcome_round_trips_through_its_word() {
        for o in TxnOutcome::ALL {
            assert_eq!(TxnOutcome::parse(o.as_str()), Some(o));
            assert_eq!(TxnOutcome::parse_bytes(o.as_str().as_bytes()), Some(o));
            assert_eq!(o.as_str().parse::<TxnOutcome>(), Ok(o));
            assert_eq!(o.to_string(), o.as_str());
            let json = serde_json::to_string(&o).expect("serializes");
            assert_eq!(json, format!("\"{}\"", o.as_str()));
        }
    }

    #[test]
    fn other_text_is_refused_with_a_reason() {
        for bad in ["", "Approved", "approved ", "stand-in", "timedout", "00"] {
            assert_eq!(TxnOutcome::parse(bad), None, "{bad:?}");
        }
        assert_eq!(TxnOutcome::parse_bytes(b"appr\xffved"), None);
        let long = "x".repeat(1000);
        let err = long.parse::<TxnOutcome>().expect_err("unknown");
        assert_eq!(err.stored.len(), UnknownOutcome::SHOWN_CHARS_MAX);
        assert!(err.to_string().contains("unknown journal outcome"), "{err}");
    }

    #[test]
    fn only_approvals_and_stand_in_approve() {
        let approving: Vec<TxnOutcome> = TxnOutcome::ALL
            .into_iter()
            .filter(|o| o.approves())
            .collect();
        assert_eq!(approving, [TxnOutcome::Approved, TxnOutcome::StandIn]);
    }
}
