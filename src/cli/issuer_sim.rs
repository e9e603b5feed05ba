//! `cardswitch issuer-sim`: a simulated issuer host. It listens with any
//! framing, spec and TLS setting, answers by rules (see `sim::issuer`),
//! can delay or drop answers, and records what it approved as JSON lines
//! (no card data: STAN, RRN, terminal, amount, code) for end-to-end checks.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use clap::Args;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::capture_args::{self, CaptureArgs};
use super::issuer_sim_key::{NewKey, print_answer};
use super::link_args::LinkArgs;
use super::{CliError, observe};
use crate::hsm::soft::TdesKey;
use crate::link::connection::ReadLimits;
use crate::link::framing::Frame;
use crate::link::listener::{self, Accepted, ListenerSettings};
use crate::message::mti::MessageClass;
use crate::message::response_codes::to_action_code;
use crate::message::time::utc_date;
use crate::message::{Message, Spec};
use crate::node::parse_or_reject;
use crate::sim::issuer::{IssuerRules, respond};
use crate::sim::issuer_keys::IssuerKeys;

/// Approvals waiting for the recorder before answers wait for it.
const RECORD_QUEUE_MAX: usize = 4096;
/// Delays, time-outs and drains in ms stop at ten minutes (an answer later
/// than that is a lost one) and stay far inside `Instant` arithmetic.
const SIM_MS_MAX: u64 = 600_000;
/// Connections at most: each is a task and its buffers.
const SIM_CONNECTIONS_MAX: u64 = 100_000;

#[derive(Debug, Args)]
pub struct IssuerSimArgs {
    /// Address to listen on (port 0 picks one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: String,
    /// Spec name or file.
    #[arg(long, default_value = "iso87-ascii")]
    spec: String,
    #[command(flatten)]
    link: LinkArgs,
    #[command(flatten)]
    capture: CaptureArgs,
    /// Approve up to this amount (minor units); above it, 51.
    #[arg(long, default_value_t = 100_000)]
    approve_limit: u64,
    /// Do not decline Luhn failures with 14.
    #[arg(long)]
    no_luhn: bool,
    /// Do not decline expired cards with 54.
    #[arg(long)]
    no_expiry: bool,
    /// Refuse key exchanges (answer 12).
    #[arg(long)]
    refuse_key_exchange: bool,
    /// Fixed delay before each answer, in milliseconds.
    #[arg(long, default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=SIM_MS_MAX))]
    delay_ms: u64,
    /// Random extra delay up to this many milliseconds.
    #[arg(long, default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=SIM_MS_MAX))]
    jitter_ms: u64,
    /// Fraction of requests decided (and recorded) but never answered.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Fraction of answers sent twice (a misbehaving issuer, for tests).
    #[arg(long, default_value_t = 0.0)]
    answer_twice_rate: f64,
    /// Fraction of answers with a wrong STAN (a misbehaving issuer, for tests).
    #[arg(long, default_value_t = 0.0)]
    wrong_stan_rate: f64,
    /// Read PIN blocks with this clear test ZPK (hex) and decline 55 when
    /// they do not hold --expect-pin.
    #[arg(long)]
    pin_key: Option<String>,
    /// The PIN the cards have (with --pin-key).
    #[arg(long, default_value = "1234")]
    expect_pin: String,
    /// Verify requests' MACs with this clear test MAC key (hex), declining
    /// 63, and sign the answers.
    #[arg(long)]
    mac_key: Option<String>,
    /// On each connection, send this new clear test ZPK (hex) under
    /// --zone-master-key in an 0800 (DE70 161), and print the answer's DE39
    /// ("new key answered 00").
    #[arg(long)]
    send_new_key: Option<String>,
    /// The clear test zone master key (hex) --send-new-key sends under.
    #[arg(long)]
    zone_master_key: Option<String>,
    /// Append approvals and acknowledged reversals/advices here (JSON lines).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Serve Prometheus metrics on this address.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Close a connection idle for this many seconds.
    #[arg(long, default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle_timeout_s: u64,
    /// Close a connection whose started frame is not complete within this.
    #[arg(long, default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..=SIM_MS_MAX))]
    frame_timeout_ms: u64,
    /// On SIGTERM, how long in-flight answers may take before connections close.
    #[arg(long, default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(0..=SIM_MS_MAX))]
    drain_ms: u64,
    /// Most simultaneous connections.
    #[arg(long, default_value_t = 1024,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=SIM_CONNECTIONS_MAX))]
    connections_max: usize,
    /// Listen backlog: connections the kernel queues before they are
    /// accepted (capped by net.core.somaxconn), for reconnect storms.
    #[arg(long, default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=65_535))]
    backlog: u32,
}

