//! The store-and-forward queue: reversal advices for requests whose outcome
//! is unknown (time-outs), advices acknowledged to acquirers, and stand-in
//! advices, each delivered to its issuer until acknowledged. Bounded; due
//! entries come out in time order; retries back off exponentially up to a
//! cap, until an expiry. Pure: time is passed in. (In memory here; the
//! journal makes it durable.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::message::Message;

/// What an entry is for (for logs and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafKind {
    /// 0420 for a request the issuer did not answer in time.
    TimeoutReversal,
    /// An advice (0120/0220/0420) acknowledged to the acquirer.
    AcquirerAdvice,
    /// 0120 telling the issuer of a stand-in approval.
    StandInAdvice,
}

impl SafKind {
    /// Every kind, in the order of their counts.
    pub const ALL: [SafKind; 3] = [
        SafKind::TimeoutReversal,
        SafKind::AcquirerAdvice,
        SafKind::StandInAdvice,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SafKind::TimeoutReversal => "timeout_reversal",
            SafKind::AcquirerAdvice => "acquirer_advice",
            SafKind::StandInAdvice => "stand_in_advice",
        }
    }

    pub fn from_label(label: &str) -> Option<SafKind> {
        SafKind::ALL.into_iter().find(|k| k.label() == label)
    }
}

/// One message to deliver.
#[derive(Debug, Clone)]
pub struct SafEntry {
    pub id: u64,
    /// The journal's transaction this entry belongs to, if any.
    pub txn_id: Option<u64>,
    pub kind: SafKind,
    /// Index of the issuer it goes to.
    pub issuer: usize,
    /// The advice in the issuer's dialect, STAN assigned.
    pub message: Message,
    pub attempts: u32,
    pub due: Instant,
    pub expires: Instant,
}

/// Retry policy.
#[derive(Debug, Clone, Copy)]
pub struct SafPolicy {
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub expiry: Duration,
    pub attempts_max: u32,
}

/// The queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("store-and-forward queue full ({0} entries)")]
pub struct SafFull(pub usize);

/// What happened to an entry whose delivery failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Retry {
    Rescheduled(Instant),
    /// Expired or out of attempts: dropped (and must be reported).
    GaveUp,
}

pub struct SafQueue {
    policy: SafPolicy,
    entries_max: usize,
    next_id: u64,
    by_due: BTreeMap<(Instant, u64), SafEntry>,
}

impl SafQueue {
    pub fn new(policy: SafPolicy, entries_max: usize) -> SafQueue {
        assert!(entries_max > 0, "SAF queue needs room");
        SafQueue {
            policy,
            entries_max,
            next_id: 1,
            by_due: BTreeMap::new(),
        }
    }

    pub fn depth(&self) -> usize {
        self.by_due.len()
    }

    /// Whether `reserve` more entries would still fit.
    pub fn has_room(&self, reserve: usize) -> bool {
        self.by_due.len() + reserve < self.entries_max
    }

    /// Queues a message, due now.
    pub fn push(
        &mut self,
        kind: SafKind,
        issuer: usize,
        message: Message,
        now: Instant,
    ) -> Result<u64, SafFull> {
        let id = self.allocate_id();
        self.insert(id, None, kind, issuer, message, 0, now)?;
        Ok(id)
    }

    /// The id the next entry gets (ids are the journal's keys too).
    pub fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Continues numbering after ids already used (after a restart).
    pub fn resume_ids_from(&mut self, next_id: u64) {
        self.next_id = self.next_id.max(next_id);
    }

