//! The SQLite journal: WAL mode, `synchronous = FULL` (a commit is on disk
//! when it returns), one writer, many records per commit. The PAN and
//! queued messages are sealed here, on the writer's thread.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use zeroize::Zeroizing;

use super::crypto::{CryptoError, Keyring};
use super::record::{Accepted, Answered, Record, SafQueued};
use super::schema::{JOURNAL_MIGRATIONS, migrate};
use super::store::{JournalError, JournalStore, PendingSaf, Recovery, Unfinished};
use crate::message::sensitive::mask_pan;

/// Purposes bound into sealed data.
pub const SEAL_PAN: &[u8] = b"pan";
pub const SEAL_MESSAGE: &[u8] = b"message";

pub struct SqliteJournal {
    conn: Connection,
    keys: Arc<Keyring>,
}

/// Opens a database with the journal's settings (also for readers).
pub fn open_connection(path: &Path) -> Result<Connection, JournalError> {
    let fail = |source| JournalError::Open {
        path: path.display().to_string(),
        source,
    };
    let conn = Connection::open(path).map_err(fail)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
    )
    .map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(conn)
}

/// Checks that `keys` are the keys this journal was sealed with, and
/// records the check values of keys not seen before.
pub fn verify_keys(conn: &Connection, keys: &Keyring) -> Result<(), JournalError> {
    let mut stmt = conn
        .prepare("SELECT key_id, check_value FROM key_checks")
        .map_err(JournalError::sql("reading key checks"))?;
    let known: Vec<(String, Vec<u8>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(JournalError::sql("reading key checks"))?;
    for (id, check) in &known {
        match keys.check_value(id) {
            None => return Err(CryptoError::UnknownKey(id.clone()).into()),
            Some(v) if v[..] != check[..] => return Err(CryptoError::WrongKey(id.clone()).into()),
            Some(_) => {}
        }
    }
    for id in keys.key_ids() {
        if let Some(v) = keys.check_value(&id) {
            conn.execute(
                "INSERT OR IGNORE INTO key_checks (key_id, check_value) VALUES (?1, ?2)",
                params![id, &v[..]],
            )
            .map_err(JournalError::sql("recording key checks"))?;
        }
    }
    Ok(())
}

impl SqliteJournal {
    /// Opens (creating and migrating) the journal at `path`, refusing keys
    /// that do not match the data.
    pub fn open(path: &Path, keys: Arc<Keyring>) -> Result<SqliteJournal, JournalError> {
        let mut conn = open_connection(path)?;
        migrate(&mut conn, "journal", JOURNAL_MIGRATIONS)?;
        verify_keys(&conn, &keys)?;
        Ok(SqliteJournal { conn, keys })
    }

    fn insert_accepted(&self, a: &Accepted) -> Result<(), JournalError> {
        let (pan_sealed, pan_hmac, pan_masked) = match &a.pan {
            Some(pan) => {
                let sealed = self.keys.seal(SEAL_PAN, pan);
                (
                    Some(sealed.blob),
                    Some(self.keys.pan_hash(pan).to_vec()),
                    Some(mask_pan(pan)),
                )
            }
            None => (None, None, None),
        };
        let route = a.route.as_ref();
        let forwarded = route.map(|r| self.keys.seal(SEAL_MESSAGE, &r.message).blob);
        // One key seals every sealed column of a row: the current one.
        let pan_key = (pan_sealed.is_some() || forwarded.is_some())
            .then(|| self.keys.current_key_id().to_string());
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO transactions (id, received_at_ms, acquirer, request_mti, processing_code,
                  amount_minor, transmission_at, stan, local_time, local_date, mcc, pos_entry_mode,
                  acquirer_inst, rrn, terminal_id, merchant_id, merchant_name_loc, currency,
                  original_data, replacement_amount, pan_key_id, pan_sealed, pan_hmac, pan_masked,
                  issuer, issuer_stan, forwarded_sealed, forwarded_at_ms, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                  ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)",
            )
            .map_err(JournalError::sql("preparing insert"))?;
        let forwarded_at = route.map(|_| a.received_at_ms);
        stmt.execute(params![
            a.id as i64,
            a.received_at_ms,
            a.acquirer,
            a.request_mti,
            a.processing_code,
            a.amount_minor,
            a.transmission_at,
            a.stan,
            a.local_time,
            a.local_date,
            a.mcc,
            a.pos_entry_mode,
            a.acquirer_inst,
            a.rrn,
            a.terminal_id,
            a.merchant_id,
            a.merchant_name_loc,
            a.currency,
            a.original_data,
            a.replacement_amount,
            pan_key,
            pan_sealed,
            pan_hmac,
            pan_masked,
            route.map(|r| &r.issuer),
            route.map(|r| &r.issuer_stan),
            forwarded,
            forwarded_at,
            if route.is_some() {
                "forwarded"
            } else {
                "received"
            },
        ])
        .map_err(JournalError::sql("recording a request"))?;
        Ok(())
    }

    fn update_answered(&self, a: &Answered) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(
                "UPDATE transactions SET response_code = ?2, approval_code = ?3, outcome = ?4,
                   response_at_ms = ?5, sent_at_ms = ?6,
                   state = CASE WHEN state IN ('received', 'forwarded') THEN 'answered' ELSE state END
                 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    a.id as i64,
                    a.response_code,
                    a.approval_code,
                    a.outcome,
                    a.response_at_ms,
                    a.sent_at_ms
                ])
            })
            .map_err(JournalError::sql("recording an answer"))?;
        Ok(())
    }

    fn insert_saf(&self, q: &SafQueued) -> Result<(), JournalError> {
        let sealed = self.keys.seal(SEAL_MESSAGE, &q.message);
        self.conn
            .prepare_cached(
                "INSERT INTO saf (id, txn_id, kind, issuer, key_id, message_sealed, queued_at_ms, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending')",
            )
            .and_then(|mut s| {
                s.execute(params![
                    q.id as i64,
                    q.txn_id.map(|t| t as i64),
                    q.kind,
                    q.issuer,
                    sealed.key_id,
                    sealed.blob,
                    q.queued_at_ms
                ])
            })
            .map_err(JournalError::sql("queueing a store-and-forward entry"))?;
        if let (Some(txn), "timeout_reversal") = (q.txn_id, q.kind) {
            self.conn
                .prepare_cached("UPDATE transactions SET state = 'reversal_queued' WHERE id = ?1")
                .and_then(|mut s| s.execute(params![txn as i64]))
                .map_err(JournalError::sql("marking a reversal queued"))?;
        }
        Ok(())
    }

    fn apply(&self, record: &Record) -> Result<(), JournalError> {
        match record {
            Record::Accepted(a) => self.insert_accepted(a),
            Record::Answered(a) => self.update_answered(a),
            Record::Event {
                txn_id,
                at_ms,
                kind,
                detail,
            } => self
                .conn
                .prepare_cached(
                    "INSERT INTO events (txn_id, at_ms, kind, detail) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| s.execute(params![txn_id.map(|t| t as i64), at_ms, kind, detail]))
                .map(|_| ())
                .map_err(JournalError::sql("recording an event")),
            Record::SafQueued(q) => self.insert_saf(q),
            Record::SafAttempted { id, attempts } => self
                .conn
                .prepare_cached("UPDATE saf SET attempts = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![*id as i64, attempts]))
                .map(|_| ())
                .map_err(JournalError::sql("recording an attempt")),
            Record::SafDone {
                id,
                delivered,
                attempts,
                at_ms,
            } => {
                let state = if *delivered { "delivered" } else { "given_up" };
                self.conn
                    .prepare_cached(
                        "UPDATE saf SET state = ?2, attempts = ?3, done_at_ms = ?4 WHERE id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![*id as i64, state, attempts, at_ms]))
                    .map_err(JournalError::sql("closing a store-and-forward entry"))?;
                if *delivered {
                    self.conn
                        .prepare_cached(
                            "UPDATE transactions SET state = 'reversed' WHERE id =
                               (SELECT txn_id FROM saf WHERE id = ?1 AND kind = 'timeout_reversal')",
                        )
                        .and_then(|mut s| s.execute(params![*id as i64]))
                        .map_err(JournalError::sql("marking a reversal acknowledged"))?;
                }
                Ok(())
            }
        }
    }
}

impl JournalStore for SqliteJournal {
    fn append(&mut self, records: &[Record]) -> Result<(), JournalError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(JournalError::sql("beginning a group"))?;
        let applied = records.iter().try_for_each(|r| self.apply(r));
        match applied {
            Ok(()) => self
                .conn
                .execute_batch("COMMIT")
                .map_err(JournalError::sql("committing a group")),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn recover(&mut self) -> Result<Recovery, JournalError> {
        let max = |sql: &str| -> Result<u64, JournalError> {
            let v: Option<i64> = self
                .conn
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
            let mut stmt = self
                .conn
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
                let message = self.keys.open(SEAL_MESSAGE, &key_id, &sealed)?;
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
            let mut stmt = self
                .conn
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
                let message: Zeroizing<Vec<u8>> = self.keys.open(SEAL_MESSAGE, &key_id, &sealed)?;
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
}
