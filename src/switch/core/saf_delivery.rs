//! Store-and-forward delivery: each queued entry goes to its issuer while
//! a connection is up, as a repeat (xxx1) after its first attempt, until
//! it is answered (91 asks for a retry); a failed attempt backs off; an
//! entry that expires or runs out of attempts is given up. Every attempt
//! and every end is journaled.

use super::{Action, Core, Outgoing, Time, TimerId};
use crate::journal::Record;
use crate::message::Message;
use crate::switch::saf::{Retry, SafEntry, SafKind};

/// Entries out for delivery at once at most, over all issuers: after an
/// outage, the queue drains at this many per round trip instead of all
/// at once.
const SAF_SENDING_MAX: usize = 64;

/// The STAN an entry goes out with (assigned when it was queued).
pub(super) fn stan_of(entry: &SafEntry) -> Option<u32> {
    entry
        .message
        .get_u64(11)
        .and_then(|s| u32::try_from(s).ok())
}

impl Core {
    /// An issuer's link came up or went down.
    pub(super) fn issuer_up(&mut self, now: Time, issuer: usize, up: bool) {
        if let Some(u) = self.issuer_up.get_mut(issuer) {
            *u = up;
        }
        // The key exchange schedule starts with the link's first connection.
        if up && !self.exchange_armed[issuer] {
            self.exchange_armed[issuer] = true;
            self.arm_exchange(now, issuer);
        }
    }

    /// Sends the entries that are due to issuers that are up, and arms the
    /// timer for the next one.
    pub(super) fn deliver_due(&mut self, now: Time) {
        // Every queue empty (the usual case, after every input): nothing
        // to send, nothing to time.
        if self.saf.iter().all(|q| q.next_due().is_none()) {
            return;
        }
        for issuer in 0..self.saf.len() {
            if !self.issuer_up[issuer] || self.saf_sending.len() >= SAF_SENDING_MAX {
                continue;
            }
            let room = SAF_SENDING_MAX - self.saf_sending.len();
            let due = self.saf[issuer].take_due(now.mono, room, |_| true);
            for entry in due {
                self.send_entry(now, entry);
            }
        }
        self.arm_saf_timer(now);
    }

    fn send_entry(&mut self, now: Time, entry: SafEntry) {
        let stan = stan_of(&entry);
        let key = stan.map(|s| (entry.issuer, s));
        match key {
            // A transaction holds its STAN: the entry waits its turn.
            Some(key) if !self.in_flight.contains_key(&key) => {
                let mut message = entry.message.clone();
                if entry.attempts > 0 {
                    message.set_mti(message.mti().as_repeat());
                }
                // Never deliverable: given up at once.
                let Ok(frame) = self.cfg.issuers[entry.issuer].spec.build(&message) else {
                    self.counters.unbuildable += 1;
                    return self.give_up(now, entry);
                };
                self.in_flight.insert(key, Outgoing::Saf(entry.id));
                self.push(Action::Arm {
                    timer: TimerId::SafAnswer(entry.id),
                    at: now.mono + self.cfg.saf_response_wait,
                });
                let (issuer, id, attempts) = (entry.issuer, entry.id, entry.attempts);
                self.saf_sending.insert(entry.id, entry);
                self.send_saf(now, (issuer, key.1), id, attempts, message, frame);
            }
            Some(_) => self.saf[entry.issuer].put_back(entry),
            // Queued without a STAN: it can never be matched.
            None => self.give_up(now, entry),
        }
    }

    /// Arms the store-and-forward timer for the earliest entry of an
    /// issuer that is up, if that is later than now (one due now waits for
    /// room, which the end of an attempt makes).
    fn arm_saf_timer(&mut self, now: Time) {
        let next = (0..self.saf.len())
            .filter(|&i| self.issuer_up[i])
            .filter_map(|i| self.saf[i].next_due())
            .min();
        match next {
            Some(at) if at > now.mono && self.saf_timer != Some(at) => {
                self.saf_timer = Some(at);
                self.push(Action::Arm {
                    timer: TimerId::SafDue,
                    at,
                });
            }
            _ => {}
        }
    }

    /// The issuer answered entry `id`: delivered, unless it asks for a
    /// retry (91). An answer of another class, or whose echoed fields
    /// differ, is not the entry's.
    pub(super) fn saf_answered(&mut self, now: Time, id: u64, answer: &Message) {
        let Some(entry) = self.saf_sending.get(&id) else {
            return;
        };
        if entry.message.mti().class() != answer.mti().class()
            || !super::answer::answers(&entry.message, answer)
        {
            return;
        }
        let entry = self.end_attempt(id).expect("looked up above");
        let retry = answer.get_str(39).is_some_and(|c| c == "91" || c == "911");
        if retry {
            return self.attempt_failed(now, entry);
        }
        self.counters.saf_delivered.add(entry.kind);
        self.append(
            vec![Record::SafDone {
                id,
                delivered: true,
                attempts: entry.attempts + 1,
                at_ms: now.wall_ms(),
            }],
            None,
        );
    }

    /// Entry `id`'s answer did not come in time.
    pub(super) fn saf_answer_due(&mut self, now: Time, id: u64) {
        if let Some(entry) = self.end_attempt(id) {
            if let Some(stan) = stan_of(&entry) {
                let issuer = entry.issuer;
                self.push(Action::Forget { issuer, stan });
            }
            self.attempt_failed(now, entry);
        }
    }

    /// Entry `id` never left: it is retried later.
    pub(super) fn saf_not_sent(&mut self, now: Time, id: u64) {
        if let Some(entry) = self.end_attempt(id) {
            self.attempt_failed(now, entry);
        }
    }

    /// Takes entry `id` out of delivery: its STAN is free, its timer off.
    fn end_attempt(&mut self, id: u64) -> Option<SafEntry> {
        let entry = self.saf_sending.remove(&id)?;
        if let Some(stan) = stan_of(&entry) {
            self.in_flight.remove(&(entry.issuer, stan));
        }
        self.push(Action::Disarm {
            timer: TimerId::SafAnswer(id),
        });
        Some(entry)
    }

    fn attempt_failed(&mut self, now: Time, entry: SafEntry) {
        let (id, kind, attempts) = (entry.id, entry.kind, entry.attempts + 1);
        let issuer = entry.issuer;
        match self.saf[issuer].retry(entry, now.mono) {
            Retry::Rescheduled(_) => {
                self.append(vec![Record::SafAttempted { id, attempts }], None);
            }
            Retry::GaveUp => self.gave_up(now, id, kind, attempts),
        }
    }

    fn give_up(&mut self, now: Time, entry: SafEntry) {
        self.gave_up(now, entry.id, entry.kind, entry.attempts);
    }

    fn gave_up(&mut self, now: Time, id: u64, kind: SafKind, attempts: u32) {
        self.counters.saf_given_up.add(kind);
        self.append(
            vec![Record::SafDone {
                id,
                delivered: false,
                attempts,
                at_ms: now.wall_ms(),
            }],
            None,
        );
    }
}
