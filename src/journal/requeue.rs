//! An operator's second chance for store-and-forward entries the switch
//! gave up on (expired or out of attempts): they become pending again,
//! their attempts kept, and the switch delivers them (as repeats, since
//! they went out before) from its next start. Their transactions go back
//! from `reversal_given_up` to `reversal_queued`, and their life shows who
//! did it. Store-neutral: each store implements it
//! ([`super::query::JournalQueries::requeue`]).

/// Which given-up entries to queue again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// One entry, by its id.
    Entry(u64),
    /// Every entry of one transaction.
    Transaction(u64),
    /// Every given-up entry.
    AllGivenUp,
}
