//! The switch end to end, as processes on loopback: an acquirer client
//! (`cardswitch send`), the switch (`cardswitch run`) and issuer simulators.
//! Every flow: authorization and financial routing with dialect translation
//! both ways, no route, local network management, time-outs (late, never,
//! wrong STAN) answered 91 and reversed through store-and-forward, an issuer
//! answering twice, duplicates, advices, stand-in with its advice, and an
//! issuer link dropped mid-flight.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::certs::temp_dir;
use support::process::{Running, free_addr, run, start_listening, start_listening_n, wait_until};

/// An issuer simulator with its record file.
struct Sim {
    proc: Running,
    record: std::path::PathBuf,
}

fn sim(dir: &Path, name: &str, spec: &str, extra: &[&str]) -> Sim {
    sim_at(dir, name, spec, "127.0.0.1:0", extra)
}

fn sim_at(dir: &Path, name: &str, spec: &str, listen: &str, extra: &[&str]) -> Sim {
    let record = dir.join(format!("{name}.jsonl"));
    let rec = record.display().to_string();
    let mut args = vec![
        "issuer-sim",
        "--listen",
        listen,
        "--spec",
        spec,
        "--record",
        &rec,
    ];
    args.extend_from_slice(extra);
    Sim {
        proc: start_listening(&args),
        record,
    }
}

impl Sim {
    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("record json"))
            .collect()
    }
}

/// Writes the test switch's config for the given issuer addresses.
fn write_config(
    dir: &Path,
    issuer_a: &str,
    issuer_b: &str,
    issuer_a_extra: &str,
) -> std::path::PathBuf {
    write_config_timed(dir, issuer_a, issuer_b, issuer_a_extra, 700)
}

