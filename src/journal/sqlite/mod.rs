//! The SQLite journal: WAL mode, `synchronous = FULL` (a commit is on disk
//! when it returns), one writer, many records per commit. The PAN and
//! queued messages are sealed here, on the writer's thread. The writer is
//! [`SqliteJournal`] (appending in `append.rs`, restart in `recover.rs`);
//! readers are [`SqliteReader`] (searches in `search.rs`, clearing's reads
//! in `capture.rs`), each on a connection of its own.

mod append;
mod capture;
mod coalesce;
pub mod lookup;
mod reader;
mod recover;
mod sealed;
mod search;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, params};

pub use reader::SqliteReader;
pub use sealed::LOG_WATERMARK;
pub use search::CLOCK_SLACK_MS;

use super::crypto::{CryptoError, Keyring, NoncePool};
use super::record::Record;
use super::schema::{JOURNAL_MIGRATIONS, migrate};
use super::store::{JournalError, JournalStore, Recovery};

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

impl SqliteJournal {
    /// Commits without waiting for the disk (`synchronous = NORMAL`): for
    /// SQLite fed from the journal log, which holds every record durably
    /// already. A commit lost to a power cut is fed again from the log
    /// (its watermark moves in the same commit).
    pub fn relax_sync(&self) -> Result<(), JournalError> {
        self.conn
            .execute_batch("PRAGMA synchronous = NORMAL;")
            .map_err(JournalError::sql("relaxing synchronous"))
    }
}

/// The writer connection's page cache, KiB.
const WRITER_CACHE_KIB: u32 = 8 * 1024;

impl JournalStore for SqliteJournal {
    fn append(&mut self, records: &[Record]) -> Result<(), JournalError> {
        self.append_group(records)
    }

    fn recover(&mut self) -> Result<Recovery, JournalError> {
        recover::recover(&self.conn, &self.keys)
    }
}
