//! The load generator as a process against the issuer simulator: every
//! request answered and checked, time-outs counted when the simulator drops
//! requests and reversed like a terminal would, open-loop pacing, and a
//! refused, never accepted or never completed connection reported in time.

mod support;

use std::collections::HashSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::certs::{make_pki, temp_dir};
use support::process::{BIN, run, start_listening, wait_until};

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
    // Without --record, time-outs are not reversed unless asked.
    assert_eq!(count(&v, "reversals_sent"), 0, "{v}");
}

fn read_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

#[test]
fn timed_out_requests_are_reversed_and_the_issuer_gets_the_reversals() {
    let dir = temp_dir("load-reversal");
    let (issuer_record, load_record) = (dir.join("issuer.jsonl"), dir.join("load.jsonl"));
    let sim = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--drop-rate",
        "0.2",
        "--record",
        &issuer_record.display().to_string(),
    ]);
    // --record turns reversals on by default.
    let (code, out, err) = run(&[
        "load",
        "--target",
        &sim.addr,
        "--connections",
        "2",
        "--in-flight",
        "4",
        "--requests",
        "200",
        "--timeout-ms",
        "500",
        "--record",
        &load_record.display().to_string(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v = report(&out);
    let (timed_out, sent) = (count(&v, "timed_out"), count(&v, "reversals_sent"));
    // 20% of 200 dropped: 40 expected (sd ~6).
    assert!((10..=80).contains(&timed_out), "{v}");
    assert_eq!(sent, timed_out, "{v}");
    let (answered, unanswered) = (
        count(&v, "reversals_answered"),
        count(&v, "reversals_unanswered"),
    );
    assert_eq!(answered + unanswered, sent, "{v}");
    // A reversal is lost four times in a row with probability 0.2^4.
    assert!(answered >= sent - 2 && answered > 0, "{v}");
    let repeats = count(&v, "reversal_repeats");
    assert!(repeats > 0, "some reversals were dropped too: {v}");

    // The load generator's record: each time-out reversed, each reversal noted.
    let lines = read_lines(&load_record);
    let of_kind = |k: &'static str| lines.iter().filter(move |l| text(l, "kind") == k);
    let reversed: HashSet<&str> = of_kind("timed_out")
        .filter(|l| l["reversed"] == Value::Bool(true))
        .map(|l| text(l, "rrn"))
        .collect();
    assert_eq!(reversed.len() as u64, timed_out, "{lines:?}");
    let events = |e: &str| {
        of_kind("reversal")
            .filter(|l| text(l, "event") == e)
            .count() as u64
    };
    assert_eq!(events("sent"), sent);
    assert_eq!(events("answered"), answered);

    // The issuer got every reversal (recorded before it drops answers),
    // each for a timed-out request, its repeats with the first's STAN.
    let issuer_reversals = |mti: &str| -> Vec<Value> {
        read_lines(&issuer_record)
            .into_iter()
            .filter(|l| text(l, "mti") == mti)
            .collect()
    };
    wait_until(
        "the issuer to record every reversal",
        Duration::from_secs(10),
        || {
            issuer_reversals("0420").len() as u64 == sent
                && issuer_reversals("0421").len() as u64 == repeats
        },
    );
    let firsts = issuer_reversals("0420");
    let at_issuer: HashSet<&str> = firsts.iter().map(|l| text(l, "rrn")).collect();
    assert_eq!(at_issuer, reversed);
    let first_stans: HashSet<&str> = firsts.iter().map(|l| text(l, "stan")).collect();
    for repeat in issuer_reversals("0421") {
        assert!(first_stans.contains(text(&repeat, "stan")), "{repeat}");
    }
}

/// Runs `cardswitch ARGS`, killed (and the test failed) if it is still
/// running after `limit`: (exit code, stdout, stderr, time taken).
fn run_within(args: &[&str], limit: Duration) -> (i32, String, String, Duration) {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cardswitch {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().expect("out"), err.join().expect("err"));
    (status.code().unwrap_or(-1), out, err, start.elapsed())
}

#[test]
fn a_host_that_never_completes_the_tls_handshake_ends_the_run() {
    let dir = temp_dir("load-silent-tls");
    let pki = make_pki(&dir, "bank");
    // Accepts TCP and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let _silent = std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(16).collect();
        std::thread::sleep(Duration::from_secs(60));
        drop(held);
    });
    let ca = pki.ca.display().to_string();
    let args = [
        "load",
        "--target",
        &addr,
        "--tls-ca",
        &ca,
        "--connections",
        "4",
    ];
    let (code, _out, err, took) = run_within(
        &[&args[..], &["--duration-s", "2"]].concat(),
        Duration::from_secs(30),
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("TLS handshake: not complete within 3000 ms"),
        "{err}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn a_host_that_never_accepts_ends_the_run() {
    // A listener with a backlog of one that never accepts: once its queue
    // is full, the kernel drops further SYNs and a connect waits forever.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    let listener = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        socket.listen(1).expect("listen")
    });
    let addr = listener.local_addr().expect("addr");
    let mut fillers = Vec::new();
    let full = (0..16).any(|_| {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => {
                fillers.push(s);
                false
            }
            Err(_) => true,
        }
    });
    assert!(full, "the backlog never filled");
    let target = addr.to_string();
    let (code, out, err, took) = run_within(
        &[
            "load",
            "--target",
            &target,
            "--connections",
            "3",
            "--duration-s",
            "2",
        ],
        Duration::from_secs(30),
    );
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("connect: no connection within 3000 ms"),
        "{err}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
    drop(listener);
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
fn many_slow_terminals_keep_the_aggregate_rate() {
    // 200 terminals, one request every 2 s each, one in flight: their
    // phases spread over the 2 s, so 3 s hold about 300 requests.
    let sim = start_listening(&["issuer-sim", "--listen", "127.0.0.1:0"]);
    let (code, out, err) = run(&[
        "load",
        "--target",
        &sim.addr,
        "--connections",
        "200",
        "--in-flight",
        "1",
        "--rate",
        "100",
        "--duration-s",
        "3",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v = report(&out);
    let scheduled = count(&v, "sent") + count(&v, "skipped");
    assert!((260..=310).contains(&scheduled), "{v}");
    assert_eq!(count(&v, "approved"), count(&v, "sent"), "{v}");
    assert_eq!(count(&v, "connections"), 200, "{v}");
}

#[test]
fn connections_open_at_the_connect_rate() {
    let sim = start_listening(&["issuer-sim", "--listen", "127.0.0.1:0"]);
    let args = ["load", "--target", &sim.addr, "--connections", "20"];
    let (code, out, err, took) = run_within(
        &[
            &args[..],
            &["--connect-rate", "10", "--requests", "20", "--json"],
        ]
        .concat(),
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    // The 20th connection starts 1.9 s after the first.
    assert!(took >= Duration::from_millis(1_900), "{took:?}");
    let v = report(&out);
    assert_eq!(count(&v, "connections"), 20, "{v}");
    assert_eq!(count(&v, "approved"), 20, "{v}");
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
