//! The core's timers: armed and disarmed by its actions, fired by the
//! node's loop when their time comes. At most one arming per timer id.
//!
//! Most are response time-outs, armed at `now` plus a route's fixed
//! time-out, so each is due no earlier than the one armed before it with
//! the same time-out: such a timer joins the end of a queue in due order
//! (no search), and a disarmed one is left there, forgotten, until it
//! reaches the front or the queues are compacted. The others go to an
//! ordered map.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use crate::switch::core::TimerId;

/// Queues in due order at most (about one per distinct time-out).
const QUEUES_MAX: usize = 8;
/// Forgotten entries tolerated in the queues beyond twice the live ones.
const STALE_SLACK: usize = 1024;

/// Where an armed timer waits.
#[derive(Debug, Clone, Copy)]
enum Place {
    Queue(usize),
    Ordered(Instant),
}

/// Timers by due time (ties in arming order).
#[derive(Default)]
pub struct Timers {
    /// Each in due order: (due, arming number, timer).
    queues: Vec<VecDeque<(Instant, u64, TimerId)>>,
    ordered: BTreeMap<(Instant, u64), TimerId>,
    /// Keyed by the core's own ids: a fast hash will do.
    armed: HashMap<TimerId, (u64, Place), foldhash::fast::RandomState>,
    seq: u64,
    /// Entries in the queues whose timer was disarmed or armed again.
    stale: usize,
}

impl Timers {
    /// Arms `timer` for `at`, replacing an earlier arming.
    pub fn arm(&mut self, timer: TimerId, at: Instant) {
        self.disarm(timer);
        self.seq += 1;
        let queue = self
            .queues
            .iter()
            .position(|q| q.back().is_none_or(|&(last, _, _)| last <= at));
        let place = match queue {
            Some(i) => Some(i),
            None if self.queues.len() < QUEUES_MAX => {
                self.queues.push(VecDeque::new());
                Some(self.queues.len() - 1)
            }
            None => None,
        };
        let place = match place {
            Some(i) => {
                self.queues[i].push_back((at, self.seq, timer));
                Place::Queue(i)
            }
            None => {
                self.ordered.insert((at, self.seq), timer);
                Place::Ordered(at)
            }
        };
        self.armed.insert(timer, (self.seq, place));
    }

    pub fn disarm(&mut self, timer: TimerId) {
        match self.armed.remove(&timer) {
            Some((seq, Place::Ordered(at))) => {
                self.ordered.remove(&(at, seq));
            }
            Some((_, Place::Queue(i))) => {
                self.stale += 1;
                self.drop_stale_front(i);
                if self.stale > 2 * self.armed.len() + STALE_SLACK {
                    self.compact();
                }
            }
            None => {}
        }
    }

    /// When the earliest timer is due.
    pub fn next(&self) -> Option<Instant> {
        self.earliest().map(|(at, _, _)| at)
    }

    /// Takes the earliest timer due by `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<TimerId> {
        let (at, _, from) = self.earliest().filter(|(at, _, _)| *at <= now)?;
        let timer = match from {
            Some(i) => {
                let (_, _, timer) = self.queues[i].pop_front()?;
                self.drop_stale_front(i);
                timer
            }
            None => {
                let (_, timer) = self.ordered.pop_first()?;
                timer
            }
        };
        debug_assert!(at <= now);
        self.armed.remove(&timer);
        Some(timer)
    }

    /// The earliest live timer: (due, arming number, its queue or none).
    fn earliest(&self) -> Option<(Instant, u64, Option<usize>)> {
        let queued = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|&(at, seq, _)| (at, seq, Some(i))));
        let ordered = self.ordered.keys().next().map(|&(at, seq)| (at, seq, None));
        queued.chain(ordered).min_by_key(|&(at, seq, _)| (at, seq))
    }

    /// Whether a queue entry is its timer's current arming.
    fn live(&self, seq: u64, timer: &TimerId) -> bool {
        self.armed.get(timer).is_some_and(|&(s, _)| s == seq)
    }

    /// Drops the forgotten entries at the front of queue `i`, so that its
    /// front is live (or it is empty).
    fn drop_stale_front(&mut self, i: usize) {
        while let Some(&(_, seq, timer)) = self.queues[i].front() {
            if self.live(seq, &timer) {
                break;
            }
            self.queues[i].pop_front();
            self.stale -= 1;
        }
    }

    /// Drops every forgotten entry.
    fn compact(&mut self) {
        let mut queues = std::mem::take(&mut self.queues);
        for q in &mut queues {
            q.retain(|(_, seq, timer)| self.live(*seq, timer));
        }
        self.queues = queues;
        self.stale = 0;
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

    /// Against a plain model (a sorted list): any mix of armings (in and
    /// out of order, more distinct time-outs than queues), disarmings and
    /// firings fires the same timers in the same order.
    #[test]
    fn agrees_with_a_sorted_list() {
        use proptest::prelude::*;
        let op = prop_oneof![
            (0u64..40, 0u64..200).prop_map(|(t, d)| (0u8, t, d)),
            (0u64..40).prop_map(|t| (1u8, t, 0)),
            (0u64..50).prop_map(|d| (2u8, 0, d)),
        ];
        proptest!(|(ops in proptest::collection::vec(op, 1..300))| {
            let t0 = Instant::now();
            let mut timers = Timers::default();
            let mut model: Vec<(Instant, u64, TimerId)> = Vec::new();
            let (mut now, mut seq) = (t0, 0u64);
            for (kind, t, d) in ops {
                let timer = TimerId::Response(TxnId(t));
                match kind {
                    0 => {
                        seq += 1;
                        model.retain(|e| e.2 != timer);
                        model.push((now + Duration::from_millis(d), seq, timer));
                        timers.arm(timer, now + Duration::from_millis(d));
                    }
                    1 => {
                        model.retain(|e| e.2 != timer);
                        timers.disarm(timer);
                    }
                    _ => {
                        now += Duration::from_millis(d);
                        model.sort_by_key(|e| (e.0, e.1));
                        let due = model.iter().take_while(|e| e.0 <= now).count();
                        let expected: Vec<_> = model.drain(..due).map(|e| e.2).collect();
                        let fired: Vec<_> = std::iter::from_fn(|| timers.pop_due(now)).collect();
                        prop_assert_eq!(fired, expected);
                    }
                }
                model.sort_by_key(|e| (e.0, e.1));
                prop_assert_eq!(timers.next(), model.first().map(|e| e.0));
            }
        });
    }

    /// Timers armed and disarmed out of order leave a bounded number of
    /// forgotten entries behind.
    #[test]
    fn forgotten_entries_stay_bounded() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        for i in 0..100_000u64 {
            timers.arm(TimerId::Response(TxnId(i)), t0 + Duration::from_millis(i));
            if i >= 64 {
                // Answered out of order: timer 0, in front, stays armed.
                timers.disarm(TimerId::Response(TxnId(i - 63)));
            }
        }
        let queued: usize = timers.queues.iter().map(VecDeque::len).sum();
        assert!(
            queued <= 3 * timers.armed.len() + STALE_SLACK,
            "{queued} queued"
        );
        assert_eq!(timers.armed.len(), 64);
    }
}
