//! The durable transaction journal: every exchange recorded before it
//! matters (a request before it is forwarded, an advice before it is
//! acknowledged), the store-and-forward queue kept across restarts, and
//! card data sealed at rest. SQLite by default, behind [`store::JournalStore`].

pub mod crypto;
pub mod lookup;
pub mod query;
pub mod record;
pub mod requeue;
pub mod schema;
pub mod sqlite;
pub mod store;
pub mod writer;

pub use record::Record;
pub use store::{JournalError, JournalStore, Recovery};
pub use writer::{Journal, OnDurable};
