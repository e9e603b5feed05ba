//! `cardswitch load`: a load generator acting as many terminals. Each
//! connection is one terminal (its own DE41) run by one task; responses are
//! matched to requests by STAN within the connection and checked against
//! them (`sim::load::check_response`). Closed loop by default (each
//! connection keeps `--in-flight` requests outstanding); with `--rate`,
//! open loop paced by a timer and still bounded by `--in-flight`.
//!
//! One current-thread runtime: on these 2-core machines one worker per
//! process does best (cross-thread wake-ups cost more than they give), and
//! the other core is left to the host under test.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::CliError;
use super::link_args::LinkArgs;
use crate::link::connection::{self, FrameReader, FrameSender};
use crate::link::framing::{Frame, FrameCodec};
use crate::link::listener::BoxedStream;
use crate::link::netmgmt;
use crate::link::tls::TlsClient;
use crate::message::{Mti, Spec};
use crate::sim::load::{
    self, BinMix, CONNECTIONS_MAX, Expected, LatencySummary, Layout, LoadProfile, Outcome,
    RequestGenerator, STAN_MAX, Tally,
};

/// Most requests outstanding on one connection.
pub const IN_FLIGHT_MAX: u32 = 10_000;
/// Timed-out requests remembered per connection to recognise late answers
/// (their STANs are not reused meanwhile). Far below the STAN space.
const LATE_KEPT_MAX: usize = 65_536;
/// Distinct error messages kept for the report.
const ERROR_SAMPLES_MAX: usize = 8;
/// Longest run.
const DURATION_S_MAX: f64 = 86_400.0;
/// Run length when neither `--duration-s` nor `--requests` is given.
const DURATION_S_DEFAULT: f64 = 10.0;
/// How long the writer may take to flush after a connection's last request.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Open loop: how often, at most, the pacer thread wakes the connections. tokio's
/// timer counts whole milliseconds, and sending each millisecond's requests
/// in one burst made the generator, not the host, set the tail latency; a
/// thread sleeping 100 µs spreads them out.
const PACE_STEP: Duration = Duration::from_micros(100);
/// How often a connection adds its recent latencies to the live window:
/// adding or resetting a histogram walks all its ~22k buckets, far too
/// much to do per batch (it took a third of the generator's CPU).
const LATENCY_PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

const _: () = assert!(IN_FLIGHT_MAX as usize + LATE_KEPT_MAX < STAN_MAX as usize);

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// host:port to send to.
    #[arg(long)]
    pub target: String,
    /// Spec name or file.
    #[arg(long, default_value = "iso87-ascii")]
    pub spec: String,
    #[command(flatten)]
    pub link: LinkArgs,
    /// Connections, one simulated terminal each.
    #[arg(long, default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(CONNECTIONS_MAX)))]
    pub connections: u32,
    /// Requests outstanding per connection (the closed loop's window).
    #[arg(long, default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(IN_FLIGHT_MAX)))]
    pub in_flight: u32,
    /// Target requests per second over all connections: open loop paced
    /// by a timer (still at most --in-flight outstanding per connection).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop sending after this many seconds (default 10 without --requests).
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Stop after this many requests in total.
    #[arg(long)]
    pub requests: Option<u64>,
    /// BINs with weights: "476173:3,545454:1". PANs are 16 digits, Luhn-valid.
    #[arg(long, default_value = "476173:3,545454:1")]
    pub bins: String,
    /// Smallest amount (DE4, minor units).
    #[arg(long, default_value_t = 100)]
    pub amount_min: u64,
    /// Largest amount (DE4, minor units).
    #[arg(long, default_value_t = 50_000)]
    pub amount_max: u64,
    /// Request type: 0100 authorization or 0200 financial (the spec's
    /// version digit applies: 1100 on a 1993 spec).
    #[arg(long, default_value = "0100", value_parser = ["0100", "0200"])]
    pub mti: String,
    /// Time limit for each response, in milliseconds.
    #[arg(long, default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,
    /// DE32, acquiring institution id.
    #[arg(long, default_value = "400001")]
    pub acquirer_id: String,
    /// DE49, ISO 4217 numeric currency.
    #[arg(long, default_value = "978")]
    pub currency: String,
    /// Seed for PANs, amounts and first STANs (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write every response received as a JSON line (RRN, STAN, terminal,
    /// DE39, late or not; no card data), for tests that check end to end.
    #[arg(long)]
    pub record: Option<std::path::PathBuf>,
    /// First RRN sequence number, so that runs against the same host use
    /// distinct RRNs.
    #[arg(long, default_value_t = 0)]
    pub rrn_start: u64,
}

