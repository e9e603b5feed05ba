//! What a load run reports: live counters for a display while it runs
//! (`demo`), and the final report with its human-readable summary.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::latency::{latency_histogram, record_latency};
use super::load::{LatencySummary, Tally};

/// Distinct error messages kept for the report.
const ERROR_SAMPLES_MAX: usize = 8;

/// Counters updated while a run goes on, for live display (`demo`).
/// Each connection publishes its counts once per batch of work.
#[derive(Debug, Default)]
pub struct LoadProgress {
    sent: AtomicU64,
    approved: AtomicU64,
    declined: AtomicU64,
    timed_out: AtomicU64,
    late: AtomicU64,
    mismatched: AtomicU64,
    unmatched: AtomicU64,
    errors: AtomicU64,
    /// Latencies since the last `take_window_latency`, for live percentiles.
    window: std::sync::Mutex<Option<Histogram<u64>>>,
}

impl LoadProgress {
    /// p50 and p99 latency (µs) of the responses since the last call.
    pub fn take_window_latency(&self) -> (u64, u64) {
        let taken = self.window.lock().unwrap_or_else(|e| e.into_inner()).take();
        match taken {
            Some(h) if !h.is_empty() => (h.value_at_quantile(0.5), h.value_at_quantile(0.99)),
            _ => (0, 0),
        }
    }

    /// Adds latencies (µs) to the live window.
    pub(crate) fn record_latencies(&self, micros: &[u64]) {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let h = window.get_or_insert_with(latency_histogram);
        for &us in micros {
            record_latency(h, us);
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Tally {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Tally {
            sent: get(&self.sent),
            approved: get(&self.approved),
            declined: get(&self.declined),
            timed_out: get(&self.timed_out),
            late: get(&self.late),
            mismatched: get(&self.mismatched),
            unmatched: get(&self.unmatched),
            errors: get(&self.errors),
            // Not shown live: the report has them.
            ..Tally::default()
        }
    }

    /// Adds `now - before` (counts only grow).
    pub(crate) fn publish(&self, now: &Tally, before: &Tally) {
        let pairs = [
            (&self.sent, now.sent - before.sent),
            (&self.approved, now.approved - before.approved),
            (&self.declined, now.declined - before.declined),
            (&self.timed_out, now.timed_out - before.timed_out),
            (&self.late, now.late - before.late),
            (&self.mismatched, now.mismatched - before.mismatched),
            (&self.unmatched, now.unmatched - before.unmatched),
            (&self.errors, now.errors - before.errors),
        ];
        for (counter, delta) in pairs {
            if delta > 0 {
                counter.fetch_add(delta, Ordering::Relaxed);
            }
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub target: String,
    /// Connections that were established.
    pub connections: u32,
    pub in_flight: u32,
    /// The `--rate` target, when open loop.
    pub rate_target: Option<f64>,
    #[serde(flatten)]
    pub counts: Tally,
    /// Open loop: scheduled requests given up because the connection's
    /// window was full for longer than one window's worth of requests.
    pub skipped: u64,
    /// From the first request to the last answer or time-out.
    pub elapsed_s: f64,
    /// Requests answered in time per second.
    pub throughput_rps: f64,
    /// Latency of the requests answered in time, in microseconds.
    pub latency_us: LatencySummary,
    /// Up to a few distinct error and mismatch descriptions.
    pub error_samples: Vec<String>,
}

impl LoadReport {
    /// Whether any response failed its checks (the run must fail).
    pub fn has_mismatches(&self) -> bool {
        self.counts.mismatched > 0 || self.counts.unmatched > 0
    }

    /// A human-readable summary.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        let l = &self.latency_us;
        let mode = match self.rate_target {
            Some(r) => format!("open loop at {r} req/s"),
            None => "closed loop".to_string(),
        };
        let mut s = format!(
            "target {}: {} connections x {} in flight, {mode}, {:.2} s\n",
            self.target, self.connections, self.in_flight, self.elapsed_s
        );
        let rows = [
            ("sent", c.sent),
            ("approved", c.approved),
            ("declined", c.declined),
            ("timed out", c.timed_out),
            ("late", c.late),
            ("mismatched", c.mismatched),
            ("unmatched", c.unmatched),
            ("errors", c.errors),
        ];
        for (name, v) in rows {
            let _ = writeln!(s, "{name:<12}{v:>12}");
        }
        if self.rate_target.is_some() {
            let _ = writeln!(s, "{:<12}{:>12}", "skipped", self.skipped);
        }
        let r = &c.reversals;
        if r.reversals_sent + r.reversals_not_sent > 0 {
            let _ = writeln!(
                s,
                "reversals   {:>12} sent, {} repeats, {} answered, {} unanswered, {} not sent",
                r.reversals_sent,
                r.reversal_repeats,
                r.reversals_answered,
                r.reversals_unanswered,
                r.reversals_not_sent
            );
        }
        let _ = writeln!(s, "{:<12}{:>12.0} req/s", "throughput", self.throughput_rps);
        let _ = writeln!(
            s,
            "latency µs  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            l.p50, l.p90, l.p99, l.p99_9, l.max
        );
        for e in &self.error_samples {
            let _ = writeln!(s, "error: {e}");
        }
        s
    }
}

/// A few distinct error descriptions.
#[derive(Debug, Default)]
pub struct Samples {
    pub list: Vec<String>,
}

impl Samples {
    pub fn add(&mut self, e: String) {
        if self.list.len() < ERROR_SAMPLES_MAX && !self.list.contains(&e) {
            self.list.push(e);
        }
    }
}
