//! The switch as a pure core (issue 20, docs/core.md): `handle(now, input)`
//! changes state and queues actions, `poll_action` hands them to the node.
//! No tokio, no sockets, no journal writer, no clock of its own: the same
//! inputs at the same times give the same actions, which is what lets a
//! simulator drive it in virtual time.
//!
//! Built so far (migration step 3): the request path. A request is routed
//! and translated, accepted durably, forwarded with a STAN the core owns,
//! matched by (issuer, DE11), answered (an approval journaled durably
//! before it is written), and its delivery recorded; a time-out or an
//! answer without a usable DE39 queues a reversal (durably) and answers 91;
//! an approval that was not delivered is reversed; a copy of a request
//! gets the original's reply (waiting for it while it is in flight); a
//! purchase whose issuer is down or silent may be approved by stand-in
//! (its 0120 advice queued). Not yet here: advices from acquirers, batch
//! close, SAF delivery and recovery (step 4); the engine
//! (`switch::engine`) still runs the switch.

mod answer;
mod io;
mod request;
mod stand_in;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub(crate) use answer::{RESTORED, has_response_code};
pub use io::{Action, ConnId, Input, Time, TimerId, Token, TxnId};

use super::duplicates::{DupKey, DuplicateCache};
use super::routing::RouteTable;
use super::saf::{SafKind, SafPolicy, SafQueue};
use super::standin::StandIn;
use crate::message::{Message, Spec};

/// One acquirer listener, as the core knows it.
pub struct AcquirerSide {
    pub name: String,
    pub spec: Arc<Spec>,
    /// DE32 values accepted; empty accepts any.
    pub allowed_institutions: Vec<Bytes>,
}

/// One issuer, as the core knows it.
pub struct IssuerSide {
    pub name: String,
    pub spec: Arc<Spec>,
    /// Its stand-in rules, if it has any.
    pub stand_in: Option<StandIn>,
}

/// What the core is made of.
pub struct CoreConfig {
    pub institution_id: Bytes,
    pub acquirers: Vec<AcquirerSide>,
    pub issuers: Vec<IssuerSide>,
    pub routes: RouteTable,
    pub saf_policy: SafPolicy,
    pub saf_entries_max: usize,
    /// Transactions open at once at most; more are declined with 96.
    pub transactions_max: usize,
    /// How long a request is remembered to recognise its copies, and how
    /// many requests at most.
    pub duplicate_window: Duration,
    pub duplicate_keys_max: usize,
    /// Whether there is a journal: without one, nothing waits for disk.
    pub journal: bool,
}

/// Where an open transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Its acceptance is on its way to disk; then it is forwarded.
    Accepting,
    /// Sent to its issuer; the answer or the time-out is due.
    Forwarded,
    /// Its approval is on its way to disk; then it is replied.
    Answering,
    /// Replied; its delivery is due.
    Replying,
}

