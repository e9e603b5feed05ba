//! One terminal's connection of the load generator: sends requests (closed
//! loop, or open loop at its own steady interval), matches responses by
//! STAN and checks them, times requests out and, like a real terminal,
//! reverses what timed out (`sim::reversal`), and counts.
//!
//! A connection sleeps until its next event (a request due, a time-out, a
//! reversal's repeat) instead of ticking: ten thousand terminals that send
//! one request every 2 s would otherwise wake the generator ten million
//! times a second.

mod expiry;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connect::ConnectPlan;
use super::latency::record_latency;
use super::load::{self, Expected, LoadProfile, Outcome, RequestGenerator, STAN_MAX, Tally};
use super::load_report::{LoadProgress, Samples};
use super::pacing::Schedule;
use super::pin_pad::{PinPad, PinPadPlan};
use super::record::{RecordFile, ReversalEvent};
use super::reversal::{Due, Original, Pending, REVERSALS_PENDING_MAX, ReversalMti, Reversals};
use crate::link::connection::{self, FrameReader, FrameSender};
use crate::link::framing::{Frame, FrameCodec};
use crate::link::listener::BoxedStream;
use crate::message::mti::MessageClass;
use crate::message::netmgmt;
use crate::message::time::Civil;
use crate::message::{Message, Spec};

/// Most requests outstanding on one connection.
pub const IN_FLIGHT_MAX: u32 = 10_000;
/// Timed-out requests remembered per connection to recognise late answers
/// (their STANs are not reused meanwhile). Far below the STAN space.
const LATE_KEPT_MAX: usize = 65_536;
/// How long the writer may take to flush after a connection's last request.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

const _: () =
    assert!(IN_FLIGHT_MAX as usize + LATE_KEPT_MAX + REVERSALS_PENDING_MAX < STAN_MAX as usize);

/// What all connections of a run share.
pub struct Shared {
    pub spec: Arc<Spec>,
    pub codec: FrameCodec,
    pub profile: Arc<LoadProfile>,
    pub in_flight: usize,
    pub timeout: Duration,
    /// Open loop: the run's `--rate` over all connections.
    pub rate: Option<f64>,
    /// Connections of the run: open loop, connection `i` runs `i / connections`
    /// of an interval ahead, so that they do not all send at the same instant.
    pub connections: u32,
    /// Open loop at short intervals: notified by the pacer thread.
    pub pace: tokio::sync::Notify,
    pub requests_max: Option<u64>,
    /// Requests claimed so far against `requests_max`.
    pub claimed: AtomicU64,
    /// Cancelled when the run's time is up: no new requests.
    pub stop: CancellationToken,
    pub start: Instant,
    pub progress: Arc<LoadProgress>,
    pub record: Option<RecordFile>,
    pub rrn_start: u64,
    /// Reverse timed-out requests with this MTI (`None`: do not).
    pub reversal: Option<ReversalMti>,
    /// Latencies of every answer in time, in µs. One histogram for the run
    /// (one per connection is ~200 KiB: 2 GB for 10,000 terminals); the
    /// runtime has one thread, so the lock is never contended.
    pub histogram: Mutex<Histogram<u64>>,
    /// Keep each connection open after the run (`--hold-s`).
    pub hold: bool,
    /// Open a lost connection again (`--reconnect`).
    pub reconnect: Option<Reconnect>,
    /// PIN entry (DUKPT) and MACs, when the run's terminals do them.
    pub pin_pad: Option<PinPadPlan>,
}

/// How a terminal gets its connection back, like a real one after its
/// host restarts: requests in flight on the lost connection are timed out
/// and reversed on the new one, reversals in flight are repeated there and
/// until answered.
pub struct Reconnect {
    pub plan: Arc<ConnectPlan>,
    /// No connection is opened again after this, and a connection still
    /// settling its reversals ends here.
    pub until: Instant,
}

/// The first and the longest pause between two attempts to reconnect.
const RECONNECT_PAUSE_MIN: Duration = Duration::from_millis(50);
const RECONNECT_PAUSE_MAX: Duration = Duration::from_secs(1);

