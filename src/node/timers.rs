//! The core's timers: armed and disarmed by its actions, fired by the
//! node's loop when their time comes. At most one arming per timer id.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::switch::core::TimerId;

/// Timers by due time (ties in arming order).
#[derive(Default)]
pub struct Timers {
    by_due: BTreeMap<(Instant, u64), TimerId>,
    /// Keyed by the core's own ids: a fast hash will do.
    armed: HashMap<TimerId, (Instant, u64), foldhash::fast::RandomState>,
    seq: u64,
}

impl Timers {
    /// Arms `timer` for `at`, replacing an earlier arming.
    pub fn arm(&mut self, timer: TimerId, at: Instant) {
        self.disarm(timer);
        self.seq += 1;
        self.by_due.insert((at, self.seq), timer);
        self.armed.insert(timer, (at, self.seq));
    }

    pub fn disarm(&mut self, timer: TimerId) {
        if let Some(key) = self.armed.remove(&timer) {
            self.by_due.remove(&key);
        }
    }

    /// When the earliest timer is due.
    pub fn next(&self) -> Option<Instant> {
        self.by_due.keys().next().map(|(at, _)| *at)
    }

    /// Takes the earliest timer due by `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<TimerId> {
        let (&key, _) = self
            .by_due
            .iter()
            .next()
            .filter(|((at, _), _)| *at <= now)?;
        let timer = self.by_due.remove(&key)?;
        self.armed.remove(&timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::switch::core::TxnId;

    #[test]
    fn fires_in_time_order_once_and_not_when_disarmed_or_replaced() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut timers = Timers::default();
        timers.arm(TimerId::Response(TxnId(1)), at(30));
        timers.arm(TimerId::Response(TxnId(2)), at(10));
        timers.arm(TimerId::SafDue, at(20));
        timers.disarm(TimerId::SafDue);
        timers.arm(TimerId::Response(TxnId(1)), at(5));
        assert_eq!(timers.next(), Some(at(5)));
        assert_eq!(timers.pop_due(at(4)), None);
        let fired: Vec<_> = std::iter::from_fn(|| timers.pop_due(at(100))).collect();
        assert_eq!(
            fired,
            [TimerId::Response(TxnId(1)), TimerId::Response(TxnId(2))]
        );
        assert_eq!(timers.next(), None);
    }
}
