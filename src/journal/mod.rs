//! The durable transaction journal: every exchange recorded before it
//! matters (a request before it is forwarded, an advice before it is
//! acknowledged), the store-and-forward queue kept across restarts, and
//! card data sealed at rest. Behind two traits, [`store::JournalStore`]
//! (the writer) and [`query::JournalQueries`] (everything read beside
//! it); [`open`] chooses the store (SQLite, in [`sqlite`]).

pub mod capture_rows;
pub mod crypto;
pub mod log;
pub mod open;
pub mod query;
pub mod record;
pub mod requeue;
pub mod schema;
pub mod sqlite;
pub mod store;
pub mod writer;

pub use open::{Access, open_queries, open_store};
pub use query::JournalQueries;
pub use record::Record;
pub use store::{JournalError, JournalStore, Recovery};
pub use writer::{Journal, OnDurable};
