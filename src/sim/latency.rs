//! Latency histograms and their summary, for the load generator's report.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies above this (in µs) are recorded as this value.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;

/// A histogram of latencies in microseconds, 1 µs to an hour at three
/// significant digits (a fixed ~200 KiB, whatever the run length).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("constant bounds are valid")
}

/// Records one latency; values outside the bounds are clamped.
pub fn record_latency(histogram: &mut Histogram<u64>, micros: u64) {
    histogram.saturating_record(micros.clamp(1, LATENCY_US_MAX));
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
}

impl LatencySummary {
    pub fn from_histogram(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_summary_reads_percentiles() {
        let mut h = latency_histogram();
        assert_eq!(
            LatencySummary::from_histogram(&h),
            LatencySummary::default()
        );
        for us in 1..=1_000 {
            record_latency(&mut h, us);
        }
        record_latency(&mut h, 0);
        record_latency(&mut h, u64::MAX);
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.count, 1_002);
        let near = |got: u64, want: u64| got.abs_diff(want) * 100 <= want;
        assert!(near(s.p50, 500), "{s:?}");
        assert!(near(s.p90, 900), "{s:?}");
        assert!(near(s.p99, 990), "{s:?}");
        assert!(near(s.p99_9, 1000), "{s:?}");
        assert!(near(s.max, LATENCY_US_MAX), "{s:?}");
    }
}
