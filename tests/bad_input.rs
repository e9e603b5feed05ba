//! Bad input from an acquirer, end to end: the switch (`cardswitch run`) in
//! front of an issuer simulator, and raw frames written on one loopback
//! connection each. Every frame either gets its answer within 2 s or sees
//! its connection closed: never a sender left waiting. Also: MACs (DE64,
//! DE128) never reach the issuer nor come back to the acquirer.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use cardswitch::message::{Message, Spec};
use support::certs::temp_dir;
use support::process::{Running, free_addr, http_get, start_listening, start_logged, wait_until};

/// How long a frame may wait for its answer or its close.
const ANSWER_WAIT: Duration = Duration::from_secs(2);

/// What came back on a connection after one frame.
#[derive(Debug)]
enum Seen {
    Answer(Box<Message>),
    Closed,
}

fn spec() -> std::sync::Arc<Spec> {
    Spec::resolve("iso87-ascii").expect("spec")
}

/// A switch with one iso87-ascii acquirer (2-byte length) and one issuer
/// simulator (`sim_extra` its options); the log goes to `dir/switch.log`.
struct Setup {
    _sim: Running,
    _switch: Running,
    acquirer: String,
    metrics: String,
    log: std::path::PathBuf,
    capture: std::path::PathBuf,
}

fn setup(dir: &Path, sim_extra: &[&str]) -> Setup {
    let capture = dir.join("issuer.jsonl");
    let cap = capture.display().to_string();
    let mut args = vec![
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--spec",
        "iso87-ascii",
        "--capture",
        &cap,
    ];
    args.extend_from_slice(sim_extra);
    let sim = start_listening(&args);
    let metrics = free_addr();
    let config = format!(
        r#"
[switch]
institution_id = "99000000001"
metrics = "{metrics}"

[[acquirer]]
name = "host"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = {{ length = "binary2" }}

[[issuer]]
name = "issuer-a"
addresses = ["{}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
connections = 1
timeout_ms = 1500
echo_interval_s = 0

[[route]]
bins = ["476173"]
issuer = "issuer-a"
"#,
        sim.addr
    );
    let path = dir.join("switch.toml");
    std::fs::write(&path, config).expect("write config");
    let log = dir.join("switch.log");
    let p = path.display().to_string();
    let (switch, addrs) = start_logged(&["run", "--config", &p], 1, &log, &[]);
    Setup {
        _sim: sim,
        _switch: switch,
        acquirer: addrs[0].clone(),
        metrics,
        log,
        capture,
    }
}

/// Writes `frames` (each with its 2-byte length) at once on a new
/// connection.
fn connect_and_send(addr: &str, frames: &[&[u8]]) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(ANSWER_WAIT)).expect("timeout");
    let mut out = Vec::new();
    for f in frames {
        out.extend_from_slice(&(f.len() as u16).to_be_bytes());
        out.extend_from_slice(f);
    }
    s.write_all(&out).expect("write");
    s
}

/// The next answer on `s`, or its close; fails if neither comes in time.
fn next(s: &mut TcpStream, what: &str) -> Seen {
    let mut len = [0u8; 2];
    match s.read_exact(&mut len) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
            ) =>
        {
            return Seen::Closed;
        }
        Err(e) => panic!("{what}: neither an answer nor a close within 2 s ({e})"),
    }
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body)
        .unwrap_or_else(|e| panic!("{what}: answer cut short: {e}"));
    let msg = spec()
        .parse(&Bytes::from(body))
        .unwrap_or_else(|e| panic!("{what}: the answer does not parse: {e}"));
    Seen::Answer(Box::new(msg))
}

/// One frame on its own connection: what came back first.
fn exchange(addr: &str, frame: &[u8], what: &str) -> Seen {
    let mut s = connect_and_send(addr, &[frame]);
    next(&mut s, what)
}

fn answer(seen: Seen, what: &str) -> Message {
    match seen {
        Seen::Answer(m) => *m,
        Seen::Closed => panic!("{what}: closed instead of answered"),
    }
}