struct Sim {
    spec: Arc<Spec>,
    rules: IssuerRules,
    delay: Duration,
    jitter_ms: u64,
    drop_rate: f64,
    answer_twice_rate: f64,
    wrong_stan_rate: f64,
    auth_counter: AtomicU64,
    record: Option<mpsc::Sender<String>>,
    keys: IssuerKeys,
    new_key: Option<NewKey>,
}

pub fn run(args: &IssuerSimArgs) -> Result<(), CliError> {
    observe::init_logging("info");
    if !(0.0..=1.0).contains(&args.drop_rate) {
        return Err(CliError::Input(
            "--drop-rate must be between 0 and 1".into(),
        ));
    }
    let spec = Spec::resolve(&args.spec)?;
    let codec = args.link.codec()?;
    let tls = args.link.tls_server()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Input(e.to_string()))?;
    runtime.block_on(async {
        if let Some(addr) = args.metrics {
            observe::serve_metrics(addr)?;
        }
        let listener = bind(&args.listen, args.backlog)
            .await
            .map_err(|e| CliError::Input(format!("listen {}: {e}", args.listen)))?;
        let local = listener
            .local_addr()
            .map_err(|e| CliError::Input(e.to_string()))?;
        let capture = args.capture.start(Default::default(), Some(spec.clone()))?;
        println!("issuer-sim listening on {local}");
        let _ = std::io::stdout().flush();
        let (record_tx, recorder) = match &args.record {
            Some(path) => {
                let (tx, rx) = mpsc::channel(RECORD_QUEUE_MAX);
                (
                    Some(tx),
                    Some(tokio::spawn(write_records(path.clone(), rx))),
                )
            }
            None => (None, None),
        };
        let sim = Arc::new(Sim {
            spec,
            rules: IssuerRules {
                approve_limit: args.approve_limit,
                check_luhn: !args.no_luhn,
                check_expiry: !args.no_expiry,
                refuse_key_exchange: args.refuse_key_exchange,
            },
            delay: Duration::from_millis(args.delay_ms),
            jitter_ms: args.jitter_ms,
            drop_rate: args.drop_rate,
            answer_twice_rate: args.answer_twice_rate,
            wrong_stan_rate: args.wrong_stan_rate,
            auth_counter: AtomicU64::new(1),
            record: record_tx,
            keys: issuer_keys(args)?,
            new_key: NewKey::from_args(
                args.send_new_key.as_deref(),
                args.zone_master_key.as_deref(),
            )?,
        });
        let shutdown = CancellationToken::new();
        {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                observe::termination().await;
                info!("terminating: no new connections, draining");
                shutdown.cancel();
            });
        }
        let settings = ListenerSettings {
            name: "issuer-sim".into(),
            codec,
            tls,
            connections_max: args.connections_max,
            drain_deadline: Duration::from_millis(args.drain_ms),
            limits: Default::default(),
            read_limits: ReadLimits {
                idle: Some(Duration::from_secs(args.idle_timeout_s)),
                frame: Some(Duration::from_millis(args.frame_timeout_ms)),
            },
        };
        let handler_sim = sim.clone();
        listener::serve(listener, settings, shutdown, move |conn| {
            serve_connection(handler_sim.clone(), conn)
        })
        .await;
        drop(sim);
        if let Some(r) = recorder {
            let _ = r.await;
        }
        capture_args::finish(capture)
    })
}

/// Listens on the first address `listen` resolves to, with `backlog`.
/// The test keys given on the command line (refused without repeating
/// them).
fn issuer_keys(args: &IssuerSimArgs) -> Result<IssuerKeys, CliError> {
    let key = |text: &Option<String>, name: &str| {
        text.as_deref()
            .map(|t| {
                TdesKey::from_hex(t)
                    .map_err(|_| CliError::Input(format!("{name}: 16, 32 or 48 hex digits")))
            })
            .transpose()
    };
    Ok(IssuerKeys {
        zpk: key(&args.pin_key, "--pin-key")?,
        format: None,
        pin: args.expect_pin.clone(),
        mac_key: key(&args.mac_key, "--mac-key")?,
    })
}

async fn bind(listen: &str, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let addr = tokio::net::lookup_host(listen)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other("resolves to no address"))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As TcpListener::bind does: a restarted simulator rebinds at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// (year, month) of the UTC date, for expiry checks.
fn year_month(now: SystemTime) -> (i64, u32) {
    let (y, m, _) = utc_date(now);
    (y, m)
}

