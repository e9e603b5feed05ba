//! Acquirer processing end to end, as processes on loopback: terminal
//! traffic (`cardswitch send`) through the switch (`cardswitch run
//! --merchant-registry`, journaling to SQLite) to an issuer simulator; then
//! the business-day cut-off into an IPM clearing file and its settlement
//! report. Covers: unknown and blocked terminals declined (58 / 03), an
//! approval, a decline, a pre-authorization and its completion, a partial
//! and a full reversal, a batch closed in balance and one out of balance,
//! and a cut-off killed with SIGKILL in the middle then run again: each
//! captured transaction in exactly one file, once.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::certs::temp_dir;
use support::process::{BIN, run, start_listening, start_logged};

const KEY: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const VISA: &str = "4761739001010119";

fn cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut all = vec![("CARDSWITCH_JOURNAL_KEY", KEY)];
    all.extend_from_slice(env);
    support::process::run_env(args, &all)
}

fn write_config(dir: &Path, issuer: &str) -> PathBuf {
    let text = format!(
        r#"
[switch]
institution_id = "99000000001"

[journal]
path = "{}"

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
timeout_ms = 2000

[default_route]
issuer = "issuer-a"
"#,
        dir.join("journal.db").display()
    );
    let path = dir.join("switch.toml");
    std::fs::write(&path, text).expect("config");
    path
}

