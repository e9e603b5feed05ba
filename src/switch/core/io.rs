//! What goes into the core and what comes out (docs/core.md): inputs carry
//! their time, actions are requests to the node. Plain data, no I/O.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::journal::Record;
use crate::message::Message;
use crate::message::response_codes::Outcome;
use crate::switch::security::{HsmOp, HsmResult};

/// The time of an input, read by the node (or made up by a simulator):
/// the core never reads a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    /// For time-outs and backoff.
    pub mono: Instant,
    /// For message fields (DE7), calendar days and journal timestamps.
    pub wall: SystemTime,
}

impl Time {
    /// `d` later on both clocks.
    pub fn after(self, d: Duration) -> Time {
        Time {
            mono: self.mono + d,
            wall: self.wall + d,
        }
    }

    /// Milliseconds since the Unix epoch, as the journal stores them.
    pub fn wall_ms(self) -> i64 {
        self.wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// An acquirer connection, named by the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Where a request came from, handed back with its reply: the connection,
/// the acquirer listener (an index into the core's acquirers) and the
/// node's own tag for the request (what it needs to answer it: the frame's
/// header, a permit). Every request gets exactly one `Action::Reply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    pub conn: ConnId,
    pub acquirer: usize,
    pub tag: u64,
}

/// A transaction: the journal's id of an accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxnId(pub u64);

/// One wait for the node (a journal group, an answer to a question).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub u64);

/// What a message sent to an issuer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outgoing {
    /// A transaction's request.
    Txn(TxnId),
    /// A store-and-forward entry's delivery attempt (by its id).
    Saf(u64),
    /// A key exchange with this issuer.
    KeyExchange(usize),
}

/// A request an issuer sent the switch (a key it sends), named by its
/// link: the answer goes back under the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerRequest(pub u64);

/// A timer the core arms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerId {
    /// The issuer's answer to this transaction is due.
    Response(TxnId),
    /// The earliest store-and-forward entry is due.
    SafDue,
    /// The answer to this store-and-forward entry's attempt is due.
    SafAnswer(u64),
    /// This issuer's scheduled key exchange is due.
    KeyExchange(usize),
    /// The answer to this issuer's key exchange is due.
    KeyExchangeAnswer(usize),
}

/// Something the core asks a service outside it (answered by
/// `Input::Answer` with the same token).
#[derive(Debug)]
pub enum Question {
    /// A terminal's batch close (acquirer dialect): the acquirer's rules
    /// answer it once everything journaled before it is durable. Boxed:
    /// rare, it would make every action as large as a message.
    BatchClose(Box<Message>),
    /// HSM operations, answered in order (`Input::HsmAnswer`); the node
    /// may pipeline them on one connection.
    Hsm(Vec<HsmOp>),
}

/// Something that happened, as the node saw it.
#[derive(Debug)]
pub enum Input {
    /// A message from an acquirer, parsed once by the node. Boxed, as in
    /// `FromIssuer`: a message is 216 bytes, and every input (a written
    /// reply, a durable group) was as large, copied at each channel hop.
    Request { from: Origin, message: Box<Message> },
    /// A message from issuer `issuer`'s link.
    FromIssuer {
        issuer: usize,
        message: Box<Message>,
    },
    /// A request issuer `issuer` sent (its new key, DE70 = 161): answered
    /// by `Action::AnswerIssuer` with the same `id`.
    IssuerRequest {
        issuer: usize,
        id: PeerRequest,
        message: Box<Message>,
    },
    /// A connection of issuer `issuer`'s link closed with the messages
    /// sent under these STANs unanswered: their outcome is unknown.
    Lost { issuer: usize, stans: Vec<u32> },
    /// Issuer `issuer`'s link has a connection up (or none any more).
    IssuerUp { issuer: usize, up: bool },
    /// A message for an issuer never left: no connection was up.
    NotSent { what: Outgoing },
    /// The records of `token` are on disk (`ok`), or the journal failed.
    Durable { token: Token, ok: bool },
    /// Transaction `txn`'s reply reached its connection, or not.
    Written { txn: TxnId, delivered: bool },
    /// A timer fired.
    Timer(TimerId),
    /// The answer to a question, or the outcome to decline it with.
    Answer {
        token: Token,
        answer: Result<Box<Message>, Outcome>,
    },
    /// Exchange working keys with issuer `issuer` now (an operator's
    /// demand).
    ExchangeKeys { issuer: usize },
    /// The HSM's results for `Question::Hsm`, one per operation in order.
    HsmAnswer {
        token: Token,
        results: Vec<HsmResult>,
    },
}

/// Something for the node to do.
#[derive(Debug)]
pub enum Action {
    /// Hand `records` to the journal; with a token, say when they are
    /// durable (`Input::Durable`).
    Append {
        records: Vec<Record>,
        durable: Option<Token>,
    },
    /// Send `frame` to issuer `issuer`; report `Input::NotSent` if no
    /// connection is up.
    ToIssuer {
        issuer: usize,
        what: Outgoing,
        /// The message's STAN (DE11), under which its answer comes back.
        stan: u32,
        /// The message, built once, in the issuer's dialect.
        frame: Bytes,
    },
    /// Answer the request from `to`: write `frame`, the reply built in
    /// its acquirer's dialect (`None`: nothing to write, the request is
    /// done); with `confirm`, report `Input::Written` for that transaction.
    /// Built here, once: the same bytes answer the request's copies.
    Reply {
        to: Origin,
        frame: Option<Bytes>,
        confirm: Option<TxnId>,
    },
    /// Answer the request `id` issuer `issuer` sent with `frame` (built in
    /// its dialect), on the connection it came on.
    AnswerIssuer {
        issuer: usize,
        id: PeerRequest,
        frame: Bytes,
    },
    /// The core no longer waits for an answer to what it sent issuer
    /// `issuer` under `stan` (its time ran out): the link may forget it.
    Forget { issuer: usize, stan: u32 },
    /// Fire `Input::Timer(timer)` at `at` (replacing an earlier arming).
    Arm { timer: TimerId, at: Instant },
    /// Forget a timer armed before.
    Disarm { timer: TimerId },
    /// Ask a service outside the core; the answer comes as `Input::Answer`.
    Ask { token: Token, question: Question },
}
