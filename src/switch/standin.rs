//! Stand-in processing (STIP): when an issuer is down or does not answer,
//! approve small amounts under per-transaction and per-card daily limits.
//! Cards are counted under a keyed hash of the PAN, never the PAN itself.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use serde::Deserialize;

/// Limits of one issuer's stand-in (amounts in minor units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandInRules {
    pub per_transaction_max: u64,
    pub per_card_daily_count: u32,
    pub per_card_daily_amount: u64,
}

#[derive(Debug, Clone, Copy)]
struct CardDay {
    day: u32,
    count: u32,
    amount: u64,
}

/// Per-card counters for one issuer.
pub struct StandIn {
    rules: StandInRules,
    /// Seeded by the caller (the core has no randomness of its own).
    hasher: foldhash::quality::FixedState,
    cards: HashMap<u64, CardDay>,
    cards_max: usize,
}

impl StandIn {
    pub fn new(rules: StandInRules, cards_max: usize, seed: u64) -> StandIn {
        StandIn {
            rules,
            hasher: foldhash::quality::FixedState::with_seed(seed),
            cards: HashMap::new(),
            cards_max,
        }
    }

    pub fn rules(&self) -> StandInRules {
        self.rules
    }

    fn card_key(&self, pan: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(pan);
        h.finish()
    }

    /// Whether to approve `amount` for `pan` on `day` (days since epoch);
    /// an approval counts against the card's limits.
    pub fn approve(&mut self, pan: &[u8], amount: u64, day: u32) -> bool {
        if amount > self.rules.per_transaction_max {
            return false;
        }
        let key = self.card_key(pan);
        if self.cards.len() >= self.cards_max && !self.cards.contains_key(&key) {
            // Full: forget other days' counters; if still full, refuse.
            self.cards.retain(|_, c| c.day == day);
            if self.cards.len() >= self.cards_max {
                return false;
            }
        }
        let entry = self.cards.entry(key).or_insert(CardDay {
            day,
            count: 0,
            amount: 0,
        });
        if entry.day != day {
            *entry = CardDay {
                day,
                count: 0,
                amount: 0,
            };
        }
        if entry.count >= self.rules.per_card_daily_count
            || entry.amount + amount > self.rules.per_card_daily_amount
        {
            return false;
        }
        entry.count += 1;
        entry.amount += amount;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_transaction_count_and_amount_per_day() {
        let rules = StandInRules {
            per_transaction_max: 5_000,
            per_card_daily_count: 3,
            per_card_daily_amount: 8_000,
        };
        let mut s = StandIn::new(rules, 100, 7);
        let pan = b"4761739001010119";
        assert!(!s.approve(pan, 5_001, 1));
        assert!(s.approve(pan, 5_000, 1));
        assert!(!s.approve(pan, 3_001, 1), "daily amount");
        assert!(s.approve(pan, 1_000, 1));
        assert!(s.approve(pan, 1_000, 1));
        assert!(!s.approve(pan, 1, 1), "daily count");
        assert!(s.approve(pan, 1_000, 2), "a new day");
        assert!(s.approve(b"5454000000000002", 1_000, 2), "another card");
    }
}
