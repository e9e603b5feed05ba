//! `cardswitch replay --capture F --target HOST:PORT`: sends a capture's
//! requests on one link to a switch or issuer, compares every response with
//! the captured one field by field (volatile fields left out), prints a
//! summary, writes a JSON report, and exits non-zero on any difference,
//! missing or extra response, or problem reading the capture.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::CliError;
use super::link_args::LinkArgs;
use crate::capture::diff::parse_volatile;
use crate::capture::read::{InputFormat, read_file};
use crate::capture::replay::{self, Pacing, ReplaySettings, Report};
use crate::message::Spec;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatName {
    /// pcap or pcapng.
    Pcap,
    /// One hex message per line, optional time and direction.
    Hex,
    /// cardswitch JSON lines (`--capture F.jsonl`).
    Jsonl,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The capture file: pcap, pcapng, hex log or cardswitch JSON lines.
    #[arg(long)]
    capture: PathBuf,
    /// The capture's format (default: from its first bytes or its name).
    #[arg(long, value_enum)]
    format: Option<FormatName>,
    /// The link to replay: a link name of a JSON-lines capture, the server
    /// `ip:port` of a pcap (default: the only one in the capture).
    #[arg(long)]
    link: Option<String>,
    /// Where to send the requests.
    #[arg(long)]
    target: String,
    /// The spec of the link (and of the target).
    #[arg(long, default_value = "iso87-ascii")]
    spec: String,
    #[command(flatten)]
    net: LinkArgs,
    /// Pacing: the captured gaps divided by this (1 = as captured).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// As fast as possible, at most --concurrency requests awaiting responses.
    #[arg(long)]
    fast: bool,
    /// Requests awaiting their response at most.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long to wait for each response.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Fields not compared: numbers separated by commas, or `none`.
    #[arg(long, default_value = "7,11,12,13,37,38")]
    volatile: String,
    /// Write the full report (JSON) here.
    #[arg(long)]
    report: Option<PathBuf>,
}

pub fn run(args: &ReplayArgs) -> Result<(), CliError> {
    if !(args.speed > 0.0 && args.speed.is_finite()) {
        return Err(CliError::Input("--speed must be a positive number".into()));
    }
    let volatile =
        parse_volatile(&args.volatile).map_err(|e| CliError::Input(format!("--volatile: {e}")))?;
    let spec = Spec::resolve(&args.spec)?;
    let codec = args.net.codec()?;
    let format = args.format.map(|f| match f {
        FormatName::Pcap => InputFormat::Pcap,
        FormatName::Hex => InputFormat::HexLog,
        FormatName::Jsonl => InputFormat::JsonLines,
    });
    let capture = read_file(&args.capture, format, codec.framing(), args.link.as_deref())
        .map_err(|e| CliError::Input(e.to_string()))?;
    for p in &capture.problems {
        eprintln!("capture: {p}");
    }
    let links = capture.links();
    let link = match (&args.link, links.as_slice()) {
        (Some(l), _) => l.clone(),
        (None, [only]) => only.to_string(),
        (None, []) => String::new(),
        (None, many) => {
            return Err(CliError::Input(format!(
                "the capture holds several links ({}): choose one with --link",
                many.join(", ")
            )));
        }
    };
    let (exchanges, problems) = replay::exchanges(&capture, &link, &spec);
    for p in &problems {
        eprintln!("capture: {p}");
    }
    let settings = ReplaySettings {
        target: args.target.clone(),
        codec,
        tls: args.net.tls_client()?,
        spec: spec.clone(),
        pacing: if args.fast {
            Pacing::Fast
        } else {
            Pacing::Scaled(args.speed)
        },
        concurrency: args.concurrency.max(1),
        response_timeout: Duration::from_millis(args.timeout_ms.max(1)),
        volatile: volatile.clone(),
    };
    let bar = ProgressBar::with_draw_target(
        Some(exchanges.len() as u64),
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} requests, {elapsed} ({eta} left)")
    {
        bar.set_style(style);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Input(e.to_string()))?;
    let ticker = bar.clone();
    let replies = runtime
        .block_on(replay::run(&exchanges, &settings, move || ticker.inc(1)))
        .map_err(|e| CliError::Input(e.to_string()))?;
    bar.finish_and_clear();
    let (summary, differences, missing) = replay::compare(&exchanges, &replies, &spec, &volatile);
    let mut all_problems = capture.problems.clone();
    all_problems.extend(problems);
    let report = Report {
        capture: args.capture.display().to_string(),
        link,
        target: args.target.clone(),
        volatile: volatile.iter().copied().collect(),
        summary,
        differences,
        missing,
        problems: all_problems,
    };
    println!("{}", report.summary.text());
    for d in report.differences.iter().take(20) {
        let fields: Vec<String> = d
            .fields
            .iter()
            .map(|f| {
                format!(
                    "{} {} -> {}",
                    if f.field == "mti" {
                        "MTI".to_string()
                    } else {
                        format!("DE{}", f.field)
                    },
                    f.captured.as_deref().unwrap_or("(absent)"),
                    f.replayed.as_deref().unwrap_or("(absent)")
                )
            })
            .collect();
        println!(
            "exchange {} ({}, {} STAN {}): {}",
            d.exchange,
            d.position,
            d.mti,
            d.stan,
            fields.join("; ")
        );
    }
    if report.differences.len() > 20 {
        println!("... {} more in the report", report.differences.len() - 20);
    }
    if let Some(path) = &args.report {
        let json =
            serde_json::to_string_pretty(&report).map_err(|e| CliError::Input(e.to_string()))?;
        std::fs::write(path, json)
            .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    }
    if report.clean() {
        Ok(())
    } else {
        Err(CliError::Input(format!(
            "replay differs from the capture ({} differing, {} missing, {} extra, {} capture problems)",
            report.summary.differing,
            report.summary.missing,
            report.summary.extra,
            report.problems.len()
        )))
    }
}
