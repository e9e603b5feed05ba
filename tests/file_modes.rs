//! Files that hold card data or name cards are readable by their owner
//! only (0600), whatever the umask: every file the clearing cut-off writes
//! (the IPM file with full PANs, the settlement reports, and their
//! temporary files before the rename), capture files, journal exports and
//! journal backups.
#![cfg(unix)]

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cardswitch::capture::sink::{self, CaptureFormat, CaptureOptions};
use cardswitch::clearing::schema::migrate_all;
use cardswitch::clearing::seed::{SeedRow, insert_rows, test_pan};
use cardswitch::journal::TxnOutcome;
use cardswitch::journal::crypto::Keyring;
use cardswitch::message::Spec;
use rusqlite::Connection;
use support::certs::temp_dir;
use support::process::BIN;

const KEY: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const DATE: &str = "2026-11-23";
/// 2026-11-23 01:00 UTC.
const HOUR_MS: i64 = 20_780 * 86_400_000 + 3_600_000;

/// `cardswitch ARGS` under umask 022 (group and others may read what a
/// plain create makes), so that only the code's own modes can keep files
/// private.
fn command(args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(args)
        .env("CARDSWITCH_JOURNAL_KEY", KEY)
        .stdin(Stdio::null());
    c
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = command(args).output().expect("run cardswitch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    v
}

fn assert_private(what: &str, paths: &[PathBuf]) {
    let wide: Vec<String> = paths
        .iter()
        .filter(|p| mode(p) != 0o600)
        .map(|p| format!("{} {:o}", p.display(), mode(p)))
        .collect();
    assert!(wide.is_empty(), "{what}: not 0600: {wide:?}");
}

/// A journal with the fixture merchants and a few approved purchases.
fn journal(dir: &Path) -> PathBuf {
    let db = dir.join("journal.db");
    let mut conn = Connection::open(&db).expect("open");
    migrate_all(&mut conn).expect("schema");
    let (code, _, err) = cli(&[
        "clearing",
        "merchants",
        "load",
        "fixtures/clearing/merchants.toml",
        "--db",
        db.to_str().expect("path"),
    ]);
    assert_eq!(code, 0, "{err}");
    let pans: Vec<String> = (0..5).map(|i| test_pan("545400", i)).collect();
    let rows = pans.iter().enumerate().map(|(i, pan)| SeedRow {
        received_at_ms: HOUR_MS + i as i64,
        request_mti: "0200",
        processing_code: "000000",
        amount_minor: 1_000 + i as u64,
        stan: i as u32 + 1,
        rrn: Some(format!("{i:012}")),
        terminal_id: "TERM0001",
        merchant_id: "MERCHANT0000001",
        currency: "978",
        pan,
        outcome: TxnOutcome::Approved,
        response_code: "00",
        original_data: None,
        replacement_minor: None,
    });
    let keys = std::sync::Arc::new(Keyring::from_env_value(KEY).expect("key"));
    insert_rows(&db, &keys, rows).expect("seed");
    db
}

#[test]
fn every_file_the_cutoff_writes_is_0600_temporaries_included() {
    let dir = temp_dir("file-modes-cutoff");
    let out = dir.join("out");
    let db = journal(&dir);
    let args = [
        "clearing",
        "cutoff",
        "--date",
        DATE,
        "--db",
        db.to_str().expect("path"),
        "--out",
        out.to_str().expect("path"),
    ];
    // Stopped just before the rename: the temporary files are all there.
    let mut child = command(&args)
        .env("CARDSWITCH_CUTOFF_STALL", "before_rename")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let line = BufReader::new(stderr).lines().next().expect("a line");
    assert_eq!(line.expect("line"), "cutoff: stalled at before_rename");
    let temporaries = files(&out);
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert_eq!(temporaries.len(), 3, "{temporaries:?}");
    assert!(
        temporaries
            .iter()
            .all(|p| p.to_string_lossy().ends_with(".tmp"))
    );
    assert_private("temporary files", &temporaries);
    // The re-run renames them into place.
    let (code, _, err) = cli(&args);
    assert_eq!(code, 0, "{err}");
    let written = files(&out);
    assert_eq!(written.len(), 3, "{written:?}");
    assert!(
        written
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "ipm"))
    );
    assert_private("cut-off files", &written);
}

#[test]
fn journal_exports_backups_and_captures_are_0600() {
    let dir = temp_dir("file-modes-journal");
    let db = journal(&dir);
    let db_arg = db.to_str().expect("path").to_string();
    let export = dir.join("export.csv");
    // Created before the export, as a wider file: it is narrowed.
    std::fs::write(&export, "old").expect("write");
    std::fs::set_permissions(&export, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, _, err) = cli(&[
        "journal",
        "export",
        "--db",
        &db_arg,
        "--out",
        export.to_str().expect("path"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(&export)
            .expect("read")
            .lines()
            .count(),
        6
    );
    let backup = dir.join("backup.db");
    let (code, _, err) = cli(&[
        "journal",
        "backup",
        "--db",
        &db_arg,
        backup.to_str().expect("path"),
    ]);
    assert_eq!(code, 0, "{err}");
    let capture = dir.join("capture.jsonl");
    std::fs::write(&capture, "").expect("write");
    std::fs::set_permissions(&capture, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (_tap, handle) = sink::start(CaptureOptions {
        path: capture.clone(),
        format: CaptureFormat::JsonLines,
        masked: false,
        specs: HashMap::new(),
        default_spec: Some(Spec::resolve("iso87-ascii").expect("spec")),
    })
    .expect("capture");
    handle.finish().expect("finish");
    assert_private("journal and capture files", &[export, backup, capture]);
}

/// The tests' own directories (TLS keys, journals with card data) are
/// their owner's only while a test holds them, and gone once it ends.
#[test]
fn a_test_directory_is_private_while_held_and_removed_on_drop() {
    let dir = temp_dir("file-modes-guard");
    let path = dir.to_path_buf();
    std::fs::create_dir(dir.join("sub")).expect("subdirectory");
    std::fs::write(dir.join("sub/secret.key"), "k").expect("write");
    assert!(path.is_dir());
    assert_eq!(mode(&path), 0o700);
    drop(dir);
    assert!(!path.exists(), "{} left behind", path.display());
}