/// Counters updated while a run goes on, for live display (`demo`).
/// Each connection publishes its counts once per batch of work.
#[derive(Debug, Default)]
pub struct LoadProgress {
    sent: AtomicU64,
    approved: AtomicU64,
    declined: AtomicU64,
    timed_out: AtomicU64,
    late: AtomicU64,
    mismatched: AtomicU64,
    unmatched: AtomicU64,
    errors: AtomicU64,
    /// Latencies since the last `take_window_latency`, for live percentiles.
    window: std::sync::Mutex<Option<Histogram<u64>>>,
}

impl LoadProgress {
    /// p50 and p99 latency (µs) of the responses since the last call.
    pub fn take_window_latency(&self) -> (u64, u64) {
        let taken = self.window.lock().unwrap_or_else(|e| e.into_inner()).take();
        match taken {
            Some(h) if !h.is_empty() => (h.value_at_quantile(0.5), h.value_at_quantile(0.99)),
            _ => (0, 0),
        }
    }

    fn publish_latency(&self, recent: &Histogram<u64>) {
        if recent.is_empty() {
            return;
        }
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        match window.as_mut() {
            // Same bounds on every histogram: adding cannot fail.
            Some(h) => {
                let _ = h.add(recent);
            }
            None => *window = Some(recent.clone()),
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Tally {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Tally {
            sent: get(&self.sent),
            approved: get(&self.approved),
            declined: get(&self.declined),
            timed_out: get(&self.timed_out),
            late: get(&self.late),
            mismatched: get(&self.mismatched),
            unmatched: get(&self.unmatched),
            errors: get(&self.errors),
        }
    }

    /// Adds `now - before` (counts only grow).
    fn publish(&self, now: &Tally, before: &Tally) {
        let pairs = [
            (&self.sent, now.sent - before.sent),
            (&self.approved, now.approved - before.approved),
            (&self.declined, now.declined - before.declined),
            (&self.timed_out, now.timed_out - before.timed_out),
            (&self.late, now.late - before.late),
            (&self.mismatched, now.mismatched - before.mismatched),
            (&self.unmatched, now.unmatched - before.unmatched),
            (&self.errors, now.errors - before.errors),
        ];
        for (counter, delta) in pairs {
            if delta > 0 {
                counter.fetch_add(delta, Ordering::Relaxed);
            }
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub target: String,
    /// Connections that were established.
    pub connections: u32,
    pub in_flight: u32,
    /// The `--rate` target, when open loop.
    pub rate_target: Option<f64>,
    #[serde(flatten)]
    pub counts: Tally,
    /// Open loop: scheduled requests given up because the connection's
    /// window was full for longer than one window's worth of requests.
    pub skipped: u64,
    /// From the first request to the last answer or time-out.
    pub elapsed_s: f64,
    /// Requests answered in time per second.
    pub throughput_rps: f64,
    /// Latency of the requests answered in time, in microseconds.
    pub latency_us: LatencySummary,
    /// Up to a few distinct error and mismatch descriptions.
    pub error_samples: Vec<String>,
}

impl LoadReport {
    /// Whether any response failed its checks (the run must fail).
    pub fn has_mismatches(&self) -> bool {
        self.counts.mismatched > 0 || self.counts.unmatched > 0
    }

    /// A human-readable summary.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        let l = &self.latency_us;
        let mode = match self.rate_target {
            Some(r) => format!("open loop at {r} req/s"),
            None => "closed loop".to_string(),
        };
        let mut s = format!(
            "target {}: {} connections x {} in flight, {mode}, {:.2} s\n",
            self.target, self.connections, self.in_flight, self.elapsed_s
        );
        let rows = [
            ("sent", c.sent),
            ("approved", c.approved),
            ("declined", c.declined),
            ("timed out", c.timed_out),
            ("late", c.late),
            ("mismatched", c.mismatched),
            ("unmatched", c.unmatched),
            ("errors", c.errors),
        ];
        for (name, v) in rows {
            let _ = writeln!(s, "{name:<12}{v:>12}");
        }
        if self.rate_target.is_some() {
            let _ = writeln!(s, "{:<12}{:>12}", "skipped", self.skipped);
        }
        let _ = writeln!(s, "{:<12}{:>12.0} req/s", "throughput", self.throughput_rps);
        let _ = writeln!(
            s,
            "latency µs  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            l.p50, l.p90, l.p99, l.p99_9, l.max
        );
        for e in &self.error_samples {
            let _ = writeln!(s, "error: {e}");
        }
        s
    }
}

/// Runs `cardswitch load` in its own single-threaded runtime and prints the
/// report; fails if any response did not match its request.
pub fn run(args: &LoadArgs) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Input(e.to_string()))?;
    let report = runtime.block_on(run_load(args))?;
    if args.json {
        let text = serde_json::to_string(&report).map_err(|e| CliError::Input(e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", report.summary());
    }
    if report.has_mismatches() {
        return Err(CliError::Input(format!(
            "{} responses did not match their request, {} matched none",
            report.counts.mismatched, report.counts.unmatched
        )));
    }
    Ok(())
}

/// Runs the load inside the caller's runtime.
pub async fn run_load(args: &LoadArgs) -> Result<LoadReport, CliError> {
    run_load_observed(args, Arc::new(LoadProgress::default())).await
}

/// [`run_load`], publishing counts to `progress` while it runs.
pub async fn run_load_observed(
    args: &LoadArgs,
    progress: Arc<LoadProgress>,
) -> Result<LoadReport, CliError> {
    let plan = Plan::from_args(args)?;
    let mut connects = Vec::with_capacity(args.connections as usize);
    for _ in 0..args.connections {
        let (target, tls) = (args.target.clone(), plan.tls.clone());
        connects.push(tokio::spawn(connect(target, tls)));
    }
    let mut streams = Vec::with_capacity(connects.len());
    let mut connect_errors = Vec::new();
    for handle in connects {
        match handle.await {
            Ok(Ok(stream)) => streams.push(stream),
            Ok(Err(e)) => connect_errors.push(e),
            Err(e) => connect_errors.push(format!("connect task: {e}")),
        }
    }
    if streams.is_empty() {
        let first = connect_errors.first().cloned().unwrap_or_default();
        return Err(CliError::Input(format!("{}: {first}", args.target)));
    }
    let established = streams.len() as u32;
    let start = Instant::now();
    let record = match &args.record {
        Some(path) => Some(std::sync::Mutex::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| CliError::Input(format!("--record {}: {e}", path.display())))?,
        ))),
        None => None,
    };
    let shared = Arc::new(Shared {
        spec: plan.spec,
        codec: plan.codec,
        profile: plan.profile,
        in_flight: args.in_flight as usize,
        timeout: Duration::from_millis(args.timeout_ms),
        rate_per_connection: args.rate.map(|r| r / f64::from(established)),
        connections: established.max(1),
        pace: tokio::sync::Notify::new(),
        requests_max: args.requests,
        claimed: AtomicU64::new(0),
        stop: CancellationToken::new(),
        start,
        progress: progress.clone(),
        record,
        rrn_start: args.rrn_start,
    });
    let pacer = args.rate.map(|rate| {
        // Twice per request interval, within PACE_STEP and tokio's own 1 ms.
        let step = Duration::try_from_secs_f64(0.5 / rate).map_or(Duration::from_millis(1), |d| {
            d.clamp(PACE_STEP, Duration::from_millis(1))
        });
        let shared = shared.clone();
        std::thread::spawn(move || {
            while !shared.stop.is_cancelled() {
                std::thread::sleep(step);
                shared.pace.notify_waiters();
            }
        })
    });
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, stream)| {
            let conn_seed = seed.wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            tokio::spawn(drive(shared.clone(), i as u32, stream, conn_seed))
        })
        .collect();
    let timer = plan.duration.map(|d| {
        let stop = shared.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            stop.cancel();
        })
    });
    let mut counts = Tally {
        errors: connect_errors.len() as u64,
        ..Tally::default()
    };
    progress.publish(&counts, &Tally::default());
    let mut samples = Samples::default();
    for e in connect_errors {
        samples.add(format!("connect: {e}"));
    }
    let mut histogram = load::latency_histogram();
    let mut skipped = 0;
    for task in tasks {
        match task.await {
            Ok(r) => {
                counts.add(&r.tally);
                skipped += r.skipped;
                // Same bounds on every histogram: adding cannot fail.
                let _ = histogram.add(&r.histogram);
                for e in r.errors.list {
                    samples.add(e);
                }
            }
            Err(e) => {
                counts.errors += 1;
                samples.add(format!("connection task: {e}"));
            }
        }
    }
    let elapsed = start.elapsed();
    if let Some(t) = timer {
        t.abort();
    }
    // Every connection is done (a run bounded by `--requests` may end
    // before its time): stop the pacer too.
    shared.stop.cancel();
    if let Some(pacer) = pacer {
        let _ = pacer.join();
    }
    let elapsed_s = elapsed.as_secs_f64();
    Ok(LoadReport {
        target: args.target.clone(),
        connections: established,
        in_flight: args.in_flight,
        rate_target: args.rate,
        throughput_rps: if elapsed_s > 0.0 {
            counts.answered() as f64 / elapsed_s
        } else {
            0.0
        },
        counts,
        skipped,
        elapsed_s,
        latency_us: LatencySummary::from_histogram(&histogram),
        error_samples: samples.list,
    })
}

