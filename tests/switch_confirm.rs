//! A reply's delivery is confirmed by the node's loop, woken by the
//! connection's writer: with room for one request in flight, each request's
//! permit comes back only once its reply is confirmed, so a confirmation
//! the loop missed would stall the acquirer until some other event (a
//! time-out, seconds later).

mod support;

use serde_json::Value;
use support::process::{run, start_listening, start_switch_config};

#[test]
fn one_in_flight_runs_at_round_trip_speed() {
    let issuer = start_listening(&["issuer-sim", "--listen", "127.0.0.1:0"]);
    let dir = support::certs::temp_dir("switch-confirm");
    let (_switch, switch_addr) = start_switch_config(
        &dir,
        &format!(
            r#"
[switch]
institution_id = "99000000001"
[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
in_flight_max = 1
[[issuer]]
name = "issuer"
addresses = ["{}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
timeout_ms = 5000
[default_route]
issuer = "issuer"
"#,
            issuer.addr
        ),
    );
    let (code, out, err) = run(&[
        "load",
        "--target",
        &switch_addr,
        "--connections",
        "1",
        "--in-flight",
        "1",
        "--duration-s",
        "2",
        "--timeout-ms",
        "1000",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.lines().last().expect("report")).expect("json");
    let n = |key: &str| v[key].as_u64().unwrap_or(u64::MAX);
    // Hundreds of round trips a second on loopback, even on a loaded
    // machine; a missed wake-up stalls the first request for good.
    assert!(n("sent") >= 100, "{v}");
    assert_eq!(n("timed_out") + n("errors") + n("mismatched"), 0, "{v}");
    let max_us = v["latency_us"]["max"].as_u64().expect("max");
    assert!(max_us < 1_000_000, "a request waited {max_us} us: {v}");
}
