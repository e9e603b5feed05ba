//! The journal's look-up indexes (by RRN, by terminal, by card), kept in
//! tables of their own and filled in sorted batches, not row by row.
//!
//! Why: an index entry written with its row lands on a leaf page chosen by
//! its key. Card hashes are random and RRNs and terminals come from many
//! terminals at once, so each entry of a group commit dirtied a page of
//! its own, and each dirty page is a 4 KiB WAL frame (and a second write
//! when checkpointed): about two frames per request, which made the disk
//! the journal's limit. A batch of [`BATCH_ROWS`] rows inserted in key
//! order fills each leaf it touches with many entries at once.
//!
//! Rows above the watermark (`journal_meta.indexed_through`) are not in
//! the index tables yet; a search reads them by id range, at most about
//! one batch of rows (see [`matching`]). A row that arrives after its id
//! range was indexed (ids are assigned before journaling, so a few arrive
//! out of order) is indexed on arrival.

use rusqlite::{Connection, params};

/// Rows indexed in one batch: enough that a batch writes far fewer index
/// pages than rows. The batch holds up the group commit it rides in (20 to
/// 45 ms measured here, most of the journaled switch's p99); writing it in
/// slices over many commits cut that p99 from about 30 to 13 ms but cost
/// 10-15% of the throughput, one insert statement per entry.
pub const BATCH_ROWS: i64 = 8_192;

/// One look-up index: a table of (key, id) pairs.
#[derive(Debug, Clone, Copy)]
pub struct LookupIndex {
    pub table: &'static str,
    /// The `transactions` column it indexes (and its own key column).
    pub column: &'static str,
}

pub const BY_RRN: LookupIndex = LookupIndex {
    table: "txn_by_rrn",
    column: "rrn",
};
pub const BY_TERMINAL: LookupIndex = LookupIndex {
    table: "txn_by_terminal",
    column: "terminal_id",
};
pub const BY_PAN: LookupIndex = LookupIndex {
    table: "txn_by_pan",
    column: "pan_hmac",
};
pub const ALL: [LookupIndex; 3] = [BY_RRN, BY_TERMINAL, BY_PAN];

/// The last id whose range has been indexed.
pub fn watermark(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT value FROM journal_meta WHERE name = 'indexed_through'",
        [],
        |r| r.get(0),
    )
}

/// Adds the rows with ids in `after + 1 ..= through` to every index, in
/// key order, without moving the watermark.
pub fn add_rows(conn: &Connection, after: i64, through: i64) -> rusqlite::Result<()> {
    for index in ALL {
        let LookupIndex { table, column } = index;
        conn.prepare_cached(&format!(
            "INSERT OR IGNORE INTO {table} ({column}, id)
             SELECT {column}, id FROM transactions
             WHERE id > ?1 AND id <= ?2 AND {column} IS NOT NULL
             ORDER BY {column}, id"
        ))?
        .execute(params![after, through])?;
    }
    Ok(())
}

/// Indexes the ids in `after + 1 ..= through` and moves the watermark to
/// `through`, in the caller's transaction.
pub fn advance(conn: &Connection, after: i64, through: i64) -> rusqlite::Result<()> {
    debug_assert!(after <= through, "the watermark only moves up");
    add_rows(conn, after, through)?;
    conn.prepare_cached("UPDATE journal_meta SET value = ?1 WHERE name = 'indexed_through'")?
        .execute(params![through])?;
    Ok(())
}

/// Indexes every row above the watermark (rows written before a crash, or
/// by a seed) in its own transaction; returns the new watermark, which is
/// then the highest id.
pub fn catch_up(conn: &mut Connection) -> rusqlite::Result<i64> {
    let tx = conn.transaction()?;
    let watermark = watermark(&tx)?;
    let max_id: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) FROM transactions", [], |r| {
        r.get(0)
    })?;
    if max_id > watermark {
        advance(&tx, watermark, max_id)?;
    }
    tx.commit()?;
    Ok(max_id.max(watermark))
}

/// A condition on `transactions` (unqualified `id` and `index.column`):
/// the rows whose column passes `test` (an SQL tail such as `= ?1` or
/// `IN (?1, ?2)`), through the index below the watermark and by id range
/// above it. SQLite answers it with two look-ups (a "multi-index OR").
pub fn matching(index: LookupIndex, test: &str, watermark: i64) -> String {
    let LookupIndex { table, column } = index;
    format!(
        "(id IN (SELECT id FROM {table} WHERE {column} {test}) OR (id > {watermark} AND {column} {test}))"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::schema::{JOURNAL_MIGRATIONS, migrate};

    fn journal() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "journal", JOURNAL_MIGRATIONS).unwrap();
        conn
    }

    fn insert(conn: &Connection, id: i64, rrn: &str) {
        conn.execute(
            "INSERT INTO transactions (id, received_at_ms, acquirer, request_mti, rrn, state)
             VALUES (?1, 0, 'pos', '0100', ?2, 'answered')",
            params![id, rrn],
        )
        .unwrap();
    }

    fn find(conn: &Connection, rrn: &str) -> Vec<i64> {
        let w = watermark(conn).unwrap();
        let sql = format!(
            "SELECT id FROM transactions WHERE {} ORDER BY id",
            matching(BY_RRN, "= ?1", w)
        );
        conn.prepare(&sql)
            .unwrap()
            .query_map([rrn], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn rows_are_found_on_both_sides_of_the_watermark() {
        let conn = journal();
        insert(&conn, 1, "A");
        insert(&conn, 2, "B");
        insert(&conn, 4, "A");
        advance(&conn, 0, 4).unwrap();
        assert_eq!(watermark(&conn).unwrap(), 4);
        // Above the watermark, not indexed yet.
        insert(&conn, 5, "A");
        // Below it, arriving late: not in the index until added.
        insert(&conn, 3, "A");
        assert_eq!(find(&conn, "A"), [1, 4, 5]);
        add_rows(&conn, 2, 3).unwrap();
        assert_eq!(find(&conn, "A"), [1, 3, 4, 5]);
        assert_eq!(find(&conn, "B"), [2]);
        let indexed: i64 = conn
            .query_row("SELECT COUNT(*) FROM txn_by_rrn", [], |r| r.get(0))
            .unwrap();
        assert_eq!(indexed, 4, "row 5 waits for the next batch");
    }

    #[test]
    fn a_search_uses_the_index_and_the_id_range_not_a_scan() {
        let conn = journal();
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT id FROM transactions WHERE {}",
            matching(BY_PAN, "= ?1", 10)
        );
        let plan: Vec<String> = conn
            .prepare(&sql)
            .unwrap()
            .query_map([vec![0u8; 32]], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join(" | ");
        assert!(plan.contains("MULTI-INDEX OR"), "{plan}");
        assert!(plan.contains("txn_by_pan"), "{plan}");
        assert!(!plan.contains("SCAN transactions"), "{plan}");
    }
}