    /// Queues a message under an allocated id, due now; `attempts` already
    /// made (a restored entry is sent as a repeat).
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        id: u64,
        txn_id: Option<u64>,
        kind: SafKind,
        issuer: usize,
        message: Message,
        attempts: u32,
        now: Instant,
    ) -> Result<(), SafFull> {
        if self.by_due.len() >= self.entries_max {
            return Err(SafFull(self.by_due.len()));
        }
        let entry = SafEntry {
            id,
            txn_id,
            kind,
            issuer,
            message,
            attempts,
            due: now,
            expires: now + self.policy.expiry,
        };
        self.by_due.insert((now, id), entry);
        Ok(())
    }

    /// Takes up to `limit` entries due at `now` whose issuer `ready` accepts.
    pub fn take_due(
        &mut self,
        now: Instant,
        limit: usize,
        ready: impl Fn(usize) -> bool,
    ) -> Vec<SafEntry> {
        let keys: Vec<(Instant, u64)> = self
            .by_due
            .range(..=(now, u64::MAX))
            .filter(|(_, e)| ready(e.issuer))
            .take(limit)
            .map(|(k, _)| *k)
            .collect();
        keys.into_iter()
            .filter_map(|k| self.by_due.remove(&k))
            .collect()
    }

    /// Puts back an entry whose delivery failed, later; or gives up.
    pub fn retry(&mut self, mut entry: SafEntry, now: Instant) -> Retry {
        entry.attempts += 1;
        if entry.attempts >= self.policy.attempts_max || now >= entry.expires {
            return Retry::GaveUp;
        }
        // The first retry waits retry_min, each later one twice the last.
        let min = self.policy.retry_min.as_millis() as u64;
        let backoff = min.saturating_mul(1 << (entry.attempts - 1).min(20));
        let delay = Duration::from_millis(backoff).min(self.policy.retry_max);
        entry.due = now + delay;
        let due = entry.due;
        self.by_due.insert((due, entry.id), entry);
        Retry::Rescheduled(due)
    }

    /// Puts an entry taken out by `take_due` back as it was (it could not
    /// go out now), beyond the queue's limit: it held its place before.
    pub fn put_back(&mut self, entry: SafEntry) {
        self.by_due.insert((entry.due, entry.id), entry);
    }

    /// When the next entry is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.by_due.keys().next().map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SafPolicy {
        SafPolicy {
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
            expiry: Duration::from_secs(10),
            attempts_max: 5,
        }
    }

    fn advice() -> Message {
        Message::new("0420".parse().expect("mti"))
    }

    #[test]
    fn due_order_backoff_and_giving_up() {
        let t0 = Instant::now();
        let mut q = SafQueue::new(policy(), 3);
        q.push(SafKind::TimeoutReversal, 0, advice(), t0)
            .expect("room");
        q.push(
            SafKind::AcquirerAdvice,
            1,
            advice(),
            t0 + Duration::from_millis(5),
        )
        .expect("room");
        q.push(
            SafKind::StandInAdvice,
            0,
            advice(),
            t0 + Duration::from_millis(10),
        )
        .expect("room");
        assert_eq!(
            q.push(SafKind::StandInAdvice, 0, advice(), t0),
            Err(SafFull(3))
        );
        assert!(!q.has_room(0));

        // Issuer 1 is down: only issuer 0's due entries come out.
        let due = q.take_due(t0 + Duration::from_millis(20), 10, |i| i == 0);
        assert_eq!(
            due.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [SafKind::TimeoutReversal, SafKind::StandInAdvice]
        );
        assert_eq!(q.depth(), 1);
        let mut it = due.into_iter();
        let first = it.next().expect("entry");
        // Regression (issue 19, point 5): the first retry waits retry_min
        // (it waited twice that), the next one twice as long.
        assert_eq!(
            q.retry(first, t0),
            Retry::Rescheduled(t0 + Duration::from_millis(100))
        );
        assert!(
            q.take_due(t0 + Duration::from_millis(99), 10, |i| i == 0)
                .is_empty()
        );
        let again = q.take_due(t0 + Duration::from_millis(100), 10, |i| i == 0);
        assert_eq!(again.len(), 1);
        let second = again.into_iter().next().expect("entry");
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(
            q.retry(second, t1),
            Retry::Rescheduled(t1 + Duration::from_millis(200))
        );
        let mut e = q
            .take_due(t1 + Duration::from_millis(200), 10, |i| i == 0)
            .into_iter()
            .next()
            .expect("entry");
        e.attempts = 4;
        assert_eq!(q.retry(e, t0), Retry::GaveUp);
        assert_eq!(q.depth(), 1);
        assert_eq!(q.next_due(), Some(t0 + Duration::from_millis(5)));
    }
}
