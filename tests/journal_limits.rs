//! More rows than a search returns: `journal export` writes every one of
//! them (streamed, no cap), and `journal search` honours any `--limit` up to
//! its documented maximum, refuses a larger one, and says when more rows
//! match than it shows.

mod support;

use std::path::{Path, PathBuf};

use cardswitch::clearing::schema::migrate_all;
use cardswitch::journal::query::SEARCH_ROWS_MAX;
use rusqlite::Connection;
use support::certs::temp_dir;
use support::process::run;

/// Rows in the journal: more than a search may return.
const ROWS: usize = SEARCH_ROWS_MAX + 500;

/// A journal of `ROWS` answered transactions, written in one transaction.
fn journal(dir: &Path) -> PathBuf {
    let db = dir.join("journal.db");
    let mut conn = Connection::open(&db).expect("open");
    migrate_all(&mut conn).expect("schema");
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO transactions (id, received_at_ms, acquirer, request_mti, amount_minor, stan,
             terminal_id, pan_masked, response_code, outcome, state)
         SELECT i, 1790000000000 + i, 'pos', '0200', i, printf('%06d', i % 1000000),
             'TERM0001', '476173******0119', '00', 'approved', 'answered' FROM n",
        [ROWS as i64],
    )
    .expect("rows");
    db
}

#[test]
fn export_writes_every_row_and_search_refuses_or_flags_a_cut() {
    let dir = temp_dir("journal-limits");
    let db = journal(&dir);
    let db = db.to_str().expect("path");

    let out = dir.join("all.csv");
    let (code, _, err) = run(&[
        "journal",
        "export",
        "--db",
        db,
        "--out",
        out.to_str().expect("path"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("{ROWS} transactions exported")),
        "{err}"
    );
    let csv = std::fs::read_to_string(&out).expect("export");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), ROWS + 1, "header and every row");
    assert!(
        lines[ROWS].starts_with(&format!("{ROWS},")),
        "{}",
        lines[ROWS]
    );

    // An explicit --limit is honoured by an export (JSON lines on stdout).
    let (code, stdout, err) = run(&[
        "journal", "export", "--db", db, "--format", "json", "--limit", "7",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout.lines().count(), 7);

    // Search: more than the maximum is refused with the reason.
    let over = (SEARCH_ROWS_MAX + 1).to_string();
    let (code, stdout, err) = run(&["journal", "search", "--db", db, "--limit", &over]);
    assert_ne!(code, 0, "a limit above the maximum is refused");
    assert!(
        err.contains(&format!("at most {SEARCH_ROWS_MAX} rows")) && err.contains("journal export"),
        "{err}"
    );
    assert!(stdout.is_empty(), "{stdout}");

    // The maximum itself is honoured, and the cut is said.
    let max = SEARCH_ROWS_MAX.to_string();
    let (code, stdout, err) = run(&[
        "journal", "search", "--db", db, "--limit", &max, "--format", "csv",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout.lines().count(), SEARCH_ROWS_MAX + 1);
    assert!(err.contains("more match"), "{err}");

    // A small limit too: the rows asked for, and the cut said.
    let (code, stdout, err) = run(&[
        "journal", "search", "--db", db, "--limit", "10", "--format", "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout.lines().count(), 10);
    assert!(err.contains("10 transactions shown; more match"), "{err}");

    // A search that gets everything says nothing of a cut.
    let (code, stdout, err) = run(&[
        "journal", "search", "--db", db, "--stan", "000042", "--format", "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout.lines().count(), 1);
    assert!(!err.contains("more match"), "{err}");
}
