//! Money regressions found by outside testing (issue 19, points 1, 3, 5),
//! through the switch as a process: a terminal reusing a STAN for another
//! card gets its own answer, and an issuer answer without DE39 is an
//! unknown outcome (91 and a reversal advice with its own DE7), not 96.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cardswitch::message::{Message, Spec};
use serde_json::{Value, json};
use support::certs::temp_dir;
use support::process::{
    Running, run_env, start_listening, start_listening_n, start_logged, wait_until,
};

const ASCII4: &[&str] = &["--framing", "ascii4"];

fn config(dir: &Path, issuer: &str) -> String {
    config_with(dir, issuer, "")
}

/// The test switch's configuration, with `extra` keys in its SAF section
/// (and sections after it).
fn config_with(dir: &Path, issuer: &str, extra: &str) -> String {
    let text = format!(
        r#"
[switch]
institution_id = "99000000001"
[switch.saf]
retry_min_ms = 50
retry_max_ms = 200
{extra}
[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = {{ length = "ascii4" }}
[[issuer]]
name = "issuer-a"
addresses = ["{issuer}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
timeout_ms = 1500
[default_route]
issuer = "issuer-a"
"#
    );
    let path = dir.join("switch.toml");
    std::fs::write(&path, text).expect("config");
    path.display().to_string()
}

fn start_switch(dir: &Path, issuer: &str) -> Running {
    let config = config(dir, issuer);
    start_listening_n(&["run", "--config", &config], 1).0
}

fn request(pan: &str, processing: &str, amount: u64, stan: &str) -> Value {
    // No DE7: terminals that send none are where a reused STAN collided.
    json!({"mti": "0100", "fields": {
        "2": pan, "3": processing, "4": format!("{amount:012}"), "11": stan,
        "12": "143005", "13": "1123", "14": "2812", "22": "051", "32": "1234567",
        "37": format!("R{stan}{:05}", amount % 100_000), "41": "TERM0001",
        "42": "MERCHANT0000001", "49": "978"
    }})
}

/// Regression (point 1): the second request reused the first one's STAN
/// and terminal with another card, amount and processing code (a refund);
/// it got the first one's cached 0110 (with the first card's DE2 and DE4)
/// and never reached the issuer.
#[test]
fn a_reused_stan_with_other_content_is_forwarded_and_gets_its_own_answer() {
    let dir = temp_dir("money-dup-content");
    let record = dir.join("issuer.jsonl");
    let issuer = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--spec",
        "iso87-ascii",
        "--record",
        &record.display().to_string(),
    ]);
    let switch = start_switch(&dir, &issuer.addr);
    let first = request("4761739001010119", "000000", 1_000, "000201");
    let reused = request("4761739001010127", "200000", 2_500, "000201");
    let copy = first.clone();
    let (code, answers) = support::process::send_messages(
        &switch.addr,
        "iso87-ascii",
        ASCII4,
        5,
        &[first, reused, copy],
    );
    assert_eq!(code, 0);
    assert_eq!(answers.len(), 3, "{answers:?}");
    let shown = |a: &Value, n: &str| a["fields"][n].as_str().unwrap_or("").to_string();
    assert_eq!(shown(&answers[1], "4"), "000000002500", "its own amount");
    assert_eq!(shown(&answers[1], "3"), "200000", "its own processing code");
    assert!(
        shown(&answers[1], "2").ends_with("0127"),
        "its own card: {}",
        answers[1]
    );
    assert_eq!(shown(&answers[2], "38"), shown(&answers[0], "38"), "a copy");
    let forwarded = || {
        std::fs::read_to_string(&record)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"0100\""))
            .count()
    };
    wait_until("both to reach the issuer", Duration::from_secs(5), || {
        forwarded() == 2
    });
    assert_eq!(forwarded(), 2, "the copy is not forwarded");
    drop(switch);
}

/// What the scripted issuer below received.
#[derive(Default)]
struct Received {
    messages: Vec<Message>,
}

/// An issuer that answers authorizations without DE39, and acknowledges
/// everything else (reversal advices, network management) with 00.
fn issuer_without_de39(seen: Arc<Mutex<Received>>) -> String {
    scripted_issuer("127.0.0.1:0", seen, true)
}

/// The scripted issuer on `listen`; with `ack_reversals` false it never
/// answers a reversal advice (they are still recorded).
fn scripted_issuer(listen: &str, seen: Arc<Mutex<Received>>, ack_reversals: bool) -> String {
    let listener = TcpListener::bind(listen).expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || serve(stream, seen, ack_reversals));
        }
    });
    addr
}

fn serve(mut stream: TcpStream, seen: Arc<Mutex<Received>>, ack_reversals: bool) {
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut body).is_err() {
            return;
        }
        let Ok(msg) = spec.parse(&Bytes::from(body)) else {
            return;
        };
        let Some(mti) = msg.mti().response() else {
            continue;
        };
        let mut resp = msg.clone();
        resp.set_mti(mti);
        let mti = msg.mti().to_string();
        if !mti.starts_with("01") {
            resp.set_str(39, "00").expect("set");
        }
        seen.lock().expect("lock").messages.push(msg);
        if mti.starts_with("04") && !ack_reversals {
            continue;
        }
        let out = spec.build(&resp).expect("build");
        let mut frame = (out.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&out);
        if stream.write_all(&frame).is_err() {
            return;
        }
    }
}

