//! Rules the simulator's mutation checks break on purpose (issue 20,
//! point 4): with one of them removed, `cardswitch simulate --mutation`
//! must find a failing seed, which shows that its invariants can fail.
//! Never set outside the simulator.

use super::Core;

/// One rule of the core, removed.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// A time-out (or an answer without DE39) queues no reversal.
    NoReversalOnTimeout,
    /// The duplicate key ignores the content (PAN, DE3, DE4, DE49).
    NoDuplicateContentCheck,
    /// A request is forwarded before its acceptance is durable.
    NoDurabilityWait,
    /// A PIN block is forwarded as the acquirer sent it (not translated).
    NoPinTranslation,
    /// Stand-in approves a card not present without its CVV2 checked.
    NoStandInCardCheck,
}

impl Mutation {
    /// Every mutation, by the name `--mutation` takes.
    pub const ALL: [(&'static str, Mutation); 5] = [
        ("no-reversal-on-timeout", Mutation::NoReversalOnTimeout),
        (
            "no-duplicate-content-check",
            Mutation::NoDuplicateContentCheck,
        ),
        ("no-durability-wait", Mutation::NoDurabilityWait),
        ("no-pin-translation", Mutation::NoPinTranslation),
        ("no-stand-in-card-check", Mutation::NoStandInCardCheck),
    ];

    /// The mutation called `name`.
    pub fn from_name(name: &str) -> Option<Mutation> {
        Mutation::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, m)| m)
    }
}

impl Core {
    /// Breaks one rule (the simulator's mutation checks only).
    #[doc(hidden)]
    pub fn set_mutation(&mut self, mutation: Mutation) {
        self.mutation = Some(mutation);
        if mutation == Mutation::NoDuplicateContentCheck {
            self.duplicates.ignore_content();
        }
    }

    pub(super) fn mutated(&self, mutation: Mutation) -> bool {
        self.mutation == Some(mutation)
    }
}
