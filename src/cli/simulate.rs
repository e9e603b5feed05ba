//! `cardswitch simulate`: the deterministic network simulator
//! (`sim::network`) over a range of seeds, on all cores; totals, the
//! trace digest, speed, and on a failure the command that replays it.

use std::io::Write;
use std::time::Instant;

use clap::Args;

use super::CliError;
use crate::sim::network::{DEFAULT_STEPS, Failure, Faults, Mutation, Options, Report, run_seed};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// How many seeds to run, from --seed on.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Steps of traffic and faults per seed, before the quiet period.
    #[arg(long, default_value_t = DEFAULT_STEPS)]
    steps: u64,
    /// Print every step (input, actions) of each seed.
    #[arg(long)]
    trace: bool,
    /// Break one rule of the core on purpose: no-reversal-on-timeout,
    /// no-duplicate-content-check, no-durability-wait, no-pin-translation or
    /// no-stand-in-card-check.
    #[arg(long)]
    mutation: Option<String>,
    /// Threads (default: the machine's cores; 1 with --trace).
    #[arg(long)]
    threads: Option<usize>,
}

/// The seeds' reports in seed order, or the first failure (lowest seed).
fn run_all(args: &SimulateArgs, opts: &Options) -> Result<Vec<Report>, Failure> {
    let threads = match (args.trace, args.threads) {
        (true, _) => 1,
        (_, Some(n)) => n.max(1),
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if threads == 1 {
        let mut out = std::io::stdout().lock();
        return (args.seed..args.seed.saturating_add(args.seeds))
            .map(|s| run_seed(s, opts, Some(&mut out)))
            .collect();
    }
    let next = std::sync::atomic::AtomicU64::new(args.seed);
    let end = args.seed.saturating_add(args.seeds);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    let r = run_seed(seed, opts, None);
                    let failed = r.is_err();
                    results.lock().expect("no panics").push((seed, r));
                    if failed {
                        // Stop handing out seeds past a failure.
                        next.fetch_max(end, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().expect("no panics");
    results.sort_by_key(|(s, _)| *s);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Runs the seeds; a broken invariant is an error (non-zero exit), after
/// the seed, the invariant and the replay command on stderr.
pub fn run(args: &SimulateArgs) -> Result<(), CliError> {
    let mutation = match args
        .mutation
        .as_deref()
        .map(|n| (n, Mutation::from_name(n)))
    {
        None => None,
        Some((_, Some(m))) => Some(m),
        Some((name, None)) => {
            let names: Vec<&str> = Mutation::ALL.iter().map(|(n, _)| *n).collect();
            return Err(CliError::Input(format!(
                "unknown mutation {name:?}; one of: {}",
                names.join(", ")
            )));
        }
    };
    let opts = Options {
        steps: args.steps,
        trace: args.trace,
        mutation,
    };
    let started = Instant::now();
    let result = run_all(args, &opts);
    let elapsed = started.elapsed().as_secs_f64();
    match result {
        Ok(reports) => {
            summary(&reports, elapsed);
            Ok(())
        }
        Err(f) => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "FAILED: seed {}, step {}: invariant {}",
                f.seed,
                f.step,
                f.invariant.name()
            );
            let _ = writeln!(err, "  {}", f.detail);
            let mutation = args
                .mutation
                .as_ref()
                .map_or(String::new(), |m| format!(" --mutation {m}"));
            let steps = if args.steps == DEFAULT_STEPS {
                String::new()
            } else {
                format!(" --steps {}", args.steps)
            };
            let _ = writeln!(
                err,
                "  replay: cardswitch simulate --seed {} --seeds 1{steps}{mutation} --trace",
                f.seed
            );
            Err(CliError::Input(format!(
                "the simulator found a failing seed ({})",
                f.seed
            )))
        }
    }
}

fn summary(reports: &[Report], elapsed: f64) {
    let mut faults = Faults::default();
    let (mut steps, mut requests, mut presumed, mut given_up) = (0, 0, 0, 0);
    // The seeds' digests folded in seed order: one figure for the range.
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    for r in reports {
        faults.add(&r.faults);
        steps += r.steps;
        requests += r.requests;
        presumed += r.presumed_delivered;
        given_up += r.given_up;
        digest = (digest ^ r.digest).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let n = reports.len().max(1) as u64;
    println!(
        "seeds {}  steps {steps} ({} per seed)  requests {requests} ({} per seed)",
        reports.len(),
        steps / n,
        requests / n
    );
    let named: Vec<String> = faults
        .named()
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!(
        "faults {} ({} per seed): {}",
        faults.total(),
        faults.total() / n,
        named.join(", ")
    );
    println!(
        "crashes {}  approvals presumed delivered {presumed}  entries given up {given_up}",
        faults.crashes
    );
    let minutes = (elapsed / 60.0).max(1e-9);
    println!(
        "time {elapsed:.2}s  seeds/min {:.0}  requests/min {:.0}",
        reports.len() as f64 / minutes,
        requests as f64 / minutes
    );
    println!("all invariants held");
    println!("digest {digest:016x}");
}
