//! The SQLite journal: WAL mode, `synchronous = FULL` (a commit is on disk
//! when it returns), one writer, many records per commit. The PAN and
//! queued messages are sealed here, on the writer's thread.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use zeroize::Zeroizing;

use super::crypto::{CryptoError, Keyring, NoncePool};
use super::lookup;
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
    nonces: NoncePool,
    /// Records committed since the writer's own last checkpoint.
    since_checkpoint: usize,
    /// The look-up indexes' watermark (lookup.rs) and the highest
    /// transaction id committed: a batch is indexed when they are
    /// [`lookup::BATCH_ROWS`] apart.
    indexed_through: i64,
    max_id: i64,
    /// Stops the checkpoint thread when the journal is dropped.
    _checkpointer: Option<Checkpointer>,
}

/// Records between two checkpoints by the writer itself. The background
/// checkpointer copies most of the WAL, but under sustained load it never
/// copies all of it between two commits, and SQLite starts the WAL over
/// only after a checkpoint that did: without this the WAL grows without
/// end (460 MB in 5 s at 10k requests/s). A checkpoint by the writer sees
/// no commit in between, so it completes (unless a reader holds an old
/// snapshot) and the next commit writes the WAL from its start again; the
/// pages it copies are mostly those of the last half second, so it is short.
const WRITER_CHECKPOINT_RECORDS: usize = 8_192;

/// The WAL file is cut back to this size after the writer's checkpoint.
const WAL_SIZE_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// How often the WAL is copied back into the database.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Checkpoints the WAL on its own thread and connection, so the writer's
/// commits never wait for the database file's own writes and fsyncs
/// (SQLite's automatic checkpoint would run inside a commit).
struct Checkpointer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, JournalError> {
        let conn = open_connection(path)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("journal-checkpoint".into())
            .spawn(move || {
                use std::sync::atomic::Ordering;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(CHECKPOINT_INTERVAL);
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "journal checkpoint failed");
                    }
                }
            })
            .map_err(|e| JournalError::Open {
                path: path.display().to_string(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
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

/// Checks that `keys` are the keys this journal was sealed with.
pub fn check_keys(conn: &Connection, keys: &Keyring) -> Result<(), JournalError> {
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
    Ok(())
}

/// Checks the keys, then records the check values of keys not seen before.
pub fn verify_keys(conn: &Connection, keys: &Keyring) -> Result<(), JournalError> {
    check_keys(conn, keys)?;
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
        // Rows written since the last batch (before a crash, or by a seed)
        // are indexed now, so searches never read a long unindexed tail.
        let indexed_through = lookup::catch_up(&mut conn).map_err(JournalError::sql(
            "indexing rows written since the last batch",
        ))?;
        // The writer's page cache holds the hot pages (the table's tail and
        // a look-up batch's leaves). Not more: SQLite scans the whole cache's
        // hash table at every commit (pcache1TruncateUnsafe, 12% of the
        // writer's time with 64 MiB).
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -{WRITER_CACHE_KIB};
             PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES};"
        ))
        .map_err(JournalError::sql("turning off in-commit checkpoints"))?;
        conn.set_prepared_statement_cache_capacity(32);
        let checkpointer = Some(Checkpointer::start(path)?);
        Ok(SqliteJournal {
            conn,
            keys,
            nonces: NoncePool::new(),
            since_checkpoint: 0,
            indexed_through,
            max_id: indexed_through,
            _checkpointer: checkpointer,
        })
    }
}

/// The writer connection's page cache, KiB.
const WRITER_CACHE_KIB: u32 = 8 * 1024;

/// The statements of one group, prepared (taken from the cache) once per
/// group rather than once per record.
struct Group<'c> {
    conn: &'c Connection,
    keys: &'c Keyring,
    nonces: &'c mut NoncePool,
    insert: Option<rusqlite::CachedStatement<'c>>,
    answer: Option<rusqlite::CachedStatement<'c>>,
    /// Ids up to here are already in the look-up indexes: a row at or
    /// below it (it arrived after its batch) is indexed on its own.
    indexed_through: i64,
    /// The highest transaction id inserted so far.
    max_id: i64,
}

