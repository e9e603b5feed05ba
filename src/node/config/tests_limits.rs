//! Every numeric key refuses a value outside its range with the file, the
//! line, the key and the range, and accepts both ends of it.

use std::ops::RangeInclusive;

use super::*;

const BASE: &str = r#"[switch]
institution_id = "123456"
#SWITCH

[[acquirer]]
name = "pos"
listen = "127.0.0.1:8583"
spec = "iso87-ascii"
framing = { length = "ascii4" }
#ACQUIRER

[[issuer]]
name = "issuer-a"
addresses = ["127.0.0.1:9101"]
spec = "iso87-ascii"
framing = { length = "ascii4" }
#ISSUER

[[route]]
bins = ["476173"]
issuer = "issuer-a"
#ROUTE

[journal]
path = "journal.db"
#JOURNAL

[hsm]
address = "127.0.0.1:1500"
#HSM
"#;

/// A numeric key: how it is written at a value, its section and range.
struct Key {
    name: &'static str,
    section: &'static str,
    range: RangeInclusive<u64>,
    /// The marker line it replaces and the line it is written as (`V`
    /// stands for the value).
    marker: &'static str,
    line: &'static str,
}

fn keys() -> Vec<Key> {
    let key = |name, section, range, marker, line| Key {
        name,
        section,
        range,
        marker,
        line,
    };
    let mut keys = vec![
        key(
            "duplicate_window_s",
            "switch",
            DUPLICATE_WINDOW_S_RANGE,
            "#SWITCH",
            "duplicate_window_s = V",
        ),
        key(
            "queue_max",
            "switch.saf",
            SAF_QUEUE_MAX_RANGE,
            "#SWITCH",
            "saf = { queue_max = V }",
        ),
        key(
            "retry_min_ms",
            "switch.saf",
            SAF_RETRY_MIN_MS_RANGE,
            "#SWITCH",
            "saf = { retry_min_ms = V, retry_max_ms = 86400000 }",
        ),
        key(
            "retry_max_ms",
            "switch.saf",
            SAF_RETRY_MAX_MS_RANGE,
            "#SWITCH",
            "saf = { retry_min_ms = 1, retry_max_ms = V }",
        ),
        key(
            "expiry_s",
            "switch.saf",
            SAF_EXPIRY_S_RANGE,
            "#SWITCH",
            "saf = { expiry_s = V }",
        ),
        key(
            "max_attempts",
            "switch.saf",
            SAF_MAX_ATTEMPTS_RANGE,
            "#SWITCH",
            "saf = { max_attempts = V }",
        ),
        key(
            "response_wait_ms",
            "switch.saf",
            SAF_RESPONSE_WAIT_MS_RANGE,
            "#SWITCH",
            "saf = { response_wait_ms = V }",
        ),
        key(
            "connections_max",
            "acquirer 'pos'",
            ACQUIRER_CONNECTIONS_MAX_RANGE,
            "#ACQUIRER",
            "connections_max = V",
        ),
        key(
            "in_flight_max",
            "acquirer 'pos'",
            ACQUIRER_IN_FLIGHT_MAX_RANGE,
            "#ACQUIRER",
            "in_flight_max = V",
        ),
        key(
            "idle_timeout_s",
            "acquirer 'pos'",
            ACQUIRER_IDLE_TIMEOUT_S_RANGE,
            "#ACQUIRER",
            "idle_timeout_s = V",
        ),
        key(
            "framing.frame_bytes_max",
            "acquirer 'pos'",
            FRAME_BYTES_MAX_RANGE,
            "#ACQUIRER",
            "framing = { length = \"ascii4\", frame_bytes_max = V }",
        ),
        key(
            "connections",
            "issuer 'issuer-a'",
            ISSUER_CONNECTIONS_RANGE,
            "#ISSUER",
            "connections = V",
        ),
        key(
            "timeout_ms",
            "issuer 'issuer-a'",
            ISSUER_TIMEOUT_MS_RANGE,
            "#ISSUER",
            "timeout_ms = V",
        ),
        key(
            "echo_interval_s",
            "issuer 'issuer-a'",
            ISSUER_ECHO_INTERVAL_S_RANGE,
            "#ISSUER",
            "echo_interval_s = V",
        ),
        key(
            "in_flight_max",
            "issuer 'issuer-a'",
            ISSUER_IN_FLIGHT_MAX_RANGE,
            "#ISSUER",
            "in_flight_max = V",
        ),
        key(
            "framing.frame_bytes_max",
            "issuer 'issuer-a'",
            FRAME_BYTES_MAX_RANGE,
            "#ISSUER",
            "framing = { length = \"ascii4\", frame_bytes_max = V }",
        ),
        key(
            "stand_in.per_transaction_max",
            "issuer 'issuer-a'",
            STAND_IN_AMOUNT_RANGE,
            "#ISSUER",
            "stand_in = { per_transaction_max = V, per_card_daily_count = 1, per_card_daily_amount = 999999999999 }",
        ),
        key(
            "stand_in.per_card_daily_count",
            "issuer 'issuer-a'",
            STAND_IN_DAILY_COUNT_RANGE,
            "#ISSUER",
            "stand_in = { per_transaction_max = 1, per_card_daily_count = V, per_card_daily_amount = 999999999999 }",
        ),
        key(
            "stand_in.per_card_daily_amount",
            "issuer 'issuer-a'",
            STAND_IN_AMOUNT_RANGE,
            "#ISSUER",
            "stand_in = { per_transaction_max = 1, per_card_daily_count = 1, per_card_daily_amount = V }",
        ),
        key(
            "timeout_ms",
            "route 1",
            ROUTE_TIMEOUT_MS_RANGE,
            "#ROUTE",
            "timeout_ms = V",
        ),
        key(
            "group_records_max",
            "journal",
            JOURNAL_GROUP_RECORDS_MAX_RANGE,
            "#JOURNAL",
            "group_records_max = V",
        ),
        key(
            "log_segment_mib",
            "journal",
            JOURNAL_LOG_SEGMENT_MIB_RANGE,
            "#JOURNAL",
            "log_segment_mib = V",
        ),
        key(
            "log_queue_records",
            "journal",
            JOURNAL_LOG_QUEUE_RECORDS_RANGE,
            "#JOURNAL",
            "log_queue_records = V",
        ),
        key(
            "log_keep_fed_segments",
            "journal",
            JOURNAL_LOG_KEEP_FED_SEGMENTS_RANGE,
            "#JOURNAL",
            "log_keep_fed_segments = V",
        ),
    ];
    keys.extend(hsm_keys());
    keys
}

