//! The switch as a pure core (issue 20, docs/core.md): `handle(now, input)`
//! changes state and queues actions, `poll_action` hands them to the node.
//! No async runtime, no sockets, no journal writer, no clock of its own: the same
//! inputs at the same times give the same actions, which is what lets a
//! simulator drive it in virtual time.
//!
//! A request is checked, routed and translated, accepted durably,
//! forwarded with a STAN the core owns, matched by (issuer, DE11, class and
//! echoed fields), answered (an approval journaled durably before it is
//! written), and its delivery recorded; a time-out, a lost link or an
//! answer without a usable DE39 queues a reversal and answers 91 or stands
//! in; an undelivered approval is reversed; copies get the original's
//! reply; advices are acknowledged once queued; the queue is delivered
//! until acknowledged; a restart picks up what the journal kept. The node
//! (`src/node/`) runs it; the simulator (`src/sim/network/`) drives it
//! in virtual time.

mod answer;
mod io;
mod issuer_key;
mod key_exchange;
mod mutation;
mod queue;
mod request;
mod restore;
mod saf_delivery;
mod secure;
mod stand_in;
mod stand_in_card;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_chip;
#[cfg(test)]
mod tests_cvv2;
#[cfg(test)]
mod tests_keys;
#[cfg(test)]
mod tests_regressions;
#[cfg(test)]
mod tests_saf;
#[cfg(test)]
mod tests_secure;

use std::collections::{HashMap, VecDeque};

use foldhash::fast::FixedState;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use io::{
    Action, ConnId, Input, Origin, Outgoing, PeerRequest, Question, Time, TimerId, Token, TxnId,
};
#[doc(hidden)]
pub use mutation::Mutation;
pub use restore::{RestoreCount, Restored, RestoredSaf, RestoredTxn};

use super::duplicates::{DupKey, DuplicateCache, Place};
use super::hooks::AcquirerRules;
use super::routing::RouteTable;
use super::saf::{SafEntry, SafKind, SafPolicy, SafQueue};
use super::security::{AcquirerKeys, IssuerKeys};
use super::standin::StandIn;
use crate::journal::TxnOutcome;
use crate::message::{Message, Spec};

/// The core's tables, keyed by its own numbers (ids, tokens, its STANs),
/// never by what a peer chose: a fixed, fast hash keeps them
/// deterministic (the same inputs, the same order) and cheap.
type Map<K, V> = HashMap<K, V, FixedState>;

/// Open transactions the tables have room for from the start: a few
/// times the usual load (64 in flight at 8 x 8), so the live entries sit in
/// a few kilobytes. Sized at 4,096, the same entries were spread over
/// hundreds of kilobytes and each insert missed the cache (1.3% of the
/// switch's CPU in a profile at 8 x 8); beyond this the tables grow.
const TXNS_PRESIZED: usize = 256;

/// One acquirer listener, as the core knows it.
pub struct AcquirerSide {
    pub name: String,
    pub spec: Arc<Spec>,
    /// DE32 values accepted; empty accepts any.
    pub allowed_institutions: Vec<Bytes>,
    /// Its PIN and MAC keys (none: DE52 passes, no MAC is checked).
    pub keys: AcquirerKeys,
}

/// One issuer, as the core knows it.
pub struct IssuerSide {
    pub name: String,
    pub spec: Arc<Spec>,
    /// Its stand-in rules, if it has any.
    pub stand_in: Option<StandIn>,
    /// Its PIN and MAC keys.
    pub keys: IssuerKeys,
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
    /// How long one store-and-forward attempt waits for its answer.
    pub saf_response_wait: Duration,
    /// The acquirer's rules: terminal admission (in memory, asked on the
    /// way in); batch closes go to the node as questions.
    pub rules: Option<Arc<dyn AcquirerRules>>,
    /// Seeds the keyed hashes of the duplicate cache: the core has no
    /// randomness of its own.
    pub seed: u64,
}

/// What the core has done, for the demo screen, metrics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub requests: u64,
    pub approved: u64,
    pub declined: u64,
    pub timed_out: u64,
    pub stood_in: u64,
    pub duplicates: u64,
    /// Replies that could not be built for their acquirer (sent as 96),
    /// and messages that could not be built for their issuer (not sent).
    pub unbuildable: u64,
    pub saf_queued: PerKind,
    pub saf_delivered: PerKind,
    pub saf_given_up: PerKind,
    /// Entries refused for want of room.
    pub saf_overflow: u64,
    /// Key exchanges that replaced a working key, and that failed.
    pub key_exchanges: u64,
    pub key_exchanges_failed: u64,
}

/// A count per store-and-forward kind (in the order of `SafKind::ALL`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PerKind(pub [u64; 3]);

impl PerKind {
    fn add(&mut self, kind: SafKind) {
        self.0[kind as usize] += 1;
    }

