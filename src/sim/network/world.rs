//! One seed's world: the core (or none while it is down), the journal,
//! the acquirers, the issuers and their links, in virtual time. Each event
//! taken off the queue is one step; the core's actions are carried out
//! at once (`dispatch.rs`), and the checks run as they come out.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fastrand::Rng;

use super::acquirer::Acquirers;
use super::checks::{Broken, Checks};
use super::digest::{Digest, describe_input};
use super::issuer::Issuer;
use super::journal::Journal;
use super::queue::{Event, Queue};
use super::setup::{ISSUERS, Setup};
use super::{Failure, Faults, Invariant, Options, Report};
use crate::switch::core::{ConnId, Core, Input, Origin, Time, TimerId};

/// How long the quiet period may last (virtual time) for everything to
/// settle.
const QUIET_MAX_US: u64 = 4 * 3600 * 1_000_000;

/// How often things go wrong in one seed (per mille).
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub crash: u32,
    pub link_loss: u32,
    pub journal_fail: u32,
    pub write_fail: u32,
    /// Of issuer answers: late, never, twice, wrong STAN, wrong class,
    /// without DE39.
    pub answer: u32,
}

/// An issuer's link as the world sees it.
pub struct Link {
    pub up: bool,
    /// Changes whenever the connection is lost: messages on an old one
    /// never arrive.
    pub epoch: u64,
}

pub struct World<'t> {
    pub seed: u64,
    pub opts: Options,
    pub rng: Rng,
    pub setup: Setup,
    pub rates: Rates,
    pub base: Instant,
    pub wall0: SystemTime,
    pub now_us: u64,
    pub step: u64,
    pub quiet: bool,
    quiet_from: u64,
    pub queue: Queue,
    pub core: Option<Core>,
    /// The core's incarnation: bumps at each crash.
    pub epoch: u64,
    pub timers: HashMap<TimerId, u64>,
    pub timer_generation: u64,
    pub journal: Journal,
    pub acq: Acquirers,
    pub issuers: Vec<Issuer>,
    pub links: Vec<Link>,
    pub checks: Checks,
    pub inputs: VecDeque<Input>,
    pub faults: Faults,
    pub digest: Digest,
    pub trace: Option<&'t mut dyn std::io::Write>,
    presumed: u64,
    given_up: u64,
    /// When the journal last told the core: in commit order.
    notified_us: u64,
}