/// `write_config` with issuer-a's time-out given.
fn write_config_timed(
    dir: &Path,
    issuer_a: &str,
    issuer_b: &str,
    issuer_a_extra: &str,
    issuer_a_timeout_ms: u32,
) -> std::path::PathBuf {
    let config = format!(
        r#"
[switch]
institution_id = "99000000001"
[switch.saf]
queue_max = 10000
retry_min_ms = 50
retry_max_ms = 400
expiry_s = 60
max_attempts = 100

[[acquirer]]
name = "pos-binary"
listen = "127.0.0.1:0"
spec = "iso87-binary"
framing = {{ length = "binary2", tpdu = true }}

[[acquirer]]
name = "host-ascii"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = {{ length = "ascii4" }}

[[issuer]]
name = "issuer-a"
addresses = ["{issuer_a}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
connections = 2
timeout_ms = {issuer_a_timeout_ms}
echo_interval_s = 1
{issuer_a_extra}

[[issuer]]
name = "issuer-b"
addresses = ["{issuer_b}"]
spec = "iso93-ascii"
framing = {{ length = "binary2" }}
timeout_ms = 700

[[route]]
bins = ["476173"]
issuer = "issuer-a"

[[route]]
bin_range = {{ from = "545400", to = "545499" }}
issuer = "issuer-b"
"#
    );
    let path = dir.join("switch.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

/// Starts the switch on a config whose issuer addresses are given.
fn switch(
    dir: &Path,
    issuer_a: &str,
    issuer_b: &str,
    issuer_a_extra: &str,
) -> (Running, String, String) {
    switch_timed(dir, issuer_a, issuer_b, issuer_a_extra, 700)
}

/// `switch` with issuer-a's time-out given.
fn switch_timed(
    dir: &Path,
    issuer_a: &str,
    issuer_b: &str,
    issuer_a_extra: &str,
    issuer_a_timeout_ms: u32,
) -> (Running, String, String) {
    let p = write_config_timed(dir, issuer_a, issuer_b, issuer_a_extra, issuer_a_timeout_ms)
        .display()
        .to_string();
    let (proc, addrs) = start_listening_n(&["run", "--config", &p], 2);
    (proc, addrs[0].clone(), addrs[1].clone())
}

fn auth(mti: &str, pan: &str, stan: &str, amount: u64) -> Value {
    json!({"mti": mti, "fields": {
        "2": pan, "3": "000000", "4": format!("{amount:012}"), "7": "1123143005",
        "11": stan, "12": "143005", "13": "1123", "14": "2812", "22": "051",
        "32": "1234567", "37": format!("5327{stan}00"), "41": "TERM0001",
        "42": "MERCHANT0000001", "49": "840"
    }})
}

/// Sends messages to an acquirer port and returns the JSON responses.
fn send(addr: &str, spec: &str, link: &[&str], msgs: &[Value]) -> Vec<Value> {
    let (code, answers) = support::process::send_messages(addr, spec, link, 5, msgs);
    assert_eq!(code, 0, "send failed");
    answers
}

const BINARY: &[&str] = &["--framing", "binary2", "--tpdu"];
const ASCII4: &[&str] = &["--framing", "ascii4"];

fn pan_a() -> &'static str {
    "4761739001010119"
}

fn pan_b() -> &'static str {
    "5454000000000000"
}

#[test]
fn flows_route_translate_and_restore() {
    let dir = temp_dir("switch-flows");
    let a = sim(&dir, "a", "iso87-ascii", &["--approve-limit", "50000"]);
    let b = sim(&dir, "b", "iso93-ascii", &["--approve-limit", "50000"]);
    let (_sw, pos, host) = switch(&dir, &a.proc.addr, &b.proc.addr, "");

    // Binary acquirer -> ASCII 1987 issuer: approved, acquirer fields restored.
    let r = send(
        &pos,
        "iso87-binary",
        BINARY,
        &[auth("0100", pan_a(), "000101", 1_000)],
    );
    assert_eq!(r[0]["mti"], "0110");
    assert_eq!(r[0]["fields"]["39"], "00");
    assert_eq!(r[0]["fields"]["11"], "000101", "acquirer STAN restored");
    assert_eq!(r[0]["fields"]["37"], "532700010100", "RRN restored");
    assert_eq!(r[0]["fields"]["41"], "TERM0001");
    assert!(
        r[0]["fields"].get("33").is_none(),
        "switch DE33 not leaked back"
    );
    let rec = a.records();
    assert_eq!(rec.len(), 1);
    assert_ne!(rec[0]["stan"], "000101", "the switch assigns its own STAN");

    // Over the limit: the issuer's 51 comes back.
    let r = send(
        &pos,
        "iso87-binary",
        BINARY,
        &[auth("0200", pan_a(), "000102", 60_000)],
    );
    assert_eq!(
        (r[0]["mti"].as_str(), r[0]["fields"]["39"].as_str()),
        (Some("0210"), Some("51"))
    );

    // ASCII acquirer -> 1993 issuer and back: action codes become response codes.
    let r = send(
        &host,
        "iso87-ascii",
        ASCII4,
        &[
            auth("0100", pan_b(), "000103", 2_000),
            auth("0100", pan_b(), "000104", 90_000),
        ],
    );
    assert_eq!(r[0]["fields"]["39"], "00", "{}", r[0]);
    assert_eq!(r[0]["mti"], "0110");
    assert_eq!(r[0]["fields"]["12"], "143005");
    assert_eq!(r[0]["fields"]["13"], "1123");
    assert_eq!(r[1]["fields"]["39"], "51");
    let rec_b = b.records();
    assert_eq!(rec_b.len(), 1);
    assert_eq!(rec_b[0]["mti"], "1100", "the 1993 issuer got a 1100");

    // No route: 15. Network management: answered by the switch.
    let r = send(
        &host,
        "iso87-ascii",
        ASCII4,
        &[auth("0100", "6011000000000004", "000105", 100)],
    );
    assert_eq!(r[0]["fields"]["39"], "15");
    let echo = json!({"mti": "0800", "fields": {"7": "1123143005", "11": "000106", "70": "301"}});
    let r = send(&host, "iso87-ascii", ASCII4, &[echo]);
    assert_eq!(
        (r[0]["mti"].as_str(), r[0]["fields"]["39"].as_str()),
        (Some("0810"), Some("00"))
    );
}

#[test]
fn duplicates_and_repeats_are_never_forwarded_twice() {
    let dir = temp_dir("switch-dups");
    let a = sim(&dir, "a", "iso87-ascii", &["--delay-ms", "200"]);
    let b = sim(&dir, "b", "iso93-ascii", &[]);
    let (_sw, pos, _) = switch(&dir, &a.proc.addr, &b.proc.addr, "");
    let original = auth("0100", pan_a(), "000201", 1_000);
    let mut repeat = original.clone();
    repeat["mti"] = json!("0101");
    // A copy sent while the original is in flight waits for its answer.
    let r = send(
        &pos,
        "iso87-binary",
        BINARY,
        std::slice::from_ref(&original),
    );
    let again = send(&pos, "iso87-binary", BINARY, &[original, repeat]);
    assert_eq!(r[0]["fields"]["39"], "00");
    for copy in &again {
        assert_eq!(copy["mti"], "0110");
        assert_eq!(
            copy["fields"]["38"], r[0]["fields"]["38"],
            "same authorization"
        );
    }
    assert_eq!(a.records().len(), 1, "forwarded once");
}

#[test]
fn advices_are_acknowledged_at_once_and_delivered() {
    let dir = temp_dir("switch-advice");
    let a = sim(&dir, "a", "iso87-ascii", &[]);
    let b = sim(&dir, "b", "iso93-ascii", &[]);
    let (_sw, pos, _) = switch(&dir, &a.proc.addr, &b.proc.addr, "");
    let r = send(
        &pos,
        "iso87-binary",
        BINARY,
        &[
            auth("0220", pan_a(), "000301", 1_500),
            auth("0420", pan_a(), "000302", 1_500),
        ],
    );
    assert_eq!(
        (r[0]["mti"].as_str(), r[0]["fields"]["39"].as_str()),
        (Some("0230"), Some("00"))
    );
    assert_eq!(
        (r[1]["mti"].as_str(), r[1]["fields"]["39"].as_str()),
        (Some("0430"), Some("00"))
    );
    wait_until("advices delivered", Duration::from_secs(5), || {
        a.records().len() == 2
    });
    let mtis: Vec<String> = a
        .records()
        .iter()
        .map(|r| r["mti"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        mtis.contains(&"0220".to_string()) && mtis.contains(&"0420".to_string()),
        "{mtis:?}"
    );
}

/// Time-outs of every kind: the acquirer gets 91 within the route time-out
/// and every approval the issuer gave is reversed.
#[test]
fn late_silent_and_wrong_stan_issuers_are_answered_91_and_reversed() {
    for (case, extra) in [
        ("late", vec!["--delay-ms", "1500"]),
        ("silent", vec!["--drop-rate", "1.0"]),
        ("wrong-stan", vec!["--wrong-stan-rate", "1.0"]),
    ] {
        let dir = temp_dir(&format!("switch-timeout-{case}"));
        let a = sim(&dir, "a", "iso87-ascii", &extra);
        let b = sim(&dir, "b", "iso93-ascii", &[]);
        let (_sw, pos, _) = switch(&dir, &a.proc.addr, &b.proc.addr, "");
        let started = std::time::Instant::now();
        let r = send(
            &pos,
            "iso87-binary",
            BINARY,
            &[auth("0100", pan_a(), "000401", 1_000)],
        );
        assert_eq!(r[0]["fields"]["39"], "91", "{case}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{case}: answered after {:?}",
            started.elapsed()
        );
        // The issuer approved (it records before answering); the reversal follows.
        wait_until(
            &format!("{case}: reversal delivered"),
            Duration::from_secs(10),
            || {
                a.records()
                    .iter()
                    .any(|r| r["mti"] == "0420" || r["mti"] == "0421")
            },
        );
        let recs = a.records();
        let approvals = recs.iter().filter(|r| r["mti"] == "0100").count();
        assert_eq!(approvals, 1, "{case}: {recs:?}");
    }
}

#[test]
fn an_issuer_answering_twice_is_matched_once() {
    let dir = temp_dir("switch-twice");
    let a = sim(&dir, "a", "iso87-ascii", &["--answer-twice-rate", "1.0"]);
    let b = sim(&dir, "b", "iso93-ascii", &[]);
    let (_sw, pos, _) = switch(&dir, &a.proc.addr, &b.proc.addr, "");
    let msgs: Vec<Value> = (0..5)
        .map(|i| auth("0100", pan_a(), &format!("00050{i}"), 1_000))
        .collect();
    let r = send(&pos, "iso87-binary", BINARY, &msgs);
    assert_eq!(r.len(), 5);
    for (i, resp) in r.iter().enumerate() {
        assert_eq!(resp["fields"]["11"], format!("00050{i}"));
        assert_eq!(resp["fields"]["39"], "00");
    }
}

#[test]
fn stand_in_when_the_issuer_is_down_then_advice_when_back() {
    let dir = temp_dir("switch-stip");
    let a_addr = free_addr();
    let b = sim(&dir, "b", "iso93-ascii", &[]);
    let stip = "stand_in = { per_transaction_max = 5000, per_card_daily_count = 2, per_card_daily_amount = 8000 }";
    let (_sw, pos, _) = switch(&dir, &a_addr, &b.proc.addr, stip);
    let r = send(
        &pos,
        "iso87-binary",
        BINARY,
        &[
            auth("0100", pan_a(), "000601", 4_000),
            auth("0100", pan_a(), "000602", 6_000),
            auth("0100", pan_a(), "000603", 4_001),
        ],
    );
    assert_eq!(r[0]["fields"]["39"], "00", "stand-in approves");
    assert!(
        r[0]["fields"]["38"]
            .as_str()
            .is_some_and(|c| c.starts_with('S'))
    );
    assert_eq!(r[1]["fields"]["39"], "91", "over the per-transaction limit");
    assert_eq!(r[2]["fields"]["39"], "91", "over the daily amount");
    // The issuer comes up: the stand-in approval reaches it as an 0120.
    let a = sim_at(&dir, "a", "iso87-ascii", &a_addr, &[]);
    wait_until("stand-in advice delivered", Duration::from_secs(15), || {
        a.records()
            .iter()
            .any(|r| r["mti"] == "0120" || r["mti"] == "0121")
    });
}

#[test]
fn an_issuer_link_dropped_mid_flight_is_reversed_after_reconnect() {
    let dir = temp_dir("switch-drop");
    let a_addr = free_addr();
    // The issuer holds its answer for 3 s and the route waits 8 s: the
    // link is dropped while the request is in flight, however slowly the
    // test gets to kill the issuer.
    let mut a = sim_at(&dir, "a", "iso87-ascii", &a_addr, &["--delay-ms", "3000"]);
    let b = sim(&dir, "b", "iso93-ascii", &[]);
    let (_sw, pos, _) = switch_timed(&dir, &a_addr, &b.proc.addr, "", 8_000);
    let pos2 = pos.clone();
    let client = std::thread::spawn(move || {
        send(
            &pos2,
            "iso87-binary",
            BINARY,
            &[auth("0100", pan_a(), "000701", 1_000)],
        )
    });
    // Killed once it has decided (it records before its delay).
    wait_until("the issuer to decide", Duration::from_secs(15), || {
        a.records().iter().any(|r| r["mti"] == "0100")
    });
    let _ = a.proc.child.kill();
    let _ = a.proc.child.wait();
    let r = client.join().expect("client");
    assert_eq!(r[0]["fields"]["39"], "91");
    let first = a.records();
    assert_eq!(
        first.iter().filter(|r| r["mti"] == "0100").count(),
        1,
        "approved before the drop"
    );
    let a2 = sim_at(&dir, "a", "iso87-ascii", &a_addr, &[]);
    wait_until("reversal after reconnect", Duration::from_secs(15), || {
        a2.records()
            .iter()
            .any(|r| r["mti"] == "0420" || r["mti"] == "0421")
    });
}

/// PCI DSS 3.3.1 / 3.4.1: with debug logging on, across approvals,
/// declines, time-outs, reversals, malformed requests and TLS-less links,
/// no full PAN and no track data reaches a log line of the switch or of the
/// issuer simulator.
#[test]
fn no_card_data_in_any_log_line_even_at_debug_level() {
    use support::process::start_logged;
    let dir = temp_dir("switch-logs");
    let (a_log, b_log, sw_log) = (dir.join("a.log"), dir.join("b.log"), dir.join("switch.log"));
    let debug = [("RUST_LOG", "debug")];
    let (a, _) = start_logged(
        &[
            "issuer-sim",
            "--listen",
            "127.0.0.1:0",
            "--approve-limit",
            "5000",
        ],
        1,
        &a_log,
        &debug,
    );
    let (b, _) = start_logged(
        &[
            "issuer-sim",
            "--listen",
            "127.0.0.1:0",
            "--spec",
            "iso93-ascii",
            "--drop-rate",
            "1.0",
        ],
        1,
        &b_log,
        &debug,
    );
    let cfg = write_config(&dir, &a.addr, &b.addr, "")
        .display()
        .to_string();
    let (_sw, addrs) = start_logged(&["run", "--config", &cfg], 2, &sw_log, &debug);
    let mut with_track = auth("0100", pan_a(), "000901", 1_000);
    with_track["fields"]["35"] = json!(format!("{}=28121011234567", pan_a()));
    let r = send(
        &addrs[0],
        "iso87-binary",
        BINARY,
        &[
            with_track,
            auth("0100", pan_a(), "000902", 9_000),
            auth("0100", pan_b(), "000903", 1_000),
        ],
    );
    assert_eq!(r.len(), 3);
    // A malformed request too (truncated after DE2).
    let good = support::process::encode("iso87-binary", &auth("0100", pan_a(), "000904", 1_000));
    let cut = &good[..good.len() - 20];
    let _ = run(&[
        "send",
        "--timeout-s",
        "2",
        "--target",
        &addrs[0],
        "--spec",
        "iso87-binary",
        "--framing",
        "binary2",
        "--tpdu",
        cut,
    ]);
    std::thread::sleep(Duration::from_millis(500));
    for log in [&a_log, &b_log, &sw_log] {
        let text = std::fs::read_to_string(log).expect("log");
        assert!(
            !text.is_empty(),
            "{} is empty: logging not captured",
            log.display()
        );
        for secret in [pan_a(), pan_b(), "28121011234567"] {
            assert!(
                !text.contains(secret),
                "{} holds card data ({secret})",
                log.display()
            );
        }
    }
}

/// The switch's Prometheus endpoint reports per-link round-trip latency and
/// traffic, labelled by link name only.
#[test]
fn metrics_report_round_trips_per_issuer_link() {
    let dir = temp_dir("switch-metrics");
    let a = sim(&dir, "a", "iso87-ascii", &[]);
    let b = sim(&dir, "b", "iso93-ascii", &[]);
    let metrics = free_addr();
    let path = write_config(&dir, &a.proc.addr, &b.proc.addr, "");
    let text = std::fs::read_to_string(&path).expect("config");
    let text = text.replacen(
        "institution_id = \"99000000001\"",
        &format!("institution_id = \"99000000001\"\nmetrics = \"{metrics}\""),
        1,
    );
    std::fs::write(&path, text).expect("config");
    let p = path.display().to_string();
    let (_sw, addrs) = start_listening_n(&["run", "--config", &p], 2);
    let r = send(
        &addrs[0],
        "iso87-binary",
        BINARY,
        &[auth("0100", pan_a(), "000951", 1_000)],
    );
    assert_eq!(r[0]["fields"]["39"], "00");
    let page = support::process::http_get(&metrics, "/metrics");
    assert!(
        page.contains("cardswitch_link_round_trip_seconds_count{link=\"issuer-a\"} 1"),
        "{page}"
    );
    assert!(
        page.contains("cardswitch_link_frames_in_total{link=\"pos-binary\"}"),
        "{page}"
    );
    assert!(!page.contains(pan_a()), "metrics hold a PAN");
}
