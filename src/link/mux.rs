//! Request/response matching on a link (like jPOS's QMUX): a request is
//! sent, and the response whose key matches it is delivered to its waiter.
//! The key is the MTI class plus configured fields (default DE11 STAN,
//! DE41 terminal, DE32 acquirer where present). In-flight requests are
//! bounded; a late or unmatched response is counted and logged, and a
//! response is never delivered twice (the waiter is removed on delivery).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use tokio::sync::oneshot;

use super::connection::{FrameSender, SendError};
use super::framing::Frame;
use crate::message::key_bytes::{KeyBytes, WordHash};
use crate::message::{Message, MessageError, Spec};

/// Default key fields: STAN, terminal id, acquiring institution.
pub const KEY_FIELDS_DEFAULT: &[u16] = &[11, 41, 32];

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MuxError {
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("{0} requests already in flight")]
    Busy(usize),
    #[error("a request with the same key is already in flight")]
    DuplicateKey,
    #[error("request lacks key field {0}")]
    MissingKey(u16),
    #[error("link closed")]
    Closed,
    #[error("request cannot be framed: {0}")]
    Framing(super::framing::FramingError),
    #[error("request cannot be built: {0}")]
    Build(#[from] MessageError),
}

impl From<SendError> for MuxError {
    fn from(e: SendError) -> MuxError {
        match e {
            SendError::Closed => MuxError::Closed,
            SendError::Framing(f) => MuxError::Framing(f),
        }
    }
}

/// What became of an incoming message.
#[derive(Debug)]
pub enum Delivery {
    /// A waiting request got it.
    Matched,
    /// A response nobody waits for (late, unknown or a duplicate), in the
    /// box it came in (handed on without a copy).
    Unmatched(Box<Message>),
    /// Not a response: for the link's request handler.
    NotAResponse(Box<Message>),
}

/// The matcher for one link.
pub struct Mux {
    spec: Arc<Spec>,
    sender: FrameSender,
    key_fields: Arc<[u16]>,
    in_flight_max: usize,
    /// Waiters by key, each tagged with a ticket so that a finished
    /// request never removes a newer one that reuses its key.
    pending: Mutex<Pending>,
    next_ticket: AtomicU64,
    /// Messages sent without a waiter (`send_only`): their answers go to
    /// someone else, and what is left when the connection closes was lost
    /// with it.
    sent: Mutex<Unanswered>,
}

/// Messages sent by `send_only` and not yet answered or forgotten, by STAN,
/// at most `max` (the connection's in-flight limit).
#[derive(Default)]
struct Unanswered {
    max: usize,
    /// Keyed by the switch's own STANs: a fast hash will do.
    by_stan: HashMap<u32, Instant, foldhash::fast::FixedState>,
}

impl Unanswered {
    /// Marks `stan` sent; false when `max` are out already. A STAN sent
    /// again replaces its earlier sending.
    fn insert(&mut self, stan: u32, at: Instant) -> bool {
        if self.by_stan.len() >= self.max && !self.by_stan.contains_key(&stan) {
            return false;
        }
        self.by_stan.insert(stan, at);
        true
    }

    fn remove(&mut self, stan: u32) -> Option<Instant> {
        self.by_stan.remove(&stan)
    }
}

type Pending = HashMap<KeyBytes, (u64, oneshot::Sender<Message>), WordHash>;

impl Mux {
    pub fn new(
        spec: Arc<Spec>,
        sender: FrameSender,
        key_fields: &[u16],
        in_flight_max: usize,
    ) -> Mux {
        assert!(in_flight_max > 0, "in-flight limit must be positive");
        Mux {
            spec,
            sender,
            key_fields: key_fields.into(),
            in_flight_max,
            pending: Mutex::new(HashMap::with_capacity_and_hasher(
                in_flight_max.min(4096),
                WordHash::random(),
            )),
            next_ticket: AtomicU64::new(0),
            sent: Mutex::new(Unanswered {
                max: in_flight_max,
                ..Unanswered::default()
            }),
        }
    }

    /// The matching key of a message. Fields 11 must be present; others
    /// count when present.
    pub fn key(&self, msg: &Message) -> Result<KeyBytes, MuxError> {
        let mut key = KeyBytes::new();
        key.put(&msg.mti().digits()[1..2]);
        for &f in self.key_fields.iter() {
            match msg.value(f) {
                Some(v) => {
                    key.put(&f.to_be_bytes());
                    key.put(&(v.len() as u16).to_be_bytes());
                    key.put(v);
                }
                None if f == 11 => return Err(MuxError::MissingKey(11)),
                None => {}
            }
        }
        Ok(key)
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A poisoned lock means a panic elsewhere while holding it; the map
        // itself is still consistent (inserts and removes are atomic).
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `request` and waits up to `timeout` for its response.
    pub async fn request(&self, request: &Message, timeout: Duration) -> Result<Message, MuxError> {
        let key = self.key(request)?;
        let bytes = self.spec.build(request)?;
        let (tx, rx) = oneshot::channel();
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        {
            let mut pending = self.lock();
            if pending.len() >= self.in_flight_max {
                return Err(MuxError::Busy(pending.len()));
            }
            if pending.contains_key(&key) {
                return Err(MuxError::DuplicateKey);
            }
            pending.insert(key.clone(), (ticket, tx));
        }
        let guard = PendingGuard {
            mux: self,
            key,
            ticket,
        };
        self.sender.send(Frame::new(bytes)).await?;
        let result = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => Err(MuxError::Closed),
            Err(_) => Err(MuxError::Timeout(timeout)),
        };
        drop(guard);
        result
    }