impl Reconnect {
    /// A new connection, or `None` once `until` has passed.
    async fn connect(&self, errors: &mut Samples) -> Option<BoxedStream> {
        let mut pause = RECONNECT_PAUSE_MIN;
        while Instant::now() < self.until {
            match tokio::time::timeout_at(self.until, self.plan.connect()).await {
                Ok(Ok(stream)) => return Some(stream),
                Ok(Err(e)) => errors.add(format!("reconnect: {e}")),
                Err(_) => return None,
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RECONNECT_PAUSE_MAX);
        }
        None
    }
}

impl Shared {
    /// Takes one request from the run's budget.
    fn claim(&self) -> bool {
        match self.requests_max {
            None => true,
            Some(max) => self.claimed.fetch_add(1, Ordering::Relaxed) < max,
        }
    }
}

/// A request sent and not yet forgotten.
struct Slot {
    /// Tells this request from an earlier one with the same STAN.
    seq: u64,
    sent_at: Instant,
    expected: Expected,
    /// The request itself while it may need a reversal (RAM only).
    request: Option<Message>,
    timed_out: bool,
}

/// What one connection hands back.
pub struct ConnResult {
    pub tally: Tally,
    pub skipped: u64,
    pub errors: Samples,
    /// The connection itself, still open, when the run holds connections
    /// idle after it (`Shared::hold`).
    pub held: Option<Held>,
}

/// A connection kept open after the run.
pub type Held = (FrameReader<tokio::io::ReadHalf<BoxedStream>>, FrameSender);

/// One connection's state: its terminal, its requests in flight (by STAN)
/// and its counts.
struct Conn {
    shared: Arc<Shared>,
    generator: RequestGenerator,
    pin_pad: Option<PinPad>,
    slots: HashMap<u32, Slot>,
    /// Requests in `slots` not yet answered or timed out.
    pending: usize,
    /// (deadline, STAN, seq) in send order; deadlines rise since the
    /// time-out is constant.
    deadlines: VecDeque<(Instant, u32, u64)>,
    /// (forget at, STAN, seq) of timed-out requests, oldest first.
    forget: VecDeque<(Instant, u32, u64)>,
    /// How long a timed-out request waits for a late answer.
    late_window: Duration,
    reversals: Reversals,
    seq: u64,
    /// Open loop: this connection's schedule and requests scheduled so far.
    schedule: Option<Schedule>,
    scheduled: u64,
    skipped: u64,
    stopping: bool,
    tally: Tally,
    published: Tally,
    /// Latencies not yet added to the run's histograms.
    latencies: Vec<u64>,
    errors: Samples,
    /// The connection failed (as opposed to ending its run).
    broken: bool,
}

/// A connection split into its frame reader and sender, its writer task
/// spawned. Opened before the run's clock starts: setting up thousands of
/// connections in the run's first instant delayed the first requests'
/// answers by 100 ms (2,000 connections) to 2 s (10,000).
pub type Opened = connection::Opened<BoxedStream>;

/// Opens `stream` for [`drive`].
pub fn open(stream: BoxedStream, codec: &FrameCodec) -> Opened {
    connection::open_named(stream, codec.clone(), "load")
}

