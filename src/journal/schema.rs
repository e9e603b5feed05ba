//! The journal's SQLite schema, as numbered migrations applied in order.
//! Each component (journal, clearing, ...) keeps its own version in
//! `schema_migrations`, so components sharing the database file migrate
//! independently. A migration is never edited once shipped: add a new one.

use rusqlite::{Connection, params};

/// The journal's migrations; index + 1 is the version.
pub const JOURNAL_MIGRATIONS: &[&str] = &[
    // 1: transactions, events, store-and-forward, key checks.
    "
    CREATE TABLE transactions (
        id                INTEGER PRIMARY KEY,   -- assigned by the switch
        received_at_ms    INTEGER NOT NULL,      -- unix time, milliseconds
        acquirer          TEXT NOT NULL,         -- acquirer listener name
        request_mti       TEXT NOT NULL,         -- as received, e.g. '0200'
        processing_code   TEXT,                  -- DE3
        amount_minor      INTEGER,               -- DE4, minor units
        transmission_at   TEXT,                  -- DE7 MMDDhhmmss
        stan              TEXT,                  -- DE11 as the acquirer sent it
        local_time        TEXT,                  -- DE12
        local_date        TEXT,                  -- DE13
        mcc               TEXT,                  -- DE18
        pos_entry_mode    TEXT,                  -- DE22
        acquirer_inst     TEXT,                  -- DE32
        rrn               TEXT,                  -- DE37
        terminal_id       TEXT,                  -- DE41
        merchant_id       TEXT,                  -- DE42
        merchant_name_loc TEXT,                  -- DE43
        currency          TEXT,                  -- DE49
        original_data     TEXT,                  -- DE90 (1987) or DE56 (1993)
        replacement_amount INTEGER,              -- first 12 digits of DE95, minor units
        pan_key_id        TEXT,                  -- key that sealed this row's sealed columns
        pan_sealed        BLOB,                  -- AES-256-GCM nonce || ciphertext
        pan_hmac          BLOB,                  -- HMAC-SHA-256 of the whole PAN
        pan_masked        TEXT,                  -- first 6 / last 4
        issuer            TEXT,                  -- issuer name, once routed
        issuer_stan       TEXT,                  -- DE11 on the issuer link
        forwarded_sealed  BLOB,                  -- message as forwarded, sealed, without SAD
        forwarded_at_ms   INTEGER,
        response_code     TEXT,                  -- DE39 sent to the acquirer
        approval_code     TEXT,                  -- DE38 sent to the acquirer
        outcome           TEXT,                  -- approved, declined, timed_out, stand_in, rejected, advice_acked
        response_at_ms    INTEGER,               -- issuer response received
        sent_at_ms        INTEGER,               -- response handed to the acquirer link
        state             TEXT NOT NULL          -- received, forwarded, answered, reversal_queued, reversed, abandoned (never forwarded, answer lost in a crash)
    );
    CREATE INDEX transactions_rrn ON transactions(rrn);
    CREATE INDEX transactions_stan ON transactions(stan, terminal_id);
    CREATE INDEX transactions_terminal ON transactions(terminal_id, received_at_ms);
    CREATE INDEX transactions_pan ON transactions(pan_hmac);
    CREATE INDEX transactions_received ON transactions(received_at_ms);
    CREATE INDEX transactions_open ON transactions(state) WHERE state IN ('received', 'forwarded');

    CREATE TABLE events (
        id             INTEGER PRIMARY KEY,
        txn_id         INTEGER,                  -- transactions.id, if any
        at_ms          INTEGER NOT NULL,
        kind           TEXT NOT NULL,            -- timed_out, reversal_queued, reversal_acked, advice_queued, ...
        detail         TEXT                      -- masked, free text
    );
    CREATE INDEX events_txn ON events(txn_id);

    CREATE TABLE saf (
        id             INTEGER PRIMARY KEY,      -- assigned by the switch
        txn_id         INTEGER,
        kind           TEXT NOT NULL,            -- timeout_reversal, acquirer_advice, stand_in_advice
        issuer         TEXT NOT NULL,
        key_id         TEXT NOT NULL,
        message_sealed BLOB NOT NULL,            -- issuer-dialect message, sealed, without SAD
        queued_at_ms   INTEGER NOT NULL,
        attempts       INTEGER NOT NULL DEFAULT 0,
        state          TEXT NOT NULL,            -- pending, delivered, given_up
        done_at_ms     INTEGER
    );
    CREATE INDEX saf_pending ON saf(state) WHERE state = 'pending';

    CREATE TABLE key_checks (
        key_id         TEXT PRIMARY KEY,
        check_value    BLOB NOT NULL             -- HMAC of a constant: proves the key, reveals nothing
    );
    ",
    // 2: fewer indexes on the hot table: each is a B-tree insert per
    // request and, where its keys scatter, a dirty page (4 KiB of WAL) per
    // request per commit. Time ranges ride on the id, which the switch
    // assigns in arrival order (query.rs bisects the ids first); STAN +
    // terminal searches go through the terminal index, whose entries end
    // with the id (batch close reads a terminal's rows after an id). The
    // PAN look-up hash keeps its index although its random keys cost a
    // page per request: a search by card must not scan the journal.
    "
    DROP INDEX transactions_received;
    DROP INDEX transactions_stan;
    DROP INDEX transactions_terminal;
    CREATE INDEX transactions_terminal ON transactions(terminal_id);
    ",
    // 3: the look-up indexes move to tables of their own, filled in
    // sorted batches by the writer (lookup.rs): written row by row, their
    // scattered keys cost about two WAL pages per request.
    "
    CREATE TABLE journal_meta (
        name           TEXT PRIMARY KEY,
        value          INTEGER NOT NULL
    );
    CREATE TABLE txn_by_rrn (
        rrn            TEXT NOT NULL,
        id             INTEGER NOT NULL,         -- transactions.id
        PRIMARY KEY (rrn, id)
    ) WITHOUT ROWID;
    CREATE TABLE txn_by_terminal (
        terminal_id    TEXT NOT NULL,
        id             INTEGER NOT NULL,
        PRIMARY KEY (terminal_id, id)
    ) WITHOUT ROWID;
    CREATE TABLE txn_by_pan (
        pan_hmac       BLOB NOT NULL,
        id             INTEGER NOT NULL,
        PRIMARY KEY (pan_hmac, id)
    ) WITHOUT ROWID;
    INSERT INTO txn_by_rrn SELECT rrn, id FROM transactions WHERE rrn IS NOT NULL;
    INSERT INTO txn_by_terminal SELECT terminal_id, id FROM transactions WHERE terminal_id IS NOT NULL;
    INSERT INTO txn_by_pan SELECT pan_hmac, id FROM transactions WHERE pan_hmac IS NOT NULL;
    -- Ids up to here are indexed.
    INSERT INTO journal_meta SELECT 'indexed_through', COALESCE(MAX(id), 0) FROM transactions;
    DROP INDEX transactions_rrn;
    DROP INDEX transactions_terminal;
    DROP INDEX transactions_pan;
    ",
];

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The database was written by a newer cardswitch.
    #[error("{component} schema is at version {found}, newer than this build knows ({known})")]
    TooNew {
        component: &'static str,
        found: i64,
        known: usize,
    },
    #[error("{component} migration {version} failed: {source}")]
    Migration {
        component: &'static str,
        version: usize,
        source: rusqlite::Error,
    },
    #[error("schema bookkeeping: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Applies `component`'s migrations not yet applied, each in its own
