//! An approval the acquirer never gets, because its acquirer is gone
//! before the response arrives or because the response is larger than the
//! acquirer link's frame limit: the switch cannot deliver it, so it
//! reverses it at the issuer (and the journal says so), rather than leave
//! an approval nobody knows about; an acquirer still connected sees its
//! connection close instead of waiting for an answer forever.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::certs::temp_dir;
use support::process::{Running, run, start_listening, start_logged, wait_until};

/// An issuer simulator recording what it receives to `record`, answering
/// after `delay_ms`.
fn recording_issuer(record: &Path, delay_ms: u64) -> Running {
    start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--spec",
        "iso87-ascii",
        "--delay-ms",
        &delay_ms.to_string(),
        "--record",
        &record.display().to_string(),
    ])
}

/// Starts the switch with a journal, one issuer and `acquirers` (their
/// TOML), returning it and the acquirers' addresses.
fn start_switch(dir: &Path, issuer: &str, acquirers: &[&str]) -> (Running, Vec<String>) {
    let config = dir.join("switch.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[switch]
institution_id = "99000000001"
[switch.saf]
retry_min_ms = 50
response_wait_ms = 3000
[journal]
path = "journal.db"
{}
[[issuer]]
name = "issuer"
addresses = ["{issuer}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
timeout_ms = 3000
[default_route]
issuer = "issuer"
"#,
            acquirers.join("\n")
        ),
    )
    .expect("config");
    start_logged(
        &["run", "--config", &config.display().to_string()],
        acquirers.len(),
        &dir.join("switch.log"),
        &[("CARDSWITCH_JOURNAL_KEY", &format!("k1:{}", "5a".repeat(32)))],
    )
}

fn acquirer(name: &str, framing: &str) -> String {
    format!(
        r#"[[acquirer]]
name = "{name}"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = {{ length = "ascii4"{framing} }}"#
    )
}

fn request(stan: &str, rrn: &str) -> Value {
    json!({"mti": "0100", "fields": {
        "2": "4761739001010119", "3": "000000", "4": "000000001000", "7": "1123143005",
        "11": stan, "12": "143005", "13": "1123", "14": "2812", "22": "051",
        "32": "1234567", "37": rrn, "41": "TERM0001", "42": "MERCHANT0000001", "49": "978"
    }})
}

/// What the issuer simulator received, one JSON value a message.
fn recorded(record: &Path) -> Vec<Value> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until the issuer has the reversal of `rrn`, checks it approved
/// `rrn` once, and that the journal records the answer as undelivered and
/// the transaction as reversed (or its reversal queued).
fn assert_reversed(dir: &Path, record: &Path, rrn: &str) {
    wait_until(
        "the approval to be reversed at the issuer",
        Duration::from_secs(20),
        || {
            recorded(record)
                .iter()
                .any(|l| l["rrn"] == rrn && (l["mti"] == "0420" || l["mti"] == "0421"))
        },
    );
    let approvals = recorded(record)
        .iter()
        .filter(|l| l["rrn"] == rrn && l["mti"] == "0100" && l["response_code"] == "00")
        .count();
    assert_eq!(approvals, 1, "the issuer approved it once");
    // The answer's record follows the reversal's: wait for it too.
    let db = dir.join("journal.db").display().to_string();
    let row = || -> Value {
        let (code, out, err) = run(&[
            "journal", "search", "--db", &db, "--rrn", rrn, "--format", "json",
        ]);
        assert_eq!(code, 0, "{err}");
        // No row yet while the journal is still being fed.
        out.lines()
            .next()
            .map_or(Value::Null, |l| serde_json::from_str(l).expect("json"))
    };
    wait_until(
        "the journal to record the answer",
        Duration::from_secs(10),
        || row()["outcome"] == "undelivered",
    );
    let row = row();
    assert!(
        row["state"] == "reversal_queued" || row["state"] == "reversed",
        "{row}"
    );
}

#[test]
fn an_approval_the_acquirer_never_gets_is_reversed() {
    let dir = temp_dir("switch-undelivered");
    let record = dir.join("issuer.jsonl");
    // Answers after 1.5 s: the acquirer below gives up after 1 s.
    let issuer = recording_issuer(&record, 1500);
    let (mut switch, _) = start_switch(&dir, &issuer.addr, &[&acquirer("pos", "")]);
    let (_, answers) = support::process::send_messages(
        &switch.addr,
        "iso87-ascii",
        &["--framing", "ascii4"],
        1,
        &[request("000901", "UNDELIVERED1")],
    );
    assert!(answers.is_empty(), "no response within 1 s: {answers:?}");
    assert_reversed(&dir, &record, "UNDELIVERED1");
    assert!(switch.terminate(Duration::from_secs(10)).is_some());
}

/// `request(stan, rrn)` as the switch's acquirers read it (no length
/// header).
fn wire(stan: &str, rrn: &str) -> Vec<u8> {
    hex::decode(support::process::encode("iso87-ascii", &request(stan, rrn))).expect("hex")
}

/// Connects to `addr` (reads time out after 10 s) and sends `request`
/// behind its ASCII-4 length header.
fn send_framed(addr: &str, request: &[u8]) -> std::net::TcpStream {
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    conn.write_all(format!("{:04}", request.len()).as_bytes())
        .and_then(|()| conn.write_all(request))
        .expect("write");
    conn
}