/// Runs connection `index` (0-based) until the run stops and its requests
/// and reversals are settled, or the connection fails.
pub async fn drive(shared: Arc<Shared>, index: u32, opened: Opened, seed: u64) -> ConnResult {
    let (mut reader, mut sender, mut writer) = opened;
    let reversals = Reversals::new(shared.timeout);
    let reversals = if shared.reconnect.is_some() {
        reversals.until_answered()
    } else {
        reversals
    };
    let mut conn = Conn {
        generator: RequestGenerator::new(shared.profile.clone(), index, seed)
            .with_rrn_start(shared.rrn_start),
        pin_pad: shared
            .pin_pad
            .as_ref()
            .map(|_| PinPad::new(index, shared.connections)),
        slots: HashMap::with_capacity(shared.in_flight * 2),
        pending: 0,
        deadlines: VecDeque::with_capacity(shared.in_flight),
        forget: VecDeque::new(),
        late_window: shared.timeout.max(Duration::from_secs(1)),
        reversals,
        seq: 0,
        schedule: shared
            .rate
            .map(|rate| Schedule::for_connection(rate, index, shared.connections)),
        scheduled: 0,
        skipped: 0,
        stopping: false,
        tally: Tally::default(),
        published: Tally::default(),
        latencies: Vec::new(),
        errors: Samples::default(),
        broken: false,
        shared,
    };
    let shared = conn.shared.clone();
    loop {
        let Some(reconnect) = &shared.reconnect else {
            conn.run(&mut reader, &sender).await;
            break;
        };
        let ran = tokio::time::timeout_at(reconnect.until, conn.run(&mut reader, &sender)).await;
        if ran.is_err() || !conn.broken {
            break;
        }
        drop(sender);
        let _ = tokio::time::timeout(CLOSE_WAIT, writer).await;
        conn.lost_connection(Instant::now());
        let Some(stream) = reconnect.connect(&mut conn.errors).await else {
            return conn.finish(None);
        };
        (reader, sender, writer) = open(stream, &shared.codec);
        conn.broken = false;
    }
    let held = if shared.hold {
        Some((reader, sender))
    } else {
        drop(sender);
        let _ = tokio::time::timeout(CLOSE_WAIT, writer).await;
        None
    };
    conn.finish(held)
}

impl Conn {
    /// The connection's counts once it is done for good.
    fn finish(mut self, held: Option<Held>) -> ConnResult {
        // Requests still outstanding when the connection ended are lost, and
        // so are their reversals.
        self.tally.errors += self.pending as u64;
        for p in self.reversals.abandon() {
            self.note_reversal(&p, ReversalEvent::Unanswered);
        }
        self.tally.reversals = self.reversals.tally;
        self.publish();
        ConnResult {
            tally: self.tally,
            skipped: self.skipped,
            errors: self.errors,
            held,
        }
    }

    /// The connection is gone: its requests in flight time out as soon as
    /// there is a connection to reverse them on, and its reversals in
    /// flight are repeated there.
    fn lost_connection(&mut self, now: Instant) {
        for deadline in &mut self.deadlines {
            deadline.0 = deadline.0.min(now);
        }
        self.reversals.repeat_all_now(now);
    }

    async fn run<R: tokio::io::AsyncRead + Unpin>(
        &mut self,
        reader: &mut FrameReader<R>,
        sender: &FrameSender,
    ) {
        let stop = self.shared.stop.clone();
        let paced = self.schedule.is_some_and(|s| !s.own_timer());
        let wake = tokio::time::sleep_until(Instant::now());
        tokio::pin!(wake);
        loop {
            if let Err(e) = self.expire(Instant::now(), sender).await {
                return self.fail(e);
            }
            if stop.is_cancelled() {
                self.stopping = true;
            }
            if !self.stopping
                && let Err(e) = self.issue(sender).await
            {
                return self.fail(e);
            }
            self.publish();
            if self.stopping && self.pending == 0 && self.reversals.is_empty() {
                return;
            }
            let next = self.next_wake();
            if let Some(at) = next
                && at != wake.deadline()
            {
                wake.as_mut().reset(at);
            }
            tokio::select! {
                biased;
                _ = stop.cancelled(), if !self.stopping => self.stopping = true,
                read = reader.next() => {
                    let frame = match read {
                        Ok(Some(frame)) => frame,
                        Ok(None) => return self.fail("connection closed by the host".into()),
                        Err(e) => return self.fail(format!("read: {e}")),
                    };
                    if let Err(e) = self.on_burst(frame, reader, sender).await {
                        return self.fail(e);
                    }
                }
                _ = &mut wake, if next.is_some() => {}
                _ = self.shared.pace.notified(), if paced => {}
            }
        }
    }