/// `[hsm]`'s numeric keys.
fn hsm_keys() -> Vec<Key> {
    use crate::node::hsm::*;
    let key = |name, range, line| Key {
        name,
        section: "hsm",
        range,
        marker: "#HSM",
        line,
    };
    vec![
        key("connections", HSM_CONNECTIONS_RANGE, "connections = V"),
        key(
            "pipeline_depth",
            HSM_PIPELINE_DEPTH_RANGE,
            "pipeline_depth = V",
        ),
        key("timeout_ms", HSM_TIMEOUT_MS_RANGE, "timeout_ms = V"),
        key(
            "health_interval_s",
            HSM_HEALTH_INTERVAL_S_RANGE,
            "health_interval_s = V",
        ),
        key(
            "connect_timeout_ms",
            HSM_CONNECT_TIMEOUT_MS_RANGE,
            "connect_timeout_ms = V",
        ),
        key(
            "handshake_timeout_ms",
            HANDSHAKE_TIMEOUT_MS_RANGE,
            "handshake_timeout_ms = V",
        ),
    ]
}

/// The configuration with `key` written at `value`, and that key's line.
/// A framing limit replaces the `framing` line just above the marker.
fn with(key: &Key, value: &str) -> (String, usize) {
    let written = key.line.replace('V', value);
    let mut lines: Vec<String> = BASE.lines().map(str::to_string).collect();
    let marker = lines.iter().position(|l| l == key.marker).expect("marker");
    let at = if written.starts_with("framing") {
        lines[marker].clear();
        marker - 1
    } else {
        marker
    };
    lines[at] = written;
    (lines.join("\n"), at + 1)
}

fn load(text: &str) -> Result<SwitchConfig, ConfigError> {
    SwitchConfig::from_toml(text, "x.toml")
}

