//! The cut-off as a process, over journal rows seeded as the switch writes
//! them: capture rules (completions, reversals, partial reversals, declines,
//! time-outs, stand-in), one file per run with nothing cleared twice, the
//! settlement adding up to the file, and SIGKILL in the middle (before the
//! commit, before the rename, and at random moments) followed by a re-run:
//! every captured transaction in exactly one file, once.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cardswitch::clearing::schema::migrate_all;
use cardswitch::clearing::seed::{SeedRow, insert_rows, test_pan};
use cardswitch::journal::TxnOutcome;
use cardswitch::journal::crypto::Keyring;
use rusqlite::Connection;
use serde_json::Value;
use support::certs::temp_dir;
use support::process::{BIN, run};

const KEY: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const DATE: &str = "2026-11-23";
/// 2026-11-23 00:00 UTC.
const DAY_MS: i64 = 20_780 * 86_400_000;

fn keyring() -> std::sync::Arc<Keyring> {
    std::sync::Arc::new(Keyring::from_env_value(KEY).unwrap())
}

fn cli(args: &[&str]) -> (i32, String, String) {
    support::process::run_env(args, &[("CARDSWITCH_JOURNAL_KEY", KEY)])
}

fn new_db(dir: &Path) -> (PathBuf, Connection) {
    let db = dir.join("journal.db");
    let mut conn = Connection::open(&db).unwrap();
    migrate_all(&mut conn).unwrap();
    let (code, _, err) = cli(&[
        "clearing",
        "merchants",
        "load",
        "fixtures/clearing/merchants.toml",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    (db, conn)
}

fn cutoff(db: &Path, out: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "clearing",
        "cutoff",
        "--date",
        DATE,
        "--db",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    cli(&args)
}

/// The records of a clearing file, read (and checked) by `clearing read --json --reveal`.
fn records(path: &Path, blocked: bool) -> Vec<Value> {
    let mut args = vec![
        "clearing",
        "read",
        "--json",
        "--reveal",
        path.to_str().unwrap(),
    ];
    if !blocked {
        args.push("--unblocked");
    }
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "read {}: {err}", path.display());
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ipm_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "ipm"));
    v.sort();
    v
}

fn row<'a>(terminal: &'a str, mti: &'a str, amount: u64, stan: u32, pan: &'a str) -> SeedRow<'a> {
    SeedRow {
        received_at_ms: DAY_MS + 3_600_000 + i64::from(stan),
        request_mti: mti,
        processing_code: "000000",
        amount_minor: amount,
        stan,
        rrn: Some(format!("{terminal}{stan:04}")),
        terminal_id: terminal,
        merchant_id: if terminal == "TERM0003" {
            "MERCHANT0000002"
        } else {
            "MERCHANT0000001"
        },
        currency: "978",
        pan,
        outcome: TxnOutcome::Approved,
        response_code: "00",
        original_data: None,
        replacement_minor: None,
    }
}

fn original(mti: &str, stan: u32) -> Option<String> {
    Some(format!("{mti}{stan:06}1123120000000000000010000000000"))
}

/// Presentments of a file: (DE2, DE4, DE31, DE42).
fn presentments(recs: &[Value]) -> Vec<(String, u64, String, String)> {
    recs.iter()
        .filter(|r| r["mti"] == "1240")
        .map(|r| {
            let f = &r["fields"];
            (
                f["2"].as_str().unwrap().to_string(),
                f["4"].as_str().unwrap().parse().unwrap(),
                f["31"].as_str().unwrap().to_string(),
                f["42"].as_str().unwrap().trim_end().to_string(),
            )
        })
        .collect()
}

