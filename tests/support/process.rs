//! Running `cardswitch` subcommands as child processes that stop with the test.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_cardswitch");

/// A child process killed when dropped.
pub struct Running {
    pub child: Child,
    pub addr: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Sends SIGTERM and waits up to `limit` for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// Starts `cardswitch ARGS` and waits for a stdout line "... listening on ADDR".
pub fn start_listening(args: &[&str]) -> Running {
    start_listening_n(args, 1).0
}

/// Runs `cardswitch ARGS` to completion: (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    run_env(args, &[])
}

/// Like [`run`], with extra environment variables set.
pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run cardswitch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `cardswitch ARGS` and reads `count` "... listening on ADDR" lines.
/// Its logs are drained (printed when CARDSWITCH_TEST_LOGS is set).
pub fn start_listening_n(args: &[&str], count: usize) -> (Running, Vec<String>) {
    let mut child = spawn_with(args, Stdio::piped(), &[]);
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        let mut log = String::new();
        let mut r = BufReader::new(stderr);
        while r.read_line(&mut log).unwrap_or(0) > 0 {}
        if std::env::var_os("CARDSWITCH_TEST_LOGS").is_some() {
            eprintln!("{log}");
        }
    });
    read_addresses(child, count)
}

/// Writes `config` to `dir/switch.toml` and runs the switch on it: the
/// process and the first address it listens on.
pub fn start_switch_config(dir: &std::path::Path, config: &str) -> (Running, String) {
    let path = dir.join("switch.toml");
    std::fs::write(&path, config).expect("config");
    let p = path.display().to_string();
    let (switch, addrs) = start_listening_n(&["run", "--config", &p], 1);
    (switch, addrs[0].clone())
}

/// Like [`start_listening_n`], with the child's logs written to `log` and
/// extra environment variables set.
pub fn start_logged(
    args: &[&str],
    count: usize,
    log: &std::path::Path,
    env: &[(&str, &str)],
) -> (Running, Vec<String>) {
    let file = std::fs::File::create(log).expect("log file");
    read_addresses(spawn_with(args, Stdio::from(file), env), count)
}

fn spawn_with(args: &[&str], stderr: Stdio, env: &[(&str, &str)]) -> Child {
    Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn cardswitch")
}

/// Reads `count` "... listening on ADDR" lines, then keeps stdout drained.
fn read_addresses(mut child: Child, count: usize) -> (Running, Vec<String>) {
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut addrs = Vec::new();
    for _ in 0..count {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read line");
        let addr = line
            .split("listening on ")
            .nth(1)
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        addrs.push(addr.trim().to_string());
    }
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).unwrap_or(0) > 0 {
            sink.clear();
        }
    });
    let addr = addrs.first().cloned().unwrap_or_default();
    (Running { child, addr }, addrs)
}

/// A free loopback port (bound and released).
pub fn free_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .to_string()
}

/// Waits until `cond` holds, or fails after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for: {what}");
}

/// A plain HTTP GET (for the Prometheus endpoint): the whole response.
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect metrics");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read");
    body
}

/// A message given as JSON, encoded with `cardswitch encode`: its hex.
pub fn encode(spec: &str, msg: &serde_json::Value) -> String {
    use std::io::Write;
    let out = Command::new(BIN)
        .args(["encode", "--spec", spec])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .expect("stdin")
                .write_all(msg.to_string().as_bytes())?;
            c.wait_with_output()
        })
        .expect("encode");
    assert!(out.status.success(), "encode failed for {msg}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Sends messages to a host with `cardswitch send --json` (link options in
/// `link`, waiting up to `timeout_s` for each answer): the exit code and
/// the answers received.
pub fn send_messages(
    addr: &str,
    spec: &str,
    link: &[&str],
    timeout_s: u64,
    msgs: &[serde_json::Value],
) -> (i32, Vec<serde_json::Value>) {
    let hex: Vec<String> = msgs.iter().map(|m| encode(spec, m)).collect();
    let timeout = timeout_s.to_string();
    let mut args = vec![
        "send",
        "--json",
        "--timeout-s",
        &timeout,
        "--target",
        addr,
        "--spec",
        spec,
    ];
    args.extend_from_slice(link);
    args.extend(hex.iter().map(String::as_str));
    let (code, out, _) = run(&args);
    let answers = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json answer"))
        .collect();
    (code, answers)
}

/// The directory `cardswitch demo` made, read from its stdout (a line
/// "logs, configuration and journal in DIR; ..."): removed when dropped.
pub fn demo_dir(stdout: &str) -> super::certs::TempDir {
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("logs, configuration and journal in "))
        .and_then(|rest| rest.split_once(';'))
        .unwrap_or_else(|| panic!("no demo directory in:\n{stdout}"))
        .0;
    super::certs::TempDir::adopt(dir)
}