/// Waits until the issuer has received the request of `rrn`.
fn wait_for_issuer(record: &Path, rrn: &str) {
    wait_until(
        "the issuer to have the request",
        Duration::from_secs(10),
        || recorded(record).iter().any(|l| l["rrn"] == rrn),
    );
}

/// Sends `request` (ASCII-4 framed) and reads the answer: its body, or
/// `None` when the switch closed the connection. Panics after 10 s.
fn exchange(addr: &str, request: &[u8]) -> Option<Vec<u8>> {
    let mut conn = send_framed(addr, request);
    let mut header = [0u8; 4];
    match conn.read_exact(&mut header) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
        other => other.expect("an answer or a close within 10 s"),
    }
    let length: usize = std::str::from_utf8(&header)
        .ok()
        .and_then(|h| h.parse().ok())
        .expect("length");
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).expect("body");
    Some(body)
}

/// Regression: a reply larger than the acquirer link's frame limit was
/// dropped with the connection left open, so the acquirer waited for it
/// forever (and, reading on, could send more).
#[test]
fn an_approval_beyond_the_frame_limit_closes_the_connection_and_is_reversed() {
    let dir = temp_dir("switch-unframable");
    let record = dir.join("issuer.jsonl");
    let issuer = recording_issuer(&record, 0);
    let first = wire("000902", "FRAMEFITS001");
    let second = wire("000903", "FRAMELIMIT01");
    // The narrow link admits the request but nothing longer.
    let narrow = format!(", frame_bytes_max = {}", second.len());
    let (mut switch, addrs) = start_switch(
        &dir,
        &issuer.addr,
        &[&acquirer("wide", ""), &acquirer("narrow", &narrow)],
    );
    let answer = exchange(&addrs[0], &first).expect("an answer on the wide link");
    assert!(
        answer.len() > second.len(),
        "the approval ({} bytes) must be longer than the request ({} bytes)",
        answer.len(),
        second.len()
    );
    assert_eq!(exchange(&addrs[1], &second), None, "closed, not answered");
    assert_reversed(&dir, &record, "FRAMELIMIT01");
    assert!(switch.terminate(Duration::from_secs(10)).is_some());
}

/// `answer` (a body) is the approval of `rrn`, and the issuer saw no
/// reversal of it.
fn assert_delivered(answer: &[u8], record: &Path, rrn: &str) {
    let spec = cardswitch::message::Spec::resolve("iso87-ascii").expect("spec");
    let answer = spec
        .parse(&bytes::Bytes::copy_from_slice(answer))
        .expect("parse");
    assert_eq!(answer.get_str(37), Some(rrn));
    assert_eq!(answer.get_str(39), Some("00"));
    let reversals = recorded(record)
        .iter()
        .filter(|l| l["rrn"] == rrn && l["mti"].as_str().is_some_and(|m| m.starts_with("04")))
        .count();
    assert_eq!(reversals, 0, "delivered, so not reversed");
}

/// Regression: at a shutdown (SIGTERM) the acquirer readers stop, and
/// stopping was taken for the acquirer having gone, so the answers still
/// coming for the requests in flight were counted undelivered (approvals
/// reversed) instead of being written to the acquirers still waiting.
#[test]
fn a_request_in_flight_at_shutdown_is_answered() {
    let dir = temp_dir("switch-shutdown-answer");
    let record = dir.join("issuer.jsonl");
    let issuer = recording_issuer(&record, 1500);
    let (mut switch, addrs) = start_switch(&dir, &issuer.addr, &[&acquirer("pos", "")]);
    let request = wire("000904", "INFLIGHTSTOP");
    let addr = addrs[0].clone();
    let asker = std::thread::spawn(move || exchange(&addr, &request));
    wait_for_issuer(&record, "INFLIGHTSTOP");
    let status = switch.terminate(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let answer = asker
        .join()
        .expect("asker")
        .expect("an answer, not a close");
    assert_delivered(&answer, &record, "INFLIGHTSTOP");
}

/// Regression: a frame the switch cannot read ends the reading of its
/// connection, and that was taken for the acquirer having gone, so the
/// answers to its requests in flight were counted undelivered (approvals
/// reversed) although it still reads. They are written, then the
/// connection closes.
#[test]
fn a_request_in_flight_before_an_unreadable_frame_is_answered() {
    let dir = temp_dir("switch-unreadable-answer");
    let record = dir.join("issuer.jsonl");
    let issuer = recording_issuer(&record, 1500);
    let (mut switch, addrs) = start_switch(&dir, &issuer.addr, &[&acquirer("pos", "")]);
    let request = wire("000905", "UNREADABLE01");
    let mut conn = send_framed(&addrs[0], &request);
    wait_for_issuer(&record, "UNREADABLE01");
    // A length header that is not a length: reading stops here.
    conn.write_all(b"ZZZZ").expect("write");
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)
        .expect("an answer and a close within 10 s");
    let body = answer.get(4..).expect("an answer, not only a close");
    // The issuer's answer came back, so no reversal follows it.
    assert_delivered(body, &record, "UNREADABLE01");
    assert!(switch.terminate(Duration::from_secs(10)).is_some());
}
