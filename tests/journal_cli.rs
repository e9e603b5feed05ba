//! `cardswitch journal` over a journal written by a running switch: search
//! by RRN, STAN, terminal, PAN (keyed hash) and masked PAN and time range,
//! one transaction's life through a time-out and its reversal, CSV and
//! JSON export, an online backup while the switch runs, and key files.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use support::certs::temp_dir;
use support::process::{BIN, start_listening, start_logged, wait_until};

const KEY: &str = "k1:303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f";
const PAN_OK: &str = "4761739001010119";
const PAN_SILENT: &str = "5454000000000000";

fn config(dir: &Path, fast: &str, silent: &str) -> String {
    let text = format!(
        r#"
[switch]
institution_id = "99000000001"
[switch.saf]
retry_min_ms = 50
retry_max_ms = 200
response_wait_ms = 300
[journal]
path = "journal.db"
[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = {{ length = "ascii4" }}
[[issuer]]
name = "fast"
addresses = ["{fast}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
timeout_ms = 500
[[issuer]]
name = "silent"
addresses = ["{silent}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
timeout_ms = 300
[[route]]
bins = ["476173"]
issuer = "fast"
[[route]]
bins = ["545400"]
issuer = "silent"
"#
    );
    let path = dir.join("switch.toml");
    std::fs::write(&path, text).expect("config");
    path.display().to_string()
}

fn auth(pan: &str, stan: &str) -> Value {
    json!({"mti": "0100", "fields": {
        "2": pan, "3": "000000", "4": "000000001500", "7": "1123143005",
        "11": stan, "12": "143005", "13": "1123", "14": "2812", "22": "051",
        "32": "1234567", "37": format!("7777{stan}00"), "41": "TERMJ001",
        "42": "MERCHANT0000001", "49": "978"
    }})
}

fn send(addr: &str, msg: &Value) -> Value {
    let (code, answers) = support::process::send_messages(
        addr,
        "iso87-ascii",
        &["--framing", "ascii4"],
        5,
        std::slice::from_ref(msg),
    );
    assert_eq!(code, 0);
    answers.into_iter().next().expect("a response")
}

fn journal(args: &[&str], key: Option<&str>) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("journal")
        .args(args)
        .env_remove("CARDSWITCH_JOURNAL_KEY");
    if let Some(k) = key {
        cmd.env("CARDSWITCH_JOURNAL_KEY", k);
    }
    let out = cmd.stdin(Stdio::null()).output().expect("journal");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[test]
fn search_show_export_and_backup() {
    let dir = temp_dir("journal-cli");
    let fast = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--spec",
        "iso87-ascii",
    ]);
    // Answers nothing: every request to it times out and is reversed,
    // until its 0420s are acknowledged (the drop rate is for 0100s only
    // in effect, since a repeat 0421 is answered half the time).
    let silent = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--spec",
        "iso87-ascii",
        "--drop-rate",
        "0.5",
    ]);
    let cfg = config(&dir, &fast.addr, &silent.addr);
    let mut switch = start_logged(
        &["run", "--config", &cfg],
        1,
        &dir.join("switch.log"),
        &[("CARDSWITCH_JOURNAL_KEY", KEY)],
    )
    .0;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ok = send(&switch.addr, &auth(PAN_OK, "000101"));
    assert_eq!(ok["fields"]["39"], "00");
    send(&switch.addr, &auth(PAN_OK, "000102"));
    // One to the silent issuer, resent until its request is dropped (half
    // of them are answered).
    let mut timed_out_stan = None;
    for n in 0..20 {
        let stan = format!("0002{n:02}");
        if send(&switch.addr, &auth(PAN_SILENT, &stan))["fields"]["39"] == "91" {
            timed_out_stan = Some(stan);
            break;
        }
    }
    let timed_out_stan = timed_out_stan.expect("a time-out within 20 tries");
    let db = dir.join("journal.db").display().to_string();
    // Answers are recorded once sent, just after the acquirer has them.
    wait_until(
        "every answer in the journal",
        Duration::from_secs(10),
        || {
            let (_, out, _) = journal(&["search", "--db", &db, "--format", "json"], None);
            let rows = json_lines(&out);
            rows.len() >= 3 && rows.iter().all(|r| !r["outcome"].is_null())
        },
    );

    // Search by RRN, STAN + terminal, masked PAN, PAN (keyed hash), time.
    let (code, out, err) = journal(
        &[
            "search",
            "--db",
            &db,
            "--rrn",
            "777700010100",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["pan"], "476173******0119");
    assert_eq!(rows[0]["response_code"], "00");
    assert_eq!(rows[0]["outcome"], "approved");
    assert_eq!(rows[0]["issuer"], "fast");
    let id = rows[0]["id"].as_i64().expect("id");

    let (_, out, _) = journal(
        &[
            "search",
            "--db",
            &db,
            "--stan",
            "000102",
            "--terminal",
            "TERMJ001",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(json_lines(&out).len(), 1);
    let (_, out, _) = journal(
        &[
            "search",
            "--db",
            &db,
            "--masked-pan",
            "476173******0119",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(json_lines(&out).len(), 2);
    let (code, out, err) = journal(
        &["search", "--db", &db, "--pan", PAN_OK, "--format", "json"],
        Some(KEY),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_lines(&out).len(), 2);
    assert!(
        !out.contains(PAN_OK) && !err.contains(PAN_OK),
        "a PAN searched for is never printed"
    );
    let (code, _, err) = journal(&["search", "--db", &db, "--pan", PAN_OK], None);
    assert_ne!(code, 0);
    assert!(err.contains("no journal key"), "{err}");
    let wrong = "k1:0000000000000000000000000000000000000000000000000000000000000000";
    let (code, _, err) = journal(&["search", "--db", &db, "--pan", PAN_OK], Some(wrong));
    assert_ne!(code, 0);
    assert!(err.contains("wrong key"), "{err}");
    let from = before.to_string();
    let (_, out, _) = journal(
        &["search", "--db", &db, "--from", &from, "--format", "json"],
        None,
    );
    assert!(json_lines(&out).len() >= 3);
    let (_, out, _) = journal(
        &["search", "--db", &db, "--to", &from, "--format", "json"],
        None,
    );
    assert_eq!(json_lines(&out).len(), 0);
    let (code, _, err) = journal(&["search", "--db", &db, "--from", "yesterday"], None);
    assert_ne!(code, 0);
    assert!(err.contains("--from"), "{err}");

    // The time-out's life: received, forwarded, timed out, reversal
    // queued, acknowledged once the silent issuer answers a repeat.
    let (_, out, _) = journal(
        &[
            "search",
            "--db",
            &db,
            "--stan",
            &timed_out_stan,
            "--format",
            "json",
        ],
        None,
    );
    let row = &json_lines(&out)[0];
    assert_eq!(row["outcome"], "timed_out");
    let tid = row["id"].as_i64().unwrap().to_string();
    wait_until(
        "the reversal to be acknowledged",
        Duration::from_secs(20),
        || {
            let (_, out, _) = journal(&["show", "--db", &db, &tid], None);
            out.contains("timeout reversal acknowledged")
        },
    );
    let (code, out, err) = journal(&["show", "--db", &db, &tid], None);
    assert_eq!(code, 0, "{err}");
    let order = [
        "request received",
        "forwarded",
        "timed out",
        "timeout reversal queued",
        "response sent",
        "timeout reversal acknowledged",
    ];
    let mut at = 0;
    for step in order {
        let pos = out[at..]
            .find(step)
            .unwrap_or_else(|| panic!("{step} missing or out of order in:\n{out}"));
        at += pos;
    }
    let (_, out, _) = journal(&["show", "--db", &db, &id.to_string(), "--json"], None);
    let life: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(life["transaction"]["state"], "answered");
    assert!(life["life"].as_array().unwrap().len() >= 3);

    // Export, CSV and JSON, to a file.
    let csv = dir.join("export.csv");
    let (code, _, err) = journal(
        &[
            "export",
            "--db",
            &db,
            "--format",
            "csv",
            "--out",
            &csv.display().to_string(),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("id,received_at,acquirer"));
    assert!(text.lines().count() >= 4);
    assert!(!text.contains(PAN_OK) && text.contains("476173******0119"));

    // Backup while the switch runs: a consistent copy with the same rows.
    let copy = dir.join("copy.db");
    let (code, _, err) = journal(&["backup", "--db", &db, &copy.display().to_string()], None);
    assert_eq!(code, 0, "{err}");
    let (_, a, _) = journal(
        &[
            "search",
            "--db",
            &db,
            "--format",
            "csv",
            "--to",
            "99999999999999",
        ],
        None,
    );
    let (_, b, _) = journal(
        &[
            "search",
            "--db",
            &copy.display().to_string(),
            "--format",
            "csv",
            "--to",
            "99999999999999",
        ],
        None,
    );
    assert_eq!(a, b, "the backup holds what the journal holds");
    let (code, _, err) = journal(&["backup", "--db", &db, &copy.display().to_string()], None);
    assert_ne!(code, 0);
    assert!(err.contains("never overwrites"), "{err}");

    // Key files: made with mode 0600, never overwritten, loadable.
    let keyfile = dir.join("keys.toml");
    let (code, _, err) = journal(&["keygen", &keyfile.display().to_string()], None);
    assert_eq!(code, 0, "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keyfile).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let (code, _, _) = journal(&["keygen", &keyfile.display().to_string()], None);
    assert_ne!(code, 0);
    // The switch's log holds no PAN.
    assert!(switch.terminate(Duration::from_secs(10)).is_some());
    let log = std::fs::read_to_string(dir.join("switch.log")).unwrap();
    assert!(!log.contains(PAN_OK) && !log.contains(PAN_SILENT));
}
