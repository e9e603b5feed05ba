//! The node's one loop: it owns the core, turns what happens on sockets,
//! the journal and the clock into the core's inputs, and its actions into
//! I/O (`perform.rs`). Inputs from acquirers come through a bounded
//! channel (readers wait when it is full); completions the node made
//! itself (durable groups, written replies, answers) through an unbounded
//! one that never blocks the journal's thread: its size is bounded by the
//! waits open, each of which is a transaction or an entry out.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::in_flight::Permit;
use super::metrics::NodeMetrics;
use super::timers::Timers;
use crate::journal::Journal;
use crate::link::connection::{FrameSender, WrittenWatch};
use crate::link::connector::IssuerLink;
use crate::link::framing::Tpdu;
use crate::message::Message;
use crate::switch::core::{ConnId, Core, Input, Origin, Time};
use crate::switch::hooks::AcquirerRules;
use crate::switch::routing::RouteTable;

/// The loop's tables are keyed by numbers the node gives out itself, not
/// by anything a peer chooses: a fast hash will do.
pub(super) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Events from acquirers waiting for the loop at most.
pub const EVENTS_MAX: usize = 65_536;
/// Events taken in one turn of the loop at most.
const BATCH_MAX: usize = 256;
/// Turns taken after a stop at most, to let the node's own completions in.
const STOP_TURNS_MAX: usize = 64;

/// Something for the loop.
pub enum Event {
    /// A request from an acquirer connection; the permit is the
    /// connection's room for one more in flight, held until it is answered.
    Request {
        conn: ConnId,
        acquirer: usize,
        tpdu: Option<Tpdu>,
        permit: Permit,
        /// Boxed: every event is as large as its largest kind.
        message: Box<Message>,
    },
    /// An acquirer connection opened.
    Connected {
        conn: ConnId,
        sender: FrameSender,
        /// Set when the peer closed its side: replies are then undelivered.
        peer_gone: Arc<AtomicBool>,
        /// Stops its reading (the connection then closes once its
        /// requests in flight are answered).
        stop: CancellationToken,
    },
    /// An acquirer connection's task ended.
    Closed { conn: ConnId },
    /// A connection's writer got further while the loop waited for it.
    Written,
    /// An input for the core as it is.
    Input(Input),
    /// A new route table (SIGHUP).
    Routes(RouteTable),
}

/// How to reach the loop.
#[derive(Clone)]
pub struct NodeHandle {
    pub(super) events: mpsc::Sender<Event>,
    pub(super) own: mpsc::UnboundedSender<Event>,
}

impl NodeHandle {
    /// Replaces the route table; transactions open keep theirs.
    pub fn replace_routes(&self, routes: RouteTable) {
        let _ = self.own.send(Event::Routes(routes));
    }

    /// Starts a key exchange with issuer `issuer` (an operator's demand;
    /// issuers without a zone master key ignore it).
    pub fn exchange_keys(&self, issuer: usize) {
        let _ = self.own.send(Event::Input(Input::ExchangeKeys { issuer }));
    }
}

/// An open acquirer connection.
pub(super) struct Conn {
    pub sender: FrameSender,
    pub peer_gone: Arc<AtomicBool>,
    /// Stops its reading.
    pub stop: CancellationToken,
    /// How far its writer has got.
    pub written: WrittenWatch,
    /// Replies queued whose delivery the core waits for, in stream order:
    /// each is reported once the writer has handed it to the kernel
    /// (`confirm.rs`).
    pub confirms: VecDeque<Confirm>,
    /// Set when the loop waits for the writer: its next write (or its
    /// stop) then sends `Event::Written`, once.
    pub armed: Arc<AtomicBool>,
}

/// A reply queued at stream offset `end`, its transaction and its
/// request's permit (released once it is written).
pub(super) struct Confirm {
    pub end: u64,
    pub txn: crate::switch::core::TxnId,
    pub permit: Permit,
}

/// A request the core holds: what its reply needs.
pub(super) struct Held {
    pub tpdu: Option<Tpdu>,
    pub permit: Permit,
}

