//! The durable transaction journal: every exchange recorded before it
//! matters (a request before it is forwarded, an advice before it is
//! acknowledged), the store-and-forward queue kept across restarts, and
//! card data sealed at rest. Behind two traits, [`store::JournalStore`]
//! (the writer) and [`query::JournalQueries`] (everything read beside
//! it); [`open`] chooses the store (SQLite, in [`sqlite`]).

#[cfg(feature = "runtime")]
pub mod capture_rows;
#[cfg(feature = "runtime")]
pub mod crypto;
pub mod log;
#[cfg(feature = "runtime")]
pub mod open;
pub mod outcome;
#[cfg(feature = "runtime")]
pub mod query;
pub mod record;
#[cfg(feature = "runtime")]
pub mod requeue;
#[cfg(feature = "runtime")]
pub mod schema;
#[cfg(feature = "runtime")]
pub mod sqlite;
#[cfg(feature = "runtime")]
pub mod store;
#[cfg(feature = "runtime")]
pub mod writer;

#[cfg(feature = "runtime")]
pub use open::{Access, open_queries, open_store};
pub use outcome::TxnOutcome;
#[cfg(feature = "runtime")]
pub use query::JournalQueries;
pub use record::Record;
#[cfg(feature = "runtime")]
pub use store::{JournalError, JournalStore, Recovery};
#[cfg(feature = "runtime")]
pub use writer::{Journal, OnDurable};
