//! What goes into the core and what comes out (docs/core.md): inputs carry
//! their time, actions are requests to the node. Plain data, no I/O.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::journal::Record;
use crate::message::Message;

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

/// A transaction: the journal's id of an accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxnId(pub u64);

/// One wait for the journal: its records are on disk when the node says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub u64);

/// A timer the core arms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerId {
    /// The issuer's answer to this transaction is due.
    Response(TxnId),
}

/// Something that happened, as the node saw it.
#[derive(Debug)]
pub enum Input {
    /// A message from acquirer `acquirer` (an index into the core's
    /// acquirers) on connection `conn`, parsed once by the node.
    Request {
        conn: ConnId,
        acquirer: usize,
        message: Message,
    },
    /// A message from issuer `issuer`'s link.
    FromIssuer { issuer: usize, message: Message },
    /// Transaction `txn`'s request never left: no connection was up.
    NotSent { txn: TxnId },
    /// The records of `token` are on disk (`ok`), or the journal failed.
    Durable { token: Token, ok: bool },
    /// Transaction `txn`'s reply reached its connection, or not.
    Written { txn: TxnId, delivered: bool },
    /// A timer fired.
    Timer(TimerId),
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
    /// Build `message` in issuer `issuer`'s dialect and send it; report
    /// `Input::NotSent` if no connection is up.
    ToIssuer {
        issuer: usize,
        txn: TxnId,
        message: Message,
    },
    /// Build `message` in acquirer `acquirer`'s dialect and write it on
    /// `conn`; with `confirm`, report `Input::Written` for that transaction.
    Reply {
        conn: ConnId,
        acquirer: usize,
        message: Message,
        confirm: Option<TxnId>,
    },
    /// Fire `Input::Timer(timer)` at `at` (replacing an earlier arming).
    Arm { timer: TimerId, at: Instant },
    /// Forget a timer armed before.
    Disarm { timer: TimerId },
}