async fn serve_connection(sim: Arc<Sim>, mut conn: Accepted) {
    if let Some(new_key) = &sim.new_key {
        let stan = sim.auth_counter.fetch_add(1, Ordering::Relaxed) as u32 % 999_999 + 1;
        match new_key.request(&sim.spec, stan).map(|m| sim.spec.build(&m)) {
            Some(Ok(bytes)) => {
                let _ = conn.sender.send(Frame::new(bytes)).await;
            }
            Some(Err(e)) => warn!(error = %e, "cannot build the new key's 0800"),
            None => warn!("cannot make the new key's 0800"),
        }
    }
    loop {
        let Some(frame) = conn.next_frame("issuer-sim").await else {
            break;
        };
        let Some(request) = parse_or_reject(&sim.spec, &frame, &conn.sender, "issuer-sim").await
        else {
            continue;
        };
        if request.mti().class() == MessageClass::NetworkManagement && request.mti().is_response() {
            print_answer(&request);
            continue;
        }
        let span =
            info_span!("exchange", mti = %request.mti(), stan = request.get_str(11).unwrap_or("-"));
        let _enter = span.enter();
        let n = sim.auth_counter.fetch_add(1, Ordering::Relaxed);
        let auth_code = format!("{:06}", n % 1_000_000);
        let Some((mut response, decision)) = respond(
            &sim.rules,
            &request,
            year_month(SystemTime::now()),
            &auth_code,
        ) else {
            continue;
        };
        let decline = decision
            .as_ref()
            .and_then(|_| sim.keys.decline(&sim.spec, &request));
        let decision = match decline {
            Some(code) => {
                response.remove(38);
                let code = if request.mti().version() == 0 {
                    code
                } else {
                    to_action_code(code)
                };
                let _ = response.set_str(39, code);
                None
            }
            None => decision,
        };
        if sim.wrong_stan_rate > 0.0 && fastrand::f64() < sim.wrong_stan_rate {
            let stan = request.get_u64(11).unwrap_or(0);
            let _ = response.set_num(11, (stan + 500_000) % 1_000_000, 6);
        }
        let bytes = match sim.keys.build(&sim.spec, &mut response) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "cannot build response");
                continue;
            }
        };
        if let Some(tx) = &sim.record {
            let network = request.mti().class() == MessageClass::NetworkManagement;
            let acknowledged = decision.is_none() && !network;
            if decision.is_some_and(|d| d.approved) || acknowledged {
                let _ = tx.send(record_line(&request, &response)).await;
            }
        }
        // A dropped answer models a response lost after the issuer decided
        // (it is recorded): the outcome is unknown to the sender.
        if sim.drop_rate > 0.0 && fastrand::f64() < sim.drop_rate {
            info!("answer dropped by rule");
            continue;
        }
        let reply = Frame {
            tpdu: frame.tpdu.map(|t| t.reply()),
            message: bytes,
        };
        if sim.answer_twice_rate > 0.0 && fastrand::f64() < sim.answer_twice_rate {
            let _ = conn.sender.send(reply.clone()).await;
        }
        let delay = sim.delay
            + Duration::from_millis(if sim.jitter_ms > 0 {
                fastrand::u64(0..=sim.jitter_ms)
            } else {
                0
            });
        if delay.is_zero() {
            if conn.sender.send(reply).await.is_err() {
                break;
            }
        } else {
            let sender = conn.sender.clone();
            tokio::spawn(
                async move {
                    tokio::time::sleep(delay).await;
                    let _ = sender.send(reply).await;
                }
                .instrument(span.clone()),
            );
        }
    }
}

/// One recorded exchange, without card data.
fn record_line(request: &Message, response: &Message) -> String {
    let get = |m: &Message, n: u16| m.get_str(n).unwrap_or("").to_string();
    serde_json::json!({
        "mti": request.mti().to_string(),
        "stan": get(request, 11),
        "rrn": get(request, 37),
        "terminal": get(request, 41),
        "acquirer": get(request, 32),
        "amount": get(request, 4),
        "response_code": get(response, 39),
        "auth_code": get(response, 38),
    })
    .to_string()
}

async fn write_records(path: PathBuf, mut rx: mpsc::Receiver<String>) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path);
    let mut file = match file {
        Ok(f) => std::io::BufWriter::new(f),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot open record file");
            return;
        }
    };
    while let Some(line) = rx.recv().await {
        let _ = writeln!(file, "{line}");
        if rx.is_empty() {
            let _ = file.flush();
        }
    }
    let _ = file.flush();
}
