//! `cardswitch demo`: the switch's main job in one command. Starts two
//! simulated issuers (a 1987 ASCII host and a 1993 host, different BIN
//! ranges), the switch in front of them on the embedded configuration
//! below, and simulated acquirer traffic from a binary (BCD) terminal
//! network; shows live figures, and stops cleanly on Ctrl-C or after
//! `--duration-s`. Every process is this same binary; logs go to a
//! temporary directory whose path is printed.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::capture_args::CaptureArgs;
use super::link_args::{FramingName, LinkArgs};
use super::load::{LoadArgs, LoadProgress, run_load_observed};
use super::{CliError, observe};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    duration_s: Option<f64>,
    /// Simulated terminal connections.
    #[arg(long, default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::sim::load::CONNECTIONS_MAX)))]
    connections: u32,
    /// Requests outstanding per connection.
    #[arg(long, default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(super::load::IN_FLIGHT_MAX)))]
    in_flight: u32,
    /// Target rate in requests/s (default: as fast as the closed loop goes).
    #[arg(long)]
    rate: Option<f64>,
    /// With the security module: an hsm-sim, DUKPT terminals that sign
    /// their requests, PIN blocks translated to each issuer's zone key,
    /// MACs checked and made (see docs/security.md).
    #[arg(long)]
    hsm: bool,
    /// The switch writes what it sends and receives on every link here.
    #[command(flatten)]
    capture: CaptureArgs,
}

/// The embedded switch configuration; ISSUER_A / ISSUER_B are filled in.
const DEMO_CONFIG: &str = r#"
[switch]
institution_id = "99000000001"
duplicate_window_s = 300
[switch.saf]
retry_min_ms = 200
retry_max_ms = 5000
HSM

[[acquirer]]
name = "terminals"
listen = "127.0.0.1:0"
spec = "iso87-binary"
framing = { length = "binary2", tpdu = true }
in_flight_max = 256
ACQUIRER_SECURITY

[[issuer]]
name = "issuer-a"
addresses = ["ISSUER_A"]
spec = "iso87-ascii"
framing = { length = "binary2" }
connections = 2
timeout_ms = 400
echo_interval_s = 5
stand_in = { per_transaction_max = 10000, per_card_daily_count = 5, per_card_daily_amount = 30000 }
ISSUER_A_SECURITY

[[issuer]]
name = "issuer-b"
addresses = ["ISSUER_B"]
spec = "iso93-ascii"
framing = { length = "ascii4" }
connections = 2
timeout_ms = 400
echo_interval_s = 5
ISSUER_B_SECURITY

[[route]]
bins = ["476173"]
issuer = "issuer-a"

[[route]]
bin_range = { from = "545400", to = "545499" }
issuer = "issuer-b"

[journal]
path = "journal.db"
key_file = "journal-keys.toml"
"#;

/// Child processes, stopped with SIGTERM (then killed) when dropped.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for c in &mut self.0 {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `cardswitch ARGS`, logs to `log`, and returns the address it
/// prints ("... listening on ADDR").
fn spawn(children: &mut Children, args: &[&str], log: &Path) -> Result<String, CliError> {
    let exe = std::env::current_exe().map_err(|e| CliError::Input(e.to_string()))?;
    let log_file = std::fs::File::create(log)
        .map_err(|e| CliError::Input(format!("{}: {e}", log.display())))?;
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .env("RUST_LOG", "warn")
        .spawn()
        .map_err(|e| CliError::Input(format!("cannot start {}: {e}", args[0])))?;
    let stdout = child.stdout.take();
    children.0.push(child);
    let mut line = String::new();
    if let Some(out) = stdout {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    line.split("listening on ")
        .nth(1)
        .map(|a| a.trim().to_string())
        .ok_or_else(|| CliError::Input(format!("{} did not start; see {}", args[0], log.display())))
}

/// The two simulated issuers (with `secure`, reading PINs under their
/// ZPKs, issuer-b checking and signing MACs): their addresses.
fn start_issuers(
    children: &mut Children,
    dir: &Path,
    secure: bool,
) -> Result<(String, String), CliError> {
    let with = |mut base: Vec<&'static str>, b: bool| {
        if secure {
            base.extend(super::demo_security::issuer_args(b));
        }
        base
    };
    let a_args = with(
        vec![
            "issuer-sim",
            "--listen",
            "127.0.0.1:0",
            "--spec",
            "iso87-ascii",
            "--framing",
            "binary2",
            "--approve-limit",
            "30000",
            "--jitter-ms",
            "2",
        ],
        false,
    );
    let a = spawn(children, &a_args, &dir.join("issuer-a.log"))?;
    let b_args = with(
        vec![
            "issuer-sim",
            "--listen",
            "127.0.0.1:0",
            "--spec",
            "iso93-ascii",
            "--framing",
            "ascii4",
            "--approve-limit",
            "20000",
            "--drop-rate",
            "0.001",
        ],
        true,
    );
    let b = spawn(children, &b_args, &dir.join("issuer-b.log"))?;
    Ok((a, b))
}

/// The embedded configuration for issuers at `a` and `b`, with the
/// security tables when the demo runs with an HSM.
fn config_text(a: &str, b: &str, secure: Option<&super::demo_security::SecureTables>) -> String {
    let table = |f: fn(&super::demo_security::SecureTables) -> &str| secure.map_or("", f);
    DEMO_CONFIG
        .replace("ISSUER_A_SECURITY", table(|t| &t.issuer_a))
        .replace("ISSUER_B_SECURITY", table(|t| &t.issuer_b))
        .replace("ACQUIRER_SECURITY", table(|t| &t.acquirer))
        .replace("HSM\n", table(|t| &t.hsm))
        .replace("ISSUER_A", a)
        .replace("ISSUER_B", b)
}

