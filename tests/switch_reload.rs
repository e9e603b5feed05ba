//! Routes reload on SIGHUP under traffic without a failed request; a broken
//! file is refused and the running routes stay. And the one-command demo
//! runs, shows figures, and leaves nothing behind.

mod support;

use std::time::Duration;

use support::certs::temp_dir;
use support::process::{BIN, demo_dir, run, start_listening, start_listening_n};

fn config(a: &str, b: &str, route_to: &str) -> String {
    format!(
        r#"
[switch]
institution_id = "99000000001"

[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = {{ length = "binary2" }}

[[issuer]]
name = "issuer-a"
addresses = ["{a}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}

[[issuer]]
name = "issuer-b"
addresses = ["{b}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}

[[route]]
bins = ["476173"]
issuer = "{route_to}"
"#
    )
}

fn approvals(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"response_code\":\"00\""))
        .count()
}

#[test]
fn sighup_reloads_routes_under_traffic_without_a_failed_request() {
    let dir = temp_dir("reload");
    let (rec_a, rec_b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    let (ra, rb) = (rec_a.display().to_string(), rec_b.display().to_string());
    let a = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--record",
        &ra,
        "--approve-limit",
        "1000000",
    ]);
    let b = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--record",
        &rb,
        "--approve-limit",
        "1000000",
    ]);
    let path = dir.join("switch.toml");
    std::fs::write(&path, config(&a.addr, &b.addr, "issuer-a")).expect("config");
    let p = path.display().to_string();
    let (switch, addrs) = start_listening_n(&["run", "--config", &p], 1);
    let target = addrs[0].clone();

    let load = std::thread::spawn(move || {
        run(&[
            "load",
            "--target",
            &target,
            "--connections",
            "4",
            "--in-flight",
            "4",
            "--duration-s",
            "3",
            "--bins",
            "476173:1",
            "--amount-max",
            "5000",
            "--json",
        ])
    });
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::write(&path, config(&a.addr, &b.addr, "issuer-b")).expect("new config");
    let pid = switch.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    std::thread::sleep(Duration::from_millis(800));
    // A broken file is refused; the switch keeps routing to issuer-b.
    std::fs::write(&path, "[switch\nbroken").expect("broken config");
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );

    let (code, out, err) = load.join().expect("load thread");
    assert_eq!(code, 0, "load failed: {err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("load json");
    let sent = report["sent"].as_u64().expect("sent");
    assert!(sent > 1000, "only {sent} requests");
    assert_eq!(report["approved"].as_u64(), Some(sent), "{report}");
    for key in ["timed_out", "mismatched", "errors", "declined"] {
        assert_eq!(report[key].as_u64(), Some(0), "{key}: {report}");
    }
    let (before, after) = (approvals(&rec_a), approvals(&rec_b));
    assert!(before > 100 && after > 100, "a {before}, b {after}");
    assert_eq!(
        before + after,
        sent as usize,
        "every request reached exactly one issuer"
    );
}

#[test]
fn the_demo_runs_shows_figures_and_stops_cleanly() {
    let out = std::process::Command::new(BIN)
        .args([
            "demo",
            "--duration-s",
            "2",
            "--connections",
            "2",
            "--in-flight",
            "2",
        ])
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _made = demo_dir(&stdout);
    assert!(stdout.contains("p99 µs"), "{stdout}");
    let approved: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("approved"))
        .and_then(|v| v.trim().parse().ok())
        .expect("summary with approvals");
    assert!(approved > 100, "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.trim() == "mismatched             0"
                || l.starts_with("mismatched") && l.ends_with(" 0")),
        "{stdout}"
    );
    // The issuers and the switch are gone: their ports refuse connections.
    let first = stdout.lines().next().unwrap_or_default();
    for addr in first
        .split_whitespace()
        .filter(|w| w.starts_with("127.0.0.1:"))
    {
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{addr} still open after the demo"
        );
    }
}
