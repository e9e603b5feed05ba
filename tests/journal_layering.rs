//! The journal's store is chosen in one place (`src/journal/open.rs`):
//! the command line and clearing reach the journal only through its
//! traits. Checked on the source text, so it stays true: no file under
//! `src/cli/` names `rusqlite`, no file under `src/clearing/` runs SQL
//! against a journal table (the tables the journal's migrations create)
//! and neither names the SQLite store module.

use std::path::{Path, PathBuf};

use cardswitch::journal::schema::JOURNAL_MIGRATIONS;

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn source(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The tables the journal's migrations create.
fn journal_tables() -> Vec<String> {
    let all: String = JOURNAL_MIGRATIONS.concat().to_lowercase();
    let words: Vec<&str> = all.split_whitespace().collect();
    words
        .windows(3)
        .filter(|w| w[0] == "create" && w[1] == "table")
        .map(|w| w[2].trim_end_matches('(').to_string())
        .collect()
}

/// The first SQL clause in `text` that reads or writes one of `tables`
/// (`FROM t`, `JOIN t`, `INTO t`, `UPDATE t`, whitespace and case aside).
fn journal_sql(text: &str, tables: &[String]) -> Option<String> {
    let words: Vec<String> = text
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '"' || c == '(' || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    words.windows(2).find_map(|w| {
        let verb = ["from", "join", "into", "update"].contains(&w[0].as_str());
        let table = w[1].trim_end_matches([';', ')']);
        (verb && tables.iter().any(|t| t == table)).then(|| format!("{} {}", w[0], w[1]))
    })
}

#[test]
fn the_detector_sees_journal_tables_and_sql_against_them() {
    let tables = journal_tables();
    for t in [
        "transactions",
        "saf",
        "events",
        "key_checks",
        "txn_by_terminal",
    ] {
        assert!(tables.iter().any(|x| x == t), "{t} not in {tables:?}");
    }
    let sql = "SELECT c.id FROM clearing_items c\n   JOIN transactions t ON t.id = c.txn_id";
    assert_eq!(
        journal_sql(sql, &tables).as_deref(),
        Some("join transactions")
    );
    assert!(journal_sql("UPDATE saf SET state = 'x'", &tables).is_some());
    assert!(journal_sql("INSERT INTO clearing_items (txn_id)", &tables).is_none());
    assert!(journal_sql("derived from the journal's transactions", &tables).is_none());
}

#[test]
fn the_cli_never_names_rusqlite() {
    let files = rust_files(Path::new("src/cli"));
    assert!(files.len() > 5, "src/cli/ read: {files:?}");
    let offenders: Vec<_> = files
        .iter()
        .filter(|f| source(f).contains("rusqlite"))
        .collect();
    assert!(
        offenders.is_empty(),
        "these reach SQLite directly: use journal::open_queries and JournalQueries: {offenders:?}"
    );
}

#[test]
fn clearing_reads_the_journal_only_through_its_traits() {
    let tables = journal_tables();
    let files = rust_files(Path::new("src/clearing"));
    assert!(files.len() > 5, "src/clearing/ read: {files:?}");
    let mut offenders = Vec::new();
    for f in &files {
        let text = source(f);
        if let Some(sql) = journal_sql(&text, &tables) {
            offenders.push(format!("{}: {sql}", f.display()));
        }
        if text.contains("journal::sqlite") {
            offenders.push(format!("{}: names journal::sqlite", f.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "clearing reaches the journal's tables directly: {offenders:?}"
    );
}

/// Outside the journal, only `journal::open` chooses the store: the node
/// opens its writer with `journal::open_store`.
#[test]
fn only_the_journal_names_its_sqlite_store() {
    let mut offenders = Vec::new();
    for f in rust_files(Path::new("src")) {
        if f.starts_with("src/journal") {
            continue;
        }
        let text = source(&f);
        if text.contains("journal::sqlite") || text.contains("SqliteJournal") {
            offenders.push(f);
        }
    }
    assert!(
        offenders.is_empty(),
        "open the journal with journal::open_store / open_queries: {offenders:?}"
    );
}