/// The loop's state.
pub struct Node {
    pub(super) core: Core,
    pub(super) timers: Timers,
    pub(super) conns: FastMap<ConnId, Conn>,
    /// The connections with replies waiting to be confirmed, each once.
    pub(super) confirming: Vec<ConnId>,
    pub(super) held: FastMap<u64, Held>,
    pub(super) next_tag: u64,
    pub(super) issuers: Vec<Arc<IssuerLink>>,
    pub(super) journal: Option<Journal>,
    pub(super) rules: Option<Arc<dyn AcquirerRules>>,
    /// The HSM the core's questions go to, when `[hsm]` is configured.
    pub(super) hsm: Option<Arc<dyn super::hsm::Hsm>>,
    pub(super) handle: NodeHandle,
    pub(super) metrics: NodeMetrics,
}

/// The node's clocks, read once per turn of the loop.
pub(super) fn now() -> Time {
    Time {
        mono: Instant::now(),
        wall: SystemTime::now(),
    }
}

impl Node {
    /// Runs until `events` closes (every acquirer handle dropped) and the
    /// node's own channel is drained, or `stop` fires.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut own: mpsc::UnboundedReceiver<Event>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let (mut mine, mut theirs) = (Vec::with_capacity(BATCH_MAX), Vec::with_capacity(BATCH_MAX));
        let far = Duration::from_secs(3600);
        let sleep = tokio::time::sleep(far);
        tokio::pin!(sleep);
        loop {
            let wake = self.timers.next().unwrap_or_else(|| Instant::now() + far);
            if sleep.deadline() != wake.into() {
                sleep.as_mut().reset(wake.into());
            }
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                n = own.recv_many(&mut mine, BATCH_MAX) => if n == 0 { break },
                n = events.recv_many(&mut theirs, BATCH_MAX) => if n == 0 { break },
                _ = &mut sleep => {}
            }
            self.turn(&mut mine, &mut theirs).await;
        }
        // What the node told itself before the stop (replies written,
        // groups durable) still reaches the core.
        for _ in 0..STOP_TURNS_MAX {
            while mine.len() < BATCH_MAX
                && let Ok(event) = own.try_recv()
            {
                mine.push(event);
            }
            if mine.is_empty() {
                break;
            }
            self.turn(&mut mine, &mut theirs).await;
        }
    }

    /// One turn: the events taken in, the timers due, then the actions.
    async fn turn(&mut self, mine: &mut Vec<Event>, theirs: &mut Vec<Event>) {
        let now = now();
        for event in mine.drain(..).chain(theirs.drain(..)) {
            self.event(now, event);
        }
        while let Some(timer) = self.timers.pop_due(now.mono) {
            self.core.handle(now, Input::Timer(timer));
        }
        // The replies this turn queued are waited for too (armed), so a
        // write after the turn wakes the loop.
        self.perform(now).await;
        while self.confirm_written(now) {
            self.perform(now).await;
        }
        self.metrics.publish(&self.core);
    }

    fn event(&mut self, now: Time, event: Event) {
        match event {
            Event::Request {
                conn,
                acquirer,
                tpdu,
                permit,
                message,
            } => {
                self.next_tag += 1;
                let tag = self.next_tag;
                self.held.insert(tag, Held { tpdu, permit });
                let from = Origin {
                    conn,
                    acquirer,
                    tag,
                };
                self.core.handle(now, Input::Request { from, message });
            }
            Event::Connected {
                conn,
                sender,
                peer_gone,
                stop,
            } => {
                let armed = Arc::new(AtomicBool::new(false));
                sender.on_written(super::confirm::wake_on_write(
                    armed.clone(),
                    self.handle.own.clone(),
                ));
                self.conns.insert(
                    conn,
                    Conn {
                        written: sender.written_watch(),
                        sender,
                        peer_gone,
                        stop,
                        confirms: VecDeque::new(),
                        armed,
                    },
                );
            }
            Event::Closed { conn } => {
                // Its task ends once every request's permit is back, and a
                // reply waiting to be confirmed holds its permit.
                let closed = self.conns.remove(&conn);
                debug_assert!(closed.is_none_or(|c| c.confirms.is_empty()));
            }
            Event::Written => {}
            Event::Input(input) => self.core.handle(now, input),
            Event::Routes(routes) => self.core.replace_routes(routes),
        }
    }
}
