//! Rate limits for warnings about peers. A hostile or broken peer can open
//! connections as fast as the listener accepts them, and each failure
//! (a refused handshake, a silent socket, garbage) is worth a warning: left
//! alone, one peer fills the log. A [`LogLimit`] lets through at most
//! `per_peer` warnings per peer address and `total` warnings in all per
//! interval; the rest are counted (a metric, and a `suppressed` figure on
//! the next warning let through) instead of logged.
//!
//! The peer table is bounded (`peers_max`) and cleared at each interval, so
//! a flood of distinct addresses costs at most that many entries; a peer
//! that finds the table full shares the `total` budget only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many warnings pass, per peer and in all, in each interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimitSettings {
    /// Warnings about one peer address per interval.
    pub per_peer: u32,
    /// Warnings about all peers together per interval.
    pub total: u32,
    pub interval: Duration,
    /// Peer addresses tracked at once.
    pub peers_max: usize,
}

impl Default for LogLimitSettings {
    /// 3 warnings per peer and 100 in all per 10 s, over up to 4096 peers:
    /// enough to see what a peer does wrong, not enough to flood the log.
    fn default() -> LogLimitSettings {
        LogLimitSettings {
            per_peer: 3,
            total: 100,
            interval: Duration::from_secs(10),
            peers_max: 4096,
        }
    }
}

struct Window {
    started: Instant,
    logged_total: u32,
    per_peer: HashMap<IpAddr, u32>,
    /// Suppressed since the last warning let through.
    suppressed_unreported: u64,
}

/// A shared, thread-safe warning limiter; see the module's doc.
pub struct LogLimit {
    settings: LogLimitSettings,
    window: Mutex<Option<Window>>,
    suppressed: metrics::Counter,
}

impl LogLimit {
    /// A limiter whose suppressed warnings count under `link`'s name in
    /// `cardswitch_link_warnings_suppressed_total`.
    pub fn new(link: &str, settings: LogLimitSettings) -> LogLimit {
        LogLimit {
            settings,
            window: Mutex::new(None),
            suppressed: metrics::counter!("cardswitch_link_warnings_suppressed_total", "link" => link.to_string()),
        }
    }

    /// Whether a warning about `peer` may be logged now: `Some(n)` with the
    /// number of warnings suppressed since the last one let through (to
    /// put in the line), `None` when it must be dropped (it is counted).
    pub fn admit(&self, peer: IpAddr) -> Option<u64> {
        self.admit_at(peer, Instant::now())
    }

    /// [`admit`](Self::admit) at a given time (for tests and callers that
    /// already read the clock).
    pub fn admit_at(&self, peer: IpAddr, now: Instant) -> Option<u64> {
        let mut guard = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let carried = match guard.as_ref() {
            Some(w) if now.saturating_duration_since(w.started) < self.settings.interval => None,
            Some(w) => Some(w.suppressed_unreported),
            None => Some(0),
        };
        if let Some(suppressed_unreported) = carried {
            *guard = Some(Window {
                started: now,
                logged_total: 0,
                per_peer: HashMap::new(),
                suppressed_unreported,
            });
        }
        let w = guard.as_mut().expect("a window was just set");
        if self.admitted(w, peer) {
            w.logged_total += 1;
            Some(std::mem::take(&mut w.suppressed_unreported))
        } else {
            w.suppressed_unreported += 1;
            self.suppressed.increment(1);
            None
        }
    }

    fn admitted(&self, w: &mut Window, peer: IpAddr) -> bool {
        if w.logged_total >= self.settings.total {
            return false;
        }
        let table_full = w.per_peer.len() >= self.settings.peers_max;
        match w.per_peer.get_mut(&peer) {
            Some(n) if *n >= self.settings.per_peer => false,
            Some(n) => {
                *n += 1;
                true
            }
            // Untracked, the peer still counts against the total.
            None if table_full => true,
            None if self.settings.per_peer == 0 => false,
            None => {
                w.per_peer.insert(peer, 1);
                true
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

    fn limit(per_peer: u32, total: u32, peers_max: usize) -> LogLimit {
        LogLimit::new(
            "test",
            LogLimitSettings {
                per_peer,
                total,
                interval: Duration::from_secs(10),
                peers_max,
            },
        )
    }

    #[test]
    fn one_peer_gets_its_budget_then_is_suppressed() {
        let l = limit(3, 100, 16);
        let t = Instant::now();
        let let_through = (0..1000).filter(|_| l.admit_at(ip(1), t).is_some()).count();
        assert_eq!(let_through, 3);
        // Another peer still has its own budget.
        assert_eq!(l.admit_at(ip(2), t), Some(997));
        assert_eq!(l.admit_at(ip(2), t), Some(0));
    }

    #[test]
    fn the_next_interval_reports_what_was_suppressed() {
        let l = limit(1, 100, 16);
        let t = Instant::now();
        assert_eq!(l.admit_at(ip(1), t), Some(0));
        assert_eq!(l.admit_at(ip(1), t + Duration::from_secs(1)), None);
        assert_eq!(l.admit_at(ip(1), t + Duration::from_secs(9)), None);
        assert_eq!(l.admit_at(ip(1), t + Duration::from_secs(10)), Some(2));
        assert_eq!(l.admit_at(ip(1), t + Duration::from_secs(11)), None);
    }

    #[test]
    fn many_peers_share_the_total() {
        let l = limit(3, 10, 4);
        let t = Instant::now();
        let let_through = (0..=255u8)
            .filter(|i| l.admit_at(ip(*i), t).is_some())
            .count();
        assert_eq!(let_through, 10);
    }

    #[test]
    fn the_peer_table_is_bounded() {
        let l = limit(1, u32::MAX, 4);
        let t = Instant::now();
        for i in 0..=255u8 {
            l.admit_at(ip(i), t);
        }
        let guard = l.window.lock().unwrap();
        assert_eq!(guard.as_ref().map(|w| w.per_peer.len()), Some(4));
    }
}
