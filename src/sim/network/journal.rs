//! The simulated journal: appends are groups that become durable in
//! order after a delay (or fail); a crash loses the groups not yet
//! durable. What it keeps is applied by the rules of the SQLite journal
//! (the real store's `apply` and `recover`, in `journal/`), so that a restart rebuilds
//! the core from the same `Restored` the real recovery would give.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;

use crate::journal::{Record, TxnOutcome};
use crate::message::Spec;
use crate::switch::core::{Restored, RestoredSaf, RestoredTxn, Token};
use crate::switch::saf::SafKind;

/// A transaction's state, as the `transactions` table has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Received,
    Forwarded,
    Answered,
    ReversalQueued,
    Reversed,
    ReversalGivenUp,
    Abandoned,
}

/// One kept transaction.
#[derive(Debug, Clone)]
pub struct Txn {
    pub rrn: Option<String>,
    /// The issuer's name and the request as forwarded.
    pub route: Option<(String, Vec<u8>)>,
    pub state: TxnState,
    pub outcome: Option<TxnOutcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafState {
    Pending,
    Delivered,
    GivenUp,
}

/// One kept store-and-forward entry.
#[derive(Debug, Clone)]
pub struct Saf {
    pub txn_id: Option<u64>,
    pub kind: &'static str,
    pub issuer: String,
    pub message: Vec<u8>,
    pub attempts: u32,
    pub state: SafState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupState {
    Pending,
    Kept,
    Failed,
    Lost,
}

struct Group {
    records: Vec<Record>,
    token: Option<Token>,
    state: GroupState,
}

/// The journal of one seed, across the switch's restarts.
#[derive(Default)]
pub struct Journal {
    groups: Vec<Group>,
    /// When the last group commits: groups commit in order.
    last_commit_us: u64,
    pub txns: BTreeMap<u64, Txn>,
    pub saf: BTreeMap<u64, Saf>,
    /// The kinds of the kept entries of each transaction.
    saf_kinds: HashMap<u64, Vec<&'static str>>,
}

impl Journal {
    /// A group handed to the journal at `now_us`, committing `delay_us`
    /// later (never before the groups before it); its index and commit
    /// time.
    pub fn append(
        &mut self,
        records: Vec<Record>,
        token: Option<Token>,
        now_us: u64,
        delay_us: u64,
    ) -> (usize, u64) {
        let at = self.last_commit_us.max(now_us + delay_us);
        self.last_commit_us = at;
        self.groups.push(Group {
            records,
            token,
            state: GroupState::Pending,
        });
        (self.groups.len() - 1, at)
    }

    /// Commits group `index` (or fails it): the token to report, with
    /// whether it is on disk; `None` if the group was lost in a crash.
    pub fn commit(&mut self, index: usize, fail: bool) -> Option<(Option<Token>, bool)> {
        let group = self.groups.get_mut(index)?;
        if group.state != GroupState::Pending {
            return None;
        }
        if fail {
            group.state = GroupState::Failed;
            group.records.clear();
            return Some((group.token, false));
        }
        group.state = GroupState::Kept;
        let records = std::mem::take(&mut group.records);
        let token = group.token;
        for r in &records {
            self.apply(r);
        }
        Some((token, true))
    }

    /// Whether the core waits for group `index`.
    pub fn waited(&self, index: usize) -> bool {
        self.groups.get(index).is_some_and(|g| g.token.is_some())
    }

    /// The switch died: what was not yet durable is gone.
    pub fn crash(&mut self) {
        for g in &mut self.groups {
            if g.state == GroupState::Pending {
                g.state = GroupState::Lost;
                g.records.clear();
            }
        }
    }

    /// The SQLite journal's `apply`, on the kept state.
    fn apply(&mut self, record: &Record) {
        match record {
            Record::Accepted(a) => {
                let route = a
                    .route
                    .as_ref()
                    .map(|r| (r.issuer.clone(), r.message.to_vec()));
                let state = if route.is_some() {
                    TxnState::Forwarded
                } else {
                    TxnState::Received
                };
                self.txns.insert(
                    a.id,
                    Txn {
                        rrn: a.rrn.clone(),
                        route,
                        state,
                        outcome: None,
                    },
                );
            }
            Record::Answered(a) => {
                if let Some(t) = self.txns.get_mut(&a.id) {
                    t.outcome = Some(a.outcome);
                    if matches!(t.state, TxnState::Received | TxnState::Forwarded) {
                        t.state = TxnState::Answered;
                    }
                }
            }
            Record::Delivery { id, delivered, .. } => {
                if let (Some(t), false) = (self.txns.get_mut(id), delivered) {
                    t.outcome = Some(TxnOutcome::Undelivered);
                }
            }
            Record::Event { .. } => {}
            Record::SafQueued(q) => {
                if let Some(txn) = q.txn_id {
                    self.saf_kinds.entry(txn).or_default().push(q.kind);
                }
                self.saf.insert(
                    q.id,
                    Saf {
                        txn_id: q.txn_id,
                        kind: q.kind,
                        issuer: q.issuer.clone(),
                        message: q.message.to_vec(),
                        attempts: 0,
                        state: SafState::Pending,
                    },
                );
                if let (Some(txn), "timeout_reversal") = (q.txn_id, q.kind)
                    && let Some(t) = self.txns.get_mut(&txn)
                {
                    t.state = TxnState::ReversalQueued;
                }
            }
            Record::SafAttempted { id, attempts } => {
                if let Some(s) = self.saf.get_mut(id) {
                    s.attempts = *attempts;
                }
            }
            Record::SafDone {
                id,
                delivered,
                attempts,
                ..
            } => self.saf_done(*id, *delivered, *attempts),
        }
    }

