//! The issuer simulator as a process: rules, every framing, TLS and mutual
//! TLS (a client with a certificate from another CA is refused), records,
//! and a clean exit on SIGTERM.

mod support;

use std::time::Duration;

use support::certs::{make_pki, temp_dir};
use support::process::{http_get, run, start_listening};

const AUTH: &str = include_str!("../fixtures/golden/iso87-ascii/0100-auth-request.hex");
const ECHO: &str = include_str!("../fixtures/golden/iso87-ascii/0800-echo.hex");

fn field(json_line: &str, n: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json_line).expect("json");
    v["fields"][n].as_str().unwrap_or("").to_string()
}

#[test]
fn answers_by_rules_on_every_framing() {
    for framing in ["binary2", "binary2-inclusive", "ascii4"] {
        for tpdu in [false, true] {
            let mut args = vec![
                "issuer-sim",
                "--listen",
                "127.0.0.1:0",
                "--framing",
                framing,
                "--approve-limit",
                "10000",
            ];
            if tpdu {
                args.push("--tpdu");
            }
            let sim = start_listening(&args);
            let mut send = vec![
                "send",
                "--json",
                "--target",
                &sim.addr,
                "--framing",
                framing,
            ];
            if tpdu {
                send.push("--tpdu");
            }
            send.extend([AUTH.trim(), ECHO.trim()]);
            let (code, out, err) = run(&send);
            assert_eq!(code, 0, "{framing} tpdu={tpdu}: {err}");
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines.len(), 2, "{out}");
            // The golden 0100 is for 125.00 (12500) > limit 10000: 51.
            assert_eq!(field(lines[0], "39"), "51", "{framing}");
            assert_eq!(field(lines[1], "39"), "00", "{framing}");
            assert_eq!(field(lines[1], "70"), "301");
        }
    }
}

#[test]
fn mutual_tls_accepts_its_clients_and_refuses_others() {
    let dir = temp_dir("mtls");
    let good = make_pki(&dir, "bank");
    let rogue = make_pki(&dir, "rogue");
    let record = dir.join("approved.jsonl");
    let p = |p: &std::path::Path| p.display().to_string();
    let mut sim = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        &p(&good.server_cert),
        "--tls-key",
        &p(&good.server_key),
        "--tls-ca",
        &p(&good.ca),
        "--record",
        &p(&record),
    ]);
    let (code, out, err) = run(&[
        "send",
        "--json",
        "--target",
        &sim.addr,
        "--tls-ca",
        &p(&good.ca),
        "--tls-cert",
        &p(&good.client_cert),
        "--tls-key",
        &p(&good.client_key),
        AUTH.trim(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(out.trim(), "39"), "00");
    assert_eq!(
        field(out.trim(), "2"),
        "476173******0119",
        "response PAN must be masked"
    );

    // A client certificate from another CA is refused.
    let (code, _, err) = run(&[
        "send",
        "--target",
        &sim.addr,
        "--tls-ca",
        &p(&good.ca),
        "--tls-cert",
        &p(&rogue.client_cert),
        "--tls-key",
        &p(&rogue.client_key),
        AUTH.trim(),
    ]);
    assert_ne!(code, 0, "a rogue client was served");
    assert!(!err.is_empty());
    // No client certificate at all is refused too.
    let (code, _, _) = run(&[
        "send",
        "--target",
        &sim.addr,
        "--tls-ca",
        &p(&good.ca),
        AUTH.trim(),
    ]);
    assert_ne!(code, 0, "a client without certificate was served");
    // A server certificate the client does not trust is refused by the client.
    let (code, _, err) = run(&[
        "send",
        "--target",
        &sim.addr,
        "--tls-ca",
        &p(&rogue.ca),
        "--tls-cert",
        &p(&good.client_cert),
        "--tls-key",
        &p(&good.client_key),
        AUTH.trim(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("TLS"), "{err}");

    let status = sim
        .terminate(Duration::from_secs(5))
        .expect("exits on SIGTERM");
    assert!(status.success(), "{status:?}");
    let recorded = std::fs::read_to_string(&record).expect("record file");
    assert_eq!(recorded.lines().count(), 1, "{recorded}");
    assert!(recorded.contains("\"stan\":\"123456\""), "{recorded}");
    assert!(!recorded.contains("4761739001010119"), "record holds a PAN");
}

#[test]
fn prometheus_endpoint_counts_traffic_without_card_data() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let metrics_addr = port.to_string();
    let sim = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        &metrics_addr,
    ]);
    // The third message is truncated after a readable STAN: it gets a
    // format-error reject (DE39 = 30) that still carries DE11.
    let auth = hex::decode(AUTH.trim()).expect("hex");
    let broken = hex::encode(&auth[..150]);
    let (code, out, err) = run(&[
        "send",
        "--json",
        "--target",
        &sim.addr,
        AUTH.trim(),
        ECHO.trim(),
        &broken,
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(field(lines[2], "39"), "30");
    assert_eq!(field(lines[2], "11"), "123456");
    let mut page = String::new();
    for _ in 0..50 {
        page = http_get(&metrics_addr, "/metrics");
        if page.contains("cardswitch_link_frames_in_total") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        page.contains("cardswitch_link_frames_in_total{link=\"issuer-sim\"} 3"),
        "{page}"
    );
    assert!(
        page.contains("cardswitch_link_frames_out_total{link=\"issuer-sim\"} 3"),
        "{page}"
    );
    assert!(page.contains("cardswitch_link_connections_open"), "{page}");
    assert!(
        page.contains("cardswitch_link_decode_errors_total"),
        "{page}"
    );
    assert!(!page.contains("4761739001010119"), "metrics leak a PAN");
}

#[test]
fn sigterm_drains_in_flight_answers_before_exit() {
    let dir = temp_dir("drain");
    let record = dir.join("record.jsonl");
    let rec = record.display().to_string();
    let mut sim = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--delay-ms",
        "800",
        "--record",
        &rec,
    ]);
    let client = std::process::Command::new(support::process::BIN)
        .args(["send", "--json", "--target", &sim.addr, AUTH.trim()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn send");
    // SIGTERM once the request is in (it is recorded before the delayed answer).
    support::process::wait_until("request received", Duration::from_secs(10), || {
        std::fs::read_to_string(&record).is_ok_and(|r| !r.is_empty())
    });
    let status = sim
        .terminate(Duration::from_secs(5))
        .expect("exits after draining");
    assert!(status.success(), "{status:?}");
    let out = client.wait_with_output().expect("send output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        field(line.trim(), "39"),
        "00",
        "in-flight request lost: {line}"
    );
    // No new connection is accepted after SIGTERM.
    let (code, _, _) = run(&["send", "--target", &sim.addr, AUTH.trim()]);
    assert_ne!(code, 0);
}

/// The process opts out of transparent huge pages (src/main.rs): on a
/// machine with THP "always", their 2 MiB first touches stalled the first
/// second of a reconnect storm.
#[cfg(target_os = "linux")]
#[test]
fn runs_without_transparent_huge_pages() {
    let mut sim = start_listening(&["issuer-sim", "--listen", "127.0.0.1:0"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", sim.child.id()))
        .expect("process status");
    sim.terminate(Duration::from_secs(5));
    let thp = status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .map(str::trim);
    // Linux reports it since 5.0.
    assert_eq!(thp, Some("0"), "THP_enabled in /proc/PID/status:\n{status}");
}