impl<'c> Group<'c> {
    fn insert_accepted(&mut self, a: &Accepted) -> Result<(), JournalError> {
        let keys = self.keys;
        let (pan_sealed, pan_hmac, pan_masked) = match &a.pan {
            Some(pan) => {
                let sealed = keys.seal_with_nonce(SEAL_PAN, pan, self.nonces.draw());
                (
                    Some(sealed.blob),
                    Some(keys.pan_hash(pan)),
                    Some(mask_pan(pan)),
                )
            }
            None => (None, None, None),
        };
        let route = a.route.as_ref();
        let forwarded = route.map(|r| {
            keys.seal_with_nonce(SEAL_MESSAGE, &r.message, self.nonces.draw())
                .blob
        });
        // One key seals every sealed column of a row: the current one.
        let pan_key = (pan_sealed.is_some() || forwarded.is_some()).then(|| keys.current_key_id());
        let conn = self.conn;
        let stmt = match &mut self.insert {
            Some(s) => s,
            slot => slot.insert(conn.prepare_cached(
                "INSERT INTO transactions (id, received_at_ms, acquirer, request_mti, processing_code,
                  amount_minor, transmission_at, stan, local_time, local_date, mcc, pos_entry_mode,
                  acquirer_inst, rrn, terminal_id, merchant_id, merchant_name_loc, currency,
                  original_data, replacement_amount, pan_key_id, pan_sealed, pan_hmac, pan_masked,
                  issuer, issuer_stan, forwarded_sealed, forwarded_at_ms, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                  ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)",
            )
            .map_err(JournalError::sql("preparing insert"))?),
        };
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
            pan_hmac.as_ref().map(|h| &h[..]),
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
        let id = a.id as i64;
        self.max_id = self.max_id.max(id);
        if id <= self.indexed_through {
            lookup::add_rows(conn, id - 1, id)
                .map_err(JournalError::sql("indexing a late request"))?;
        }
        Ok(())
    }

    fn update_answered(&mut self, a: &Answered) -> Result<(), JournalError> {
        let conn = self.conn;
        let stmt = match &mut self.answer {
            Some(s) => s,
            slot => slot.insert(
                conn.prepare_cached(
                    "UPDATE transactions SET response_code = ?2, approval_code = ?3, outcome = ?4,
                       response_at_ms = ?5, sent_at_ms = ?6,
                       state = CASE WHEN state IN ('received', 'forwarded') THEN 'answered' ELSE state END
                     WHERE id = ?1",
                )
                .map_err(JournalError::sql("recording an answer"))?,
            ),
        };
        stmt.execute(params![
            a.id as i64,
            a.response_code,
            a.approval_code,
            a.outcome,
            a.response_at_ms,
            a.sent_at_ms
        ])
        .map_err(JournalError::sql("recording an answer"))?;
        Ok(())
    }

    fn insert_saf(&mut self, q: &SafQueued) -> Result<(), JournalError> {
        let sealed = self
            .keys
            .seal_with_nonce(SEAL_MESSAGE, &q.message, self.nonces.draw());
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

    fn apply(&mut self, record: &Record) -> Result<(), JournalError> {
        match record {
            Record::Accepted(a) => self.insert_accepted(a),
            Record::Answered(a) => self.update_answered(a),
            Record::Delivery {
                id,
                at_ms,
                delivered,
            } => self
                .conn
                .prepare_cached(
                    "UPDATE transactions SET
                       sent_at_ms = CASE WHEN ?3 THEN ?2 ELSE sent_at_ms END,
                       outcome = CASE WHEN ?3 THEN outcome ELSE 'undelivered' END
                     WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![*id as i64, at_ms, delivered]))
                .map(|_| ())
                .map_err(JournalError::sql("recording a delivery")),
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
                // A reversal given up leaves its transaction in a final
                // state of its own (an operator may queue it again).
                let txn_state = if *delivered {
                    "reversed"
                } else {
                    "reversal_given_up"
                };
                self.conn
                    .prepare_cached(
                        "UPDATE transactions SET state = ?2 WHERE id =
                           (SELECT txn_id FROM saf WHERE id = ?1 AND kind = 'timeout_reversal')",
                    )
                    .and_then(|mut s| s.execute(params![*id as i64, txn_state]))
                    .map_err(JournalError::sql("closing a reversal"))?;
                Ok(())
            }
        }
    }
}

