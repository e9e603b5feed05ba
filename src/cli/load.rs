//! `cardswitch load`: a load generator acting as many terminals. Each
//! connection is one terminal (its own DE41) run by one task; responses are
//! matched to requests by STAN within the connection and checked against
//! them (`sim::load::check_response`). Closed loop by default (each
//! connection keeps `--in-flight` requests outstanding); with `--rate`,
//! open loop, each connection at its own steady interval, still bounded by
//! `--in-flight`. Connections open at `--connect-rate` per second, each
//! within a connect and a TLS-handshake time-out (`sim::connect`); one
//! connection's work is `sim::terminal`, timed-out requests reversed
//! there when `--reverse-on-timeout` is on (`sim::reversal`).
//!
//! This file is the command line (its arguments, checked into a
//! `sim::driver::LoadPlan`, and the printed report); the run itself is
//! `sim::driver`.
//!
//! One current-thread runtime: on these 2-core machines one worker per
//! process does best (cross-thread wake-ups cost more than they give), and
//! the other core is left to the host under test.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};

use super::CliError;
use super::link_args::LinkArgs;
use crate::link::tls::TlsClient;
use crate::message::{Mti, Spec};
use crate::sim::connect::{
    CONNECT_TIMEOUT_MS_DEFAULT, ConnectPlan, HANDSHAKE_TIMEOUT_MS_DEFAULT, TIMEOUT_MS_MAX,
};
use crate::sim::driver::{self, LoadPlan, RunError};
use crate::sim::load::{BinMix, CONNECTIONS_MAX, Layout, LoadProfile, RequestGenerator};
pub use crate::sim::load_report::{LoadProgress, LoadReport};
use crate::sim::pacing::{self, CONNECT_RATE_DEFAULT};
use crate::sim::reversal::ReversalMti;
pub use crate::sim::terminal::IN_FLIGHT_MAX;

/// Longest run.
pub(crate) const DURATION_S_MAX: f64 = 86_400.0;
/// Run length when neither `--duration-s` nor `--requests` is given.
const DURATION_S_DEFAULT: f64 = 10.0;
/// Longest `--hold-s`.
const HOLD_S_MAX: f64 = 3_600.0;

/// `--reverse-on-timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// How the terminals connect, and what they do when a request times out.
#[derive(Debug, Clone, Args)]
pub struct TerminalArgs {
    /// Time limit of each TCP connect, in milliseconds.
    #[arg(long, default_value_t = CONNECT_TIMEOUT_MS_DEFAULT)]
    pub connect_timeout_ms: u64,
    /// Time limit of each TLS handshake, in milliseconds.
    #[arg(long, default_value_t = HANDSHAKE_TIMEOUT_MS_DEFAULT)]
    pub handshake_timeout_ms: u64,
    /// Connections opened per second (a ramp: thousands at once overflow
    /// a host's accept backlog). The run starts when all are open.
    #[arg(long, default_value_t = CONNECT_RATE_DEFAULT)]
    pub connect_rate: f64,
    /// Send a reversal for each request that times out, repeated (0401 or
    /// 0421) up to 3 times while unanswered, each waiting --timeout-ms; the
    /// run ends when they are settled (default: on with --record, else off).
    #[arg(long, value_enum)]
    pub reverse_on_timeout: Option<OnOff>,
    /// The reversal's MTI: 0420 advice or 0400 request (the spec's version
    /// digit applies).
    #[arg(long, default_value = "0420", value_parser = ["0400", "0420"])]
    pub reversal_mti: String,
    /// After the run, keep the connections open and idle this many seconds
    /// (to measure a host's memory per connection); a line on stderr says
    /// when the hold starts.
    #[arg(long)]
    pub hold_s: Option<f64>,
    /// Open a connection again when the host closes it (backoff 50 ms to
    /// 1 s), as terminals do when their host restarts: requests in flight
    /// on it are timed out and reversed on the new one, and reversals are
    /// repeated until answered, until the run's duration plus
    /// --reversal-drain-s.
    #[arg(long)]
    pub reconnect: bool,
    /// With --reconnect: how long after the run's duration its reversals
    /// may still be settled, in seconds.
    #[arg(long, default_value_t = 30.0, value_parser = drain_seconds)]
    pub reversal_drain_s: f64,
}

/// 0 to 3600 seconds.
fn drain_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.0..=3600.0).contains(&s) => Ok(s),
        _ => Err(format!("{text:?} is not 0 to 3600 seconds")),
    }
}

