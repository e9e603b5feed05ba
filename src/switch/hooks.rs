//! Decisions the switch leaves to the acquirer's business rules, which live
//! above it (the clearing layer implements them): which terminals may
//! transact, and how a terminal's batch close (0500) is answered. The
//! switch calls these without knowing where the registry is kept.

use crate::message::Message;

/// Whether a request from a terminal may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admit,
    /// Decline locally with this DE39 ("58": terminal not permitted /
    /// unknown, "03": invalid or blocked merchant).
    Decline(&'static str),
}

/// The acquirer's rules, consulted on every authorization, financial and
/// reconciliation request.
pub trait AcquirerRules: Send + Sync {
    /// Checks the terminal (DE41) and merchant (DE42) of a request. Called
    /// on the hot path: must not block (keep the registry in memory).
    fn admit(&self, terminal_id: Option<&[u8]>, merchant_id: Option<&[u8]>) -> Admission;

    /// Answers a reconciliation request (0500 batch close, acquirer's
    /// dialect) with its 0510, or `None` to let the switch decline it.
    /// Called off the async threads and after every earlier journal record
    /// is durable, so it may read the journal's database.
    fn reconcile(&self, request: &Message) -> Option<Message>;
}