#[test]
fn every_default_is_within_its_range() {
    let c = load(&BASE.replace("#ROUTE", "")).expect("the base loads");
    let a = &c.acquirers[0];
    assert!(ACQUIRER_CONNECTIONS_MAX_RANGE.contains(&(a.connections_max as u64)));
    assert!(ACQUIRER_IN_FLIGHT_MAX_RANGE.contains(&(a.in_flight_max as u64)));
    let i = &c.issuers[0];
    assert!(ISSUER_CONNECTIONS_RANGE.contains(&(i.connections as u64)));
    assert!(ISSUER_IN_FLIGHT_MAX_RANGE.contains(&(i.in_flight_max as u64)));
    let j = c.journal.expect("journal");
    assert!(JOURNAL_GROUP_RECORDS_MAX_RANGE.contains(&(j.group_records_max as u64)));
    let log = j.log.expect("the journal log by default").limits;
    assert!(JOURNAL_LOG_SEGMENT_MIB_RANGE.contains(&(log.segment_bytes >> 20)));
    assert!(JOURNAL_LOG_QUEUE_RECORDS_RANGE.contains(&(log.queue_records as u64)));
    assert!(JOURNAL_LOG_KEEP_FED_SEGMENTS_RANGE.contains(&(log.keep_fed_segments as u64)));
    assert!(SAF_QUEUE_MAX_RANGE.contains(&(c.switch.saf.queue_max as u64)));
    let h = c.hsm.expect("hsm");
    assert!(crate::node::hsm::HSM_CONNECTIONS_RANGE.contains(&(h.connections as u64)));
    assert!(crate::node::hsm::HSM_PIPELINE_DEPTH_RANGE.contains(&(h.pipeline_depth as u64)));
    assert_eq!(h.header, b"0000");
}

#[test]
fn both_ends_of_every_range_are_accepted() {
    for key in keys() {
        for end in [key.range.start(), key.range.end()] {
            let (text, _) = with(&key, &end.to_string());
            if let Err(e) = load(&text) {
                panic!("{} {} = {end}: {e}\n{text}", key.section, key.name);
            }
        }
    }
}

#[test]
fn a_value_out_of_range_names_file_line_key_and_range() {
    for key in keys() {
        let (min, max) = (key.range.start(), key.range.end());
        let mut bad = vec![(max + 1).to_string(), (1u64 << 61).to_string(), "-1".into()];
        bad.push(i64::MAX.to_string());
        if *min > 0 {
            bad.push((min - 1).to_string());
        }
        for value in bad {
            let (text, line) = with(&key, &value);
            let err = load(&text).expect_err(&format!("{} = {value}", key.name));
            let want = format!(
                "x.toml:{line}: {}: {} = {value} is out of range {min}..={max}",
                key.section, key.name
            );
            assert_eq!(err.to_string(), want, "{text}");
            assert_eq!(err.line(), Some(line));
        }
    }
}

#[test]
fn the_brief_example_is_refused_as_written() {
    let key = keys()
        .into_iter()
        .find(|k| k.name == "connections_max")
        .expect("key");
    let (text, line) = with(&key, "2305843009213693952");
    assert_eq!(
        load(&text).expect_err("2^61").to_string(),
        format!(
            "x.toml:{line}: acquirer 'pos': connections_max = 2305843009213693952 is out of range 1..=100000"
        )
    );
}

#[test]
fn a_loaded_configuration_is_within_its_limits() {
    for key in keys() {
        for end in [key.range.start(), key.range.end()] {
            let (text, _) = with(&key, &end.to_string());
            load(&text).expect("in range").assert_within_limits();
        }
    }
}

#[test]
#[should_panic(expected = "connections_max = 2305843009213693952 is outside 1..=100000")]
fn a_configuration_built_out_of_range_fails_its_assertion() {
    let mut c = load(&BASE.replace("#ROUTE", "")).expect("the base loads");
    c.acquirers[0].connections_max = 1 << 61;
    c.assert_within_limits();
}

#[test]
fn an_issuer_has_at_most_64_addresses() {
    let list = |n: usize| {
        let a: Vec<String> = (0..n)
            .map(|p| format!("\"127.0.0.1:{}\"", 9000 + p))
            .collect();
        BASE.replace("#ROUTE", "")
            .replace("[\"127.0.0.1:9101\"]", &format!("[{}]", a.join(", ")))
    };
    load(&list(ISSUER_ADDRESSES_MAX)).expect("64 endpoints");
    let text = list(ISSUER_ADDRESSES_MAX + 1);
    let line = text
        .lines()
        .position(|l| l.starts_with("addresses"))
        .expect("line")
        + 1;
    assert_eq!(
        load(&text).expect_err("65 endpoints").to_string(),
        format!("x.toml:{line}: issuer 'issuer-a': addresses: 65 endpoints, at most 64")
    );
}
