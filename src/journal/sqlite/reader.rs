//! The SQLite journal as [`JournalQueries`]: a connection of its own
//! beside the writer (WAL: readers never hold it up), read-only unless
//! opened for maintenance.

use std::ops::ControlFlow;
use std::path::Path;

use rusqlite::{Connection, params};

use super::{capture, check_keys, open_connection, search};
use crate::journal::capture_rows::{CaptureRow, CaptureRows, PresentmentRow};
use crate::journal::crypto::Keyring;
use crate::journal::query::{Filter, JournalQueries, LifeEvent, QueryError, TxnView};
use crate::journal::requeue::Requeue;
use crate::journal::store::JournalError;

pub struct SqliteReader {
    conn: Connection,
}

impl SqliteReader {
    /// Opens the journal at `path`, which must exist; read-only unless
    /// `writable` (an operator's requeue).
    pub fn open(path: &Path, writable: bool) -> Result<SqliteReader, JournalError> {
        if !path.exists() {
            return Err(JournalError::NotFound {
                path: path.display().to_string(),
            });
        }
        let conn = open_connection(path)?;
        if !writable {
            conn.execute_batch("PRAGMA query_only = ON")
                .map_err(|source| JournalError::Open {
                    path: path.display().to_string(),
                    source,
                })?;
        }
        Ok(SqliteReader { conn })
    }
}

impl JournalQueries for SqliteReader {
    fn for_each(
        &self,
        f: &Filter,
        each: &mut dyn FnMut(TxnView) -> std::io::Result<()>,
    ) -> Result<u64, QueryError> {
        search::for_each(&self.conn, f, each)
    }

    fn life(&self, id: i64) -> Result<Option<(TxnView, Vec<LifeEvent>)>, JournalError> {
        search::life(&self.conn, id)
    }

    fn check_keys(&self, keys: &Keyring) -> Result<(), JournalError> {
        check_keys(&self.conn, keys)
    }

    fn backup(&self, dest: &Path) -> Result<(), QueryError> {
        backup(&self.conn, dest)
    }

    fn requeue(&mut self, which: Requeue, at_ms: i64) -> Result<Vec<u64>, JournalError> {
        requeue(&mut self.conn, which, at_ms).map_err(JournalError::sql("requeueing"))
    }

    fn for_each_capture_row(
        &self,
        rows: CaptureRows<'_>,
        each: &mut dyn FnMut(&CaptureRow<'_>) -> ControlFlow<()>,
    ) -> Result<u64, JournalError> {
        capture::for_each_capture_row(&self.conn, rows, each)
    }

    fn last_of_terminal(&self, terminal: &str, after_id: i64) -> Result<i64, JournalError> {
        capture::last_of_terminal(&self.conn, terminal, after_id)
    }

    fn presentment_rows(
        &self,
        ids: &[i64],
        keys: &Keyring,
    ) -> Result<Vec<PresentmentRow>, JournalError> {
        capture::presentment_rows(&self.conn, ids, keys)
    }
}

/// A consistent copy of a live journal (SQLite online backup: the writer
/// goes on while pages are copied).
/// The copy is made owner-only (0600) like the journal it copies: it is
/// created empty with that mode before SQLite opens it.
fn backup(conn: &Connection, dest: &Path) -> Result<(), QueryError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(dest).map_err(|source| QueryError::Create {
        path: dest.display().to_string(),
        source,
    })?;
    let mut out = Connection::open(dest).map_err(|source| JournalError::Open {
        path: dest.display().to_string(),
        source,
    })?;
    let b = rusqlite::backup::Backup::new(conn, &mut out)
        .map_err(JournalError::sql("starting a backup"))?;
    b.run_to_completion(256, std::time::Duration::from_millis(5), None)
        .map_err(JournalError::sql("copying pages"))?;
    Ok(())
}

/// Queues the selected given-up entries again, in one transaction, and
/// returns their ids. Entries not given up (pending or delivered) are never
/// touched: a delivered reversal is not sent twice.
fn requeue(conn: &mut Connection, which: Requeue, at_ms: i64) -> rusqlite::Result<Vec<u64>> {
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