/// Everything checked before the first connection.
struct Plan {
    spec: Arc<Spec>,
    codec: FrameCodec,
    tls: Option<TlsClient>,
    profile: Arc<LoadProfile>,
    duration: Option<Duration>,
}

impl Plan {
    fn from_args(args: &LoadArgs) -> Result<Plan, CliError> {
        let input = |what: &str, e: &dyn std::fmt::Display| CliError::Input(format!("{what}: {e}"));
        let spec = Spec::resolve(&args.spec)?;
        let codec = args.link.codec()?;
        let tls = args.link.tls_client()?;
        let bins: BinMix = args.bins.parse().map_err(|e| input("--bins", &e))?;
        let mti: Mti = args.mti.parse().map_err(|e| input("--mti", &e))?;
        let profile = LoadProfile::new(
            mti,
            Layout::for_spec(&spec),
            bins,
            (args.amount_min, args.amount_max),
            &args.acquirer_id,
            &args.currency,
        )
        .map_err(|e| input("load profile", &e))?;
        let profile = Arc::new(profile);
        // A request the spec cannot carry fails here, not per request.
        let (sample, _) =
            RequestGenerator::new(profile.clone(), 0, 0).request(1, SystemTime::now());
        spec.build(&sample)
            .map_err(|e| input(&format!("spec {} cannot carry the requests", args.spec), &e))?;
        if let Some(r) = args.rate
            && !(r.is_finite() && r > 0.0)
        {
            return Err(CliError::Input("--rate must be above 0".into()));
        }
        if args.timeout_ms == 0 {
            return Err(CliError::Input("--timeout-ms must be above 0".into()));
        }
        let duration_s = match (args.duration_s, args.requests) {
            (None, None) => Some(DURATION_S_DEFAULT),
            (d, _) => d,
        };
        if let Some(d) = duration_s
            && !(d > 0.0 && d <= DURATION_S_MAX)
        {
            return Err(CliError::Input(format!(
                "--duration-s must be above 0 and at most {DURATION_S_MAX}"
            )));
        }
        if args.requests == Some(0) {
            return Err(CliError::Input("--requests must be above 0".into()));
        }
        Ok(Plan {
            spec,
            codec,
            tls,
            profile,
            duration: duration_s.map(Duration::from_secs_f64),
        })
    }
}

