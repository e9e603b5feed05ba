//! No accepted configuration panics: every numeric key of the switch's
//! configuration, drawn in range, at its bounds, just outside and far
//! outside (2^61, i64::MAX, negative), is accepted exactly when it lies in
//! its documented range; and configurations at the limits start for real
//! (listeners on 127.0.0.1:0, a journal in a temporary directory), answer
//! a request on an acquirer connection and shut down, with no task
//! panicking on the way.

mod support;

use std::cell::Cell;
use std::ops::RangeInclusive;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use cardswitch::journal::crypto::Keyring;
use cardswitch::node as server;
use cardswitch::node::config::*;
use cardswitch::node::hsm::*;

/// Where a key is written: the section it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Switch,
    Saf,
    Acquirer,
    AcquirerFraming,
    Issuer,
    IssuerFraming,
    StandIn,
    Route,
    Journal,
    Hsm,
}

/// Every numeric key and its range.
const KEYS: &[(Place, &str, RangeInclusive<u64>)] = &[
    (
        Place::Switch,
        "duplicate_window_s",
        DUPLICATE_WINDOW_S_RANGE,
    ),
    (Place::Saf, "queue_max", SAF_QUEUE_MAX_RANGE),
    (Place::Saf, "retry_min_ms", SAF_RETRY_MIN_MS_RANGE),
    (Place::Saf, "retry_max_ms", SAF_RETRY_MAX_MS_RANGE),
    (Place::Saf, "expiry_s", SAF_EXPIRY_S_RANGE),
    (Place::Saf, "max_attempts", SAF_MAX_ATTEMPTS_RANGE),
    (Place::Saf, "response_wait_ms", SAF_RESPONSE_WAIT_MS_RANGE),
    (
        Place::Acquirer,
        "connections_max",
        ACQUIRER_CONNECTIONS_MAX_RANGE,
    ),
    (
        Place::Acquirer,
        "in_flight_max",
        ACQUIRER_IN_FLIGHT_MAX_RANGE,
    ),
    (
        Place::Acquirer,
        "idle_timeout_s",
        ACQUIRER_IDLE_TIMEOUT_S_RANGE,
    ),
    (
        Place::AcquirerFraming,
        "frame_bytes_max",
        FRAME_BYTES_MAX_RANGE,
    ),
    (Place::Issuer, "connections", ISSUER_CONNECTIONS_RANGE),
    (Place::Issuer, "timeout_ms", ISSUER_TIMEOUT_MS_RANGE),
    (
        Place::Issuer,
        "echo_interval_s",
        ISSUER_ECHO_INTERVAL_S_RANGE,
    ),
    (Place::Issuer, "in_flight_max", ISSUER_IN_FLIGHT_MAX_RANGE),
    (
        Place::IssuerFraming,
        "frame_bytes_max",
        FRAME_BYTES_MAX_RANGE,
    ),
    (Place::StandIn, "per_transaction_max", STAND_IN_AMOUNT_RANGE),
    (
        Place::StandIn,
        "per_card_daily_count",
        STAND_IN_DAILY_COUNT_RANGE,
    ),
    (
        Place::StandIn,
        "per_card_daily_amount",
        STAND_IN_AMOUNT_RANGE,
    ),
    (Place::Route, "timeout_ms", ROUTE_TIMEOUT_MS_RANGE),
    (
        Place::Journal,
        "group_records_max",
        JOURNAL_GROUP_RECORDS_MAX_RANGE,
    ),
    (
        Place::Journal,
        "log_segment_mib",
        JOURNAL_LOG_SEGMENT_MIB_RANGE,
    ),
    (
        Place::Journal,
        "log_queue_records",
        JOURNAL_LOG_QUEUE_RECORDS_RANGE,
    ),
    (
        Place::Journal,
        "log_keep_fed_segments",
        JOURNAL_LOG_KEEP_FED_SEGMENTS_RANGE,
    ),
    (Place::Hsm, "connections", HSM_CONNECTIONS_RANGE),
    (Place::Hsm, "pipeline_depth", HSM_PIPELINE_DEPTH_RANGE),
    (Place::Hsm, "timeout_ms", HSM_TIMEOUT_MS_RANGE),
    (Place::Hsm, "health_interval_s", HSM_HEALTH_INTERVAL_S_RANGE),
    (
        Place::Hsm,
        "connect_timeout_ms",
        HSM_CONNECT_TIMEOUT_MS_RANGE,
    ),
    (
        Place::Hsm,
        "handshake_timeout_ms",
        HANDSHAKE_TIMEOUT_MS_RANGE,
    ),
];