/// transaction. Returns the version reached.
pub fn migrate(
    conn: &mut Connection,
    component: &'static str,
    migrations: &[&str],
) -> Result<usize, SchemaError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            component TEXT NOT NULL,
            version   INTEGER NOT NULL,
            PRIMARY KEY (component, version)
        )",
    )?;
    let found: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = ?1",
        params![component],
        |row| row.get(0),
    )?;
    if found > migrations.len() as i64 {
        return Err(SchemaError::TooNew {
            component,
            found,
            known: migrations.len(),
        });
    }
    for (index, sql) in migrations.iter().enumerate().skip(found as usize) {
        let version = index + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .and_then(|()| {
                tx.execute(
                    "INSERT INTO schema_migrations (component, version) VALUES (?1, ?2)",
                    params![component, version as i64],
                )
                .map(|_| ())
            })
            .map_err(|source| SchemaError::Migration {
                component,
                version,
                source,
            })?;
        tx.commit()?;
    }
    Ok(migrations.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_upgrades_keeping_its_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(
            migrate(&mut conn, "journal", &JOURNAL_MIGRATIONS[..1]).unwrap(),
            1
        );
        conn.execute(
            "INSERT INTO transactions (id, received_at_ms, acquirer, request_mti, terminal_id, stan, state)
             VALUES (1, 5, 'pos', '0100', 'T1', '000001', 'forwarded')",
            [],
        )
        .unwrap();
        assert_eq!(
            migrate(&mut conn, "journal", JOURNAL_MIGRATIONS).unwrap(),
            JOURNAL_MIGRATIONS.len()
        );
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'transactions' AND sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(indexes, ["transactions_open"]);
        // The row written before the upgrade is in the look-up tables,
        // and the watermark covers it.
        assert_eq!(crate::journal::sqlite::lookup::watermark(&conn).unwrap(), 1);
        let sql = format!(
            "SELECT id FROM transactions WHERE {} AND stan = '000001'",
            crate::journal::sqlite::lookup::matching(
                crate::journal::sqlite::lookup::BY_TERMINAL,
                "= 'T1'",
                1
            )
        );
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().all(|step| !step.contains("SCAN transactions")),
            "{plan:?}"
        );
        let indexed: i64 = conn
            .query_row(
                "SELECT id FROM txn_by_terminal WHERE terminal_id = 'T1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexed, 1);
        let id: i64 = conn.query_row(&sql, [], |r| r.get(0)).unwrap();
        assert_eq!(id, 1);
    }

    #[test]
    fn migrates_once_and_refuses_a_newer_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(
            migrate(&mut conn, "journal", JOURNAL_MIGRATIONS).unwrap(),
            JOURNAL_MIGRATIONS.len()
        );
        // Applying again is a no-op, not a "table exists" failure.
        assert_eq!(
            migrate(&mut conn, "journal", JOURNAL_MIGRATIONS).unwrap(),
            JOURNAL_MIGRATIONS.len()
        );
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM transactions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 0);
        conn.execute(
            "INSERT INTO schema_migrations (component, version) VALUES ('journal', 9)",
            [],
        )
        .unwrap();
        assert!(matches!(
            migrate(&mut conn, "journal", JOURNAL_MIGRATIONS),
            Err(SchemaError::TooNew { found: 9, .. })
        ));
    }
}