/// A new directory, its owner's only, for the demo's logs, journal and
/// journal key: made, never reused (one left by a run with the same
/// process id, or put there by another account, is not written into).
fn make_demo_dir() -> Result<std::path::PathBuf, CliError> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!("cardswitch-demo-{}-{stamp:09}", std::process::id());
    let dir = std::env::temp_dir().join(name);
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&dir)
        .map_err(|e| CliError::Input(format!("{}: {e}", dir.display())))?;
    Ok(dir)
}

pub fn run(args: &DemoArgs) -> Result<(), CliError> {
    observe::init_logging("warn");
    let dir = make_demo_dir()?;
    let mut children = Children(Vec::new());
    let (a, b) = start_issuers(&mut children, &dir, args.hsm)?;
    let secure = if args.hsm {
        let hsm_args = ["hsm-sim", "--listen", "127.0.0.1:0"];
        let hsm = spawn(&mut children, &hsm_args, &dir.join("hsm-sim.log"))?;
        Some(super::demo_security::tables(&hsm)?)
    } else {
        None
    };
    // A fresh key for the demo's journal (kept beside it in the demo's
    // directory; a real deployment keeps keys away from the database).
    let keys =
        crate::journal::crypto::Keyring::generate_file_text("demo").map_err(CliError::Input)?;
    crate::private_file::create_private(&dir.join("journal-keys.toml"))
        .and_then(|mut file| std::io::Write::write_all(&mut file, keys.as_bytes()))
        .map_err(|e| CliError::Input(e.to_string()))?;
    let config = dir.join("switch.toml");
    std::fs::write(&config, config_text(&a, &b, secure.as_ref()))
        .map_err(|e| CliError::Input(e.to_string()))?;
    let config_arg = config.display().to_string();
    let capture_args = args.capture.to_args();
    if args.capture.capture_unmasked {
        eprintln!("WARNING: --capture-unmasked: the switch's capture will hold card data in clear");
    }
    let mut switch_args = vec!["run", "--config", &config_arg];
    switch_args.extend(capture_args.iter().map(String::as_str));
    let switch = spawn(&mut children, &switch_args, &dir.join("switch.log"))?;
    println!(
        "cardswitch demo: switch on {switch} (iso87-binary + TPDU), issuer-a on {a} (iso87-ascii, BIN 476173), issuer-b on {b} (iso93-ascii, BINs 545400-545499)"
    );
    if args.hsm {
        println!(
            "with hsm-sim: DUKPT terminals sign their requests, PIN blocks translated to each issuer's ZPK, MACs on the terminal link and issuer-b's"
        );
    }
    println!(
        "logs, configuration and journal in {}; Ctrl-C stops; afterwards: cardswitch journal search --config {}",
        dir.display(),
        config.display()
    );

    let load = LoadArgs {
        target: switch,
        spec: "iso87-binary".into(),
        link: LinkArgs {
            framing: FramingName::Binary2,
            tpdu: true,
            static_header: None,
            frame_bytes_max: crate::link::framing::FRAME_BYTES_MAX_DEFAULT,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            tls_server_name: "localhost".into(),
        },
        connections: args.connections,
        in_flight: args.in_flight,
        rate: args.rate,
        // Without one, until Ctrl-C (or the longest run the generator takes).
        duration_s: Some(args.duration_s.unwrap_or(super::load::DURATION_S_MAX)),
        requests: None,
        bins: "476173:3,545400:2".into(),
        amount_min: 100,
        amount_max: 40_000,
        mti: "0100".into(),
        timeout_ms: 5000,
        acquirer_id: "400001".into(),
        currency: "978".into(),
        seed: None,
        json: false,
        record: None,
        rrn_start: 0,
        terminal: Default::default(),
        pin_pad: if args.hsm {
            super::demo_security::pin_pads()
        } else {
            Default::default()
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Input(e.to_string()))?;
    let report = runtime.block_on(async {
        let progress = Arc::new(LoadProgress::default());
        let run = run_load_observed(&load, progress.clone());
        tokio::pin!(run);
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        let started = Instant::now();
        let mut last = progress.snapshot();
        let live = std::io::stdout().is_terminal();
        println!(
            "{:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
            "time", "req/s", "approved", "declined", "timed out", "p50 µs", "p99 µs"
        );
        loop {
            tokio::select! {
                r = &mut run => return r.map(Some),
                _ = observe::termination() => {
                    return Ok(None);
                }
                _ = ticker.tick() => {
                    let now = progress.snapshot();
                    let (p50, p99) = progress.take_window_latency();
                    let line = format!(
                        "{:>5.0}s {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
                        started.elapsed().as_secs_f64(),
                        now.sent - last.sent,
                        now.approved,
                        now.declined,
                        now.timed_out,
                        p50,
                        p99,
                    );
                    if live {
                        print!("\r{line}");
                    } else {
                        println!("{line}");
                    }
                    let _ = std::io::stdout().flush();
                    last = now;
                }
            }
        }
    });
    println!();
    match report? {
        Some(report) => println!("{}", report.summary()),
        None => println!("stopped by Ctrl-C"),
    }
    println!("logs: {}", dir.display());
    drop(children);
    Ok(())
}