/// Regression (points 3 and 5): an answer without DE39 became a 96 with no
/// reversal, though the issuer may have approved. Now it is an unknown
/// outcome: the acquirer gets 91 and the issuer a reversal advice, with its
/// own transmission time and the original's in DE90.
#[test]
fn an_answer_without_de39_is_reversed_like_a_time_out() {
    let dir = temp_dir("money-no-de39");
    let seen = Arc::new(Mutex::new(Received::default()));
    let issuer = issuer_without_de39(seen.clone());
    let switch = start_switch(&dir, &issuer);
    let mut original = request("4761739001010119", "000000", 1_000, "000301");
    original["fields"]["7"] = json!("0101000000");
    let (code, answers) =
        support::process::send_messages(&switch.addr, "iso87-ascii", ASCII4, 5, &[original]);
    assert_eq!(code, 0);
    assert_eq!(answers[0]["fields"]["39"], "91", "{}", answers[0]);
    let reversal = || {
        seen.lock()
            .expect("lock")
            .messages
            .iter()
            .find(|m| m.mti().to_string().starts_with("042"))
            .cloned()
    };
    wait_until("a reversal advice", Duration::from_secs(10), || {
        reversal().is_some()
    });
    let rev = reversal().expect("reversal");
    let forwarded = seen
        .lock()
        .expect("lock")
        .messages
        .iter()
        .find(|m| m.mti().to_string() == "0100")
        .cloned()
        .expect("the request reached the issuer");
    let de90 = rev.get_str(90).expect("DE90");
    let original_stan = forwarded.get_str(11).expect("DE11");
    assert_eq!(&de90[..4], "0100");
    assert_eq!(&de90[4..10], original_stan, "DE90 names the original STAN");
    let original_time = forwarded.get_str(7).expect("DE7");
    assert_eq!(&de90[10..20], original_time, "DE90 holds the original DE7");
    assert_ne!(rev.get_str(7), Some(original_time), "the advice's own DE7");
    assert_ne!(
        rev.get_str(11),
        Some(original_stan),
        "the advice's own STAN"
    );
    assert_eq!(rev.get_str(37), forwarded.get_str(37));
    drop(switch);
}

fn reversals(seen: &Mutex<Received>) -> Vec<String> {
    seen.lock()
        .expect("lock")
        .messages
        .iter()
        .map(|m| m.mti().to_string())
        .filter(|m| m.starts_with("042"))
        .collect()
}

/// Regression (point 4): a reversal the switch gave up on left its
/// transaction `reversal_queued` forever. Now it is `reversal_given_up` in
/// the journal and counted; `journal requeue` queues it again, and the
/// next start delivers it, as a repeat (0421).
#[test]
fn a_given_up_reversal_is_final_counted_and_can_be_queued_again() {
    let dir = temp_dir("money-given-up");
    let seen = Arc::new(Mutex::new(Received::default()));
    let issuer = scripted_issuer("127.0.0.1:0", seen.clone(), false);
    let metrics = support::process::free_addr();
    let extra = "max_attempts = 2\nresponse_wait_ms = 200\n[journal]\npath = \"journal.db\"\n";
    let config = config_with(&dir, &issuer, extra);
    let text = std::fs::read_to_string(&config).expect("config").replace(
        "[switch.saf]",
        &format!("metrics = \"{metrics}\"\n[switch.saf]"),
    );
    std::fs::write(&config, text).expect("config");
    let key = format!("k1:{}", "5a".repeat(32));
    let env = [("CARDSWITCH_JOURNAL_KEY", key.as_str())];
    let log = dir.join("switch.log");
    let (switch, _) = start_logged(&["run", "--config", &config], 1, &log, &env);
    let (_, answers) = support::process::send_messages(
        &switch.addr,
        "iso87-ascii",
        ASCII4,
        5,
        &[request("4761739001010119", "000000", 1_000, "000401")],
    );
    assert_eq!(answers[0]["fields"]["39"], "91", "{answers:?}");
    let state = || -> String {
        let (code, out, err) = run_env(
            &["journal", "search", "--config", &config, "--format", "json"],
            &env,
        );
        assert_eq!(code, 0, "{err}");
        let row: Value = serde_json::from_str(out.lines().next().unwrap_or("{}")).expect("json");
        row["state"].as_str().unwrap_or("").to_string()
    };
    wait_until("the switch to give up", Duration::from_secs(20), || {
        state() == "reversal_given_up"
    });
    assert_eq!(reversals(&seen), ["0420", "0421"], "two attempts");
    let counted = support::process::http_get(&metrics, "/metrics");
    assert!(
        counted.contains("cardswitch_saf_given_up_total{kind=\"timeout_reversal\"} 1"),
        "{counted}"
    );
    drop(switch);

    let (code, out, err) = run_env(
        &["journal", "requeue", "--config", &config, "--all-given-up"],
        &env,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(state(), "reversal_queued");
    let (code, _, _) = run_env(
        &["journal", "requeue", "--config", &config, "--all-given-up"],
        &env,
    );
    assert_ne!(code, 0, "nothing left to queue again");

    // The issuer answers reversals now; the next start delivers it.
    let seen_after = Arc::new(Mutex::new(Received::default()));
    let issuer_after = scripted_issuer("127.0.0.1:0", seen_after.clone(), true);
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace(&issuer, &issuer_after)).expect("config");
    let (switch, _) = start_logged(&["run", "--config", &config], 1, &log, &env);
    wait_until(
        "the requeued reversal to be delivered",
        Duration::from_secs(20),
        || state() == "reversed",
    );
    assert_eq!(reversals(&seen_after), ["0421"], "sent again as a repeat");
    drop(switch);
}
