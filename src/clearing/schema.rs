//! The clearing component's tables in the journal's database, migrated with
//! `journal::schema::migrate` under the component name "clearing".

use rusqlite::Connection;

use crate::journal::schema::{JOURNAL_MIGRATIONS, SchemaError, migrate};

/// The component name in `schema_migrations`.
pub const COMPONENT: &str = "clearing";

/// Clearing migrations; index + 1 is the version. Never edit a shipped one.
pub const CLEARING_MIGRATIONS: &[&str] = &[
    // 1: registry, clearing files and items, terminal batches.
    "
    CREATE TABLE fee_plans (
        plan         TEXT NOT NULL,
        brand        TEXT NOT NULL,            -- mastercard, visa, other
        mdr_bp       INTEGER NOT NULL,         -- merchant discount rate, basis points
        fixed_minor  INTEGER NOT NULL,         -- fixed fee per transaction, minor units
        PRIMARY KEY (plan, brand)
    );
    CREATE TABLE merchants (
        merchant_id        TEXT PRIMARY KEY,   -- DE42
        name               TEXT NOT NULL,      -- DE43 name
        location           TEXT NOT NULL,      -- DE43 city / country
        mcc                TEXT NOT NULL,      -- DE18 / DE26
        settlement_account TEXT NOT NULL,
        fee_plan           TEXT NOT NULL,
        blocked            INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE terminals (
        terminal_id  TEXT PRIMARY KEY,         -- DE41
        merchant_id  TEXT NOT NULL,
        blocked      INTEGER NOT NULL DEFAULT 0
    );
    -- Bumped by every registry change, so a running switch notices it.
    CREATE TABLE registry_version (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        version  INTEGER NOT NULL
    );
    INSERT INTO registry_version (id, version) VALUES (1, 0);
    CREATE TABLE clearing_files (
        id             INTEGER PRIMARY KEY,
        business_date  TEXT NOT NULL,          -- YYYY-MM-DD
        file_seq       INTEGER NOT NULL,       -- 1, 2 ... per business date
        ipm_file_id    TEXT NOT NULL UNIQUE,   -- PDS 0105, 25 digits
        name           TEXT NOT NULL,          -- file name in the output directory
        created_at_ms  INTEGER NOT NULL,
        item_count     INTEGER NOT NULL,       -- presentments
        amount_total   INTEGER NOT NULL,       -- sum of DE4
        state          TEXT NOT NULL           -- committed (items chosen), written (file renamed in place)
    );
    -- One row per journal row a cut-off consumed: the PRIMARY KEY is what
    -- makes 'cleared once' hold; it is written in the same SQLite
    -- transaction as its clearing_files row.
    CREATE TABLE clearing_items (
        txn_id        INTEGER PRIMARY KEY,     -- transactions.id
        file_id       INTEGER NOT NULL,        -- clearing_files.id
        role          TEXT NOT NULL,           -- presented, folded (completion / reversal), voided (fully reversed)
        arn_seq       INTEGER,                 -- presented: the ARN sequence (unique, increasing)
        amount_minor  INTEGER,                 -- presented: DE4 after completions and partial reversals
        arn           TEXT                     -- presented: DE31
    );
    CREATE INDEX clearing_items_file ON clearing_items(file_id, arn_seq);
    CREATE TABLE terminal_batches (
        id             INTEGER PRIMARY KEY,
        terminal_id    TEXT NOT NULL,
        closed_at_ms   INTEGER NOT NULL,
        up_to_txn_id   INTEGER NOT NULL,       -- journal rows up to this id belong to closed batches
        in_balance     INTEGER NOT NULL,
        host_totals    TEXT NOT NULL,          -- DE74-77, DE86-89 as the host counted them
        terminal_totals TEXT NOT NULL          -- as the terminal sent them
    );
    CREATE INDEX terminal_batches_terminal ON terminal_batches(terminal_id, up_to_txn_id);
    ",
];

/// Brings both the journal's and the clearing tables up to date (clearing
/// reads `transactions`, so a fresh database gets the journal's tables too).
pub fn migrate_all(conn: &mut Connection) -> Result<(), SchemaError> {
    migrate(conn, "journal", JOURNAL_MIGRATIONS)?;
    migrate(conn, COMPONENT, CLEARING_MIGRATIONS)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_beside_the_journal_and_again_as_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_all(&mut conn).unwrap();
        migrate_all(&mut conn).unwrap();
        let versions: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM schema_migrations WHERE component IN ('journal', 'clearing')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            versions as usize,
            JOURNAL_MIGRATIONS.len() + CLEARING_MIGRATIONS.len()
        );
        conn.execute(
            "INSERT INTO clearing_items (txn_id, file_id, role) VALUES (1, 1, 'presented')",
            [],
        )
        .unwrap();
        // The primary key refuses a second clearing of the same journal row.
        assert!(
            conn.execute(
                "INSERT INTO clearing_items (txn_id, file_id, role) VALUES (1, 2, 'presented')",
                [],
            )
            .is_err()
        );
    }
}