impl Default for TerminalArgs {
    fn default() -> TerminalArgs {
        TerminalArgs {
            connect_timeout_ms: CONNECT_TIMEOUT_MS_DEFAULT,
            handshake_timeout_ms: HANDSHAKE_TIMEOUT_MS_DEFAULT,
            connect_rate: CONNECT_RATE_DEFAULT,
            reverse_on_timeout: None,
            reversal_mti: "0420".into(),
            hold_s: None,
            reconnect: false,
            reversal_drain_s: 30.0,
        }
    }
}

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
    /// Write every response, time-out and reversal as a JSON line (RRN,
    /// STAN, terminal, DE39; no card data; see `sim::record`), for tests
    /// that check end to end.
    #[arg(long)]
    pub record: Option<std::path::PathBuf>,
    /// First RRN sequence number, so that runs against the same host use
    /// distinct RRNs.
    #[arg(long, default_value_t = 0)]
    pub rrn_start: u64,
    #[command(flatten)]
    pub terminal: TerminalArgs,
    #[command(flatten)]
    pub pin_pad: super::pin_pad_args::PinPadArgs,
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
    let plan = plan(args)?;
    driver::run(&plan, progress).await.map_err(|e| match e {
        RunError::Record { path, source } => {
            CliError::Input(format!("--record {}: {source}", path.display()))
        }
        other => CliError::Input(other.to_string()),
    })
}

/// Checks the arguments into the run's plan, before the first connection.
fn plan(args: &LoadArgs) -> Result<LoadPlan, CliError> {
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
    let (sample, _) = RequestGenerator::new(profile.clone(), 0, 0).request(1, SystemTime::now());
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
    let terminals = terminal_plan(args, tls)?;
    Ok(LoadPlan {
        target: args.target.clone(),
        spec,
        codec,
        profile,
        connections: args.connections,
        in_flight: args.in_flight,
        rate: args.rate,
        duration: duration_s.map(Duration::from_secs_f64),
        requests: args.requests,
        timeout: Duration::from_millis(args.timeout_ms),
        seed: args.seed,
        connect: terminals.connect,
        hold: terminals.hold,
        reversal: terminals.reversal,
        reconnect_drain: terminals.reconnect_drain,
        record: args.record.clone(),
        rrn_start: args.rrn_start,
        pin_pad: args.pin_pad.plan()?,
    })
}

/// What the terminal options decide.
struct TerminalPlan {
    connect: ConnectPlan,
    hold: Option<Duration>,
    reversal: Option<ReversalMti>,
    reconnect_drain: Option<Duration>,
}

/// The connect plan, the hold, the reversal MTI and the reconnect drain
/// from the terminal options.
fn terminal_plan(args: &LoadArgs, tls: Option<TlsClient>) -> Result<TerminalPlan, CliError> {
    let t = &args.terminal;
    for (name, ms) in [
        ("--connect-timeout-ms", t.connect_timeout_ms),
        ("--handshake-timeout-ms", t.handshake_timeout_ms),
    ] {
        if !(1..=TIMEOUT_MS_MAX).contains(&ms) {
            return Err(CliError::Input(format!(
                "{name} must be from 1 to {TIMEOUT_MS_MAX}"
            )));
        }
    }
    let rate = pacing::check_connect_rate(t.connect_rate)
        .map_err(|e| CliError::Input(format!("--connect-rate: {e}")))?;
    let hold = match t.hold_s {
        Some(h) if !(h > 0.0 && h <= HOLD_S_MAX) => {
            return Err(CliError::Input(format!(
                "--hold-s must be above 0 and at most {HOLD_S_MAX}"
            )));
        }
        h => h.map(Duration::from_secs_f64),
    };
    let kind: ReversalMti = t
        .reversal_mti
        .parse()
        .map_err(|e| CliError::Input(format!("--reversal-mti: {e}")))?;
    // A terminal that records what it kept reverses what it did not.
    let on = t.reverse_on_timeout.unwrap_or(if args.record.is_some() {
        OnOff::On
    } else {
        OnOff::Off
    });
    let connect = ConnectPlan {
        target: args.target.clone(),
        tls,
        connect_timeout: Duration::from_millis(t.connect_timeout_ms),
        handshake_timeout: Duration::from_millis(t.handshake_timeout_ms),
        rate,
    };
    // Checked here too: a `LoadArgs` built in code skips clap's parser.
    let reconnect_drain = if t.reconnect {
        let drain = Duration::try_from_secs_f64(t.reversal_drain_s)
            .ok()
            .filter(|d| *d <= Duration::from_secs(3600));
        Some(drain.ok_or_else(|| CliError::Input("--reversal-drain-s must be 0 to 3600".into()))?)
    } else {
        None
    };
    Ok(TerminalPlan {
        connect,
        hold,
        reversal: (on == OnOff::On).then_some(kind),
        reconnect_drain,
    })
}
