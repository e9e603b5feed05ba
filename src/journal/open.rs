//! The one place that chooses a journal store: the node opens its writer
//! here, the command line and clearing their readers. Everything else
//! sees only [`JournalStore`] and [`JournalQueries`]; a second store is a
//! module implementing both, and a branch here.

use std::path::Path;
use std::sync::Arc;

use super::crypto::Keyring;
use super::query::JournalQueries;
use super::sqlite::{SqliteJournal, SqliteReader};
use super::store::{JournalError, JournalStore};

/// What a reader may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Searches, exports, backups, clearing's reads.
    ReadOnly,
    /// An operator's maintenance too (requeue).
    ReadWrite,
}

/// Opens (creating and migrating) the journal at `path` for its one
/// writer, refusing keys that do not match the data.
pub fn open_store(path: &Path, keys: Arc<Keyring>) -> Result<Box<dyn JournalStore>, JournalError> {
    Ok(Box::new(SqliteJournal::open(path, keys)?))
}

/// Opens the existing journal at `path` for reading (and, with
/// [`Access::ReadWrite`], maintenance) beside a running writer.
pub fn open_queries(path: &Path, access: Access) -> Result<Box<dyn JournalQueries>, JournalError> {
    Ok(Box::new(SqliteReader::open(
        path,
        access == Access::ReadWrite,
    )?))
}