/// Stand-in limits written when the case leaves one out (the three go
/// together).
const STAND_IN_FILL: [i64; 3] = [100, 3, 10_000];

/// One value per key in [`KEYS`]; `None` leaves the key out (its default).
type Values = Vec<Option<i64>>;

fn in_range(range: &RangeInclusive<u64>, v: i64) -> bool {
    u64::try_from(v).is_ok_and(|v| range.contains(&v))
}

fn bound(v: u64) -> i64 {
    i64::try_from(v).expect("ranges fit TOML integers")
}

/// Values for one key: mostly absent or in range, sometimes at a bound,
/// now and then just outside or far outside.
fn value(range: &RangeInclusive<u64>, out_of_range: bool) -> BoxedStrategy<Option<i64>> {
    let (min, max) = (bound(*range.start()), bound(*range.end()));
    let inside = prop_oneof![
        4 => Just(None),
        4 => (min..=max).prop_map(Some),
        1 => Just(Some(min)),
        1 => Just(Some(max)),
    ];
    if !out_of_range {
        return inside.boxed();
    }
    prop_oneof![
        40 => inside,
        1 => Just(Some(min - 1)),
        1 => Just(Some(max + 1)),
        1 => Just(Some(1 << 61)),
        1 => Just(Some(i64::MAX)),
        1 => any::<i64>().prop_map(Some),
    ]
    .boxed()
}

fn values(out_of_range: bool) -> impl Strategy<Value = Values> {
    KEYS.iter()
        .map(|(_, _, range)| value(range, out_of_range))
        .collect::<Vec<_>>()
}

/// The keys of one place as `key = value` lines.
fn lines(values: &Values, place: Place) -> Vec<String> {
    KEYS.iter()
        .zip(values)
        .filter(|((p, _, _), v)| *p == place && v.is_some())
        .map(|((_, key, _), v)| format!("{key} = {}", v.expect("some")))
        .collect()
}

fn framing(values: &Values, place: Place) -> String {
    let mut parts = vec!["length = \"ascii4\"".to_string()];
    parts.extend(lines(values, place));
    format!("framing = {{ {} }}", parts.join(", "))
}

/// The stand-in limits as written (each left-out one filled in).
fn stand_in(values: &Values) -> [i64; 3] {
    let mut limits = STAND_IN_FILL;
    let written = KEYS
        .iter()
        .zip(values)
        .filter(|((p, _, _), _)| *p == Place::StandIn);
    for (slot, (_, v)) in limits.iter_mut().zip(written) {
        if let Some(v) = v {
            *slot = *v;
        }
    }
    limits
}