    /// Sends `bytes`, a message built by the caller whose STAN is `stan`,
    /// without waiting for an answer (the caller matches answers, keeps
    /// the time-outs and says what to `forget`): `Busy` when
    /// `in_flight_max` are out or the write buffer is full; on any error
    /// nothing was sent. A message sent again under the same STAN
    /// replaces the earlier one.
    pub fn send_only(&self, stan: u32, bytes: Bytes, now: Instant) -> Result<(), MuxError> {
        // Marked before it goes, so that a quick answer finds it.
        if !self.sent_lock().insert(stan, now) {
            return Err(MuxError::Busy(self.in_flight_max));
        }
        let queued = self.sender.try_send(Frame::new(bytes));
        if !matches!(queued, Ok(true)) {
            self.sent_lock().remove(stan);
        }
        match queued? {
            true => Ok(()),
            false => Err(MuxError::Busy(self.in_flight())),
        }
    }

    /// Marks the answer to a message sent by `send_only` as come (at
    /// `now`): how long it took, if one under its STAN was out.
    pub fn answered(&self, answer: &Message, now: Instant) -> Option<Duration> {
        let stan = answer.get_u64(11).and_then(|s| u32::try_from(s).ok())?;
        let at = self.sent_lock().remove(stan)?;
        Some(now.saturating_duration_since(at))
    }

    /// Whether a message sent by `send_only` under `answer`'s STAN is out
    /// (its answer is the caller's, even a network management one).
    pub fn awaits(&self, answer: &Message) -> bool {
        answer
            .get_u64(11)
            .and_then(|s| u32::try_from(s).ok())
            .is_some_and(|stan| self.sent_lock().by_stan.contains_key(&stan))
    }

    /// Forgets the message sent by `send_only` under `stan`.
    pub fn forget(&self, stan: u32) {
        self.sent_lock().remove(stan);
    }

    /// The STANs of the messages sent by `send_only` still unanswered
    /// (taken: the connection is gone, and they with it).
    pub fn take_unanswered(&self) -> Vec<u32> {
        self.sent_lock()
            .by_stan
            .drain()
            .map(|(stan, _)| stan)
            .collect()
    }

    fn sent_lock(&self) -> std::sync::MutexGuard<'_, Unanswered> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands an incoming message to its waiter, if it is a response.
    pub fn deliver(&self, msg: Box<Message>) -> Delivery {
        if !msg.mti().is_response() {
            return Delivery::NotAResponse(msg);
        }
        // The switch's answers are to messages sent without a waiter
        // (`send_only`): with no waiter at all, no key is made (~900
        // instructions an answer).
        if self.lock().is_empty() {
            return Delivery::Unmatched(msg);
        }
        let Ok(key) = self.key(&msg) else {
            return Delivery::Unmatched(msg);
        };
        let waiter = self.lock().remove(&key);
        match waiter {
            Some((_, tx)) => match tx.send(*msg) {
                Ok(()) => Delivery::Matched,
                // The waiter timed out between removal and send.
                Err(msg) => Delivery::Unmatched(Box::new(msg)),
            },
            None => Delivery::Unmatched(msg),
        }
    }

    /// Fails every waiter (the link is gone).
    pub fn close_all(&self) {
        self.lock().clear();
    }
}

/// Removes a request's entry when its waiter stops waiting, whatever the reason.
struct PendingGuard<'a> {
    mux: &'a Mux,
    key: KeyBytes,
    ticket: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let mut pending = self.mux.lock();
        if pending
            .get(&self.key)
            .is_some_and(|(t, _)| *t == self.ticket)
        {
            pending.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unanswered_holds_at_most_its_limit() {
        let now = Instant::now();
        let mut u = Unanswered {
            max: 3,
            ..Unanswered::default()
        };
        assert!((1..=3).all(|stan| u.insert(stan, now)));
        assert!(!u.insert(4, now), "a fourth is refused");
        assert!(u.insert(2, now), "a STAN sent again replaces itself");
        assert!(u.remove(3).is_some());
        assert!(u.insert(4, now), "room again once one is answered");
        let mut left: Vec<u32> = u.by_stan.keys().copied().collect();
        left.sort_unstable();
        assert_eq!(left, [1, 2, 4]);
    }
}
