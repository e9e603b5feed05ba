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

/// A value as the configuration holds it, its name and its range.
type Limit = (&'static str, u64, RangeInclusive<u64>);

fn switch_limits(s: &SwitchSettings) -> Vec<Limit> {
    let p = &s.saf.policy;
    vec![
        (
            "duplicate_window_s",
            s.duplicate_window.as_secs(),
            DUPLICATE_WINDOW_S_RANGE,
        ),
        ("saf.queue_max", count(s.saf.queue_max), SAF_QUEUE_MAX_RANGE),
        ("saf.retry_min_ms", ms(p.retry_min), SAF_RETRY_MIN_MS_RANGE),
        ("saf.retry_max_ms", ms(p.retry_max), SAF_RETRY_MAX_MS_RANGE),
        ("saf.expiry_s", p.expiry.as_secs(), SAF_EXPIRY_S_RANGE),
        (
            "saf.max_attempts",
            u64::from(p.attempts_max),
            SAF_MAX_ATTEMPTS_RANGE,
        ),
        (
            "saf.response_wait_ms",
            ms(s.saf.response_wait),
            SAF_RESPONSE_WAIT_MS_RANGE,
        ),
    ]
}

fn acquirer_limits(a: &AcquirerConfig) -> Vec<Limit> {
    vec![
        (
            "connections_max",
            count(a.connections_max),
            ACQUIRER_CONNECTIONS_MAX_RANGE,
        ),
        (
            "in_flight_max",
            count(a.in_flight_max),
            ACQUIRER_IN_FLIGHT_MAX_RANGE,
        ),
        (
            "idle_timeout_s",
            a.idle_timeout.as_secs(),
            ACQUIRER_IDLE_TIMEOUT_S_RANGE,
        ),
        (
            "frame_bytes_max",
            count(a.framing.frame_bytes_max),
            FRAME_BYTES_MAX_RANGE,
        ),
        (
            "handshake_timeout_ms",
            ms(a.link.handshake_timeout),
            HANDSHAKE_TIMEOUT_MS_RANGE,
        ),
        (
            "first_frame_timeout_ms",
            ms(a.link.first_frame_timeout),
            ACQUIRER_FIRST_FRAME_TIMEOUT_MS_RANGE,
        ),
        (
            "connections_per_peer_max",
            count(a.link.connections_per_peer_max),
            ACQUIRER_CONNECTIONS_PER_PEER_MAX_RANGE,
        ),
        (
            "listen_backlog",
            u64::from(a.link.listen_backlog),
            ACQUIRER_LISTEN_BACKLOG_RANGE,
        ),
    ]
}

fn issuer_limits(i: &IssuerConfig) -> Vec<Limit> {
    let echo_s = i.echo_interval.map_or(0, |d| d.as_secs());
    let mut limits = vec![
        (
            "connections",
            count(i.connections),
            ISSUER_CONNECTIONS_RANGE,
        ),
        ("timeout_ms", ms(i.timeout), ISSUER_TIMEOUT_MS_RANGE),
        ("echo_interval_s", echo_s, ISSUER_ECHO_INTERVAL_S_RANGE),
        (
            "handshake_timeout_ms",
            ms(i.handshake_timeout),
            HANDSHAKE_TIMEOUT_MS_RANGE,
        ),
        (
            "in_flight_max",
            count(i.in_flight_max),
            ISSUER_IN_FLIGHT_MAX_RANGE,
        ),
        (
            "frame_bytes_max",
            count(i.framing.frame_bytes_max),
            FRAME_BYTES_MAX_RANGE,
        ),
    ];
    if let Some(r) = i.stand_in {
        let n = u64::from(r.per_card_daily_count);
        limits.extend([
            (
                "stand_in.per_transaction_max",
                r.per_transaction_max,
                STAND_IN_AMOUNT_RANGE,
            ),
            (
                "stand_in.per_card_daily_count",
                n,
                STAND_IN_DAILY_COUNT_RANGE,
            ),
            (
                "stand_in.per_card_daily_amount",
                r.per_card_daily_amount,
                STAND_IN_AMOUNT_RANGE,
            ),
        ]);
    }
    limits
}

fn hsm_limits(h: &crate::node::hsm::HsmSettings) -> Vec<Limit> {
    use crate::node::hsm::*;
    let (min, max) = HSM_HEADER_BYTES_RANGE.into_inner();
    let header_range = count(min)..=count(max);
    vec![
        (
            "hsm connections",
            count(h.connections),
            HSM_CONNECTIONS_RANGE,
        ),
        (
            "hsm pipeline_depth",
            count(h.pipeline_depth),
            HSM_PIPELINE_DEPTH_RANGE,
        ),
        ("hsm timeout_ms", ms(h.timeout), HSM_TIMEOUT_MS_RANGE),
        (
            "hsm health_interval_s",
            h.health_interval.as_secs(),
            HSM_HEALTH_INTERVAL_S_RANGE,
        ),
        (
            "hsm connect_timeout_ms",
            ms(h.connect_timeout),
            HSM_CONNECT_TIMEOUT_MS_RANGE,
        ),
        (
            "hsm handshake_timeout_ms",
            ms(h.handshake_timeout),
            HANDSHAKE_TIMEOUT_MS_RANGE,
        ),
        ("hsm header bytes", count(h.header.len()), header_range),
    ]
}

impl SwitchConfig {
    /// Panics when a value is outside its range (a programming error: a
    /// loaded configuration never is).
    pub fn assert_within_limits(&self) {
        let mut limits = switch_limits(&self.switch);
        limits.extend(self.acquirers.iter().flat_map(acquirer_limits));
        limits.extend(self.issuers.iter().flat_map(issuer_limits));
        let routes = self.routes.iter().filter_map(|r| r.timeout);
        limits.extend(routes.map(|t| ("route timeout_ms", ms(t), ROUTE_TIMEOUT_MS_RANGE)));
        if let Some(j) = &self.journal {
            let n = count(j.group_records_max);
            limits.push(("group_records_max", n, JOURNAL_GROUP_RECORDS_MAX_RANGE));
        }
        limits.extend(self.hsm.iter().flat_map(hsm_limits));
        for (what, value, range) in limits {
            within(what, value, &range);
        }
    }
}