/// A whole configuration with `values` written, its issuer at `issuer`
/// and its HSM at `hsm`.
fn config_text(values: &Values, issuer: &str, hsm: &str) -> String {
    let [per_tx, count, daily] = stand_in(values);
    let block = |place| lines(values, place).join("\n");
    format!(
        r#"[switch]
institution_id = "123456"
{switch}

[switch.saf]
{saf}

[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
{acquirer_framing}
{acquirer}

[[issuer]]
name = "issuer-a"
addresses = ["{issuer}"]
spec = "iso87-ascii"
{issuer_framing}
stand_in = {{ per_transaction_max = {per_tx}, per_card_daily_count = {count}, per_card_daily_amount = {daily} }}
{issuer_keys}

[[route]]
bins = ["476173"]
issuer = "issuer-a"
{route}

[journal]
path = "journal.db"
key_file = "keys.toml"
{journal}

[hsm]
address = "{hsm}"
{hsm_keys}
"#,
        switch = block(Place::Switch),
        saf = block(Place::Saf),
        acquirer_framing = framing(values, Place::AcquirerFraming),
        acquirer = block(Place::Acquirer),
        issuer_framing = framing(values, Place::IssuerFraming),
        issuer_keys = block(Place::Issuer),
        route = block(Place::Route),
        journal = block(Place::Journal),
        hsm_keys = block(Place::Hsm),
    )
}

/// Whether the checks that join two keys hold (the first retry no later
/// than the longest; a transaction no more than the day's amount).
fn joint_checks_hold(values: &Values) -> bool {
    let effective = |key: &str, default: u64| {
        KEYS.iter()
            .zip(values)
            .find(|((p, k, _), _)| *p == Place::Saf && *k == key)
            .and_then(|(_, v)| *v)
            .map_or(default as i64, |v| v)
    };
    let retry_min = effective("retry_min_ms", SAF_RETRY_MIN_MS_DEFAULT);
    let retry_max = effective("retry_max_ms", SAF_RETRY_MAX_MS_DEFAULT);
    let [per_tx, _, daily] = stand_in(values);
    retry_min <= retry_max && per_tx <= daily
}

/// Whether every written value lies in its range.
fn all_in_range(values: &Values) -> bool {
    KEYS.iter()
        .zip(values)
        .all(|((_, _, range), v)| v.is_none_or(|v| in_range(range, v)))
}

/// Makes the joint checks hold by raising the larger side.
fn repaired(mut values: Values) -> Values {
    let index = |place: Place, key: &str| {
        KEYS.iter()
            .position(|(p, k, _)| *p == place && *k == key)
            .expect("key")
    };
    let (min, max) = (
        index(Place::Saf, "retry_min_ms"),
        index(Place::Saf, "retry_max_ms"),
    );
    let retry_min = values[min].unwrap_or(SAF_RETRY_MIN_MS_DEFAULT as i64);
    let retry_max = values[max].unwrap_or(SAF_RETRY_MAX_MS_DEFAULT as i64);
    if retry_min > retry_max {
        values[max] = Some(retry_min);
    }
    let [per_tx, _, daily] = stand_in(&values);
    if per_tx > daily {
        values[index(Place::StandIn, "per_card_daily_amount")] = Some(per_tx);
    }
    values
}

thread_local! {
    /// Panics on this thread: a current-thread runtime runs the switch's
    /// tasks on the test's own thread.
    static PANICS_HERE: Cell<usize> = const { Cell::new(0) };
}
/// Panics on the switch's own threads (the journal writer).
static PANICS_ELSEWHERE: AtomicUsize = AtomicUsize::new(0);

/// Counts panics (a task's panic does not fail a test by itself).
fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS_HERE.with(|n| n.set(n.get() + 1));
            if std::thread::current().name() == Some("journal-writer") {
                PANICS_ELSEWHERE.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

fn panics() -> (usize, usize) {
    (
        PANICS_HERE.with(Cell::get),
        PANICS_ELSEWHERE.load(Ordering::SeqCst),
    )
}

/// An issuer that accepts connections and holds them, saying nothing.
async fn silent_issuer(shutdown: CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => match r {
                    Ok((s, _)) => held.push(s),
                    Err(_) => break,
                },
            }
        }
    });
    addr
}

/// An HSM that answers NC (the start-up check and health checks) on
/// every connection, with the default header.
async fn diagnostics_only_hsm(shutdown: CancellationToken) -> String {
    use cardswitch::hsm::command::{ErrorCode, Response, ResponseBody, frame};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let header = HSM_HEADER_DEFAULT.as_bytes();
    let mut answer = Vec::new();
    let mut nd = Response::error(b"NC", ErrorCode::NoError).expect("NC");
    nd.body = ResponseBody::Diagnostics {
        lmk_check: "0123456789ABCDEF".into(),
        firmware: "1500-0901".into(),
    };
    let mut message = Vec::new();
    nd.encode(&mut message).expect("encode");
    frame::encode(header, &message, &mut answer).expect("frame");
    tokio::spawn(async move {
        loop {
            let mut conn = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => match r { Ok((s, _)) => s, Err(_) => break },
            };
            let (answer, stop) = (answer.clone(), shutdown.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 512];
                loop {
                    while let Ok(Some((_, used))) = frame::decode(&buf, header.len()) {
                        buf.drain(..used);
                        if conn.write_all(&answer).await.is_err() {
                            return;
                        }
                    }
                    let n = tokio::select! {
                        _ = stop.cancelled() => return,
                        n = conn.read(&mut chunk) => n,
                    };
                    match n {
                        Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                }
            });
        }
    });
    addr
}

