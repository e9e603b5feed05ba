//! `cardswitch demo` as the README runs it: no options, traffic until it
//! is stopped (a regression: without `--duration-s` it asked the load
//! generator for more than its longest run and stopped with an error).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_cardswitch");

#[test]
fn demo_without_options_approves_traffic_until_stopped() {
    let dir = std::env::temp_dir().join(format!("cardswitch-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
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
    let _ = std::fs::remove_dir_all(&dir);
    assert!(approved, "no approvals within 30 s:\n{}", seen.join("\n"));
    assert!(status.success(), "demo exit {status}");
}