    pub fn get(&self, kind: SafKind) -> u64 {
        self.0[kind as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
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
    from: Origin,
    /// The request as received, in the box it came in (moved, not copied).
    request: Box<Message>,
    state: State,
    /// Where it goes, once routed.
    route: Option<Route>,
    /// The reply for the acquirer, once decided, and its journal outcome.
    reply: Option<(Message, TxnOutcome)>,
    /// Its key in the duplicate cache (and where): copies get its reply.
    key: DupKey,
    place: Place,
    /// Its stand-in advice as queued (issuer, message), to reverse it if
    /// the stand-in approval does not reach the acquirer.
    /// Boxed: rare, and a transaction is made for every request.
    advice: Option<Box<(usize, Message)>>,
    /// What its forwarding still waits for (its acceptance on disk, the
    /// HSM's checks): forwarded when none is left.
    holds: u8,
    /// The MAC of its reply, for an acquirer that signs.
    reply_mac: ReplyMac,
}

/// Where the MAC of a transaction's reply is.
#[derive(Debug, Default)]
enum ReplyMac {
    /// Not asked for (yet).
    #[default]
    None,
    /// Asked of the HSM.
    Asked,
    /// The reply frame, signed.
    Signed(Bytes),
    /// Sent without one (it could not be made).
    Unsigned,
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
    /// Answer a batch close with the rules' answer.
    BatchClose(Origin, Box<Message>),
    /// The HSM checked the request and translated its PIN block (the
    /// number of operations asked).
    Secure(TxnId, usize),
    /// The HSM made the MAC of the request built for the issuer.
    Sign(TxnId, Vec<u8>),
    /// The HSM made the MAC of the reply built for the acquirer.
    SignReply(TxnId, Vec<u8>),
    /// The HSM made the MAC of a store-and-forward entry's attempt (its
    /// id, attempts before it, the frame).
    SignSaf(u64, u32, Vec<u8>),
    /// The HSM checked a chip card's ARQC or a card-not-present card's
    /// CVV2 for stand-in (issuer, the journal's word should it be
    /// declined).
    StandInCard(TxnId, usize, TxnOutcome),
    /// The HSM made a new working key for this issuer's exchange.
    KeyGenerated(usize),
    /// The HSM imported the key an issuer sent (boxed: rare).
    KeyImported(Box<issuer_key::Importing>),
    /// The HSM checked the MAC of the issuer's answer (and made its
    /// reply's, the frame here, when the acquirer signs).
    CheckAnswer(TxnId, Option<Vec<u8>>),
}

/// A store-and-forward entry on its way to disk.
#[derive(Debug)]
struct ToQueue {
    id: u64,
    txn_id: Option<u64>,
    kind: SafKind,
    issuer: usize,
    message: Message,
    /// Its transaction is acknowledged (00) once it is queued, with this
    /// journal outcome.
    ack: Option<TxnOutcome>,
    /// Records written in the same group as the entry's (all or none).
    also: Vec<crate::journal::Record>,
    /// Its transaction's stand-in approval rides with it: replied once
    /// the group is durable, refused (and the advice dropped) if not.
    then_reply: bool,
}

/// The switch's state and decisions.
pub struct Core {
    cfg: CoreConfig,
    /// Boxed: a transaction holds three messages, and the table moves
    /// its entries when it grows.
    txns: Map<TxnId, Box<Txn>>,
    /// Forwarded requests by (issuer, STAN).
    in_flight: Map<(usize, u32), Outgoing>,
    /// The last STAN given per issuer.
    stans: Vec<u32>,
    waits: Map<Token, Wait>,
    /// Each issuer's store-and-forward queue.
    saf: Vec<SafQueue>,
    /// The last store-and-forward entry id given.
    saf_ids: u64,
    /// Store-and-forward entries on their way to disk (they count
    /// against the queue's room).
    saf_to_disk: usize,
    /// Store-and-forward entries out for delivery, by id.
    saf_sending: Map<u64, SafEntry>,
    /// Whether each issuer's link has a connection up.
    issuer_up: Vec<bool>,
    /// When the store-and-forward timer is armed for.
    saf_timer: Option<std::time::Instant>,
    /// Copies of requests in flight wait here for the original's reply.
    /// Replies by request key, as built for the acquirer.
    duplicates: DuplicateCache<Bytes, Origin>,
    /// Each issuer's stand-in state (taken out of its `IssuerSide`).
    stand_in: Vec<Option<StandIn>>,
    /// The last stand-in approval code given.
    auth_counter: u32,
    next_txn: u64,
    next_token: u64,
    actions: VecDeque<Action>,
    counters: Counters,
    /// A rule deliberately broken, for the simulator's mutation checks.
    mutation: Option<Mutation>,
    /// Each issuer's key exchange under way.
    exchanges: Vec<Option<key_exchange::Exchange>>,
    /// Whether each issuer's last key exchange failed (the alarm).
    exchange_failing: Vec<bool>,
    /// Whether each issuer's key exchange schedule runs.
    exchange_armed: Vec<bool>,
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
            issuer_up: vec![false; cfg.issuers.len()],
            saf: (0..cfg.issuers.len())
                .map(|_| SafQueue::new(cfg.saf_policy, cfg.saf_entries_max))
                .collect(),
            saf_ids: 0,
            saf_sending: Map::default(),
            saf_to_disk: 0,
            saf_timer: None,
            duplicates: DuplicateCache::new(cfg.duplicate_window, cfg.duplicate_keys_max, cfg.seed),
            // Sized for the usual load, not the limit: a table sized for
            // 100,000 would cost its memory up front, cache misses and its
            // full scan in every debug check.
            txns: Map::with_capacity_and_hasher(
                cfg.transactions_max.min(TXNS_PRESIZED),
                FixedState::default(),
            ),
            in_flight: Map::with_capacity_and_hasher(
                cfg.transactions_max.min(TXNS_PRESIZED),
                FixedState::default(),
            ),
            waits: Map::default(),
            next_txn: 1,
            next_token: 1,
            actions: VecDeque::new(),
            counters: Counters::default(),
            mutation: None,
            exchanges: vec![None; cfg.issuers.len()],
            exchange_failing: vec![false; cfg.issuers.len()],
            exchange_armed: vec![false; cfg.issuers.len()],
            cfg,
        }
    }