impl JournalStore for SqliteJournal {
    fn append(&mut self, records: &[Record]) -> Result<(), JournalError> {
        let conn = &self.conn;
        let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
        run("BEGIN IMMEDIATE").map_err(JournalError::sql("beginning a group"))?;
        let mut group = Group {
            conn,
            keys: &self.keys,
            nonces: &mut self.nonces,
            insert: None,
            answer: None,
            indexed_through: self.indexed_through,
            max_id: self.max_id,
        };
        let applied = records.iter().try_for_each(|r| group.apply(r));
        let max_id = group.max_id;
        drop(group);
        // A batch of look-up entries rides in this group's commit.
        let batch = max_id - self.indexed_through >= lookup::BATCH_ROWS;
        let applied = applied.and_then(|()| {
            if batch {
                lookup::advance(conn, self.indexed_through, max_id)
                    .map_err(JournalError::sql("indexing a batch"))?;
            }
            Ok(())
        });
        match applied {
            Ok(()) => run("COMMIT")
                .map(|_| ())
                .map_err(JournalError::sql("committing a group"))?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        self.max_id = max_id;
        if batch {
            self.indexed_through = max_id;
        }
        self.since_checkpoint += records.len();
        if self.since_checkpoint >= WRITER_CHECKPOINT_RECORDS {
            // (busy, frames in the WAL, frames copied): all copied means
            // the next commit starts the WAL over. Busy (the background
            // checkpointer was at work) or a reader in the way: try again
            // after the next group. The group is durable already either way.
            let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok(r.get::<_, i64>(0)? == 0 && r.get::<_, i64>(1)? == r.get::<_, i64>(2)?)
            });
            match done {
                Ok(true) => self.since_checkpoint = 0,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "journal checkpoint by the writer failed"),
            }
        }
        Ok(())
    }

    fn recover(&mut self) -> Result<Recovery, JournalError> {
        // Requests never forwarded whose answer was not recorded: an
        // advice was acknowledged once durably queued (so it was), and
        // anything else reached no issuer, so there is nothing to undo.
        self.conn
            .execute_batch(
                "UPDATE transactions SET state = 'answered', outcome = 'advice_acked',
                   response_code = COALESCE(response_code, '00')
                 WHERE state = 'received'
                   AND id IN (SELECT txn_id FROM saf WHERE kind = 'acquirer_advice');
                 UPDATE transactions SET state = 'abandoned', outcome = COALESCE(outcome, 'unknown')
                 WHERE state = 'received';",
            )
            .map_err(JournalError::sql("closing requests never forwarded"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::{Accepted, Answered, Forwarded, SafQueued};

    fn keys(id: &str, byte: u8) -> Arc<Keyring> {
        Arc::new(Keyring::from_env_value(&format!("{id}:{}", hex::encode([byte; 32]))).unwrap())
    }

    /// An empty directory for one test's database, unique to this process.
    fn fresh_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cardswitch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn accepted(id: u64, forwarded: bool) -> Record {
        Record::Accepted(Box::new(Accepted {
            id,
            received_at_ms: 1,
            acquirer: "pos".into(),
            request_mti: "0100".into(),
            rrn: Some(format!("{id:012}")),
            pan: Some(Zeroizing::new(b"4761739001010119".to_vec())),
            route: forwarded.then(|| Forwarded {
                issuer: "a".into(),
                issuer_stan: "000001".into(),
                message: Zeroizing::new(b"0100 as forwarded".to_vec()),
            }),
            ..Accepted::default()
        }))
    }

    fn answered(id: u64) -> Record {
        Record::Answered(Answered {
            id,
            response_code: Some("00".into()),
            outcome: "approved",
            sent_at_ms: Some(2),
            ..Answered::default()
        })
    }

    fn count(path: &Path, sql: &str) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }

    /// The look-up tables fill in batches as the writer goes, a request
    /// that arrives after its id range was indexed is indexed on arrival,
    /// and rows left above the watermark by a crash are indexed at start.
    #[test]
    fn lookups_are_indexed_in_batches_late_rows_at_once_and_the_rest_at_start() {
        let dir = fresh_dir("lookup");
        let path = dir.join("j.db");
        let by_pan = "SELECT COUNT(*) FROM txn_by_pan";
        let batch = lookup::BATCH_ROWS as u64;
        let mut j = SqliteJournal::open(&path, keys("k1", 1)).unwrap();
        // Ids 1..=last except 5, which arrives after the batch.
        let last = batch + 150;
        let ids = (1..=last).filter(|&id| id != 5);
        for chunk in ids.collect::<Vec<_>>().chunks(100) {
            let group: Vec<Record> = chunk.iter().map(|&id| accepted(id, true)).collect();
            j.append(&group).unwrap();
        }
        let watermark = |path: &Path| lookup::watermark(&Connection::open(path).unwrap()).unwrap();
        let through = watermark(&path);
        assert!(
            through >= lookup::BATCH_ROWS,
            "a batch was indexed: {through}"
        );
        assert_eq!(count(&path, by_pan), through - 1, "all but id 5");
        j.append(&[accepted(5, true)]).unwrap();
        assert_eq!(count(&path, by_pan), through, "id 5 on arrival");
        let tail = last as i64 - through;
        assert!(tail > 0, "some rows wait for the next batch");
        // A search finds the whole card's history, indexed or not.
        let conn = Connection::open(&path).unwrap();
        let found = crate::journal::query::search(
            &conn,
            &crate::journal::query::Filter {
                pan_hash: Some(keys("k1", 1).pan_hash(b"4761739001010119")),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(found.len() as u64, last);
        drop(conn);
        drop(j);
        // Restarted: the tail is indexed before the writer takes records.
        let _j = SqliteJournal::open(&path, keys("k1", 1)).unwrap();
        assert_eq!(count(&path, by_pan), last as i64);
        assert_eq!(watermark(&path), last as i64);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Under sustained appends the background checkpointer never copies
    /// the whole WAL between two commits; the writer's own checkpoint must
    /// keep the WAL file from growing with every record written.
    #[test]
    fn the_wal_stays_bounded_under_sustained_appends() {
        let dir = fresh_dir("wal");
        let path = dir.join("j.db");
        let wal = dir.join("j.db-wal");
        let mut j = SqliteJournal::open(&path, keys("k1", 1)).unwrap();
        let mut id = 0;
        // One writer-checkpoint period of groups of 32 requests, each
        // accepted and answered in the same group.
        let mut period = |j: &mut SqliteJournal| {
            for _ in 0..WRITER_CHECKPOINT_RECORDS / 64 {
                let group: Vec<Record> = (0..32)
                    .flat_map(|_| {
                        id += 1;
                        [accepted(id, true), answered(id)]
                    })
                    .collect();
                j.append(&group).unwrap();
            }
        };
        period(&mut j);
        let one_period = std::fs::metadata(&wal).unwrap().len();
        for _ in 0..5 {
            period(&mut j);
        }
        let after = std::fs::metadata(&wal).unwrap().len();
        assert!(
            after < 3 * one_period,
            "WAL of {after} bytes after six periods, {one_period} after one: it keeps growing"
        );
        drop(j);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn recovery_finds_open_requests_and_pending_entries_across_key_rotation() {
        let dir = fresh_dir("sqlite");
        let path = dir.join("j.db");
        {
            let mut j = SqliteJournal::open(&path, keys("k1", 1)).unwrap();
            j.append(&[
                accepted(1, true),
                accepted(2, true),
                answered(2),
                accepted(3, false),
            ])
            .unwrap();
            j.append(&[
                Record::SafQueued(SafQueued {
                    id: 7,
                    txn_id: Some(1),
                    kind: "timeout_reversal",
                    issuer: "a".into(),
                    message: Zeroizing::new(b"0420".to_vec()),
                    queued_at_ms: 3,
                }),
                Record::SafQueued(SafQueued {
                    id: 8,
                    txn_id: None,
                    kind: "acquirer_advice",
                    issuer: "a".into(),
                    message: Zeroizing::new(b"0220".to_vec()),
                    queued_at_ms: 3,
                }),
                accepted(4, true),
            ])
            .unwrap();
            let r = j.recover().unwrap();
            assert_eq!((r.next_txn_id, r.next_saf_id), (5, 9));
            // 1 has its reversal queued, 2 was answered, 3 never forwarded.
            let open: Vec<u64> = r.unfinished.iter().map(|u| u.txn_id).collect();
            assert_eq!(open, [4]);
            assert_eq!(&r.unfinished[0].message[..], b"0100 as forwarded");
            let pending: Vec<u64> = r.pending_saf.iter().map(|p| p.id).collect();
            assert_eq!(pending, [7, 8]);
            j.append(&[Record::SafDone {
                id: 7,
                delivered: true,
                attempts: 2,
                at_ms: 4,
            }])
            .unwrap();
            let state: String = j
                .conn
                .query_row("SELECT state FROM transactions WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(state, "reversed");
        }
        // A rotated key file opens the old rows; a wrong key is refused.
        let rotated = Arc::new(
            Keyring::new(
                [
                    ("k1".to_string(), Zeroizing::new([1u8; 32])),
                    ("k2".to_string(), Zeroizing::new([2u8; 32])),
                ]
                .into_iter()
                .collect(),
                "k2",
                "k1",
            )
            .unwrap(),
        );
        let mut j = SqliteJournal::open(&path, rotated).unwrap();
        let r = j.recover().unwrap();
        assert_eq!(r.pending_saf.len(), 1);
        assert_eq!(&r.pending_saf[0].message[..], b"0220");
        drop(j);
        assert!(matches!(
            SqliteJournal::open(&path, keys("k1", 9)).err(),
            Some(JournalError::Crypto(CryptoError::WrongKey(id))) if id == "k1"
        ));
        assert!(matches!(
            SqliteJournal::open(&path, keys("k3", 1)).err(),
            Some(JournalError::Crypto(CryptoError::UnknownKey(_)))
        ));
        // Nothing in the files holds the PAN in the clear.
        for entry in std::fs::read_dir(&dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!bytes.windows(16).any(|w| w == b"4761739001010119"));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