fn build(mti: &str, fields: &[(u16, &str)]) -> Vec<u8> {
    let mut m = Message::new(mti.parse().expect("mti"));
    for &(n, v) in fields {
        m.set_str(n, v).expect("set");
    }
    spec().build(&m).expect("build").to_vec()
}

const AUTH: &[(u16, &str)] = &[
    (2, "4761739001010119"),
    (3, "000000"),
    (4, "000000001000"),
    (7, "1123143005"),
    (11, "000321"),
    (37, "532798765400"),
    (41, "TERM0001"),
    (49, "840"),
];

fn auth() -> Vec<u8> {
    build("0100", AUTH)
}

/// Sends `frames` on one connection and expects a close, no answer; then
/// the switch's log holds one close line and the metric counts `reason`.
fn expect_close(frames: &[&[u8]], reason: &str, what: &str) {
    let dir = temp_dir("bad-input-close");
    let s = setup(&dir, &[]);
    let mut conn = connect_and_send(&s.acquirer, frames);
    assert!(matches!(next(&mut conn, what), Seen::Closed), "{what}");
    assert_closes_counted(&s, 1, reason);
}

/// The log holds `count` close lines (one per connection closed) and the
/// close metric counts `reason`.
fn assert_closes_counted(s: &Setup, count: usize, reason: &str) {
    let metrics = || http_get(&s.metrics, "/metrics");
    let counted = |m: &str| {
        m.lines().any(|l| {
            l.starts_with("cardswitch_link_closed_on_input_total")
                && l.contains(&format!("reason=\"{reason}\""))
        })
    };
    wait_until("the close counted", Duration::from_secs(5), || {
        counted(&metrics())
    });
    let log = std::fs::read_to_string(&s.log).expect("log");
    assert_eq!(
        log.matches("closing the connection").count(),
        count,
        "{log}"
    );
}

fn with_mti(mti: &[u8; 4]) -> Vec<u8> {
    let mut wire = auth();
    wire[..4].copy_from_slice(mti);
    wire
}

#[test]
fn a_two_byte_frame_closes_the_connection() {
    expect_close(&[b"01"], "unreadable_mti", "a 2-byte frame");
}

#[test]
fn an_mti_with_letters_closes_the_connection_and_is_logged_once() {
    // The second frame is never read: one close, one log line.
    let (letters, nine) = (with_mti(b"01A0"), with_mti(b"9999"));
    expect_close(&[&letters, &nine], "unreadable_mti", "MTI 01A0");
}

#[test]
fn mti_9999_closes_the_connection() {
    expect_close(&[&with_mti(b"9999")], "reserved_mti", "MTI 9999");
}

#[test]
fn a_claimed_but_absent_field_gets_30_without_a_shifted_stan() {
    let dir = temp_dir("bad-input-absent");
    let s = setup(&dir, &[]);
    // DE7 claimed by the bitmap but left out: DE11 would be read from the
    // RRN's digits (987654).
    let mut absent = auth();
    let at = absent
        .windows(10)
        .position(|w| w == b"1123143005")
        .expect("DE7");
    absent.drain(at..at + 10);
    let m = answer(exchange(&s.acquirer, &absent, "absent DE7"), "absent DE7");
    assert_eq!(m.mti().to_string(), "0110");
    assert_eq!(m.get_str(39), Some("30"));
    assert!(m.get_str(11).is_none_or(|s| s == "000321"), "{m:?}");
}

#[test]
fn a_bad_pan_gets_30_with_the_stan_and_terminal() {
    let dir = temp_dir("bad-input-pan");
    let s = setup(&dir, &[]);
    let mut bad_pan = auth();
    let at = bad_pan
        .windows(16)
        .position(|w| w == b"4761739001010119")
        .expect("DE2");
    bad_pan[at + 15] = b'X';
    let m = answer(exchange(&s.acquirer, &bad_pan, "bad DE2"), "bad DE2");
    assert_eq!(m.get_str(39), Some("30"));
    assert_eq!(m.get_str(11), Some("000321"));
    assert_eq!(m.get_str(41), Some("TERM0001"));
}

