//! The load generator's run: open the connections (at the connect rate,
//! `sim::connect`), start one terminal task per connection
//! (`sim::terminal`), pace them in open loop, stop them when the run's time
//! or request count is up, and gather their tallies into the report. The
//! command line (`cli::load`) checks its arguments into a [`LoadPlan`] and
//! prints the [`LoadReport`]; this module does the rest, inside the
//! caller's runtime.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connect::ConnectPlan;
use super::load::{self, LatencySummary, LoadProfile, Tally};
use super::load_report::{LoadProgress, LoadReport, Samples};
use super::pacing::Schedule;
use super::record::RecordFile;
use super::reversal::ReversalMti;
use super::terminal::{self, ConnResult, Held, Opened, Reconnect, Shared, drive};
use crate::link::framing::FrameCodec;
use crate::message::Spec;

/// Open loop: how often, at most, the pacer thread wakes the connections. tokio's
/// timer counts whole milliseconds, and sending each millisecond's requests
/// in one burst made the generator, not the host, set the tail latency; a
/// thread sleeping 100 µs spreads them out.
const PACE_STEP: Duration = Duration::from_micros(100);

/// Everything a run needs, checked before the first connection.
pub struct LoadPlan {
    /// host:port, for the report and the error when nothing connects.
    pub target: String,
    pub spec: Arc<Spec>,
    pub codec: FrameCodec,
    pub profile: Arc<LoadProfile>,
    /// Connections to open, one terminal each.
    pub connections: u32,
    /// Requests outstanding per connection.
    pub in_flight: u32,
    /// Open loop: requests per second over all connections.
    pub rate: Option<f64>,
    /// Stop sending after this long (`None`: when `requests` are sent).
    pub duration: Option<Duration>,
    /// Stop after this many requests in total.
    pub requests: Option<u64>,
    /// Time limit of each response.
    pub timeout: Duration,
    /// Seed for PANs, amounts and first STANs (`None`: random).
    pub seed: Option<u64>,
    pub connect: ConnectPlan,
    /// Keep the connections open and idle this long after the run.
    pub hold: Option<Duration>,
    /// Reverse timed-out requests with this MTI (`None`: do not).
    pub reversal: Option<ReversalMti>,
    /// Open a lost connection again, and settle reversals until this long
    /// after the run's duration (`None`: do not reconnect).
    pub reconnect_drain: Option<Duration>,
    /// Where to write every response, time-out and reversal (`sim::record`).
    pub record: Option<PathBuf>,
    /// First RRN sequence number.
    pub rrn_start: u64,
    /// The terminals' PIN entry and MACs (`None`: plain requests).
    pub pin_pad: Option<crate::sim::pin_pad::PinPadPlan>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// No connection opened: there is nothing to run on.
    #[error("{target}: {first}")]
    NoConnection {
        target: String,
        /// The first connect error.
        first: String,
    },
    /// The record file cannot be created.
    #[error("{}: {source}", path.display())]
    Record {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs the load inside the caller's runtime, publishing counts to
/// `progress` while it runs. Mismatched responses are counted in the
/// report, not returned as errors.
pub async fn run(plan: &LoadPlan, progress: Arc<LoadProgress>) -> Result<LoadReport, RunError> {
    let mut samples = Samples::default();
    let (streams, connect_errors) = open_connections(plan, &mut samples).await?;
    let established = streams.len() as u32;
    // Let the writer tasks start before the clock does.
    tokio::task::yield_now().await;
    let shared = Arc::new(shared(plan, established, progress.clone())?);
    let pacer = start_pacer(&shared, plan.rate, established);
    let tasks = spawn_terminals(&shared, streams, plan.seed);
    let timer = plan.duration.map(|d| {
        let stop = shared.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            stop.cancel();
        })
    });
    let mut counts = Tally {
        errors: connect_errors,
        ..Tally::default()
    };
    progress.publish(&counts, &Tally::default());
    let (skipped, held) = gather(tasks, &mut counts, &mut samples).await;
    let elapsed = shared.start.elapsed();
    if let Some(t) = timer {
        t.abort();
    }
    // Every connection is done (a run bounded by `--requests` may end
    // before its time): stop the pacer too.
    shared.stop.cancel();
    if let Some(pacer) = pacer {
        let _ = pacer.join();
    }
    if let Some(record) = &shared.record {
        record.flush();
    }
    hold(held, plan.hold).await;
    let elapsed_s = elapsed.as_secs_f64();
    let histogram = shared.histogram.lock().unwrap_or_else(|e| e.into_inner());
    Ok(LoadReport {
        target: plan.target.clone(),
        connections: established,
        in_flight: plan.in_flight,
        rate_target: plan.rate,
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

/// Opens the connections at the plan's connect rate and starts their
/// readers and writers; the connect errors go to `samples` and are
/// counted. Fails only when none opened.
async fn open_connections(
    plan: &LoadPlan,
    samples: &mut Samples,
) -> Result<(Vec<Opened>, u64), RunError> {
    let connects = Arc::new(plan.connect.clone())
        .connect_all(plan.connections)
        .await;
    let mut streams = Vec::with_capacity(connects.len());
    let mut connect_errors = 0u64;
    for result in connects {
        match result {
            Ok(stream) => streams.push(stream),
            Err(e) => {
                connect_errors += 1;
                samples.add(e);
            }
        }
    }
    if streams.is_empty() {
        let first = samples.list.first().cloned().unwrap_or_default();
        return Err(RunError::NoConnection {
            target: plan.target.clone(),
            first,
        });
    }
    let opened = streams
        .into_iter()
        .map(|s| terminal::open(s, &plan.codec))
        .collect();
    Ok((opened, connect_errors))
}

/// One terminal task per connection, each with its own seed derived from
/// the run's. Returned in connection order.
fn spawn_terminals(
    shared: &Arc<Shared>,
    opened: Vec<Opened>,
    seed: Option<u64>,
) -> Vec<JoinHandle<ConnResult>> {
    let seed = seed.unwrap_or_else(|| fastrand::u64(..));
    // Open loop, the last connection's first request is due first: start
    // the tasks in that order. Results are gathered in index order.
    let mut tasks: Vec<_> = opened
        .into_iter()
        .enumerate()
        .rev()
        .map(|(i, conn)| {
            let conn_seed = seed.wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            tokio::spawn(drive(shared.clone(), i as u32, conn, conn_seed))
        })
        .collect();
    tasks.reverse();
    tasks
}

/// Waits for every terminal and adds up what they did: their tallies into
/// `counts`, their error samples into `samples`. Returns the requests
/// skipped and the connections kept open for the hold.
async fn gather(
    tasks: Vec<JoinHandle<ConnResult>>,
    counts: &mut Tally,
    samples: &mut Samples,
) -> (u64, Vec<Held>) {
    let mut skipped = 0;
    let mut held = Vec::new();
    for task in tasks {
        match task.await {
            Ok(ConnResult {
                tally,
                skipped: s,
                errors,
                held: h,
            }) => {
                counts.add(&tally);
                skipped += s;
                held.extend(h);
                for e in errors.list {
                    samples.add(e);
                }
            }
            Err(e) => {
                counts.errors += 1;
                samples.add(format!("connection task: {e}"));
            }
        }
    }
    (skipped, held)
}

/// What the connections share, once `established` are open (the run's
/// clock starts here).
fn shared(
    plan: &LoadPlan,
    established: u32,
    progress: Arc<LoadProgress>,
) -> Result<Shared, RunError> {
    let start = Instant::now();
    let record = match &plan.record {
        Some(path) => Some(RecordFile::create(path).map_err(|source| RunError::Record {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    Ok(Shared {
        spec: plan.spec.clone(),
        codec: plan.codec.clone(),
        profile: plan.profile.clone(),
        in_flight: plan.in_flight as usize,
        timeout: plan.timeout,
        rate: plan.rate,
        connections: established.max(1),
        pace: tokio::sync::Notify::new(),
        requests_max: plan.requests,
        claimed: AtomicU64::new(0),
        stop: CancellationToken::new(),
        start,
        progress,
        record,
        rrn_start: plan.rrn_start,
        pin_pad: plan.pin_pad.clone(),
        reversal: plan.reversal,
        histogram: Mutex::new(load::latency_histogram()),
        hold: plan.hold.is_some(),
        reconnect: plan.reconnect_drain.map(|drain| Reconnect {
            plan: Arc::new(plan.connect.clone()),
            until: start + plan.duration.unwrap_or_default() + drain,
        }),
    })
}

/// Open loop at intervals too short for each connection's own timer: a
/// thread that wakes them all, twice per request interval, within
/// [`PACE_STEP`] and tokio's own 1 ms.
fn start_pacer(
    shared: &Arc<Shared>,
    rate: Option<f64>,
    connections: u32,
) -> Option<std::thread::JoinHandle<()>> {
    let rate = rate?;
    if Schedule::for_connection(rate, 0, connections).own_timer() {
        return None;
    }
    let step = Duration::try_from_secs_f64(0.5 / rate).map_or(Duration::from_millis(1), |d| {
        d.clamp(PACE_STEP, Duration::from_millis(1))
    });
    let shared = shared.clone();
    Some(std::thread::spawn(move || {
        while !shared.stop.is_cancelled() {
            std::thread::sleep(step);
            shared.pace.notify_waiters();
        }
    }))
}

/// Keeps the connections open and idle for `--hold-s`, then closes them.
async fn hold<T>(held: Vec<T>, hold: Option<Duration>) {
    let Some(d) = hold else {
        return;
    };
    eprintln!(
        "load: run done; holding {} connections idle for {:.1} s",
        held.len(),
        d.as_secs_f64()
    );
    tokio::time::sleep(d).await;
    drop(held);
}