async fn connect(target: String, tls: Option<TlsClient>) -> Result<BoxedStream, String> {
    let tcp = tokio::net::TcpStream::connect(&target)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    // Requests are small and latency is measured: no Nagle delay.
    let _ = tcp.set_nodelay(true);
    Ok(match tls {
        Some(t) => Box::new(
            t.connect(tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?,
        ),
        None => Box::new(tcp),
    })
}

/// What all connections of a run share.
struct Shared {
    spec: Arc<Spec>,
    codec: FrameCodec,
    profile: Arc<LoadProfile>,
    in_flight: usize,
    timeout: Duration,
    rate_per_connection: Option<f64>,
    /// Connections of the run: open loop, connection `i` runs `i / connections`
    /// of a request ahead, so that they do not all send at the same instant.
    connections: u32,
    /// Open loop: notified every `PACE_STEP` by the pacer thread.
    pace: tokio::sync::Notify,
    requests_max: Option<u64>,
    /// Requests claimed so far against `requests_max`.
    claimed: AtomicU64,
    /// Cancelled when the run's time is up: no new requests.
    stop: CancellationToken,
    start: Instant,
    progress: Arc<LoadProgress>,
    record: Option<std::sync::Mutex<std::io::BufWriter<std::fs::File>>>,
    rrn_start: u64,
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
    timed_out: bool,
}

#[derive(Default)]
struct Samples {
    list: Vec<String>,
}

impl Samples {
    fn add(&mut self, e: String) {
        if self.list.len() < ERROR_SAMPLES_MAX && !self.list.contains(&e) {
            self.list.push(e);
        }
    }
}

/// What one connection hands back.
struct ConnResult {
    tally: Tally,
    histogram: Histogram<u64>,
    skipped: u64,
    errors: Samples,
}

/// One connection's state: its terminal, its requests in flight (by STAN)
/// and its counts.
struct Conn {
    shared: Arc<Shared>,
    generator: RequestGenerator,
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
    seq: u64,
    /// Open loop: requests scheduled so far.
    scheduled: u64,
    /// Open loop: this connection's head start, in requests (0 to 1).
    phase: f64,
    skipped: u64,
    stopping: bool,
    tally: Tally,
    published: Tally,
    histogram: Histogram<u64>,
    /// Latencies not yet published to the live window.
    recent: Histogram<u64>,
    latency_published_at: Instant,
    errors: Samples,
}

async fn drive(shared: Arc<Shared>, index: u32, stream: BoxedStream, seed: u64) -> ConnResult {
    let (mut reader, sender, writer) = connection::open_named(stream, shared.codec.clone(), "load");
    let mut conn = Conn {
        generator: RequestGenerator::new(shared.profile.clone(), index, seed)
            .with_rrn_start(shared.rrn_start),
        slots: HashMap::with_capacity(shared.in_flight * 2),
        pending: 0,
        deadlines: VecDeque::with_capacity(shared.in_flight),
        forget: VecDeque::new(),
        late_window: shared.timeout.max(Duration::from_secs(1)),
        seq: 0,
        scheduled: 0,
        phase: f64::from(index) / f64::from(shared.connections),
        skipped: 0,
        stopping: false,
        tally: Tally::default(),
        published: Tally::default(),
        histogram: load::latency_histogram(),
        recent: load::latency_histogram(),
        latency_published_at: Instant::now(),
        errors: Samples::default(),
        shared,
    };
    conn.run(&mut reader, &sender).await;
    // Requests still outstanding when the connection ended are lost.
    conn.tally.errors += conn.pending as u64;
    conn.publish(true);
    drop(sender);
    let _ = tokio::time::timeout(CLOSE_WAIT, writer).await;
    ConnResult {
        tally: conn.tally,
        histogram: conn.histogram,
        skipped: conn.skipped,
        errors: conn.errors,
    }
}

impl Conn {
    async fn run<R: tokio::io::AsyncRead + Unpin>(
        &mut self,
        reader: &mut FrameReader<R>,
        sender: &FrameSender,
    ) {
        let stop = self.shared.stop.clone();
        // Wakes the loop for time-outs (and, open loop, for pacing).
        let tick_period = match self.shared.rate_per_connection {
            Some(_) => Duration::from_millis(1),
            None => {
                (self.shared.timeout / 4).clamp(Duration::from_millis(1), Duration::from_millis(10))
            }
        };
        let open_loop = self.shared.rate_per_connection.is_some();
        let mut tick = tokio::time::interval(tick_period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            self.expire(Instant::now());
            if stop.is_cancelled() {
                self.stopping = true;
            }
            if !self.stopping
                && let Err(e) = self.issue(sender).await
            {
                self.fail(e);
                return;
            }
            self.publish(false);
            if self.stopping && self.pending == 0 {
                return;
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
                    // Answer the whole burst already buffered before writing.
                    let now = Instant::now();
                    let mut next = Some(frame);
                    while let Some(frame) = next {
                        if let Some(reply) = self.on_frame(frame, now)
                            && sender.send(reply).await.is_err()
                        {
                            return self.fail("send: connection closed".into());
                        }
                        next = match reader.next_buffered() {
                            Ok(f) => f,
                            Err(e) => return self.fail(format!("read: {e}")),
                        };
                    }
                }
                _ = tick.tick() => {}
                _ = self.shared.pace.notified(), if open_loop => {}
            }
        }
    }

    /// Sends what the loop allows now: closed loop, up to the window;
    /// open loop, what the schedule says is due, within the window.
    async fn issue(&mut self, sender: &FrameSender) -> Result<(), String> {
        let free = self.shared.in_flight - self.pending;
        let now = Instant::now();
        let count = match self.shared.rate_per_connection {
            None => free as u64,
            Some(rate) => {
                let due = ((now - self.shared.start).as_secs_f64() * rate + self.phase) as u64;
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

    async fn send_one(
        &mut self,
        sender: &FrameSender,
        now: Instant,
        wall: SystemTime,
    ) -> Result<(), String> {
        let slots = &self.slots;
        let stan = self
            .generator
            .next_stan(|s| slots.contains_key(&s))
            .expect("in-flight and remembered requests stay far below the STAN space");
        let (request, expected) = self.generator.request(stan, wall);
        let bytes = self
            .shared
            .spec
            .build(&request)
            .map_err(|e| format!("build: {e}"))?;
        sender
            .send(Frame::new(bytes))
            .await
            .map_err(|e| format!("send: {e}"))?;
        self.seq += 1;
        self.slots.insert(
            stan,
            Slot {
                seq: self.seq,
                sent_at: now,
                expected,
                timed_out: false,
            },
        );
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
        let Some(slot) = stan.and_then(|s| self.slots.remove(&s)) else {
            self.tally.unmatched += 1;
            self.errors.add(format!(
                "{} with STAN {} matches no request in flight",
                msg.mti(),
                msg.get_str(11).unwrap_or("-")
            ));
            return None;
        };
        let outcome = load::check_response(&slot.expected, &msg);
        self.write_record(&slot, &msg);
        if slot.timed_out {
            self.tally.late += 1;
            if let Outcome::Mismatched(m) = outcome {
                self.tally.unmatched += 1;
                self.errors
                    .add(format!("late response fails its check: {m:?}"));
            }
            return None;
        }
        self.pending -= 1;
        self.tally.record(outcome);
        if let Outcome::Mismatched(m) = outcome {
            self.errors
                .add(format!("response does not match its request: {m:?}"));
        }
        let micros = u64::try_from((now - slot.sent_at).as_micros()).unwrap_or(u64::MAX);
        load::record_latency(&mut self.histogram, micros);
        load::record_latency(&mut self.recent, micros);
        None
    }

    fn write_record(&self, slot: &Slot, response: &crate::message::Message) {
        let Some(record) = &self.shared.record else {
            return;
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let line = serde_json::json!({
            "rrn": text(&slot.expected.rrn),
            "stan": text(&slot.expected.stan),
            "terminal": text(&slot.expected.terminal),
            "response_code": response.get_str(39).unwrap_or(""),
            "late": slot.timed_out,
        });
        let mut w = record.lock().unwrap_or_else(|e| e.into_inner());
        let _ = std::io::Write::write_fmt(&mut *w, format_args!("{line}\n"));
    }

    /// Times out requests past their deadline and forgets old time-outs.
    fn expire(&mut self, now: Instant) {
        while let Some(&(deadline, stan, seq)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if let Some(slot) = self.slots.get_mut(&stan)
                && slot.seq == seq
                && !slot.timed_out
            {
                slot.timed_out = true;
                self.pending -= 1;
                self.tally.record(Outcome::TimedOut);
                self.forget
                    .push_back((deadline + self.late_window, stan, seq));
            }
        }
        while let Some(&(at, stan, seq)) = self.forget.front() {
            if at > now && self.forget.len() <= LATE_KEPT_MAX {
                break;
            }
            self.forget.pop_front();
            if self.slots.get(&stan).is_some_and(|s| s.seq == seq) {
                self.slots.remove(&stan);
            }
        }
    }

    fn fail(&mut self, error: String) {
        self.tally.errors += 1;
        self.errors.add(error);
    }

    /// Publishes counts, and latencies every [`LATENCY_PUBLISH_INTERVAL`]
    /// (or at once when `last`).
    fn publish(&mut self, last: bool) {
        if self.tally != self.published {
            self.shared.progress.publish(&self.tally, &self.published);
            self.published = self.tally;
        }
        if self.recent.is_empty() {
            return;
        }
        let now = Instant::now();
        if last || now - self.latency_published_at >= LATENCY_PUBLISH_INTERVAL {
            self.shared.progress.publish_latency(&self.recent);
            self.recent.reset();
            self.latency_published_at = now;
        }
    }
}