    /// Takes in one input at `now`.
    pub fn handle(&mut self, now: Time, input: Input) {
        match input {
            Input::Request { from, message } => self.request(now, from, message),
            Input::FromIssuer { issuer, message } => self.issuer_message(now, issuer, *message),
            Input::IssuerRequest {
                issuer,
                id,
                message,
            } => self.issuer_key(issuer, id, *message),
            Input::IssuerUp { issuer, up } => self.issuer_up(now, issuer, up),
            Input::Lost { issuer, stans } => {
                for stan in stans {
                    self.lost(now, issuer, stan);
                }
            }
            Input::NotSent { what } => self.not_sent(now, what),
            Input::Durable { token, ok } => self.durable(now, token, ok),
            Input::Written { txn, delivered } => self.written(now, txn, delivered),
            Input::Timer(TimerId::Response(txn)) => self.response_due(now, txn),
            Input::Timer(TimerId::SafDue) => self.saf_timer = None,
            Input::Timer(TimerId::SafAnswer(id)) => self.saf_answer_due(now, id),
            Input::Timer(TimerId::KeyExchange(issuer)) => self.exchange_due(now, issuer),
            Input::Timer(TimerId::KeyExchangeAnswer(issuer)) => self.exchange_lost(issuer),
            Input::ExchangeKeys { issuer } => self.exchange_keys(issuer),
            Input::Answer { token, answer } => self.answered(now, token, answer.map(|m| *m)),
            Input::HsmAnswer { token, results } => self.hsm_answered(now, token, results),
        }
        self.deliver_due(now);
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

    /// Store-and-forward entries not yet acknowledged (waiting or out).
    pub fn saf_depth(&self) -> usize {
        self.saf.iter().map(SafQueue::depth).sum::<usize>() + self.saf_sending.len()
    }

    /// Whether store-and-forward entry `id` has an attempt out (for the
    /// simulator's check that an entry is out at most once at a time).
    pub fn saf_out(&self, id: u64) -> bool {
        self.saf_sending.contains_key(&id)
    }

    /// What the core has done so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Replaces the route table (a reload); transactions open keep theirs.
    pub fn replace_routes(&mut self, routes: RouteTable) {
        self.cfg.routes = routes;
    }

    /// The in-flight table agrees with the transactions and the entries
    /// out for delivery: every forwarded transaction and every entry out
    /// is in flight under its STAN, and nothing else is.
    fn consistent(&self) -> bool {
        let forwarded = self
            .txns
            .values()
            .filter(|t| t.state == State::Forwarded)
            .count();
        let exchanging = self
            .exchanges
            .iter()
            .filter(|e| matches!(e, Some(key_exchange::Exchange::Sent { .. })))
            .count();
        forwarded + self.saf_sending.len() + exchanging == self.in_flight.len()
            && self
                .in_flight
                .iter()
                .all(|(&(issuer, stan), what)| match what {
                    Outgoing::Txn(id) => self.txns.get(id).is_some_and(|t| {
                        t.state == State::Forwarded
                            && t.route.as_ref().map(|r| (r.issuer, r.stan)) == Some((issuer, stan))
                    }),
                    Outgoing::Saf(id) => self.saf_sending.get(id).is_some_and(|e| {
                        e.issuer == issuer && saf_delivery::stan_of(e) == Some(stan)
                    }),
                    Outgoing::KeyExchange(i) => {
                        *i == issuer
                            && matches!(self.exchanges[issuer],
                                Some(key_exchange::Exchange::Sent { stan: s, .. }) if s == stan)
                    }
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
