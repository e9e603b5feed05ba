//! A batch of log entries folded before it is written: a request's answer
//! and delivery that come in the same batch as the request itself (most
//! do: they follow it within milliseconds) go into its row as it is
//! inserted, instead of two updates after the insert. One statement per
//! request instead of three; the rows come out as the three would leave
//! them (`tests.rs` checks it against the unfolded writes).
//!
//! Not folded: a transaction some store-and-forward entry of the batch
//! names (its state is changed by that entry's rules), and anything whose
//! request is not in the batch.

use std::collections::{HashMap, HashSet};

use crate::journal::log::record::{Entry, LogRecord};

/// An answer and deliveries folded into a request's row: the columns the
/// updates would have set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Folded<'a> {
    pub response_code: Option<&'a str>,
    pub approval_code: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub response_at_ms: Option<i64>,
    pub sent_at_ms: Option<i64>,
    pub answered: bool,
}

/// The plan for one batch: for each entry, whether it is written as it
/// is, written with what is folded into it, or skipped (folded away).
pub(super) enum Step<'a> {
    Write(&'a LogRecord),
    Request(&'a LogRecord, Folded<'a>),
    Skip,
}

/// Folds `entries`' answers and deliveries into their requests' rows.
pub(super) fn plan(entries: &[Entry]) -> Vec<Step<'_>> {
    let named_by_saf: HashSet<u64> = entries
        .iter()
        .filter_map(|e| match &e.record {
            LogRecord::SafQueued(q) => q.txn_id,
            _ => None,
        })
        .collect();
    let mut steps: Vec<Step<'_>> = Vec::with_capacity(entries.len());
    // Requests of this batch that can take folds, by id: their step.
    let mut open: HashMap<u64, usize> = HashMap::new();
    for e in entries {
        let step = match &e.record {
            LogRecord::Accepted(a) if !named_by_saf.contains(&a.id) => {
                open.insert(a.id, steps.len());
                Step::Request(&e.record, Folded::default())
            }
            LogRecord::Answered(a) => match open.get(&a.id).map(|&i| &mut steps[i]) {
                Some(Step::Request(_, f)) => {
                    f.response_code = a.response_code.as_deref();
                    f.approval_code = a.approval_code.as_deref();
                    f.outcome = Some(&a.outcome);
                    f.response_at_ms = a.response_at_ms;
                    f.sent_at_ms = a.sent_at_ms;
                    f.answered = true;
                    Step::Skip
                }
                _ => Step::Write(&e.record),
            },
            LogRecord::Delivery {
                id,
                at_ms,
                delivered,
            } => match open.get(id).map(|&i| &mut steps[i]) {
                Some(Step::Request(_, f)) => {
                    if *delivered {
                        f.sent_at_ms = Some(*at_ms);
                    } else {
                        f.outcome = Some("undelivered");
                    }
                    Step::Skip
                }
                _ => Step::Write(&e.record),
            },
            other => Step::Write(other),
        };
        steps.push(step);
    }
    steps
}
