//! A deterministic simulator of whole networks around the switch's pure
//! core (issue 20, point 4; docs/testing.md): acquirers, issuers, a
//! journal and crashes, in virtual time, all from one seed. After every
//! step it checks the invariants of the money flows; a failure names the
//! invariant, the step and the seed. No sockets, no tasks, no clock.

mod acquirer;
mod checks;
mod digest;
mod dispatch;
mod issuer;
mod journal;
mod queue;
mod setup;
#[cfg(test)]
mod tests;
mod world;

pub use crate::switch::core::Mutation;

/// How to run one seed.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Steps of traffic and faults before the quiet period.
    pub steps: u64,
    /// Print every step.
    pub trace: bool,
    /// A rule of the core broken on purpose.
    pub mutation: Option<Mutation>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            steps: DEFAULT_STEPS,
            trace: false,
            mutation: None,
        }
    }
}

/// Steps of traffic per seed unless told otherwise.
pub const DEFAULT_STEPS: u64 = 1_500;

/// The faults a run injected, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    pub late: u64,
    pub never: u64,
    pub twice: u64,
    pub wrong_stan: u64,
    pub wrong_class: u64,
    pub no_de39: u64,
    pub link_drops: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub journal_failed: u64,
    pub write_failed: u64,
    pub crashes: u64,
}

impl Faults {
    /// The counts with their names, for the summary.
    pub fn named(&self) -> [(&'static str, u64); 12] {
        [
            ("late", self.late),
            ("never", self.never),
            ("twice", self.twice),
            ("wrong_stan", self.wrong_stan),
            ("wrong_class", self.wrong_class),
            ("no_de39", self.no_de39),
            ("link_drops", self.link_drops),
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("journal_failed", self.journal_failed),
            ("write_failed", self.write_failed),
            ("crashes", self.crashes),
        ]
    }

    pub fn add(&mut self, o: &Faults) {
        let pairs = [
            (&mut self.late, o.late),
            (&mut self.never, o.never),
            (&mut self.twice, o.twice),
            (&mut self.wrong_stan, o.wrong_stan),
            (&mut self.wrong_class, o.wrong_class),
            (&mut self.no_de39, o.no_de39),
            (&mut self.link_drops, o.link_drops),
            (&mut self.lost, o.lost),
            (&mut self.duplicated, o.duplicated),
            (&mut self.journal_failed, o.journal_failed),
            (&mut self.write_failed, o.write_failed),
            (&mut self.crashes, o.crashes),
        ];
        for (a, b) in pairs {
            *a += b;
        }
    }

    pub fn total(&self) -> u64 {
        self.named().iter().map(|(_, n)| n).sum()
    }
}

/// What one seed did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub steps: u64,
    pub requests: u64,
    pub faults: Faults,
    /// Approvals the journal presumes delivered (the switch died between
    /// journaling and writing them; docs/journal.md, "Crash recovery").
    pub presumed_delivered: u64,
    /// Store-and-forward entries given up.
    pub given_up: u64,
    /// The trace digest: the same seed gives the same one.
    pub digest: u64,
}

/// An invariant of issue 20, point 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invariant {
    /// Every request gets exactly one reply.
    ExactlyOneReply,
    /// An acquirer never receives another transaction's answer.
    ForeignAnswer,
    /// No request reaches an issuer twice (repeats and reversals aside).
    ForwardedTwice,
    /// What may reach an issuer is durable in the journal first.
    ForwardedBeforeDurable,
    /// What the switch acknowledges is durable first (approvals, advices,
    /// reversals).
    AcknowledgedBeforeDurable,
    /// A store-and-forward entry has at most one attempt out at once.
    SafAttemptsOverlap,
    /// Stand-in stays within its per-card daily limits.
    StandInLimits,
    /// Every issuer approval reaches the acquirer or is reversed, never
    /// both; acquirer and issuer agree at the end.
    ApprovalAgreement,
    /// An advice the switch acknowledged reaches its issuer.
    AdviceDelivered,
    /// After the quiet period nothing is open and the queue is empty.
    Settled,
    /// Every accepted request ends answered, reversed or queued in the
    /// journal, across crashes.
    JournalComplete,
    /// Every message the core makes can be built in its dialect.
    Buildable,
    /// A PIN block reaches an issuer only as the HSM translated it.
    PinUntranslated,
    /// Stand-in approves a card not present only once its CVV2 verified.
    StandInCardUnchecked,
    /// The core did not panic (its own consistency checks included).
    NoPanic,
}

impl Invariant {
    pub fn name(self) -> &'static str {
        match self {
            Invariant::ExactlyOneReply => "exactly-one-reply",
            Invariant::ForeignAnswer => "no-foreign-answer",
            Invariant::ForwardedTwice => "not-forwarded-twice",
            Invariant::ForwardedBeforeDurable => "durable-before-forwarded",
            Invariant::AcknowledgedBeforeDurable => "durable-before-acknowledged",
            Invariant::SafAttemptsOverlap => "one-saf-attempt-at-once",
            Invariant::StandInLimits => "stand-in-limits",
            Invariant::ApprovalAgreement => "approval-delivered-or-reversed",
            Invariant::AdviceDelivered => "advice-delivered",
            Invariant::Settled => "settled",
            Invariant::JournalComplete => "journal-complete",
            Invariant::Buildable => "buildable",
            Invariant::PinUntranslated => "pin-translated",
            Invariant::StandInCardUnchecked => "stand-in-card-checked",
            Invariant::NoPanic => "no-panic",
        }
    }
}

/// A broken invariant: which, where, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("seed {seed}, step {step}: invariant {} broken: {detail}", invariant.name())]
pub struct Failure {
    pub seed: u64,
    pub step: u64,
    pub invariant: Invariant,
    pub detail: String,
}

/// Runs the scenario of `seed`; with `opts.trace`, every step goes to
/// `trace`.
pub fn run_seed(
    seed: u64,
    opts: &Options,
    trace: Option<&mut dyn std::io::Write>,
) -> Result<Report, Failure> {
    let run = std::panic::AssertUnwindSafe(|| world::World::new(seed, *opts, trace).run());
    std::panic::catch_unwind(run).unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Failure {
            seed,
            step: 0,
            invariant: Invariant::NoPanic,
            detail: format!("panicked: {detail}"),
        })
    })
}
