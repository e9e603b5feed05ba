//! What a restart must pick up: requests never forwarded are closed, then
//! the next ids, the pending store-and-forward entries and the requests
//! forwarded whose outcome is unknown are read (messages opened).

use rusqlite::{Connection, OptionalExtension};
use zeroize::Zeroizing;

use super::SEAL_MESSAGE;
use crate::journal::crypto::Keyring;
use crate::journal::store::{JournalError, PendingSaf, Recovery, Unfinished};

/// Closes the requests never forwarded: acknowledged advices as
/// `advice_acked`, the rest `unknown` (the words of
/// [`crate::journal::TxnOutcome`], checked by a test).
const CLOSE_NEVER_FORWARDED: &str =
    "UPDATE transactions SET state = 'answered', outcome = 'advice_acked',
       response_code = COALESCE(response_code, '00')
     WHERE state = 'received'
       AND id IN (SELECT txn_id FROM saf WHERE kind = 'acquirer_advice');
     UPDATE transactions SET state = 'abandoned', outcome = COALESCE(outcome, 'unknown')
     WHERE state = 'received';";

/// Reads (and closes) what a restart must pick up.
pub(super) fn recover(conn: &Connection, keys: &Keyring) -> Result<Recovery, JournalError> {
    // Requests never forwarded whose answer was not recorded: an
    // advice was acknowledged once durably queued (so it was), and
    // anything else reached no issuer, so there is nothing to undo.
    conn.execute_batch(CLOSE_NEVER_FORWARDED)
        .map_err(JournalError::sql("closing requests never forwarded"))?;
    let max = |sql: &str| -> Result<u64, JournalError> {
        let v: Option<i64> = conn
            .query_row(sql, [], |r| r.get(0))
            .optional()
            .map_err(JournalError::sql("reading ids"))?
            .flatten();
        Ok(v.unwrap_or(0).max(0) as u64 + 1)
    };
    let next_txn_id = max("SELECT MAX(id) FROM transactions")?;
    let next_saf_id = max("SELECT MAX(id) FROM saf")?;
    let mut pending_saf = Vec::new();
    {
        let mut stmt = conn
            .prepare(
                "SELECT id, txn_id, kind, issuer, key_id, message_sealed, attempts
                 FROM saf WHERE state = 'pending' ORDER BY id",
            )
            .map_err(JournalError::sql("reading the queue"))?;
        let mut rows = stmt
            .query([])
            .map_err(JournalError::sql("reading the queue"))?;
        while let Some(r) = rows
            .next()
            .map_err(JournalError::sql("reading the queue"))?
        {
            let read = |r: &rusqlite::Row| -> rusqlite::Result<_> {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                    r.get::<_, u32>(6)?,
                ))
            };
            let (id, txn, kind, issuer, key_id, sealed, attempts) =
                read(r).map_err(JournalError::sql("reading the queue"))?;
            let message = keys.open(SEAL_MESSAGE, &key_id, &sealed)?;
            pending_saf.push(PendingSaf {
                id: id as u64,
                txn_id: txn.map(|t| t as u64),
                kind,
                issuer,
                message,
                attempts,
            });
        }
    }
    let mut unfinished = Vec::new();
    {
        let mut stmt = conn
            .prepare(
                "SELECT id, issuer, pan_key_id, forwarded_sealed FROM transactions
                 WHERE state = 'forwarded' AND forwarded_sealed IS NOT NULL ORDER BY id",
            )
            .map_err(JournalError::sql("reading open requests"))?;
        let rows: Vec<(i64, String, String, Vec<u8>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(|rows| rows.collect())
            .map_err(JournalError::sql("reading open requests"))?;
        for (id, issuer, key_id, sealed) in rows {
            let message: Zeroizing<Vec<u8>> = keys.open(SEAL_MESSAGE, &key_id, &sealed)?;
            unfinished.push(Unfinished {
                txn_id: id as u64,
                issuer,
                message,
            });
        }
    }
    Ok(Recovery {
        next_txn_id,
        next_saf_id,
        pending_saf,
        unfinished,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::outcome::TxnOutcome;

    #[test]
    fn recovery_sql_writes_the_outcome_words() {
        let acked = format!("outcome = '{}'", TxnOutcome::AdviceAcked.as_str());
        let unknown = format!("COALESCE(outcome, '{}')", TxnOutcome::Unknown.as_str());
        for word in [acked, unknown] {
            assert!(CLOSE_NEVER_FORWARDED.contains(&word), "{word}");
        }
    }
}
