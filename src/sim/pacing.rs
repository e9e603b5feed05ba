//! When the load generator opens its connections and, in open loop, when
//! each connection sends. Pure schedules: offsets from the run's start,
//! no clock. A reconnect storm of thousands of terminals opening at once
//! overflows a host's accept backlog (issue 19: 2,000 connections at once
//! left most requests timed out), so connections are opened at a bounded
//! rate; and each terminal sends at its own steady interval, its phase
//! spread over that interval so that the aggregate rate is even.

use std::time::Duration;

/// Connections opened per second when `--connect-rate` is not given: 10,000
/// terminals come up in 5 s, and no 2 ms opens more than a few.
pub const CONNECT_RATE_DEFAULT: f64 = 2_000.0;
/// Highest `--connect-rate`.
pub const CONNECT_RATE_MAX: f64 = 1_000_000.0;
/// Open loop: a connection whose interval between requests is at least
/// this keeps its own timer; below it (a few connections at a high rate),
/// a shared pacer thread wakes them, finer than tokio's 1 ms timer.
pub const OWN_TIMER_INTERVAL_MIN: Duration = Duration::from_millis(2);

/// A bad `--connect-rate` or `--rate`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PacingError {
    /// The rate is not a finite number above zero and within its bound.
    #[error("rate {0} must be above 0 and at most {1}")]
    Rate(f64, f64),
}

/// When connection `index` (0-based) starts to connect: `index / rate`
/// seconds after the first.
pub fn connect_offset(index: u32, connections_per_s: f64) -> Duration {
    Duration::try_from_secs_f64(f64::from(index) / connections_per_s).unwrap_or(Duration::MAX)
}

/// Checks a `--connect-rate`.
pub fn check_connect_rate(rate: f64) -> Result<f64, PacingError> {
    if rate.is_finite() && rate > 0.0 && rate <= CONNECT_RATE_MAX {
        Ok(rate)
    } else {
        Err(PacingError::Rate(rate, CONNECT_RATE_MAX))
    }
}

/// One connection's open-loop schedule: request `n` (1-based) is due
/// `(n - phase) / rate` seconds after the start, so a connection with phase
/// `i / N` sends `i / N` of an interval before one with phase 0, and N
/// connections together send evenly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Requests per second of this connection.
    rate: f64,
    /// Head start, in requests: 0 to below 1.
    phase: f64,
}

impl Schedule {
    /// The schedule of connection `index` of `connections` sharing
    /// `total_rate` requests per second.
    pub fn for_connection(total_rate: f64, index: u32, connections: u32) -> Schedule {
        assert!(
            total_rate.is_finite() && total_rate > 0.0,
            "rate checked by the caller"
        );
        let connections = connections.max(1);
        Schedule {
            rate: total_rate / f64::from(connections),
            phase: f64::from(index % connections) / f64::from(connections),
        }
    }

    /// Requests due by `elapsed` since the start.
    pub fn due(&self, elapsed: Duration) -> u64 {
        (elapsed.as_secs_f64() * self.rate + self.phase) as u64
    }

    /// When request `n` (1-based) is due, as an offset from the start.
    pub fn due_at(&self, n: u64) -> Duration {
        let secs = (n as f64 - self.phase).max(0.0) / self.rate;
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }

    /// The time between two requests of this connection.
    pub fn interval(&self) -> Duration {
        Duration::try_from_secs_f64(1.0 / self.rate).unwrap_or(Duration::MAX)
    }

    /// Whether this connection keeps its own timer (see
    /// [`OWN_TIMER_INTERVAL_MIN`]).
    pub fn own_timer(&self) -> bool {
        self.interval() >= OWN_TIMER_INTERVAL_MIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_open_at_the_ramp_rate() {
        assert_eq!(connect_offset(0, 2_000.0), Duration::ZERO);
        assert_eq!(connect_offset(1_000, 2_000.0), Duration::from_millis(500));
        assert_eq!(
            connect_offset(9_999, 10_000.0),
            Duration::from_micros(999_900)
        );
        assert!(check_connect_rate(2_000.0).is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, CONNECT_RATE_MAX * 2.0] {
            assert!(check_connect_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_connection_sends_at_its_own_steady_interval() {
        // 10,000 terminals at 5,000/s: one request every 2 s each.
        let s = Schedule::for_connection(5_000.0, 2_500, 10_000);
        assert_eq!(s.interval(), Duration::from_secs(2));
        assert!(s.own_timer());
        // Phase 1/4: the first request at 1.5 s, then every 2 s.
        assert_eq!(s.due_at(1), Duration::from_millis(1_500));
        assert_eq!(s.due_at(2), Duration::from_millis(3_500));
        assert_eq!(s.due(Duration::from_millis(1_499)), 0);
        assert_eq!(s.due(Duration::from_millis(1_500)), 1);
        assert_eq!(s.due(Duration::from_millis(3_499)), 1);
        assert_eq!(s.due(Duration::from_millis(3_500)), 2);
        // 8 connections at 50,000/s: 160 µs apart, the shared pacer's job.
        assert!(!Schedule::for_connection(50_000.0, 0, 8).own_timer());
    }

    #[test]
    fn phases_spread_the_aggregate_evenly() {
        // In every 100 ms of a 2 s interval, 1/20 of the connections send.
        let n = 10_000;
        let mut per_slot = [0u32; 20];
        for i in 0..n {
            let first = Schedule::for_connection(5_000.0, i, n).due_at(1);
            let slot = (first.as_millis() / 100) as usize;
            per_slot[slot.min(19)] += 1;
        }
        // Each slot's share, up to the connections on its edges.
        assert!(
            per_slot.iter().all(|&c| c.abs_diff(500) <= 2),
            "{per_slot:?}"
        );
    }
}