/// A request whose bitmap cannot be read: the switch answers it with a
/// format-error reject (0110) from the acquirer connection's task.
const UNREADABLE: &[u8] = b"00080100ZZZZ";

/// The length of the reject [`UNREADABLE`] gets (without its length
/// header).
fn reject_bytes() -> i64 {
    let spec = cardswitch::message::Spec::resolve("iso87-ascii").expect("spec");
    let reject = cardswitch::message::response_codes::format_error_reject(
        &spec,
        &bytes::Bytes::from_static(&UNREADABLE[4..]),
    )
    .expect("a reject");
    reject.len() as i64
}

/// Sends [`UNREADABLE`] and reads what comes back (empty: closed).
async fn one_exchange(addr: std::net::SocketAddr) -> Vec<u8> {
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    conn.write_all(UNREADABLE).await.expect("write");
    let mut reply = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut reply))
        .await
        .expect("an answer or a close within 10 s")
        .unwrap_or(0);
    reply.truncate(n);
    reply
}

/// Starts the switch on `values`, exchanges one request, shuts down.
fn start_once(values: &Values) -> Result<(), TestCaseError> {
    let dir = support::certs::temp_dir("limits");
    let keys = Keyring::generate_file_text("k1").expect("key text");
    std::fs::write(dir.join("keys.toml"), keys.as_bytes()).expect("keys");
    // A key file must be its owner's only, or the switch refuses it.
    std::fs::set_permissions(
        dir.join("keys.toml"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod keys");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let before = panics();
    let reply = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let issuer = silent_issuer(shutdown.clone()).await;
        let path = dir.join("switch.toml");
        let hsm = diagnostics_only_hsm(shutdown.clone()).await;
        std::fs::write(&path, config_text(values, &issuer, &hsm)).expect("config");
        let config = SwitchConfig::load(&path).expect("in range: accepted");
        let running = server::start(&config, shutdown.clone())
            .await
            .expect("starts");
        let reply = one_exchange(running.acquirers[0].1).await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), running.stopped())
            .await
            .expect("stops within 20 s");
        reply
    });
    drop(runtime);
    prop_assert_eq!(panics(), before, "a task panicked");
    // A frame limit below the request's 8 bytes, or below its reject's,
    // closes the connection (the reject could never be sent); otherwise
    // the reject comes back.
    let frame_max = KEYS
        .iter()
        .zip(values)
        .find(|((p, _, _), _)| *p == Place::AcquirerFraming)
        .and_then(|(_, v)| *v);
    if frame_max.is_some_and(|m| m < reject_bytes()) {
        prop_assert!(reply.is_empty(), "{:?}", String::from_utf8_lossy(&reply));
    } else {
        prop_assert!(
            reply.starts_with(b"0"),
            "{:?}",
            String::from_utf8_lossy(&reply)
        );
        prop_assert_eq!(&reply[4..8], b"0110");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Accepted exactly when every value is in its range (and the joint
    /// checks hold); a refusal names a key, its value and the range.
    #[test]
    fn a_configuration_is_accepted_exactly_when_every_value_is_in_range(values in values(true)) {
        let text = config_text(&values, "127.0.0.1:9101", "127.0.0.1:1500");
        let result = SwitchConfig::from_toml(&text, "x.toml");
        let expected = all_in_range(&values) && joint_checks_hold(&values);
        match result {
            Ok(config) => {
                prop_assert!(expected, "accepted out of range:\n{}", text);
                config.assert_within_limits();
            }
            Err(e) => {
                prop_assert!(!expected, "refused in range: {}\n{}", e, text);
                let shown = e.to_string();
                // Out of range (and no joint check failing first): the
                // refusal names the range.
                if !all_in_range(&values) && joint_checks_hold(&values) {
                    prop_assert!(shown.starts_with("x.toml:"), "{}", shown);
                    prop_assert!(shown.contains(" is out of range "), "{}", shown);
                }
            }
        }
    }
}

proptest! {
    // Each case starts the switch (about a tenth of a second): few cases.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn accepted_configurations_start_answer_and_stop(values in values(false)) {
        count_panics();
        start_once(&repaired(values))?;
    }
}

