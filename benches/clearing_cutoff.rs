//! The business-day cut-off over a seeded journal (1,000,000 approved
//! purchases by default, CLEARING_BENCH_ROWS to change): the time to choose
//! and write the clearing file and its settlement reports, against a
//! reference measured in the same run on the same rows (a bare pass that
//! reads every row, opens every sealed PAN and writes the PANs and amounts
//! to a file: the floor any cut-off pays). Goal: under 10 s; the bench
//! exits non-zero above it. The file is then read back and checked (not
//! timed).
//!
//!   cargo bench --bench clearing_cutoff

use std::io::Write;
use std::time::Instant;

use cardswitch::clearing::cutoff::{self, CutoffConfig, day_start_ms};
use cardswitch::clearing::ipm_reader::{for_each_record, ipm_spec};
use cardswitch::clearing::seed;
use cardswitch::journal::crypto::Keyring;

const GOAL_S: f64 = 10.0;
const DATE: &str = "2026-11-23";

fn main() {
    let rows: usize = std::env::var("CLEARING_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("cardswitch-bench-cutoff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let db = dir.join("journal.db");
    let keyring = std::sync::Arc::new(
        Keyring::from_env_value(&format!("k1:{}", "5a".repeat(32))).expect("key"),
    );

    let t = Instant::now();
    let mut conn = cutoff::open_db(&db).expect("db");
    let registry = seed::registry(1_000, 4);
    registry.store(&mut conn).expect("registry");
    let day = day_start_ms(DATE).expect("date");
    let sum = seed::approved_purchases(&db, &keyring, &registry, rows, day).expect("seed");
    drop(conn);
    println!(
        "seeded {rows} approved purchases in {:.1} s (not timed below)",
        t.elapsed().as_secs_f64()
    );

    // Reference: read, open, write; no capture rules, no ISO 8583, no bookkeeping.
    let t = Instant::now();
    {
        let conn = rusqlite::Connection::open(&db).expect("db");
        let mut stmt = conn
            .prepare("SELECT amount_minor, pan_key_id, pan_sealed FROM transactions ORDER BY id")
            .expect("query");
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(dir.join("reference.bin")).expect("file"),
        );
        let mut q = stmt.query([]).expect("query");
        while let Some(r) = q.next().expect("row") {
            let amount: i64 = r.get(0).expect("amount");
            let key: String = r.get(1).expect("key");
            let sealed: Vec<u8> = r.get(2).expect("sealed");
            let pan = keyring.open(b"pan", &key, &sealed).expect("open");
            out.write_all(&pan)
                .and_then(|()| out.write_all(&amount.to_be_bytes()))
                .expect("write");
        }
        out.into_inner().expect("flush").sync_all().expect("sync");
    }
    let reference_s = t.elapsed().as_secs_f64();

    let cfg = CutoffConfig {
        db: db.clone(),
        out_dir: dir.join("out"),
        business_date: DATE.into(),
        member_id: "00000012345".into(),
        acquirer_bin: "545400".into(),
        arn_indicator: 7,
        production: false,
        blocked: true,
        progress: false,
    };
    let t = Instant::now();
    let report = cutoff::run(&cfg, &keyring).expect("cutoff");
    let cutoff_s = t.elapsed().as_secs_f64();
    let file = &report.files[0];
    assert_eq!(file.presentments as usize, rows);
    assert_eq!(file.amount_sum, sum);

    let bytes = std::fs::read(&file.path).expect("read back");
    let spec = ipm_spec().expect("spec");
    let summary = for_each_record(&bytes, true, &spec, |_| Ok(())).expect("the file reads back");
    assert_eq!(summary.message_count as usize, rows + 2);
    assert_eq!(summary.amount_sum, sum);

    println!(
        "cutoff: {rows} presentments in {cutoff_s:.2} s (choose {} ms, write {} ms), {:.0} rows/s, file {:.1} MB",
        report.choose_ms,
        report.write_ms,
        rows as f64 / cutoff_s,
        bytes.len() as f64 / 1e6
    );
    println!(
        "reference (read rows + open PANs + write): {reference_s:.2} s; cutoff / reference = {:.2}",
        cutoff_s / reference_s
    );
    let _ = std::fs::remove_dir_all(&dir);
    if cutoff_s > GOAL_S {
        eprintln!("FAIL: cut-off took {cutoff_s:.2} s, goal < {GOAL_S} s");
        std::process::exit(1);
    }
    println!("goal met: < {GOAL_S} s");
}