#[test]
fn captures_by_the_rules_clears_once_and_settles_to_the_file() {
    let dir = temp_dir("clearing-cutoff-rules");
    let out = dir.join("out");
    let (db, _conn) = new_db(&dir);
    let mc = test_pan("545400", 1);
    let visa = test_pan("476173", 2);
    let other = test_pan("601100", 3);
    let k = keyring();
    let rows = vec![
        row("TERM0001", "0200", 10_000, 1, &mc), // 1 captured 10000
        SeedRow {
            outcome: TxnOutcome::Declined,
            response_code: "51",
            ..row("TERM0001", "0200", 5_000, 2, &mc)
        }, // not captured
        SeedRow {
            outcome: TxnOutcome::TimedOut,
            response_code: "91",
            ..row("TERM0001", "0200", 6_000, 3, &visa)
        }, // not captured
        row("TERM0002", "0100", 8_000, 4, &visa), // pre-auth ...
        SeedRow {
            original_data: original("0100", 4),
            rrn: None,
            outcome: TxnOutcome::AdviceAcked,
            ..row("TERM0002", "0220", 7_350, 5, &visa)
        }, // ... completed at 7350
        row("TERM0001", "0200", 2_000, 6, &mc),  // partially reversed to 1500
        SeedRow {
            original_data: original("0200", 6),
            replacement_minor: Some(1_500),
            rrn: None,
            ..row("TERM0001", "0400", 2_000, 7, &mc)
        },
        row("TERM0003", "0200", 3_000, 8, &other), // fully reversed
        SeedRow {
            original_data: original("0200", 8),
            rrn: None,
            outcome: TxnOutcome::AdviceAcked,
            ..row("TERM0003", "0420", 3_000, 9, &other)
        },
        SeedRow {
            outcome: TxnOutcome::StandIn,
            response_code: "00",
            ..row("TERM0003", "0200", 999, 10, &other)
        }, // stand-in approval: captured
        SeedRow {
            outcome: TxnOutcome::StandIn,
            response_code: "91",
            ..row("TERM0003", "0200", 998, 11, &other)
        }, // stand-in refused: not captured
        row("TERM0002", "0100", 4_000, 12, &mc), // awaiting completion
        SeedRow {
            received_at_ms: DAY_MS + 86_400_000 + 5,
            ..row("TERM0001", "0200", 777, 13, &mc)
        }, // next business day
    ];
    insert_rows(&db, &k, rows).unwrap();

    let (code, stdout, err) = cutoff(&db, &out, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("1 authorizations awaiting completion"),
        "{stdout}"
    );
    let files = ipm_files(&out);
    assert_eq!(files.len(), 1);
    let recs = records(&files[0], true);
    let mut got: Vec<(String, u64)> = presentments(&recs)
        .into_iter()
        .map(|(p, a, _, _)| (p, a))
        .collect();
    got.sort();
    let mut want = vec![
        (mc.clone(), 10_000),
        (visa.clone(), 7_350),
        (mc.clone(), 1_500),
        (other.clone(), 999),
    ];
    want.sort();
    assert_eq!(got, want);
    let trailer = recs.iter().rev().find(|r| r["mti"] == "1644").unwrap();
    let de48 = trailer["fields"]["48"].as_str().unwrap();
    assert!(
        de48.contains("03010160000000000019849") && de48.contains("030600800000006"),
        "{de48}"
    );

    // Settlement: standard plan for MERCHANT0000001 (mastercard 150 bp + 10, visa 175 bp + 10),
    // small plan for MERCHANT0000002 (other 120 bp + 5). Rate part rounded half up per transaction.
    let fee = |amount: u64, bp: u64, fixed: u64| (amount * bp + 5_000) / 10_000 + fixed;
    let m1_fee = fee(10_000, 150, 10) + fee(7_350, 175, 10) + fee(1_500, 150, 10);
    let m2_fee = fee(999, 120, 5);
    let csv = std::fs::read_to_string(out.join("IPM-20261123-00001-settlement.csv")).unwrap();
    let lines: BTreeMap<String, Vec<String>> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<String> = l.split(',').map(str::to_string).collect();
            (cols[0].clone(), cols)
        })
        .collect();
    let m1 = &lines["MERCHANT0000001"];
    assert_eq!(
        m1[3..],
        [
            3.to_string(),
            18_850.to_string(),
            m1_fee.to_string(),
            (18_850 - m1_fee).to_string()
        ]
    );
    let m2 = &lines["MERCHANT0000002"];
    assert_eq!(
        m2[3..],
        [
            1.to_string(),
            999.to_string(),
            m2_fee.to_string(),
            (999 - m2_fee).to_string()
        ]
    );
    assert_eq!(m1[2], "DE89370400440532013000");
    let summary = std::fs::read_to_string(out.join("IPM-20261123-00001-settlement.txt")).unwrap();
    assert!(
        summary.contains("file total: 4 presentments, DE4 sum 19849"),
        "{summary}"
    );
    assert!(
        !summary.contains(&mc) && !csv.contains(&mc),
        "card data in a report"
    );

    // Again: nothing left to clear, no second file.
    let (code, stdout, _) = cutoff(&db, &out, &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("nothing to clear"), "{stdout}");
    assert_eq!(ipm_files(&out).len(), 1);

    // The completion of the waiting pre-auth and a reversal of an already
    // cleared purchase arrive: only the completion is presented, in file 2.
    let late = vec![
        SeedRow {
            original_data: original("0100", 12),
            rrn: None,
            outcome: TxnOutcome::AdviceAcked,
            ..row("TERM0002", "0220", 3_900, 14, &mc)
        },
        SeedRow {
            original_data: original("0200", 1),
            rrn: None,
            ..row("TERM0001", "0400", 10_000, 15, &mc)
        },
    ];
    insert_rows(&db, &k, late).unwrap();
    let (code, _, err) = cutoff(&db, &out, &[]);
    assert_eq!(code, 0, "{err}");
    let files = ipm_files(&out);
    assert_eq!(files.len(), 2);
    let second = presentments(&records(&files[1], true));
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].0.as_str(), second[0].1), (mc.as_str(), 3_900));
    // ARNs never repeat across files.
    let first = presentments(&records(&files[0], true));
    let arns: HashSet<&String> = first.iter().chain(&second).map(|p| &p.2).collect();
    assert_eq!(arns.len(), 5);
    // The next business day's purchase waits for its own cut-off.
    let (code, _, err) = cli(&[
        "clearing",
        "cutoff",
        "--date",
        "2026-11-24",
        "--db",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--unblocked",
    ]);
    assert_eq!(code, 0, "{err}");
    let third = ipm_files(&out)
        .into_iter()
        .find(|p| p.to_str().unwrap().contains("20261124"))
        .unwrap();
    let recs = presentments(&records(&third, false));
    assert_eq!(recs.iter().map(|p| p.1).collect::<Vec<_>>(), vec![777]);
}

