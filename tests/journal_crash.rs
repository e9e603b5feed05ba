//! The journal's promise under SIGKILL: the switch runs as a child process
//! under load and is killed at random moments, then restarted. At the end,
//! against the issuer simulator's own record and the load generator's:
//! every approval the issuer gave reached the acquirer or was reversed, no
//! request reached the issuer twice, and the journal agrees with both
//! sides. Then the database files and every log are searched for the PANs:
//! none may be there in the clear. Cycles: 20, or CARDSWITCH_CRASH_CYCLES.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use cardswitch::message::sensitive::luhn_valid;
use serde_json::Value;
use support::certs::temp_dir;
use support::process::{BIN, Running, start_listening, start_logged, wait_until};

const KEY: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const WRONG_KEY: &str = "k1:ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const BIN_PREFIX: &str = "476173";

fn write_config(dir: &Path, issuer: &str) -> String {
    let text = format!(
        r#"
[switch]
institution_id = "99000000001"
[switch.saf]
retry_min_ms = 50
retry_max_ms = 300
expiry_s = 600
max_attempts = 1000

[journal]
path = "journal.db"

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
connections = 2
timeout_ms = 400

[default_route]
issuer = "issuer-a"
"#
    );
    let path = dir.join("switch.toml");
    std::fs::write(&path, text).expect("config");
    path.display().to_string()
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or("")
}

fn start_switch(dir: &Path, config: &str, cycle: usize) -> Running {
    let log = dir.join(format!("switch-{cycle}.log"));
    start_logged(
        &["run", "--config", config],
        1,
        &log,
        &[("CARDSWITCH_JOURNAL_KEY", KEY), ("RUST_LOG", "debug")],
    )
    .0
}

fn sigkill(proc: &mut Running) {
    let pid = proc.child.id().to_string();
    let _ = Command::new("kill").args(["-KILL", &pid]).status();
    let _ = proc.child.wait();
}

/// Rows of the journal as (rrn, request mti, state, response code, outcome).
fn journal_rows(db: &Path) -> Vec<(String, String, String, String, String)> {
    let conn = rusqlite::Connection::open(db).expect("open journal");
    let mut stmt = conn
        .prepare(
            "SELECT COALESCE(rrn, ''), request_mti, state, COALESCE(response_code, ''),
                    COALESCE(outcome, '') FROM transactions",
        )
        .expect("query");
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .expect("rows")
    .collect::<Result<_, _>>()
    .expect("rows")
}

fn open_work(db: &Path) -> (i64, i64) {
    let conn = rusqlite::Connection::open(db).expect("open journal");
    let open: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM transactions WHERE state IN ('received', 'forwarded', 'reversal_queued')",
            [],
            |r| r.get(0),
        )
        .expect("count");
    let pending: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM saf WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    (open, pending)
}

/// Full PANs of the test's BIN in `bytes`: as ASCII digits or packed BCD.
fn pans_in(bytes: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let bin = BIN_PREFIX.as_bytes();
    for i in 0..bytes.len().saturating_sub(16) {
        let w = &bytes[i..i + 16];
        if w.starts_with(bin) && w.iter().all(u8::is_ascii_digit) && luhn_valid(w) {
            found.push(String::from_utf8_lossy(w).into_owned());
        }
    }
    for i in 0..bytes.len().saturating_sub(8) {
        let w = &bytes[i..i + 8];
        if w[..3] == [0x47, 0x61, 0x73] && w.iter().all(|b| b >> 4 <= 9 && b & 0xF <= 9) {
            let digits: Vec<u8> = w
                .iter()
                .flat_map(|b| [b'0' + (b >> 4), b'0' + (b & 0xF)])
                .collect();
            if luhn_valid(&digits) {
                found.push(String::from_utf8_lossy(&digits).into_owned());
            }
        }
    }
    found
}