/// Regression (CI of 9a7622f): a frame limit that admits the request but
/// not its reject left the sender waiting for an answer forever; the
/// connection now closes. Just at the reject's length, the reject comes
/// back.
#[test]
fn a_reject_beyond_the_frame_limit_closes_the_connection() {
    count_panics();
    let index = KEYS
        .iter()
        .position(|(p, _, _)| *p == Place::AcquirerFraming)
        .expect("key");
    for limit in [8, reject_bytes() - 1, reject_bytes()] {
        let mut values: Values = vec![None; KEYS.len()];
        values[index] = Some(limit);
        start_once(&values).unwrap_or_else(|e| panic!("frame limit {limit}: {e}"));
    }
}

/// The largest value of every key at once: the costliest configuration
/// that is accepted still starts.
#[test]
fn every_key_at_its_maximum_starts() {
    count_panics();
    let values: Values = KEYS.iter().map(|(_, _, r)| Some(bound(*r.end()))).collect();
    start_once(&values).expect("starts at the maxima");
}

/// A group size the configuration would refuse is refused by the journal
/// writer too, at its start rather than in its thread.
#[test]
#[should_panic(expected = "a group holds 1 to 65536 records")]
fn the_journal_writer_refuses_a_group_beyond_its_queue() {
    struct Nothing;
    impl cardswitch::journal::JournalStore for Nothing {
        fn append(
            &mut self,
            _: &[cardswitch::journal::Record],
        ) -> Result<(), cardswitch::journal::JournalError> {
            Ok(())
        }
        fn recover(
            &mut self,
        ) -> Result<cardswitch::journal::Recovery, cardswitch::journal::JournalError> {
            Ok(cardswitch::journal::Recovery::default())
        }
    }
    let _ = cardswitch::journal::Journal::start(Box::new(Nothing), usize::MAX >> 3);
}

#[test]
fn the_ranges_hold_their_defaults() {
    let defaults = [
        (DUPLICATE_WINDOW_S_DEFAULT, DUPLICATE_WINDOW_S_RANGE),
        (SAF_QUEUE_MAX_DEFAULT, SAF_QUEUE_MAX_RANGE),
        (SAF_RETRY_MIN_MS_DEFAULT, SAF_RETRY_MIN_MS_RANGE),
        (SAF_RETRY_MAX_MS_DEFAULT, SAF_RETRY_MAX_MS_RANGE),
        (SAF_RESPONSE_WAIT_MS_DEFAULT, SAF_RESPONSE_WAIT_MS_RANGE),
        (SAF_EXPIRY_S_DEFAULT, SAF_EXPIRY_S_RANGE),
        (SAF_MAX_ATTEMPTS_DEFAULT, SAF_MAX_ATTEMPTS_RANGE),
        (
            ACQUIRER_CONNECTIONS_MAX_DEFAULT,
            ACQUIRER_CONNECTIONS_MAX_RANGE,
        ),
        (ACQUIRER_IN_FLIGHT_MAX_DEFAULT, ACQUIRER_IN_FLIGHT_MAX_RANGE),
        (
            ACQUIRER_IDLE_TIMEOUT_S_DEFAULT,
            ACQUIRER_IDLE_TIMEOUT_S_RANGE,
        ),
        (ISSUER_CONNECTIONS_DEFAULT, ISSUER_CONNECTIONS_RANGE),
        (ISSUER_TIMEOUT_MS_DEFAULT, ISSUER_TIMEOUT_MS_RANGE),
        (ISSUER_ECHO_INTERVAL_S_DEFAULT, ISSUER_ECHO_INTERVAL_S_RANGE),
        (ISSUER_IN_FLIGHT_MAX_DEFAULT, ISSUER_IN_FLIGHT_MAX_RANGE),
        (HSM_CONNECTIONS_DEFAULT, HSM_CONNECTIONS_RANGE),
        (HSM_PIPELINE_DEPTH_DEFAULT, HSM_PIPELINE_DEPTH_RANGE),
        (HSM_TIMEOUT_MS_DEFAULT, HSM_TIMEOUT_MS_RANGE),
        (HSM_HEALTH_INTERVAL_S_DEFAULT, HSM_HEALTH_INTERVAL_S_RANGE),
        (HSM_CONNECT_TIMEOUT_MS_DEFAULT, HSM_CONNECT_TIMEOUT_MS_RANGE),
    ];
    for (default, range) in defaults {
        assert!(range.contains(&default), "{default} outside {range:?}");
    }
}
