//! The storage behind the journal, as traits: this one for the writer
//! (append, recover) and [`super::query::JournalQueries`] for everything
//! read or maintained beside it. SQLite is the embedded default
//! ([`super::sqlite`]); [`super::open`] is the one place that chooses a
//! store, so a second one (PostgreSQL) is one module implementing both
//! traits, plus a line there. The journal log (`super::log`) is the
//! durability point in front of the store, not a store of its own.

use zeroize::Zeroizing;

use super::crypto::CryptoError;
use super::record::Record;
use super::schema::SchemaError;

/// Why the journal failed. A journal that cannot write stops the switch
/// from forwarding: nothing is sent that is not recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    #[error("journal {path}: cannot open: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("journal schema: {0}")]
    Schema(#[from] SchemaError),
    #[error("journal keys: {0}")]
    Crypto(#[from] CryptoError),
    #[error("journal: {what}: {source}")]
    Sqlite {
        what: &'static str,
        source: rusqlite::Error,
    },
    #[error("journal writer has stopped")]
    Closed,
    /// A reader was pointed at a journal that is not there.
    #[error("no journal at {path}")]
    NotFound { path: String },
    /// A row another record (a clearing item) names is missing.
    #[error("journal row {0} is missing")]
    NoTransaction(i64),
    /// A stored PAN that the keys do not open.
    #[error("journal row {txn_id}: the sealed PAN does not open ({source})")]
    SealedPan { txn_id: i64, source: CryptoError },
}

impl JournalError {
    pub(crate) fn sql(what: &'static str) -> impl FnOnce(rusqlite::Error) -> JournalError {
        move |source| JournalError::Sqlite { what, source }
    }
}

/// A store-and-forward entry still to deliver.
#[derive(Debug)]
pub struct PendingSaf {
    pub id: u64,
    pub txn_id: Option<u64>,
    pub kind: String,
    pub issuer: String,
    pub message: Zeroizing<Vec<u8>>,
    pub attempts: u32,
}

/// A request forwarded to an issuer whose answer never reached the
/// acquirer and that has no reversal queued: its outcome is unknown.
#[derive(Debug)]
pub struct Unfinished {
    pub txn_id: u64,
    pub issuer: String,
    /// As forwarded, issuer's dialect, without SAD.
    pub message: Zeroizing<Vec<u8>>,
}

/// What a restart must pick up.
#[derive(Debug, Default)]
pub struct Recovery {
    pub next_txn_id: u64,
    pub next_saf_id: u64,
    pub pending_saf: Vec<PendingSaf>,
    pub unfinished: Vec<Unfinished>,
}

/// Durable storage for journal records.
pub trait JournalStore: Send {
    /// Stores a group of records atomically and durably (one commit).
    fn append(&mut self, records: &[Record]) -> Result<(), JournalError>;
    /// Reads what a restart must pick up.
    fn recover(&mut self) -> Result<Recovery, JournalError>;
}