#[test]
fn killed_switch_loses_nothing_and_applies_nothing_twice() {
    let cycles: usize = std::env::var("CARDSWITCH_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = temp_dir("journal-crash");
    let issuer_record = dir.join("issuer.jsonl");
    let mut issuer = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--spec",
        "iso87-ascii",
        "--record",
        &issuer_record.display().to_string(),
        "--delay-ms",
        "2",
        "--jitter-ms",
        "30",
        "--drop-rate",
        "0.02",
    ]);
    let config = write_config(&dir, &issuer.addr);
    let db = dir.join("journal.db");
    let mut rng = fastrand::Rng::with_seed(
        std::env::var("CARDSWITCH_CRASH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| fastrand::u64(..)),
    );
    for cycle in 0..cycles {
        let mut switch = start_switch(&dir, &config, cycle);
        let record = dir.join(format!("acquirer-{cycle}.jsonl"));
        let mut load = Command::new(BIN)
            .args([
                "load",
                "--target",
                &switch.addr,
                "--spec",
                "iso87-ascii",
                "--framing",
                "ascii4",
                "--bins",
                &format!("{BIN_PREFIX}:1"),
                "--connections",
                "4",
                "--in-flight",
                "4",
                "--duration-s",
                "2",
                "--timeout-ms",
                "3000",
                "--rrn-start",
                &(cycle as u64 * 1_000_000).to_string(),
                "--record",
                &record.display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("load");
        std::thread::sleep(Duration::from_millis(rng.u64(150..1500)));
        sigkill(&mut switch);
        let _ = load.wait();
    }

    // A last start picks up what the kills left: reversals and advices are
    // delivered until the journal has nothing open.
    let mut switch = start_switch(&dir, &config, cycles);
    wait_until(
        "the journal to close every transaction",
        Duration::from_secs(60),
        || open_work(&db) == (0, 0),
    );
    assert!(
        switch.terminate(Duration::from_secs(10)).is_some(),
        "switch stops on SIGTERM"
    );
    assert!(
        issuer.terminate(Duration::from_secs(10)).is_some(),
        "issuer stops on SIGTERM"
    );

    // The issuer's side.
    let issuer_lines = read_lines(&issuer_record);
    let mut approved_by_issuer: HashSet<String> = HashSet::new();
    let mut reversed_at_issuer: HashSet<String> = HashSet::new();
    let mut seen_requests: HashMap<String, usize> = HashMap::new();
    for line in &issuer_lines {
        let rrn = field(line, "rrn").to_string();
        match field(line, "mti") {
            "0100" => {
                *seen_requests.entry(rrn.clone()).or_default() += 1;
                if field(line, "response_code") == "00" {
                    approved_by_issuer.insert(rrn);
                }
            }
            "0420" | "0421" => {
                reversed_at_issuer.insert(rrn);
            }
            _ => {}
        }
    }
    assert!(
        approved_by_issuer.len() > 50,
        "the load reached the issuer ({} approvals)",
        approved_by_issuer.len()
    );
    let twice: Vec<_> = seen_requests.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "requests forwarded twice: {twice:?}");

    // The acquirer's side.
    let mut approved_at_acquirer: HashSet<String> = HashSet::new();
    for cycle in 0..cycles {
        for line in read_lines(&dir.join(format!("acquirer-{cycle}.jsonl"))) {
            if field(&line, "response_code") == "00" && line["late"] == Value::Bool(false) {
                approved_at_acquirer.insert(field(&line, "rrn").to_string());
            }
        }
    }
    let lost: Vec<_> = approved_by_issuer
        .iter()
        .filter(|rrn| !approved_at_acquirer.contains(*rrn) && !reversed_at_issuer.contains(*rrn))
        .collect();
    assert!(
        lost.is_empty(),
        "{} approvals neither reached the acquirer nor were reversed: {:?}",
        lost.len(),
        lost.iter().take(10).collect::<Vec<_>>()
    );
    let phantom: Vec<_> = approved_at_acquirer
        .iter()
        .filter(|rrn| !approved_by_issuer.contains(*rrn))
        .collect();
    assert!(
        phantom.is_empty(),
        "acquirer approvals the issuer never gave: {phantom:?}"
    );

    // The journal agrees with both sides.
    let rows = journal_rows(&db);
    let by_rrn: HashMap<&str, _> = rows
        .iter()
        .filter(|r| r.1 == "0100")
        .map(|r| (r.0.as_str(), r))
        .collect();
    for rrn in approved_by_issuer.iter().chain(approved_at_acquirer.iter()) {
        let row = by_rrn
            .get(rrn.as_str())
            .unwrap_or_else(|| panic!("RRN {rrn} is not in the journal"));
        let (_, _, state, code, _) = row;
        match state.as_str() {
            "answered" => {
                // Answered rows must say what the acquirer got.
                let got = approved_at_acquirer.contains(rrn);
                assert_eq!(code == "00", got, "journal says {code} for RRN {rrn}");
            }
            "reversed" => assert!(
                reversed_at_issuer.contains(rrn),
                "journal says RRN {rrn} reversed but the issuer never saw the reversal"
            ),
            other => panic!("RRN {rrn} left in state {other}"),
        }
    }
    for (rrn, _, state, _, _) in rows.iter().filter(|r| r.1 == "0100") {
        if state == "reversed" {
            assert!(
                reversed_at_issuer.contains(rrn),
                "reversal of {rrn} not seen by issuer"
            );
        }
    }

    // No PAN in the clear at rest or in any log, at debug level.
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut searched = 0;
    for path in &files {
        let bytes = std::fs::read(path).expect("read");
        searched += bytes.len();
        let pans = pans_in(&bytes);
        assert!(
            pans.is_empty(),
            "{} holds {} full PANs in the clear",
            path.display(),
            pans.len()
        );
    }
    assert!(
        files.iter().any(|p| p.ends_with("journal.db")),
        "journal database searched"
    );
    let masked_rows = rows.len();
    assert!(searched > 0 && masked_rows > 0);
    eprintln!(
        "{cycles} kills: {} issuer approvals, {} reversed, {} journal rows, {} bytes searched",
        approved_by_issuer.len(),
        reversed_at_issuer.len(),
        rows.len(),
        searched
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_or_wrong_key_stops_start_up() {
    let dir = temp_dir("journal-keys");
    let issuer = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--spec",
        "iso87-ascii",
    ]);
    let config = write_config(&dir, &issuer.addr);
    let run = |env: &[(&str, &str)]| {
        let out = Command::new(BIN)
            .args(["run", "--config", &config])
            .env_remove("CARDSWITCH_JOURNAL_KEY")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&[]);
    assert!(!ok && err.contains("no journal key"), "{err}");
    // Start once with the right key (the journal records its check value)...
    let mut first = start_logged(
        &["run", "--config", &config],
        1,
        &dir.join("first.log"),
        &[("CARDSWITCH_JOURNAL_KEY", KEY)],
    )
    .0;
    assert!(first.terminate(Duration::from_secs(10)).is_some());
    // ...then a wrong key for the same id is refused.
    let (ok, err) = run(&[("CARDSWITCH_JOURNAL_KEY", WRONG_KEY)]);
    assert!(!ok && err.contains("wrong key for key id 'k1'"), "{err}");
    assert!(
        !err.contains("ff01020304"),
        "the key never shows in an error: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_acknowledged_advice_survives_a_kill_and_reaches_its_issuer() {
    let dir = temp_dir("journal-advice");
    // The issuer is down while the advice comes in.
    let issuer_addr = support::process::free_addr();
    let config = write_config(&dir, &issuer_addr);
    let mut switch = start_switch(&dir, &config, 0);
    let advice = serde_json::json!({"mti": "0220", "fields": {
        "2": "4761739001010119", "3": "000000", "4": "000000004200", "7": "1123143005",
        "11": "004711", "12": "143005", "13": "1123", "22": "051", "32": "1234567",
        "37": "ADVICE004711", "38": "A1B2C3", "39": "00", "41": "TERM0001",
        "42": "MERCHANT0000001", "49": "978"
    }});
    let (code, answers) = support::process::send_messages(
        &switch.addr,
        "iso87-ascii",
        &["--framing", "ascii4"],
        5,
        &[advice],
    );
    assert_eq!(code, 0);
    let answer = &answers[0];
    assert_eq!(answer["mti"], "0230");
    assert_eq!(answer["fields"]["39"], "00", "acknowledged at once");
    // Killed before it could deliver: the advice is only in the journal.
    sigkill(&mut switch);
    let record = dir.join("issuer.jsonl");
    let mut issuer = start_listening(&[
        "issuer-sim",
        "--listen",
        &issuer_addr,
        "--spec",
        "iso87-ascii",
        "--record",
        &record.display().to_string(),
    ]);
    let mut switch = start_switch(&dir, &config, 1);
    let db = dir.join("journal.db");
    wait_until(
        "the advice to be delivered",
        Duration::from_secs(30),
        || open_work(&db) == (0, 0),
    );
    assert!(switch.terminate(Duration::from_secs(10)).is_some());
    assert!(issuer.terminate(Duration::from_secs(10)).is_some());
    let delivered: Vec<Value> = read_lines(&record)
        .into_iter()
        .filter(|l| field(l, "rrn") == "ADVICE004711")
        .collect();
    assert_eq!(delivered.len(), 1, "delivered once: {delivered:?}");
    assert!(matches!(field(&delivered[0], "mti"), "0220" | "0221"));
    assert_eq!(field(&delivered[0], "amount"), "000000004200");
    let _ = std::fs::remove_dir_all(&dir);
}
