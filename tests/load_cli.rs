//! The load generator as a process against the issuer simulator: every
//! request answered and checked, time-outs counted when the simulator drops
//! requests, open-loop pacing, and a refused connection reported.

mod support;

use serde_json::Value;
use support::certs::{make_pki, temp_dir};
use support::process::{run, start_listening};

fn report(out: &str) -> Value {
    let line = out.lines().last().unwrap_or_else(|| panic!("no output"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn count(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn every_request_is_answered_and_checked() {
    let sim = start_listening(&["issuer-sim", "--listen", "127.0.0.1:0"]);
    let (code, out, err) = run(&[
        "load",
        "--target",
        &sim.addr,
        "--connections",
        "4",
        "--in-flight",
        "4",
        "--requests",
        "2000",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v = report(&out);
    assert_eq!(count(&v, "sent"), 2000, "{v}");
    assert_eq!(count(&v, "mismatched"), 0, "{v}");
    assert_eq!(count(&v, "unmatched"), 0, "{v}");
    assert_eq!(count(&v, "timed_out"), 0, "{v}");
    assert_eq!(count(&v, "errors"), 0, "{v}");
    assert_eq!(count(&v, "approved") + count(&v, "declined"), 2000, "{v}");
    assert!(v["throughput_rps"].as_f64().expect("throughput") > 0.0);
    let latency = &v["latency_us"];
    assert_eq!(count(latency, "count"), 2000, "{v}");
    for key in ["p50", "p90", "p99", "p99_9", "max"] {
        assert!(count(latency, key) > 0, "{key} in {v}");
    }
    assert!(count(latency, "p50") <= count(latency, "p99"));
    assert!(count(latency, "p99") <= count(latency, "max"));
}

#[test]
fn amounts_above_the_limit_are_declined_and_the_human_summary_prints() {
    let sim = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--approve-limit",
        "1000",
    ]);
    let (code, out, err) = run(&[
        "load",
        "--target",
        &sim.addr,
        "--connections",
        "2",
        "--requests",
        "400",
        "--amount-min",
        "1",
        "--amount-max",
        "2000",
        "--mti",
        "0200",
        "--bins",
        "222300:1,545454:2",
    ]);
    assert_eq!(code, 0, "{err}");
    let field = |name: &str| -> u64 {
        let line = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {out}"));
        line[name.len()..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    assert_eq!(field("sent"), 400, "{out}");
    let (approved, declined) = (field("approved"), field("declined"));
    assert_eq!(approved + declined, 400, "{out}");
    // Uniform amounts 1..=2000 against a limit of 1000: about half each.
    assert!(approved > 100 && declined > 100, "{out}");
    assert_eq!(field("mismatched"), 0, "{out}");
    assert!(out.contains("latency µs  p50 "), "{out}");
}

#[test]
fn runs_over_mutual_tls_with_another_framing_and_spec() {
    let dir = temp_dir("load-mtls");
    let pki = make_pki(&dir, "bank");
    let p = |p: &std::path::Path| p.display().to_string();
    let (ca, cert, key) = (p(&pki.ca), p(&pki.server_cert), p(&pki.server_key));
    let (client_cert, client_key) = (p(&pki.client_cert), p(&pki.client_key));
    let link = ["--framing", "ascii4", "--tpdu", "--spec", "iso87-binary"];
    let mut sim_args = vec!["issuer-sim", "--listen", "127.0.0.1:0"];
    sim_args.extend(link);
    sim_args.extend(["--tls-cert", &cert, "--tls-key", &key, "--tls-ca", &ca]);
    let sim = start_listening(&sim_args);
    let mut load_args = vec!["load", "--target", &sim.addr, "--requests", "300"];
    load_args.extend(link);
    load_args.extend([
        "--tls-ca",
        &ca,
        "--tls-cert",
        &client_cert,
        "--tls-key",
        &client_key,
        "--json",
    ]);
    let (code, out, err) = run(&load_args);
    assert_eq!(code, 0, "{err}");
    let v = report(&out);
    assert_eq!(count(&v, "sent"), 300, "{v}");
    assert_eq!(count(&v, "approved"), 300, "{v}");
    assert_eq!(count(&v, "connections"), 8, "{v}");
}

#[test]
fn dropped_requests_are_counted_as_timed_out() {
    let sim = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--drop-rate",
        "0.1",
    ]);
    let (code, out, err) = run(&[
        "load",
        "--target",
        &sim.addr,
        "--connections",
        "4",
        "--in-flight",
        "8",
        "--requests",
        "2000",
        // Well above any stall of a busy machine: only dropped requests
        // may time out.
        "--timeout-ms",
        "500",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v = report(&out);
    let timed_out = count(&v, "timed_out");
    assert_eq!(count(&v, "sent"), 2000, "{v}");
    // 10% dropped: 200 expected (sd ~13).
    assert!((120..=280).contains(&timed_out), "{v}");
    assert_eq!(
        count(&v, "approved") + count(&v, "declined") + timed_out,
        2000,
        "{v}"
    );
    assert_eq!(count(&v, "mismatched"), 0, "{v}");
    assert_eq!(count(&v, "errors"), 0, "{v}");
}

#[test]
fn late_answers_are_counted_apart() {
    // Every answer takes 150 ms; the time limit is 100 ms. Each window of
    // four times out 100 ms after it is sent, when the next is sent: the
    // earlier windows' answers arrive late while later ones wait. Four
    // windows leave the run some 250 ms after the first late answer is
    // due, room for a stalled simulator.
    let sim = start_listening(&["issuer-sim", "--listen", "127.0.0.1:0", "--delay-ms", "150"]);
    let (code, out, err) = run(&[
        "load",
        "--target",
        &sim.addr,
        "--connections",
        "1",
        "--in-flight",
        "4",
        "--requests",
        "16",
        "--timeout-ms",
        "100",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v = report(&out);
    assert_eq!(count(&v, "sent"), 16, "{v}");
    assert_eq!(count(&v, "timed_out"), 16, "{v}");
    assert_eq!(count(&v, "unmatched"), 0, "{v}");
    assert!((1..=16).contains(&count(&v, "late")), "{v}");
}

#[test]
fn open_loop_keeps_to_the_rate() {
    let sim = start_listening(&["issuer-sim", "--listen", "127.0.0.1:0"]);
    let (code, out, err) = run(&[
        "load",
        "--target",
        &sim.addr,
        "--connections",
        "2",
        "--rate",
        "500",
        "--duration-s",
        "1",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v = report(&out);
    let sent = count(&v, "sent");
    // The schedule is kept: what a stalled generator could not send in
    // time it gives up and counts as skipped, never sends in a burst.
    let scheduled = sent + count(&v, "skipped");
    assert!((400..=520).contains(&scheduled), "{v}");
    assert!(sent > 200, "{v}");
    assert_eq!(count(&v, "approved"), sent, "{v}");
    assert_eq!(v["rate_target"].as_f64(), Some(500.0));
}

#[test]
fn a_refused_connection_fails_the_run() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let target = format!("127.0.0.1:{port}");
    let (code, _out, err) = run(&["load", "--target", &target, "--requests", "10"]);
    assert_ne!(code, 0);
    assert!(err.contains("connect"), "{err}");
    let (code, _out, err) = run(&["load", "--target", &target, "--bins", "47x"]);
    assert_ne!(code, 0);
    assert!(err.contains("--bins"), "{err}");
}

/// A host that echoes each request as its response with the last digit of
/// DE4 changed (iso87-ascii, 2-byte length): every answer mismatches.
fn start_lying_host() -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let host = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("accept");
        let mut len = [0u8; 2];
        while sock.read_exact(&mut len).is_ok() {
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
            sock.read_exact(&mut body).expect("body");
            body[2] = b'1'; // 0100 -> 0110
            // MTI 4, hex bitmap 16, DE2 "16" + 16 digits, DE3 6: DE4 at 44.
            let last = 44 + 11;
            body[last] = if body[last] == b'0' { b'1' } else { b'0' };
            sock.write_all(&len).expect("write");
            sock.write_all(&body).expect("write");
        }
    });
    (addr, host)
}

#[test]
fn mismatched_answers_fail_the_run() {
    let (addr, host) = start_lying_host();
    let (code, out, err) = run(&[
        "load",
        "--target",
        &addr,
        "--connections",
        "1",
        "--requests",
        "50",
        "--json",
    ]);
    host.join().expect("host");
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("did not match"), "{err}");
    let v = report(&out);
    assert_eq!(count(&v, "mismatched"), 50, "{v}");
    assert_eq!(count(&v, "approved"), 0, "{v}");
    let samples = v["error_samples"].to_string();
    assert!(samples.contains("Amount"), "{samples}");
}