/// An open transaction.
struct Txn {
    conn: ConnId,
    acquirer: usize,
    request: Message,
    state: State,
    /// Where it goes, once routed.
    route: Option<Route>,
    /// The reply for the acquirer, once decided, and its journal outcome.
    reply: Option<(Message, &'static str)>,
    /// Its key in the duplicate cache: copies get its reply.
    key: DupKey,
}

/// A copy of a request in flight, waiting for the original's reply.
#[derive(Debug, Clone, Copy)]
struct Copy {
    conn: ConnId,
    acquirer: usize,
}

/// Where a transaction goes: its issuer, the request as forwarded (the
/// issuer's dialect, the core's STAN) and how long its answer may take.
#[derive(Debug, Clone)]
struct Route {
    issuer: usize,
    message: Message,
    stan: u32,
    timeout: Duration,
}

/// What a journal wait resumes.
#[derive(Debug)]
enum Wait {
    /// Forward the transaction (its acceptance is durable).
    Forward(TxnId),
    /// Reply the transaction (its approval is durable).
    Reply(TxnId),
    /// Queue the entry (its record is durable).
    Queue(Box<ToQueue>),
}

/// A store-and-forward entry on its way to disk.
#[derive(Debug)]
struct ToQueue {
    id: u64,
    txn_id: Option<u64>,
    kind: SafKind,
    issuer: usize,
    message: Message,
}

/// The switch's state and decisions.
pub struct Core {
    cfg: CoreConfig,
    txns: HashMap<TxnId, Txn>,
    /// Forwarded requests by (issuer, STAN).
    in_flight: HashMap<(usize, u32), TxnId>,
    /// The last STAN given per issuer.
    stans: Vec<u32>,
    waits: HashMap<Token, Wait>,
    saf: SafQueue,
    duplicates: DuplicateCache<Message, Copy>,
    /// Each issuer's stand-in state (taken out of its `IssuerSide`).
    stand_in: Vec<Option<StandIn>>,
    /// The last stand-in approval code given.
    auth_counter: u32,
    next_txn: u64,
    next_token: u64,
    actions: VecDeque<Action>,
}

impl Core {
    pub fn new(mut cfg: CoreConfig) -> Core {
        // Fewer than the STANs, so that a free one is always found.
        assert!(
            (1..999_999).contains(&cfg.transactions_max),
            "transactions_max must be from 1 to 999,998"
        );
        let stand_in = cfg.issuers.iter_mut().map(|i| i.stand_in.take()).collect();
        Core {
            stand_in,
            auth_counter: 0,
            stans: vec![0; cfg.issuers.len()],
            saf: SafQueue::new(cfg.saf_policy, cfg.saf_entries_max),
            duplicates: DuplicateCache::new(cfg.duplicate_window, cfg.duplicate_keys_max),
            txns: HashMap::with_capacity(cfg.transactions_max),
            in_flight: HashMap::with_capacity(cfg.transactions_max),
            waits: HashMap::new(),
            next_txn: 1,
            next_token: 1,
            actions: VecDeque::new(),
            cfg,
        }
    }

    /// Takes in one input at `now`.
    pub fn handle(&mut self, now: Time, input: Input) {
        match input {
            Input::Request {
                conn,
                acquirer,
                message,
            } => self.request(now, conn, acquirer, message),
            Input::FromIssuer { issuer, message } => self.issuer_message(now, issuer, message),
            Input::NotSent { txn } => self.not_sent(now, txn),
            Input::Durable { token, ok } => self.durable(now, token, ok),
            Input::Written { txn, delivered } => self.written(now, txn, delivered),
            Input::Timer(TimerId::Response(txn)) => self.response_due(now, txn),
        }
        debug_assert!(self.consistent(), "core invariants broken");
    }

    /// The next thing for the node to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Transactions open (accepted and not yet delivered).
    pub fn open_transactions(&self) -> usize {
        self.txns.len()
    }

    /// Entries waiting in the store-and-forward queue.
    pub fn saf_depth(&self) -> usize {
        self.saf.depth()
    }

    /// The in-flight table and the transactions agree: every forwarded
    /// transaction is in flight under its STAN, and nothing else is.
    fn consistent(&self) -> bool {
        let forwarded = self
            .txns
            .values()
            .filter(|t| t.state == State::Forwarded)
            .count();
        forwarded == self.in_flight.len()
            && self.in_flight.iter().all(|(&(issuer, stan), id)| {
                self.txns.get(id).is_some_and(|t| {
                    t.state == State::Forwarded
                        && t.route.as_ref().map(|r| (r.issuer, r.stan)) == Some((issuer, stan))
                })
            })
    }

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    fn token(&mut self, wait: Wait) -> Token {
        let token = Token(self.next_token);
        self.next_token += 1;
        self.waits.insert(token, wait);
        token
    }

    /// The next STAN for `issuer`: 1 to 999,999, skipping those in flight.
    fn next_stan(&mut self, issuer: usize) -> u32 {
        loop {
            let stan = self.stans[issuer] % 999_999 + 1;
            self.stans[issuer] = stan;
            if !self.in_flight.contains_key(&(issuer, stan)) {
                return stan;
            }
        }
    }
}