    /// Handles `frame` and every frame already buffered behind it before
    /// writing (answers to network management requests).
    async fn on_burst<R: tokio::io::AsyncRead + Unpin>(
        &mut self,
        frame: Frame,
        reader: &mut FrameReader<R>,
        sender: &FrameSender,
    ) -> Result<(), String> {
        let now = Instant::now();
        let mut next = Some(frame);
        while let Some(frame) = next {
            if let Some(reply) = self.on_frame(frame, now)
                && sender.send(reply).await.is_err()
            {
                return Err("send: connection closed".into());
            }
            next = reader.next_buffered().map_err(|e| format!("read: {e}"))?;
        }
        Ok(())
    }

    /// When the loop must wake without a frame: the first time-out, the
    /// first late window closing, the first reversal repeat, and (open
    /// loop, own timer, window not full) the next request due. Time-outs
    /// are checked on a grid of a quarter of the time-out (1 to 10 ms), as
    /// often as the loop used to tick.
    fn next_wake(&self) -> Option<Instant> {
        let grid =
            (self.shared.timeout / 4).clamp(Duration::from_millis(1), Duration::from_millis(10));
        let start = self.shared.start;
        let on_grid = |at: Instant| {
            let steps = (at.saturating_duration_since(start).as_nanos() / grid.as_nanos()) + 1;
            start + grid * u32::try_from(steps).unwrap_or(u32::MAX)
        };
        let timers = [
            self.deadlines.front().map(|d| d.0),
            self.forget.front().map(|f| f.0),
            self.reversals.next_deadline(),
        ];
        let mut next = timers.into_iter().flatten().map(on_grid).min();
        if let Some(s) = self.schedule.filter(|s| s.own_timer())
            && !self.stopping
            && self.pending < self.shared.in_flight
        {
            let due = start + s.due_at(self.scheduled + 1);
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        next
    }

    /// Sends what the loop allows now: closed loop, up to the window;
    /// open loop, what the schedule says is due, within the window.
    async fn issue(&mut self, sender: &FrameSender) -> Result<(), String> {
        let free = self.shared.in_flight - self.pending;
        let now = Instant::now();
        let count = match self.schedule {
            None => free as u64,
            Some(schedule) => {
                let due = schedule.due(now - self.shared.start);
                let debt = due.saturating_sub(self.scheduled);
                let count = debt.min(free as u64);
                // Do not build a backlog beyond one window: give the
                // excess up (and say so) rather than burst later.
                let excess = (debt - count).saturating_sub(self.shared.in_flight as u64);
                self.skipped += excess;
                self.scheduled += count + excess;
                count
            }
        };
        if count == 0 {
            return Ok(());
        }
        let wall = SystemTime::now();
        for _ in 0..count {
            if !self.shared.claim() {
                self.stopping = true;
                break;
            }
            self.send_one(sender, now, wall).await?;
        }
        Ok(())
    }

    /// A STAN used by no request remembered and no reversal in flight.
    fn free_stan(&mut self) -> u32 {
        let (slots, reversals) = (&self.slots, &self.reversals);
        self.generator
            .next_stan(|s| slots.contains_key(&s) || reversals.uses(s))
            .expect("in-flight and remembered requests stay far below the STAN space")
    }

    async fn send_one(
        &mut self,
        sender: &FrameSender,
        now: Instant,
        wall: SystemTime,
    ) -> Result<(), String> {
        let stan = self.free_stan();
        let (mut request, expected) = self.generator.request(stan, wall);
        let spec = &self.shared.spec;
        let bytes = match (&self.shared.pin_pad, &mut self.pin_pad) {
            (Some(plan), Some(pad)) => {
                pad.enter_pin(plan, spec, &mut request)?;
                PinPad::enter_cvv2(plan, &mut request)?;
                PinPad::build_signed(plan, spec, &mut request)?
            }
            _ => spec.build(&request).map_err(|e| format!("build: {e}"))?,
        };
        sender
            .send(Frame::new(bytes))
            .await
            .map_err(|e| format!("send: {e}"))?;
        self.seq += 1;
        let slot = Slot {
            seq: self.seq,
            sent_at: now,
            expected,
            request: self.shared.reversal.is_some().then_some(request),
            timed_out: false,
        };
        self.slots.insert(stan, slot);
        self.deadlines
            .push_back((now + self.shared.timeout, stan, self.seq));
        self.pending += 1;
        self.tally.sent += 1;
        Ok(())
    }

    /// Handles one frame from the host; returns a reply for network
    /// management requests.
    fn on_frame(&mut self, frame: Frame, now: Instant) -> Option<Frame> {
        let msg = match self.shared.spec.parse(&frame.message) {
            Ok(m) => m,
            Err(e) => {
                self.tally.errors += 1;
                self.errors.add(format!("undecodable response: {e}"));
                return None;
            }
        };
        if !msg.mti().is_response() {
            if let Some(answer) = netmgmt::answer(&msg)
                && let Ok(bytes) = self.shared.spec.build(&answer)
            {
                return Some(Frame {
                    tpdu: frame.tpdu.map(|t| t.reply()),
                    message: bytes,
                });
            }
            self.tally.unmatched += 1;
            self.errors
                .add(format!("unexpected {} from the host", msg.mti()));
            return None;
        }
        let stan = msg
            .get_u64(11)
            .filter(|s| (1..=u64::from(STAN_MAX)).contains(s))
            .map(|s| s as u32);
        if msg.mti().class() == MessageClass::Reversal {
            match stan.and_then(|s| self.reversals.answer(s, &msg)) {
                Some(p) => {
                    let code = msg.get_str(39).unwrap_or("");
                    self.note_reversal(&p, ReversalEvent::Answered(code));
                }
                // The terminal sends no other reversal: this answers an
                // earlier send of one already answered or given up.
                None => self.tally.late += 1,
            }
            return None;
        }
        let Some(slot) = stan.and_then(|s| self.slots.remove(&s)) else {
            self.tally.unmatched += 1;
            self.errors.add(format!(
                "{} with STAN {} matches no request in flight",
                msg.mti(),
                msg.get_str(11).unwrap_or("-")
            ));
            return None;
        };
        self.on_response(slot, &msg, now);
        None
    }

    /// Checks and counts the response to `slot`'s request.
    fn on_response(&mut self, slot: Slot, msg: &Message, now: Instant) {
        let outcome = load::check_response(&slot.expected, msg);
        if let Some(record) = &self.shared.record {
            let code = msg.get_str(39).unwrap_or("");
            record.response(&slot.expected, code, slot.timed_out);
        }
        if slot.timed_out {
            self.tally.late += 1;
            if let Outcome::Mismatched(m) = outcome {
                self.tally.unmatched += 1;
                self.errors
                    .add(format!("late response fails its check: {m:?}"));
            }
            return;
        }
        self.pending -= 1;
        self.tally.record(outcome);
        if let Outcome::Mismatched(m) = outcome {
            self.errors
                .add(format!("response does not match its request: {m:?}"));
        }
        let micros = u64::try_from((now - slot.sent_at).as_micros()).unwrap_or(u64::MAX);
        self.latencies.push(micros);
    }

    async fn send_message(&self, m: &Message, sender: &FrameSender) -> Result<(), String> {
        let bytes = self
            .shared
            .spec
            .build(m)
            .map_err(|e| format!("build {}: {e}", m.mti()))?;
        sender
            .send(Frame::new(bytes))
            .await
            .map_err(|e| format!("send: {e}"))
    }

    fn fail(&mut self, error: String) {
        self.broken = true;
        self.tally.errors += 1;
        self.errors.add(error);
    }

    /// Publishes counts and adds the latencies gathered since the last call
    /// to the run's histogram and the live window.
    fn publish(&mut self) {
        self.tally.reversals = self.reversals.tally;
        if self.tally != self.published {
            self.shared.progress.publish(&self.tally, &self.published);
            self.published = self.tally;
        }
        if self.latencies.is_empty() {
            return;
        }
        {
            let mut h = self
                .shared
                .histogram
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for &us in &self.latencies {
                record_latency(&mut h, us);
            }
        }
        self.shared.progress.record_latencies(&self.latencies);
        self.latencies.clear();
    }
}