fn encode(msg: &Value) -> String {
    let mut child = Command::new(BIN)
        .args(["encode", "--spec", "iso87-ascii"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("encode");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(msg.to_string().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "encode failed for {msg}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Sends one message at a time (in order) and returns the responses.
fn send(addr: &str, msg: Value) -> Value {
    let hex = encode(&msg);
    let (code, out, err) = run(&[
        "send",
        "--json",
        "--timeout-s",
        "5",
        "--target",
        addr,
        "--spec",
        "iso87-ascii",
        "--framing",
        "ascii4",
        &hex,
    ]);
    assert_eq!(code, 0, "send failed: {err}");
    serde_json::from_str(out.lines().next().expect("a response")).expect("json")
}

fn request(mti: &str, terminal: &str, merchant: &str, stan: u32, amount: u64) -> Value {
    json!({"mti": mti, "fields": {
        "2": VISA, "3": "000000", "4": format!("{amount:012}"), "7": "1123143005",
        "11": format!("{stan:06}"), "12": "143005", "13": "1123", "14": "2812", "22": "051",
        "32": "1234567", "37": format!("E2E{stan:09}"), "41": terminal,
        "42": merchant, "49": "978"
    }})
}

/// `m` (a 0220 / 0400 / 0420) pointing at its original by DE90, with a
/// DE95 replacement amount when given.
fn reversal_of(mut m: Value, orig_mti: &str, orig_stan: u32, replacement: Option<u64>) -> Value {
    m["fields"]["90"] = json!(format!(
        "{orig_mti}{orig_stan:06}112314300500001234567{:011}",
        0
    ));
    if let Some(r) = replacement {
        m["fields"]["95"] = json!(format!("{r:012}{:030}", 0));
    }
    m
}

fn batch_close(
    terminal: &str,
    stan: u32,
    debits: u64,
    debits_minor: u64,
    reversals: u64,
    reversed_minor: u64,
) -> Value {
    json!({"mti": "0500", "fields": {
        "3": "920000", "7": "1123180000", "11": format!("{stan:06}"), "32": "1234567",
        "41": terminal, "42": "MERCHANT0000001",
        "74": "0000000000", "75": "0000000000", "76": format!("{debits:010}"), "77": format!("{reversals:010}"),
        "86": "0000000000000000", "87": "0000000000000000", "88": format!("{debits_minor:016}"), "89": format!("{reversed_minor:016}")
    }})
}

fn code(v: &Value) -> &str {
    v["fields"]["39"].as_str().unwrap_or("")
}

fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    let (y, m, d) = cardswitch::message::time::civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

fn read_file(path: &Path) -> Vec<Value> {
    let (code, out, err) = cli(
        &[
            "clearing",
            "read",
            "--json",
            "--reveal",
            path.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "read: {err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn terminal_traffic_to_clearing_file_and_settlement() {
    let dir = temp_dir("clearing-e2e");
    let db = dir.join("journal.db");
    let db_s = db.to_str().unwrap().to_string();
    let (c, _, err) = cli(
        &[
            "clearing",
            "merchants",
            "load",
            "fixtures/clearing/merchants.toml",
            "--db",
            &db_s,
        ],
        &[],
    );
    assert_eq!(c, 0, "{err}");
    let issuer = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--spec",
        "iso87-ascii",
        "--approve-limit",
        "50000",
    ]);
    let config = write_config(&dir, &issuer.addr);
    let (mut switch, addrs) = start_logged(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--merchant-registry",
        ],
        1,
        &dir.join("switch.log"),
        &[("CARDSWITCH_JOURNAL_KEY", KEY)],
    );
    let pos = &addrs[0];
    let m1 = "MERCHANT0000001";

    // Admission: unknown terminal 58, blocked merchant 03, wrong merchant 03.
    assert_eq!(
        code(&send(pos, request("0200", "TERM7777", m1, 1, 100))),
        "58"
    );
    assert_eq!(
        code(&send(
            pos,
            request("0200", "TERM0009", "MERCHANT0000003", 2, 100)
        )),
        "03"
    );
    assert_eq!(
        code(&send(
            pos,
            request("0200", "TERM0001", "MERCHANT0000002", 3, 100)
        )),
        "03"
    );
    // TERM0001: a sale, a sale partially reversed, a decline over the limit.
    assert_eq!(
        code(&send(pos, request("0200", "TERM0001", m1, 10, 10_000))),
        "00"
    );
    assert_eq!(
        code(&send(pos, request("0200", "TERM0001", m1, 11, 2_000))),
        "00"
    );
    let partial = send(
        pos,
        reversal_of(
            request("0400", "TERM0001", m1, 12, 2_000),
            "0200",
            11,
            Some(1_500),
        ),
    );
    assert_eq!(partial["mti"], "0410");
    assert_eq!(
        code(&send(pos, request("0200", "TERM0001", m1, 13, 60_000))),
        "51"
    );
    // TERM0002: a pre-authorization completed for less; a sale fully reversed.
    assert_eq!(
        code(&send(pos, request("0100", "TERM0002", m1, 20, 8_000))),
        "00"
    );
    let completion = send(
        pos,
        reversal_of(request("0220", "TERM0002", m1, 21, 7_350), "0100", 20, None),
    );
    assert_eq!(completion["mti"], "0230");
    assert_eq!(
        code(&send(pos, request("0200", "TERM0002", m1, 22, 3_000))),
        "00"
    );
    let full = send(
        pos,
        reversal_of(request("0420", "TERM0002", m1, 23, 3_000), "0200", 22, None),
    );
    assert_eq!(full["mti"], "0430");

    // Blocking a terminal takes effect on the running switch. Probes are
    // pre-authorizations never completed (so never cleared), each with its
    // own STAN (not duplicates).
    let mut probe_stan = 100;
    let mut probe = || {
        probe_stan += 1;
        code(&send(
            pos,
            request("0100", "TERM0003", "MERCHANT0000002", probe_stan, 100),
        ))
        .to_string()
    };
    assert_eq!(probe(), "00");
    let (c, _, err) = cli(
        &[
            "clearing",
            "merchants",
            "block",
            "--terminal",
            "TERM0003",
            "--db",
            &db_s,
        ],
        &[],
    );
    assert_eq!(c, 0, "{err}");
    support::process::wait_until("TERM0003 blocked", Duration::from_secs(10), || {
        probe() == "58"
    });
    let (c, _, err) = cli(
        &[
            "clearing",
            "merchants",
            "unblock",
            "--terminal",
            "TERM0003",
            "--db",
            &db_s,
        ],
        &[],
    );
    assert_eq!(c, 0, "{err}");
    support::process::wait_until("TERM0003 unblocked", Duration::from_secs(10), || {
        probe() == "00"
    });

    // Batch close: TERM0001 in balance (2 debits 12000, 1 reversal of 500),
    // TERM0002 out of balance (it forgot the reversal).
    let closed = send(pos, batch_close("TERM0001", 30, 2, 12_000, 1, 500));
    assert_eq!(
        (
            closed["mti"].as_str(),
            code(&closed),
            closed["fields"]["66"].as_str()
        ),
        (Some("0510"), "00", Some("1"))
    );
    assert_eq!(closed["fields"]["97"], "C0000000000011500");
    let off = send(pos, batch_close("TERM0002", 31, 2, 10_350, 0, 0));
    assert_eq!(
        (code(&off), off["fields"]["66"].as_str()),
        ("95", Some("2"))
    );
    assert_eq!(off["fields"]["77"], "0000000001");
    assert_eq!(off["fields"]["89"], "0000000000003000");

    // Cut-off, killed after choosing (before the rename), then run again.
    let out = dir.join("out");
    let out_s = out.to_str().unwrap().to_string();
    let date = today();
    let args = [
        "clearing", "cutoff", "--date", &date, "--db", &db_s, "--out", &out_s,
    ];
    let mut child = Command::new(BIN)
        .args(args)
        .env("CARDSWITCH_JOURNAL_KEY", KEY)
        .env("CARDSWITCH_CUTOFF_STALL", "before_rename")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(line, "cutoff: stalled at before_rename");
    child.kill().unwrap();
    child.wait().unwrap();
    // Traffic goes on meanwhile: a sale on TERM0003 (another merchant).
    assert_eq!(
        code(&send(
            pos,
            request("0200", "TERM0003", "MERCHANT0000002", 40, 999)
        )),
        "00"
    );
    // The switch journals the outcome just after the acquirer has its
    // answer: wait for it, or the next cut-off could miss the sale.
    support::process::wait_until(
        "the sale's outcome journaled",
        Duration::from_secs(10),
        || {
            let (_, out, _) = cli(
                &[
                    "journal",
                    "search",
                    "--db",
                    &db_s,
                    "--rrn",
                    "E2E000000040",
                    "--format",
                    "json",
                ],
                &[],
            );
            out.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .any(|row| row["outcome"] == "approved")
        },
    );
    let (c, stdout, err) = cli(&args, &[]);
    assert_eq!(c, 0, "{err}");
    assert!(stdout.contains("finished interrupted file"), "{stdout}");
    let (c, stdout, _) = cli(&args, &[]);
    assert_eq!(c, 0);
    assert!(stdout.contains("nothing to clear"), "{stdout}");

    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ipm"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2);
    let mut amounts = Vec::new();
    let mut total = 0u64;
    for f in &files {
        for r in read_file(f) {
            if r["mti"] == "1240" {
                assert_eq!(r["fields"]["2"], VISA);
                let a: u64 = r["fields"]["4"].as_str().unwrap().parse().unwrap();
                amounts.push(a);
                total += a;
            }
        }
    }
    amounts.sort();
    assert_eq!(
        amounts,
        vec![999, 1_500, 7_350, 10_000],
        "each captured transaction exactly once"
    );

    // Settlement reports add up to the files; visa fees by plan, rounded half up.
    let fee = |amount: u64, bp: u64, fixed: u64| (amount * bp + 5_000) / 10_000 + fixed;
    let mut settled = 0u64;
    let mut fees = 0u64;
    for f in &files {
        let csv = std::fs::read_to_string(f.with_file_name(format!(
            "{}-settlement.csv",
            f.file_stem().unwrap().to_str().unwrap()
        )))
        .unwrap();
        for line in csv.lines().skip(1) {
            let cols: Vec<&str> = line.split(',').collect();
            settled += cols[4].parse::<u64>().unwrap();
            fees += cols[5].parse::<u64>().unwrap();
            assert!(!line.contains(VISA));
        }
    }
    assert_eq!(settled, total);
    // MERCHANT0000001 standard visa 175 bp + 10; MERCHANT0000002 small plan, visa -> other 120 bp + 5.
    assert_eq!(
        fees,
        fee(10_000, 175, 10) + fee(1_500, 175, 10) + fee(7_350, 175, 10) + fee(999, 120, 5)
    );
    let _ = switch.terminate(Duration::from_secs(5));
    let log = std::fs::read_to_string(dir.join("switch.log")).unwrap_or_default();
    assert!(!log.contains(VISA), "full PAN in the switch log");
}
