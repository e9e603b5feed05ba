//! Who may hold a connection slot: at most `connections_max` connections
//! at once on a listener, and at most `per_peer_max` from one peer address.
//! A connection over either limit is refused at once (accepted and
//! closed) rather than left in the kernel's backlog, where it would wait
//! unanswered; and the per-peer limit keeps one client's idle sockets from
//! taking every slot from the others.
//!
//! The table has an entry per peer address with a connection open, so it
//! is bounded by `connections_max`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener has `connections_max` connections open.
    ListenerFull,
    /// This peer address has `per_peer_max` connections open.
    PeerFull,
}

impl Refusal {
    /// The metric label and log word for the refusal.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::ListenerFull => "connections_max",
            Refusal::PeerFull => "connections_per_peer_max",
        }
    }
}

#[derive(Default)]
struct Open {
    total: usize,
    per_peer: HashMap<IpAddr, usize>,
}

/// The connections a listener holds, by peer address.
pub struct Admission {
    connections_max: usize,
    per_peer_max: usize,
    open: Mutex<Open>,
}

/// A held slot; dropping it frees the slot.
pub struct Ticket {
    admission: Arc<Admission>,
    peer: IpAddr,
}

impl Admission {
    pub fn new(connections_max: usize, per_peer_max: usize) -> Arc<Admission> {
        Arc::new(Admission {
            connections_max,
            per_peer_max,
            open: Mutex::new(Open::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // Plain counters: consistent even after a panic elsewhere.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a connection from `peer`, or why there is none.
    pub fn try_admit(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Refusal> {
        let mut open = self.lock();
        if open.total >= self.connections_max {
            return Err(Refusal::ListenerFull);
        }
        let from_peer = open.per_peer.get(&peer).copied().unwrap_or(0);
        if from_peer >= self.per_peer_max {
            return Err(Refusal::PeerFull);
        }
        open.total += 1;
        open.per_peer.insert(peer, from_peer + 1);
        Ok(Ticket {
            admission: self.clone(),
            peer,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.admission.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                open.per_peer.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn limits_per_peer_and_in_all_and_frees_on_drop() {
        let a = Admission::new(3, 2);
        let t1 = a.try_admit(ip(1)).expect("first");
        let t2 = a.try_admit(ip(1)).expect("second");
        assert_eq!(a.try_admit(ip(1)).err(), Some(Refusal::PeerFull));
        let t3 = a.try_admit(ip(2)).expect("another peer");
        assert_eq!(a.try_admit(ip(3)).err(), Some(Refusal::ListenerFull));
        drop(t1);
        assert_eq!(a.open(), 2);
        let t4 = a.try_admit(ip(1)).expect("freed slot");
        drop((t2, t3, t4));
        assert_eq!(a.open(), 0);
        assert!(a.lock().per_peer.is_empty(), "no entry for a peer gone");
    }
}