impl<'t> World<'t> {
    pub fn new(seed: u64, opts: Options, trace: Option<&'t mut dyn std::io::Write>) -> World<'t> {
        let mut rng = Rng::with_seed(seed);
        let acquirers = rng.usize(1..=3);
        let issuers = rng.usize(1..=2);
        // Drawn apart from the main sequence: seeds without PIN zones run
        // as they did before there were any.
        let hsm = Rng::with_seed(seed ^ 0x4853_4d00).bool();
        let setup = Setup::new(acquirers, issuers, rng.bool(), opts.mutation).with_hsm(hsm);
        let scale = rng.u32(0..=3);
        let rates = Rates {
            crash: [0, 1, 2, 4][scale as usize],
            link_loss: 10 * scale,
            journal_fail: 8 * scale,
            write_fail: 15 * scale,
            answer: 30 * scale,
        };
        let mut acq = Acquirers::new(acquirers, issuers, setup.acquirer_spec.clone());
        acq.pin = setup.hsm;
        World {
            seed,
            opts,
            rng,
            rates,
            base: Instant::now(),
            wall0: UNIX_EPOCH + Duration::from_secs(1_796_000_000),
            now_us: 0,
            step: 0,
            quiet: false,
            quiet_from: 0,
            queue: Queue::default(),
            core: None,
            epoch: 0,
            timers: HashMap::new(),
            timer_generation: 0,
            journal: Journal::default(),
            acq,
            issuers: (0..ISSUERS.len()).map(|_| Issuer::default()).collect(),
            links: (0..ISSUERS.len())
                .map(|_| Link { up: true, epoch: 0 })
                .collect(),
            checks: Checks::default(),
            inputs: VecDeque::new(),
            faults: Faults::default(),
            digest: Digest::default(),
            trace: if opts.trace { trace } else { None },
            setup,
            presumed: 0,
            given_up: 0,
            notified_us: 0,
        }
    }

    pub fn now(&self) -> Time {
        Time {
            mono: self.base + Duration::from_micros(self.now_us),
            wall: self.wall0 + Duration::from_micros(self.now_us),
        }
    }

    pub fn fail(&self, (invariant, detail): Broken) -> Failure {
        Failure {
            seed: self.seed,
            step: self.step,
            invariant,
            detail,
        }
    }

    /// Whether a fault with a rate of `per_mille` happens now (never in
    /// the quiet period).
    pub fn chance(&mut self, per_mille: u32) -> bool {
        !self.quiet && self.rng.u32(..1000) < per_mille
    }

    pub fn trace_line(&mut self, line: &str) {
        if let Some(t) = self.trace.as_mut() {
            let _ = writeln!(
                t,
                "{:>6} {:>10.3}s {line}",
                self.step,
                self.now_us as f64 / 1e6
            );
        }
    }

    pub fn run(mut self) -> Result<Report, Failure> {
        self.start(false)?;
        for a in 0..self.setup.acquirers {
            let at = self.rng.u64(0..50_000);
            self.queue.at(at, Event::AcquirerTick(a));
        }
        for i in 0..self.setup.issuers {
            if self.rates.link_loss > 0 {
                let at = self.rng.u64(1_000_000..30_000_000);
                self.queue.at(
                    at,
                    Event::Link {
                        issuer: i,
                        up: false,
                    },
                );
            }
        }
        while let Some((at, event)) = self.queue.pop() {
            if !self.quiet && self.step >= self.opts.steps {
                self.begin_quiet();
            }
            if self.quiet && at > self.quiet_from + QUIET_MAX_US {
                break;
            }
            self.now_us = self.now_us.max(at);
            self.step += 1;
            self.event(event)?;
            self.pump()?;
        }
        self.finish()
    }

    /// No new traffic or faults; links up, the switch running.
    fn begin_quiet(&mut self) {
        self.quiet = true;
        self.quiet_from = self.now_us;
        self.trace_line("quiet period");
        for i in 0..self.setup.issuers {
            if !self.links[i].up {
                self.queue.at(
                    self.now_us,
                    Event::Link {
                        issuer: i,
                        up: true,
                    },
                );
            }
        }
    }

    fn finish(mut self) -> Result<Report, Failure> {
        let Some(core) = self.core.as_ref() else {
            return Err(self.fail((Invariant::Settled, "the switch is down at the end".into())));
        };
        let (open, depth) = (core.open_transactions(), core.saf_depth());
        if open > 0 || depth > 0 {
            let detail =
                format!("{open} transactions open, {depth} entries queued after the quiet period");
            return Err(self.fail((Invariant::Settled, detail)));
        }
        if let Some((tag, _)) = self.acq.sent.iter().find(|(_, s)| !s.replied) {
            let detail = format!("request tag {tag} never replied");
            return Err(self.fail((Invariant::ExactlyOneReply, detail)));
        }
        match super::checks::settled(&self.acq, &self.issuers, &self.journal) {
            Ok(s) => {
                self.presumed += s.presumed;
                self.given_up += s.given_up;
            }
            Err(b) => return Err(self.fail(b)),
        }
        Ok(Report {
            steps: self.step,
            requests: self.acq.requests,
            faults: self.faults,
            presumed_delivered: self.presumed,
            given_up: self.given_up,
            digest: self.digest.0,
        })
    }

    /// Starts a core: at the beginning, or after a crash from what the
    /// journal kept.
    fn start(&mut self, restart: bool) -> Result<(), Failure> {
        let mut core = self.setup.core();
        self.checks.restarted();
        if restart {
            let specs: Vec<(&str, _)> = ISSUERS
                .iter()
                .zip(&self.setup.issuer_specs)
                .map(|((n, _, _), s)| (*n, s.clone()))
                .collect();
            let restored = self
                .journal
                .recover(&specs)
                .map_err(|e| self.fail((Invariant::JournalComplete, e)))?;
            let now = self.now();
            let count = core.restore(now, restored);
            self.trace_line(&format!("restart: {count:?}"));
        }
        self.core = Some(core);
        self.drain()?;
        for i in 0..self.links.len() {
            if self.links[i].up {
                self.inputs.push_back(Input::IssuerUp {
                    issuer: i,
                    up: true,
                });
            }
        }
        Ok(())
    }

    /// Feeds the inputs waiting, carrying out the actions of each.
    pub fn pump(&mut self) -> Result<(), Failure> {
        while let Some(input) = self.inputs.pop_front() {
            let now = self.now();
            if self.core.is_none() {
                self.inputs.clear();
                return Ok(());
            }
            self.digest.input(self.now_us, &input);
            if self.trace.is_some() {
                let line = format!("in  {}", describe_input(&input));
                self.trace_line(&line);
            }
            if let Some(core) = self.core.as_mut() {
                core.handle(now, input);
            }
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<(), Failure> {
        while let Some(action) = self.core.as_mut().and_then(Core::poll_action) {
            self.dispatch(action)?;
        }
        if let Some(core) = self.core.as_ref() {
            self.checks.saf_out.retain(|&id| core.saf_out(id));
        }
        Ok(())
    }

    fn event(&mut self, event: Event) -> Result<(), Failure> {
        match event {
            Event::AcquirerTick(a) => self.acquirer_tick(a),
            Event::ReversalRetry(rrn) => self.reversal_retry(&rrn),
            Event::AtIssuer {
                issuer,
                link,
                bytes,
            } => self.at_issuer(issuer, link, &bytes)?,
            Event::AtSwitch {
                issuer,
                link,
                bytes,
            } => self.at_switch(issuer, link, &bytes)?,
            Event::Later { epoch, input } => {
                if epoch == self.epoch {
                    self.inputs.push_back(input);
                }
            }
            Event::Commit { group } => self.commit(group),
            Event::Timer { timer, generation } => {
                if self.timers.get(&timer) == Some(&generation) {
                    self.timers.remove(&timer);
                    self.inputs.push_back(Input::Timer(timer));
                }
            }
            Event::Link { issuer, up } => self.link(issuer, up),
            Event::Crash => self.crash(),
            Event::Restart => self.start(true)?,
        }
        Ok(())
    }

    fn acquirer_tick(&mut self, a: usize) {
        if self.quiet {
            return;
        }
        let gap = self.rng.u64(1_000..120_000);
        self.queue.at(self.now_us + gap, Event::AcquirerTick(a));
        if self.core.is_none() {
            return;
        }
        let wall = self.now().wall;
        let (tag, conn, message) = self.acq.next(a, self.now_us, wall, &mut self.rng);
        self.request(a, tag, conn, message);
        if self.chance(self.rates.crash) {
            let at = self.now_us + self.rng.u64(0..20_000);
            self.queue.at(at, Event::Crash);
        }
    }

    fn request(&mut self, a: usize, tag: u64, conn: u64, message: crate::message::Message) {
        self.inputs.push_back(Input::Request {
            from: Origin {
                conn: ConnId(conn),
                acquirer: a,
                tag,
            },
            message: Box::new(message),
        });
    }

    fn reversal_retry(&mut self, rrn: &str) {
        if self.core.is_none() {
            let at = self.now_us + 1_000_000;
            self.queue.at(at, Event::ReversalRetry(rrn.to_string()));
            return;
        }
        if let Some((a, tag, conn, m)) = self.acq.retry_reversal(rrn, self.now_us) {
            self.request(a, tag, conn, m);
        }
    }

    /// A reply the acquirer of `tag` did not get: a reversal is repeated.
    pub fn reply_lost(&mut self, rrn: &str, reversal: bool) {
        if reversal {
            let at = self.now_us + self.rng.u64(2_000_000..8_000_000);
            self.queue.at(at, Event::ReversalRetry(rrn.to_string()));
        }
    }

    /// A group commits; only one the core waits for may fail (a failure
    /// the core is never told of is one it cannot act on).
    fn commit(&mut self, group: usize) {
        let fail = self.journal.waited(group) && self.chance(self.rates.journal_fail);
        let Some((token, ok)) = self.journal.commit(group, fail) else {
            return;
        };
        if !ok {
            self.faults.journal_failed += 1;
        }
        // The writer tells the core a little after the commit: a crash in
        // between leaves records on disk the core never heard of.
        if let Some(token) = token {
            let at = self.notified_us.max(self.now_us + self.rng.u64(0..2_000));
            self.notified_us = at;
            let input = Input::Durable { token, ok };
            self.queue.at(
                at,
                Event::Later {
                    epoch: self.epoch,
                    input,
                },
            );
        }
    }

    fn link(&mut self, issuer: usize, up: bool) {
        let link = &mut self.links[issuer];
        // Links stay up in the quiet period.
        if link.up == up || (self.quiet && !up) {
            return;
        }
        link.up = up;
        link.epoch += 1;
        if !up {
            self.faults.link_drops += 1;
        }
        if self.core.is_some() {
            self.inputs.push_back(Input::IssuerUp { issuer, up });
        }
        if !self.quiet {
            let next = if up {
                self.rng.u64(5_000_000..60_000_000)
            } else {
                self.rng.u64(500_000..20_000_000)
            };
            self.queue
                .at(self.now_us + next, Event::Link { issuer, up: !up });
        }
    }

    fn crash(&mut self) {
        if self.core.is_none() || self.quiet {
            return;
        }
        self.trace_line("crash");
        self.faults.crashes += 1;
        self.core = None;
        self.epoch += 1;
        self.timers.clear();
        self.inputs.clear();
        self.journal.crash();
        for link in &mut self.links {
            link.epoch += 1;
        }
        for rrn in self.acq.switch_died() {
            self.reply_lost(&rrn, true);
        }
        let at = self.now_us + self.rng.u64(50_000..3_000_000);
        self.queue.at(at, Event::Restart);
    }

    fn at_switch(&mut self, issuer: usize, link: u64, bytes: &Bytes) -> Result<(), Failure> {
        if self.core.is_none() || link != self.links[issuer].epoch {
            return Ok(());
        }
        let message = self.setup.issuer_specs[issuer].parse(bytes).map_err(|e| {
            self.fail((
                Invariant::Buildable,
                format!("issuer {issuer}'s answer unreadable: {e}"),
            ))
        })?;
        self.inputs.push_back(Input::FromIssuer {
            issuer,
            message: Box::new(message),
        });
        Ok(())
    }
}