#[test]
fn a_malformed_de55_gets_30_not_an_approval() {
    let dir = temp_dir("bad-input-icc");
    let s = setup(&dir, &[]);
    let mut with_icc = Message::new("0100".parse().expect("mti"));
    for &(n, v) in AUTH {
        with_icc.set_str(n, v).expect("set");
    }
    with_icc
        .set(55, Bytes::from_static(&[0x9F, 0x26, 0xFF, 0x01]))
        .expect("set");
    let wire = spec().build(&with_icc).expect("build");
    let m = answer(exchange(&s.acquirer, &wire, "bad DE55"), "bad DE55");
    assert_eq!(m.get_str(39), Some("30"));
    assert_eq!(m.get_str(11), Some("000321"));
}

fn network(code: Option<&str>) -> Vec<u8> {
    let mut fields = vec![(7, "1123143005"), (11, "000777")];
    if let Some(c) = code {
        fields.push((70, c));
    }
    build("0800", &fields)
}

#[test]
fn key_changes_unknown_codes_and_no_code_are_not_approved() {
    let dir = temp_dir("bad-input-0800");
    let s = setup(&dir, &[]);
    for (code, expected) in [
        (Some("161"), "12"),
        (Some("101"), "12"),
        (Some("999"), "12"),
        (None, "30"),
        // The one the switch performs.
        (Some("301"), "00"),
    ] {
        let what = format!("0800 with DE70 {code:?}");
        let m = answer(exchange(&s.acquirer, &network(code), &what), &what);
        assert_eq!(m.mti().to_string(), "0810", "{what}");
        assert_eq!(m.get_str(39), Some(expected), "{what}");
    }
}

#[test]
fn a_response_closes_the_connection_after_the_requests_in_flight() {
    let dir = temp_dir("bad-input-drain");
    let s = setup(&dir, &["--delay-ms", "300"]);
    let response = with_mti(b"0110");
    // The 0100 is at the issuer (300 ms) when the 0110 arrives.
    let mut conn = connect_and_send(&s.acquirer, &[&auth(), &response]);
    let m = answer(next(&mut conn, "the 0100"), "the 0100");
    assert_eq!(m.mti().to_string(), "0110");
    assert_eq!(m.get_str(39), Some("00"));
    assert_eq!(m.get_str(11), Some("000321"));
    assert!(matches!(next(&mut conn, "after the 0110"), Seen::Closed));
    assert_closes_counted(&s, 1, "answer_from_acquirer");
}

#[test]
fn macs_reach_neither_the_issuer_nor_the_acquirer() {
    let dir = temp_dir("bad-input-mac");
    let s = setup(&dir, &[]);
    let mut maced = Message::new("0100".parse().expect("mti"));
    for &(n, v) in AUTH {
        maced.set_str(n, v).expect("set");
    }
    maced.set(64, Bytes::from_static(&[0xA5; 8])).expect("set");
    maced.set(128, Bytes::from_static(&[0x5A; 8])).expect("set");
    let wire = spec().build(&maced).expect("build");
    let m = answer(exchange(&s.acquirer, &wire, "0100 with MACs"), "0100");
    assert_eq!(m.get_str(39), Some("00"));
    assert!(!m.has(64) && !m.has(128), "{m:?}");
    // What the issuer received, from its capture.
    let received = || -> Vec<Message> {
        std::fs::read_to_string(&s.capture)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["direction"] == "in" && v["mti"] == "0100")
            .filter_map(|v| hex::decode(v["hex"].as_str()?).ok())
            .map(|b| spec().parse(&Bytes::from(b)).expect("captured 0100 parses"))
            .collect()
    };
    wait_until(
        "the issuer's capture of the 0100",
        Duration::from_secs(10),
        || !received().is_empty(),
    );
    for m in received() {
        assert!(!m.has(64) && !m.has(128), "the issuer got a MAC: {m:?}");
        assert_eq!(m.get_str(33), Some("99000000001"));
    }
}
