//! Virtual time: events ordered by (time, sequence), so that two events
//! at the same microsecond keep the order they were scheduled in.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use bytes::Bytes;

use crate::switch::core::{Input, TimerId};

/// Something that happens at a moment of virtual time.
pub enum Event {
    /// Acquirer `n` acts (a new request, a copy, a reversal...).
    AcquirerTick(usize),
    /// The acquirer repeats its reversal of logical transaction `rrn`.
    ReversalRetry(String),
    /// Bytes from the switch reach issuer `issuer` (sent on `link` epoch).
    AtIssuer {
        issuer: usize,
        link: u64,
        bytes: Bytes,
    },
    /// Bytes from issuer `issuer` reach the switch.
    AtSwitch {
        issuer: usize,
        link: u64,
        bytes: Bytes,
    },
    /// An input for the core of incarnation `epoch` (a batch close's answer).
    Later { epoch: u64, input: Input },
    /// Journal group `group` is committed (or fails).
    Commit { group: usize },
    /// A timer the core armed, with the arming's generation.
    Timer { timer: TimerId, generation: u64 },
    /// Issuer `issuer`'s link goes up or down.
    Link { issuer: usize, up: bool },
    /// The switch crashes.
    Crash,
    /// The switch starts again from its journal.
    Restart,
}

struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // Reversed: the heap's top is the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The events to come.
#[derive(Default)]
pub struct Queue {
    heap: BinaryHeap<Scheduled>,
    seq: u64,
}

impl Queue {
    /// Schedules `event` at `at` microseconds of virtual time.
    pub fn at(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    pub fn pop(&mut self) -> Option<(u64, Event)> {
        self.heap.pop().map(|s| (s.at, s.event))
    }
}
