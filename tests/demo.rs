//! `cardswitch demo` as the README runs it: no options, traffic until it
//! is stopped (a regression: without `--duration-s` it asked the load
//! generator for more than its longest run and stopped with an error).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod support;

use support::process::{BIN, demo_dir};

#[test]
fn demo_without_options_approves_traffic_until_stopped() {
    let dir = support::certs::temp_dir("demo-cwd");
    let mut child = Command::new(BIN)
        .arg("demo")
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn demo");
    let (tx, rx) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    // A row of the table: time, req/s, approved, ... with approvals.
    let approving = |line: &str| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        cols.len() >= 4 && cols[2].parse::<u64>().is_ok_and(|n| n > 0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let mut approved = false;
    while !approved && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            approved = approving(&line);
            seen.push(line);
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("demo stopped by itself ({status}):\n{}", seen.join("\n"));
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(approved, "no approvals within 30 s:\n{}", seen.join("\n"));
    assert!(status.success(), "demo exit {status}");
    drop(demo_dir(&seen.join("\n")));
}

/// `demo --hsm`: DUKPT terminals, PIN blocks translated by hsm-sim to
/// each issuer's ZPK, MACs on the terminal link and issuer-b's. The
/// issuers read every PIN back (55 when it did not arrive under their
/// key) and check MACs (63); the journal shows approvals and none of the
/// security declines.
#[test]
fn demo_with_the_hsm_approves_with_pins_and_macs_checked() {
    let out = Command::new(BIN)
        .args(["demo", "--hsm", "--duration-s", "3"])
        .stdin(Stdio::null())
        .output()
        .expect("demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("with hsm-sim"), "{text}");
    let dir = text
        .lines()
        .find_map(|l| l.strip_prefix("logs: "))
        .expect("the demo's directory");
    let _made = support::certs::TempDir::adopt(dir);
    // The directory and the journal's key are the demo user's only.
    let mode = |p: &str| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).expect(p).permissions())
            & 0o777
    };
    assert_eq!(mode(dir), 0o700, "{dir}");
    assert_eq!(mode(&format!("{dir}/journal-keys.toml")), 0o600);
    let config = format!("{dir}/switch.toml");
    let export = Command::new(BIN)
        .args(["journal", "export", "--config", &config, "--format", "json"])
        .output()
        .expect("journal export");
    let mut codes = std::collections::HashMap::<String, u64>::new();
    for line in String::from_utf8_lossy(&export.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json row");
        let code = v["response_code"].as_str().unwrap_or("none").to_string();
        *codes.entry(code).or_insert(0) += 1;
    }
    assert!(codes.get("00").copied().unwrap_or(0) > 100, "{codes:?}");
    for refused in ["55", "63", "96"] {
        assert!(!codes.contains_key(refused), "{refused}: {codes:?}");
    }
}