#[test]
fn unregistered_terminals_stop_the_cutoff_before_anything_is_cleared() {
    let dir = temp_dir("clearing-cutoff-unregistered");
    let out = dir.join("out");
    let (db, conn) = new_db(&dir);
    let pan = test_pan("545400", 9);
    insert_rows(
        &db,
        &keyring(),
        [
            row("TERM0001", "0200", 100, 1, &pan),
            row("TERM7777", "0200", 200, 2, &pan),
        ],
    )
    .unwrap();
    let (code, _, err) = cutoff(&db, &out, &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("TERM7777") && err.contains("nothing was cleared"),
        "{err}"
    );
    let cleared: i64 = conn
        .query_row("SELECT COUNT(*) FROM clearing_items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(cleared, 0);
    assert!(ipm_files(&out).is_empty());
}

/// Seeds `n` approved purchases over the fixture's terminals; returns them as (pan, amount).
fn seed_many(db: &Path, n: u32) -> Vec<(String, u64)> {
    let terminals = ["TERM0001", "TERM0002", "TERM0003"];
    let pans: Vec<String> = (0..n).map(|i| test_pan("545400", u64::from(i))).collect();
    let rows: Vec<SeedRow> = (0..n)
        .map(|i| SeedRow {
            rrn: Some(format!("{i:012}")),
            ..row(
                terminals[i as usize % 3],
                "0200",
                100 + u64::from(i),
                i + 1,
                &pans[i as usize],
            )
        })
        .collect();
    insert_rows(db, &keyring(), rows).unwrap();
    pans.into_iter()
        .zip((0..n).map(|i| 100 + u64::from(i)))
        .collect()
}

/// Starts a cut-off that stalls at `point`, waits for it to get there, SIGKILLs it.
fn kill_at(db: &Path, out: &Path, point: &str) {
    let mut child = Command::new(BIN)
        .args([
            "clearing",
            "cutoff",
            "--date",
            DATE,
            "--db",
            db.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .env("CARDSWITCH_JOURNAL_KEY", KEY)
        .env("CARDSWITCH_CUTOFF_STALL", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let line = lines.next().expect("a line").unwrap();
    assert_eq!(line, format!("cutoff: stalled at {point}"));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Every seeded purchase appears exactly once over all files, with its amount.
fn assert_exactly_once(out: &Path, seeded: &[(String, u64)]) {
    let mut seen: Vec<(String, u64)> = Vec::new();
    for f in ipm_files(out) {
        seen.extend(
            presentments(&records(&f, true))
                .into_iter()
                .map(|(p, a, _, _)| (p, a)),
        );
    }
    seen.sort();
    let mut want = seeded.to_vec();
    want.sort();
    assert_eq!(
        seen.len(),
        want.len(),
        "presented {} of {}",
        seen.len(),
        want.len()
    );
    assert_eq!(seen, want);
}

#[test]
fn killed_before_the_commit_clears_nothing_and_the_rerun_clears_all_once() {
    let dir = temp_dir("clearing-kill-commit");
    let out = dir.join("out");
    let (db, conn) = new_db(&dir);
    let seeded = seed_many(&db, 3_000);
    kill_at(&db, &out, "before_commit");
    let items: i64 = conn
        .query_row("SELECT COUNT(*) FROM clearing_items", [], |r| r.get(0))
        .unwrap();
    let files: i64 = conn
        .query_row("SELECT COUNT(*) FROM clearing_files", [], |r| r.get(0))
        .unwrap();
    assert_eq!((items, files), (0, 0));
    assert!(ipm_files(&out).is_empty());
    let (code, _, err) = cutoff(&db, &out, &[]);
    assert_eq!(code, 0, "{err}");
    assert_exactly_once(&out, &seeded);
}

#[test]
fn killed_before_the_rename_the_rerun_writes_the_chosen_file_and_nothing_else() {
    let dir = temp_dir("clearing-kill-rename");
    let out = dir.join("out");
    let (db, conn) = new_db(&dir);
    let seeded = seed_many(&db, 3_000);
    kill_at(&db, &out, "before_rename");
    let state: String = conn
        .query_row("SELECT state FROM clearing_files", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "committed");
    assert!(
        ipm_files(&out).is_empty(),
        "a file in place before its rename"
    );
    // More traffic arrives before the re-run: it goes into a second file.
    let more: Vec<(String, u64)> = {
        let pan = test_pan("222100", 77);
        insert_rows(
            &db,
            &keyring(),
            [row("TERM0001", "0200", 4_242, 9_999, &pan)],
        )
        .unwrap();
        vec![(pan, 4_242)]
    };
    let (code, stdout, err) = cutoff(&db, &out, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("finished interrupted file"), "{stdout}");
    assert_eq!(ipm_files(&out).len(), 2);
    let all: Vec<(String, u64)> = seeded.into_iter().chain(more).collect();
    assert_exactly_once(&out, &all);
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn killed_at_random_moments_then_rerun_clears_each_transaction_exactly_once() {
    let dir = temp_dir("clearing-kill-random");
    let out = dir.join("out");
    let (db, _conn) = new_db(&dir);
    let mut seeded = Vec::new();
    for round in 0..4u32 {
        let pans: Vec<String> = (0..2_000)
            .map(|i| test_pan("545401", u64::from(round * 10_000 + i)))
            .collect();
        let rows: Vec<SeedRow> = (0..2_000u32)
            .map(|i| SeedRow {
                rrn: Some(format!("{round}{i:011}")),
                ..row(
                    "TERM0002",
                    "0200",
                    1 + u64::from(i),
                    round * 10_000 + i + 1,
                    &pans[i as usize],
                )
            })
            .collect();
        insert_rows(&db, &keyring(), rows).unwrap();
        seeded.extend(pans.into_iter().zip((0..2_000u64).map(|i| 1 + i)));
        let mut child = Command::new(BIN)
            .args([
                "clearing",
                "cutoff",
                "--date",
                DATE,
                "--db",
                db.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .env("CARDSWITCH_JOURNAL_KEY", KEY)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..400)));
        let _ = child.kill();
        let _ = child.wait();
    }
    let (code, _, err) = cutoff(&db, &out, &[]);
    assert_eq!(code, 0, "{err}");
    assert_exactly_once(&out, &seeded);
}