    fn saf_done(&mut self, id: u64, delivered: bool, attempts: u32) {
        let Some(s) = self.saf.get_mut(&id) else {
            return;
        };
        s.state = if delivered {
            SafState::Delivered
        } else {
            SafState::GivenUp
        };
        s.attempts = attempts;
        if let (Some(txn), "timeout_reversal") = (s.txn_id, s.kind)
            && let Some(t) = self.txns.get_mut(&txn)
        {
            t.state = if delivered {
                TxnState::Reversed
            } else {
                TxnState::ReversalGivenUp
            };
        }
    }

    /// The SQLite journal's `recover`: closes the requests never
    /// forwarded, and lists the pending entries and the requests forwarded
    /// whose answer was never journaled. `issuers` are the configured
    /// issuers' names and specs (the stored messages are in their
    /// dialects). An error names a stored message that cannot be read.
    pub fn recover(&mut self, issuers: &[(&str, Arc<Spec>)]) -> Result<Restored, String> {
        let advised: Vec<u64> = self
            .saf
            .values()
            .filter(|s| s.kind == "acquirer_advice")
            .filter_map(|s| s.txn_id)
            .collect();
        for (id, t) in self.txns.iter_mut() {
            if t.state == TxnState::Received {
                if advised.contains(id) {
                    t.state = TxnState::Answered;
                    t.outcome.get_or_insert(TxnOutcome::AdviceAcked);
                } else {
                    t.state = TxnState::Abandoned;
                    t.outcome.get_or_insert(TxnOutcome::Unknown);
                }
            }
        }
        let index: HashMap<&str, usize> = issuers
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (*n, i))
            .collect();
        let parse = |issuer: &str, bytes: &[u8]| {
            let i = *index
                .get(issuer)
                .ok_or(format!("unknown issuer {issuer}"))?;
            let msg = issuers[i]
                .1
                .parse(&Bytes::copy_from_slice(bytes))
                .map_err(|e| format!("stored message for {issuer} unreadable: {e}"))?;
            Ok::<_, String>((i, msg))
        };
        let mut pending_saf = Vec::new();
        for (&id, s) in self
            .saf
            .iter()
            .filter(|(_, s)| s.state == SafState::Pending)
        {
            let (issuer, message) = parse(&s.issuer, &s.message)?;
            let kind = SafKind::from_label(s.kind).ok_or(format!("unknown kind {}", s.kind))?;
            pending_saf.push(RestoredSaf {
                id,
                txn_id: s.txn_id,
                kind,
                issuer,
                message,
                attempts: s.attempts,
            });
        }
        let mut unfinished = Vec::new();
        for (&id, t) in self
            .txns
            .iter()
            .filter(|(_, t)| t.state == TxnState::Forwarded)
        {
            if let Some((name, bytes)) = &t.route {
                let (issuer, message) = parse(name, bytes)?;
                unfinished.push(RestoredTxn {
                    txn_id: id,
                    issuer,
                    message,
                });
            }
        }
        Ok(Restored {
            next_txn_id: self.txns.keys().next_back().map_or(1, |m| m + 1),
            next_saf_id: self.saf.keys().next_back().map_or(1, |m| m + 1),
            pending_saf,
            unfinished,
        })
    }

    pub fn kept_txn(&self, id: u64) -> Option<&Txn> {
        self.txns.get(&id)
    }

    /// Whether a kept entry of `kind` belongs to transaction `txn`.
    pub fn kept_saf_of(&self, txn: u64, kind: &str) -> bool {
        self.saf_kinds.get(&txn).is_some_and(|k| k.contains(&kind))
    }

    /// The kept transactions of logical transaction `rrn`.
    pub fn txns_of<'a>(&'a self, rrn: &'a str) -> impl Iterator<Item = (u64, &'a Txn)> + 'a {
        self.txns
            .iter()
            .filter(move |(_, t)| t.rrn.as_deref() == Some(rrn))
            .map(|(&id, t)| (id, t))
    }

    /// Whether an entry of a transaction of `rrn` was given up.
    pub fn given_up_for(&self, rrn: &str) -> bool {
        let ids: Vec<u64> = self.txns_of(rrn).map(|(id, _)| id).collect();
        self.saf
            .values()
            .any(|s| s.state == SafState::GivenUp && s.txn_id.is_some_and(|t| ids.contains(&t)))
    }
}
