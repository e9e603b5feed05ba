//! An acquirer connection's room for requests in flight: a count and one
//! waiter, the connection's reader. A request takes a slot before it goes
//! to the loop and gives it back when its reply is written (the permit
//! dropped). Cheaper than a semaphore for this one-reader case: a take is
//! a compare-and-swap and a give-back a subtraction, where tokio's
//! semaphore took its waiters' lock on every release (~250 instructions
//! a request at 8 x 8, callgrind).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::Notify;

/// Slots for at most `max` requests in flight.
pub struct InFlight {
    max: u32,
    taken: AtomicU32,
    /// Wakes the reader waiting for a slot, or for every slot back. It
    /// keeps a wake-up given while nobody waits, so one between a failed
    /// take and the wait is not lost.
    freed: Notify,
}

/// One slot, given back when dropped.
pub struct Permit {
    of: Arc<InFlight>,
}

impl InFlight {
    pub fn new(max: u32) -> Arc<InFlight> {
        assert!(max > 0, "a connection needs room for one request");
        Arc::new(InFlight {
            max,
            taken: AtomicU32::new(0),
            freed: Notify::new(),
        })
    }

    /// A slot, waiting for one when all are taken.
    pub async fn take(self: &Arc<Self>) -> Permit {
        loop {
            if let Some(permit) = self.try_take() {
                return permit;
            }
            self.freed.notified().await;
        }
    }

    /// A slot, if one is free now.
    pub fn try_take(self: &Arc<Self>) -> Option<Permit> {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit { of: self.clone() })
    }

    /// Waits until every slot is back (the connection's requests are all
    /// answered).
    pub async fn all_back(&self) {
        while self.taken.load(Ordering::Acquire) != 0 {
            self.freed.notified().await;
        }
    }

    /// Slots taken now.
    #[cfg(test)]
    fn taken(&self) -> u32 {
        self.taken.load(Ordering::Acquire)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let before = self.of.taken.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "a permit given back twice");
        // Only a reader that may be waiting is woken: for room (all were
        // taken) or for the last one back.
        if before == self.of.max || before == 1 {
            self.of.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn holds_its_limit_and_wakes_the_reader_when_room_comes_back() {
        let slots = InFlight::new(2);
        let a = slots.take().await;
        let b = slots.take().await;
        assert!(slots.try_take().is_none(), "a third is refused");
        let waiter = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.take().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "waits while all are taken");
        drop(a);
        let c = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken by the slot given back")
            .expect("task");
        assert_eq!(slots.taken(), 2);
        drop((b, c));
        assert_eq!(slots.taken(), 0);
    }

    #[tokio::test]
    async fn all_back_waits_for_the_last_permit() {
        let slots = InFlight::new(4);
        let permits: Vec<Permit> = (0..3).filter_map(|_| slots.try_take()).collect();
        assert_eq!(permits.len(), 3);
        let done = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.all_back().await })
        };
        let mut permits = permits;
        while let Some(p) = permits.pop() {
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert!(!done.is_finished(), "{} still out", permits.len() + 1);
            drop(p);
        }
        tokio::time::timeout(Duration::from_secs(5), done)
            .await
            .expect("woken by the last one back")
            .expect("task");
    }
}
