//! An operator's second chance for store-and-forward entries the switch
//! gave up on (expired or out of attempts): they become pending again,
//! their attempts kept, and the switch delivers them (as repeats, since
//! they went out before) from its next start. Their transactions go back
//! from `reversal_given_up` to `reversal_queued`, and their life shows who
//! did it.

use rusqlite::{Connection, params};

/// Which given-up entries to queue again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// One entry, by its id.
    Entry(u64),
    /// Every entry of one transaction.
    Transaction(u64),
    /// Every given-up entry.
    AllGivenUp,
}

/// Queues the selected given-up entries again, in one transaction, and
/// returns their ids. Entries not given up (pending or delivered) are never
/// touched: a delivered reversal is not sent twice.
pub fn requeue(conn: &mut Connection, which: Requeue, at_ms: i64) -> rusqlite::Result<Vec<u64>> {
    let (filter, arg) = match which {
        Requeue::Entry(id) => ("id = ?1", id as i64),
        Requeue::Transaction(txn) => ("txn_id = ?1", txn as i64),
        Requeue::AllGivenUp => ("?1 = ?1", 0),
    };
    let tx = conn.transaction()?;
    let chosen: Vec<(i64, Option<i64>)> = tx
        .prepare(&format!(
            "SELECT id, txn_id FROM saf WHERE state = 'given_up' AND {filter} ORDER BY id"
        ))?
        .query_map(params![arg], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, txn) in &chosen {
        tx.execute(
            "UPDATE saf SET state = 'pending', done_at_ms = NULL WHERE id = ?1",
            params![id],
        )?;
        let Some(txn) = txn else { continue };
        tx.execute(
            "UPDATE transactions SET state = 'reversal_queued'
             WHERE id = ?1 AND state = 'reversal_given_up'",
            params![txn],
        )?;
        tx.execute(
            "INSERT INTO events (txn_id, at_ms, kind, detail)
             VALUES (?1, ?2, 'requeued_by_operator', ?3)",
            params![txn, at_ms, format!("store-and-forward entry {id}")],
        )?;
    }
    tx.commit()?;
    Ok(chosen.into_iter().map(|(id, _)| id as u64).collect())
}
