//! The invariant a checked configuration keeps: every count, size and
//! duration within its range. The switch asserts it before it starts
//! anything, so a configuration built by hand (or a check that let a value
//! through) fails loudly at start rather than in a task after "listening".

use std::ops::RangeInclusive;
use std::time::Duration;

use super::*;

fn within(what: &str, value: u64, range: &RangeInclusive<u64>) {
    assert!(
        range.contains(&value),
        "{what} = {value} is outside {}..={}: the configuration was not checked",
        range.start(),
        range.end()
    );
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl SwitchConfig {
    /// Panics when a value is outside its range (a programming error: a
    /// loaded configuration never is).
    pub fn assert_within_limits(&self) {
        let s = &self.switch;
        within(
            "duplicate_window_s",
            s.duplicate_window.as_secs(),
            &DUPLICATE_WINDOW_S_RANGE,
        );
        within(
            "saf.queue_max",
            count(s.saf.queue_max),
            &SAF_QUEUE_MAX_RANGE,
        );
        within(
            "saf.retry_min_ms",
            ms(s.saf.policy.retry_min),
            &SAF_RETRY_MIN_MS_RANGE,
        );
        within(
            "saf.retry_max_ms",
            ms(s.saf.policy.retry_max),
            &SAF_RETRY_MAX_MS_RANGE,
        );
        within(
            "saf.expiry_s",
            s.saf.policy.expiry.as_secs(),
            &SAF_EXPIRY_S_RANGE,
        );
        let attempts = u64::from(s.saf.policy.attempts_max);
        within("saf.max_attempts", attempts, &SAF_MAX_ATTEMPTS_RANGE);
        within(
            "saf.response_wait_ms",
            ms(s.saf.response_wait),
            &SAF_RESPONSE_WAIT_MS_RANGE,
        );
        for a in &self.acquirers {
            within(
                "connections_max",
                count(a.connections_max),
                &ACQUIRER_CONNECTIONS_MAX_RANGE,
            );
            within(
                "in_flight_max",
                count(a.in_flight_max),
                &ACQUIRER_IN_FLIGHT_MAX_RANGE,
            );
            within(
                "idle_timeout_s",
                a.idle_timeout.as_secs(),
                &ACQUIRER_IDLE_TIMEOUT_S_RANGE,
            );
            within(
                "frame_bytes_max",
                count(a.framing.frame_bytes_max),
                &FRAME_BYTES_MAX_RANGE,
            );
        }
        for i in &self.issuers {
            within(
                "connections",
                count(i.connections),
                &ISSUER_CONNECTIONS_RANGE,
            );
            within("timeout_ms", ms(i.timeout), &ISSUER_TIMEOUT_MS_RANGE);
            let echo = i.echo_interval.map_or(0, |d| d.as_secs());
            within("echo_interval_s", echo, &ISSUER_ECHO_INTERVAL_S_RANGE);
            within(
                "in_flight_max",
                count(i.in_flight_max),
                &ISSUER_IN_FLIGHT_MAX_RANGE,
            );
            within(
                "frame_bytes_max",
                count(i.framing.frame_bytes_max),
                &FRAME_BYTES_MAX_RANGE,
            );
            if let Some(r) = i.stand_in {
                within(
                    "stand_in.per_transaction_max",
                    r.per_transaction_max,
                    &STAND_IN_AMOUNT_RANGE,
                );
                within(
                    "stand_in.per_card_daily_amount",
                    r.per_card_daily_amount,
                    &STAND_IN_AMOUNT_RANGE,
                );
                let n = u64::from(r.per_card_daily_count);
                within(
                    "stand_in.per_card_daily_count",
                    n,
                    &STAND_IN_DAILY_COUNT_RANGE,
                );
            }
        }
        for r in &self.routes {
            if let Some(t) = r.timeout {
                within("route timeout_ms", ms(t), &ROUTE_TIMEOUT_MS_RANGE);
            }
        }
        if let Some(j) = &self.journal {
            within(
                "group_records_max",
                count(j.group_records_max),
                &JOURNAL_GROUP_RECORDS_MAX_RANGE,
            );
        }
    }
}
