//! Starts a switch from its configuration: issuer links, the engine, the
//! store-and-forward worker and the acquirer listeners. Each acquirer
//! connection reads requests, runs each in its own task (bounded per
//! connection), and answers on the connection the request came from.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::config::{AcquirerConfig, IssuerConfig, IssuerTls, JournalSettings, SwitchConfig};
use super::engine::{Acquirer, Issuer, Switch};
use super::hooks::AcquirerRules;
use super::standin::StandIn;
use crate::journal::crypto::{CryptoError, Keyring};
use crate::journal::sqlite::SqliteJournal;
use crate::journal::{Journal, JournalError, JournalStore, Recovery};
use crate::link::connection::{FrameSender, ReadLimits};
use crate::link::connector::{EndpointSettings, IssuerLink};
use crate::link::framing::{Frame, FrameCodec};
use crate::link::listener::{self, Accepted, ConnectionLimits, ListenerSettings};
use crate::link::tls::{TlsClient, TlsError, TlsServer};
use crate::message::response_codes::format_error_reject;
use crate::message::{Message, Spec};

/// Cards tracked by one issuer's stand-in counters at most.
const STAND_IN_CARDS_MAX: usize = 1_000_000;
/// How long a start waits for the issuer links to come up before letting
/// acquirers in: long enough for a reachable issuer (connect, sign-on), so
/// that the first requests are not declined for a link about to come up;
/// short enough that an issuer that is down does not hold the switch back.
const ISSUER_STARTUP_WAIT: Duration = Duration::from_secs(1);

/// Why the switch cannot start. Each names the configuration file, the
/// line and the key at fault, like a refusal at load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// An acquirer's `listen` address cannot be bound (in use, not local).
    #[error("{file}:{line}: acquirer '{name}': listen = \"{address}\": {reason}")]
    Listen {
        file: String,
        line: usize,
        name: String,
        address: String,
        reason: String,
    },
    /// The journal's database (`path`) or keys (`key_file`) cannot be used.
    #[error("{file}:{line}: journal: {key}: {reason}")]
    Journal {
        file: String,
        line: usize,
        key: &'static str,
        reason: String,
    },
    /// A link's TLS certificate, key or CA file cannot be used; `key` is
    /// the configuration key (`tls.cert`), `link` the section.
    #[error("{file}:{line}: {link}: {key}: {reason}")]
    Tls {
        file: String,
        line: usize,
        link: String,
        key: &'static str,
        reason: String,
    },
}

/// One TLS file of a link as configured: the label `link::tls` gives it
/// in its errors, its configuration key and line.
struct TlsFile<'a> {
    label: &'static str,
    key: &'static str,
    path: &'a Path,
    line: usize,
}

/// A TLS error named by the configuration key of the file at fault (the
/// first file's line, under `tls`, when no one file is).
fn tls_error(file: &str, link: String, files: &[TlsFile], e: TlsError) -> StartError {
    let (at, reason) = match &e {
        TlsError::File { file, reason } => (
            files.iter().find(|f| f.path.display().to_string() == *file),
            format!("cannot read {file}: {reason}"),
        ),
        TlsError::NoPem { what, kind } => (
            files.iter().find(|f| f.label == what),
            format!("file holds no PEM {kind}"),
        ),
        TlsError::Config(msg) => (
            files
                .iter()
                .find(|f| msg.starts_with(&format!("{}: ", f.label))),
            msg.clone(),
        ),
        other => (None, other.to_string()),
    };
    let (key, line) = match (at, files.first()) {
        (Some(f), _) => (f.key, f.line),
        (None, Some(f)) => ("tls", f.line),
        (None, None) => ("tls", 0),
    };
    StartError::Tls {
        file: file.to_string(),
        line,
        link,
        key,
        reason,
    }
}

/// A started switch.
pub struct Running {
    pub switch: Arc<Switch>,
    /// Each acquirer listener's name and bound address.
    pub acquirers: Vec<(String, SocketAddr)>,
    tasks: tokio_util::task::TaskTracker,
}

impl Running {
    /// Waits until every listener and worker has stopped (after shutdown).
    pub async fn stopped(self) {
        self.tasks.close();
        self.tasks.wait().await;
        if let Some(journal) = self.switch.journal()
            && let Err(e) = journal.flush().await
        {
            warn!(error = %e, "journal not flushed at shutdown");
        }
    }
}

fn issuer_link(
    file: &str,
    cfg: &IssuerConfig,
    shutdown: &CancellationToken,
) -> Result<Arc<IssuerLink>, StartError> {
    let mut settings = EndpointSettings::new(
        &cfg.name,
        &cfg.addresses[0],
        FrameCodec::new(cfg.framing.clone()),
        cfg.spec.clone(),
    );
    settings.addresses = cfg.addresses.clone();
    settings.connections = cfg.connections;
    settings.echo_interval = cfg.echo_interval;
    settings.sign_on = cfg.sign_on;
    settings.in_flight_max = cfg.in_flight_max;
    settings.tls = cfg
        .tls
        .as_ref()
        .map(|t| issuer_tls(file, &cfg.name, t))
        .transpose()?
        .map(|client| client.with_handshake_timeout(cfg.handshake_timeout));
    Ok(IssuerLink::start(settings, shutdown.clone()))
}

fn issuer_tls(file: &str, name: &str, t: &IssuerTls) -> Result<TlsClient, StartError> {
    let identity = match (&t.cert, &t.key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        _ => None,
    };
    TlsClient::from_files(&t.ca, &t.server_name, identity).map_err(|e| {
        let mut files = vec![TlsFile {
            label: "server CA",
            key: "tls.ca",
            path: &t.ca,
            line: t.ca_line,
        }];
        let client = [
            ("client certificate", "tls.cert", &t.cert, t.cert_line),
            ("client key", "tls.key", &t.key, t.key_line),
        ];
        for (label, key, path, line) in client {
            if let (Some(path), Some(line)) = (path, line) {
                files.push(TlsFile {
                    label,
                    key,
                    path,
                    line,
                });
            }
        }
        tls_error(file, format!("issuer '{name}'"), &files, e)
    })
}

/// Waits until every issuer link has a connection up, or `limit` has
/// passed; names the links still down.
async fn await_issuer_links(issuers: &[Issuer], limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while issuers.iter().any(|i| i.link.up_connections() == 0)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for issuer in issuers.iter().filter(|i| i.link.up_connections() == 0) {
        warn!(issuer = %issuer.name, "issuer link not up at start: its requests get stand-in or 91 until it is");
    }
}

/// Opens the configured journal: keys checked against the data, schema
/// migrated, and what a restart must pick up read. A key that cannot be
/// read or does not open the data names `key_file`; anything else `path`.
fn open_journal(file: &str, settings: &JournalSettings) -> Result<(Journal, Recovery), StartError> {
    let key_line = settings.key_file_line.unwrap_or(settings.line);
    let fail = |key, line, reason| StartError::Journal {
        file: file.to_string(),
        line,
        key,
        reason,
    };
    let keys = Keyring::load(settings.key_file.as_deref()).map_err(|e| {
        let reason = match e {
            CryptoError::KeyFile { path, reason } => format!("{path}: {reason}"),
            other => other.to_string(),
        };
        fail("key_file", key_line, reason)
    })?;
    let journal_error = |e: JournalError| match e {
        JournalError::Crypto(c) => fail("key_file", key_line, c.to_string()),
        other => fail("path", settings.path_line, other.to_string()),
    };
    let mut store = SqliteJournal::open(&settings.path, Arc::new(keys)).map_err(journal_error)?;
    let recovery = store.recover().map_err(journal_error)?;
    let (journal, _thread) = Journal::start(Box::new(store), settings.group_records_max);
    info!(path = %settings.path.display(), "journal open");
    Ok((journal, recovery))
}

/// Starts everything; returns once the acquirer listeners are bound.
pub async fn start(
    config: &SwitchConfig,
    shutdown: CancellationToken,
) -> Result<Running, StartError> {
    start_with_rules(config, shutdown, None).await
}

/// Starts everything, consulting the acquirer's `rules` (terminals, batch
/// close) when given.
pub async fn start_with_rules(
    config: &SwitchConfig,
    shutdown: CancellationToken,
    rules: Option<Arc<dyn AcquirerRules>>,
) -> Result<Running, StartError> {
    // A configuration out of its limits would fail later, in a task.
    config.assert_within_limits();
    let journal = config
        .journal
        .as_ref()
        .map(|j| open_journal(&config.file, j))
        .transpose()?;
    let mut issuers = Vec::with_capacity(config.issuers.len());
    for cfg in &config.issuers {
        issuers.push(Issuer {
            name: cfg.name.clone(),
            spec: cfg.spec.clone(),
            link: issuer_link(&config.file, cfg, &shutdown)?,
            stand_in: cfg
                .stand_in
                .map(|rules| std::sync::Mutex::new(StandIn::new(rules, STAND_IN_CARDS_MAX))),
        });
    }
    let mut switch = Switch::new(
        Bytes::from(config.switch.institution_id.clone()),
        config.route_table(),
        issuers,
        config.switch.saf.policy,
        config.switch.saf.queue_max,
        config.switch.duplicate_window,
    )
    .with_saf_response_wait(config.switch.saf.response_wait);
    if let Some(rules) = rules {
        switch = switch.with_rules(rules);
    }
    let recovery = match journal {
        Some((journal, recovery)) => {
            switch = switch.with_journal(journal);
            Some(recovery)
        }
        None => None,
    };
    let switch = Arc::new(switch);
    if let Some(recovery) = recovery {
        switch.recover(recovery).await;
    }
    let tasks = tokio_util::task::TaskTracker::new();
    tasks.spawn(switch.clone().run_saf(shutdown.clone()));
    await_issuer_links(&switch.issuers, ISSUER_STARTUP_WAIT).await;
    let mut bound = Vec::new();
    for cfg in &config.acquirers {
        let listen_error = |e: std::io::Error| StartError::Listen {
            file: config.file.clone(),
            line: cfg.listen_line,
            name: cfg.name.clone(),
            address: cfg.listen.clone(),
            reason: e.to_string(),
        };
        let listener = crate::link::bind::listen(&cfg.listen, cfg.link.listen_backlog, &cfg.name)
            .await
            .map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
        info!(acquirer = %cfg.name, %addr, spec = %cfg.spec_name, "listening");
        bound.push((cfg.name.clone(), addr));
        let settings = acquirer_settings(&config.file, cfg)?;
        let acquirer = Arc::new(Acquirer {
            name: cfg.name.clone(),
            spec: cfg.spec.clone(),
            allowed_institutions: cfg
                .allowed_institutions
                .iter()
                .map(|s| Bytes::from(s.clone()))
                .collect(),
        });
        // Checked at load (at most ACQUIRER_IN_FLIGHT_MAX_RANGE's end), so
        // the drain's `acquire_many` takes it whole.
        let in_flight_max =
            u32::try_from(cfg.in_flight_max).expect("in_flight_max within its range");
        let sw = switch.clone();
        tasks.spawn(listener::serve(
            listener,
            settings,
            shutdown.clone(),
            move |conn| serve_acquirer(sw.clone(), acquirer.clone(), in_flight_max, conn),
        ));
    }
    Ok(Running {
        switch,
        acquirers: bound,
        tasks,
    })
}

fn acquirer_settings(file: &str, cfg: &AcquirerConfig) -> Result<ListenerSettings, StartError> {
    let tls = match &cfg.tls {
        Some(t) => Some(
            TlsServer::from_files(&t.cert, &t.key, t.client_ca.as_deref()).map_err(|e| {
                let mut files = vec![
                    TlsFile {
                        label: "certificate",
                        key: "tls.cert",
                        path: &t.cert,
                        line: t.cert_line,
                    },
                    TlsFile {
                        label: "key",
                        key: "tls.key",
                        path: &t.key,
                        line: t.key_line,
                    },
                ];
                if let (Some(path), Some(line)) = (&t.client_ca, t.client_ca_line) {
                    files.push(TlsFile {
                        label: "client CA",
                        key: "tls.client_ca",
                        path,
                        line,
                    });
                }
                tls_error(file, format!("acquirer '{}'", cfg.name), &files, e)
            })?,
        ),
        None => None,
    };
    Ok(ListenerSettings {
        name: cfg.name.clone(),
        codec: FrameCodec::new(cfg.framing.clone()),
        tls,
        connections_max: cfg.connections_max,
        read_limits: ReadLimits {
            idle: Some(cfg.idle_timeout),
            frame: Some(Duration::from_secs(5)),
        },
        drain_deadline: Duration::from_secs(15),
        limits: ConnectionLimits {
            handshake_timeout: cfg.link.handshake_timeout,
            first_frame_timeout: Some(cfg.link.first_frame_timeout),
            per_peer_max: cfg.link.connections_per_peer_max,
            ..ConnectionLimits::default()
        },
    })
}

/// Parses a request; one that cannot be parsed is logged, counted and
/// answered with a format-error reject (DE39 = 30) where its MTI is readable.
/// Any message that parses is handed back, whatever its MTI (the issuer
/// simulator answers by its own rules); acquirer connections go through
/// [`inbound`], which also refuses what cannot be answered.
pub async fn parse_or_reject(
    spec: &Spec,
    frame: &Frame,
    sender: &FrameSender,
    link: &str,
) -> Option<Message> {
    match spec.parse(&frame.message) {
        Ok(m) => Some(m),
        Err(e) => {
            warn!(error = %e, "undecodable request");
            count_decode_error(link, &e);
            if let Some(reject) = format_error_reject(spec, &frame.message) {
                sender.reply(frame, reject).await;
            }
            None
        }
    }
}

fn count_decode_error(link: &str, e: &crate::message::MessageError) {
    metrics::counter!("cardswitch_link_decode_errors_total", "link" => link.to_string(), "kind" => e.kind())
        .increment(1);
}

/// What becomes of one frame from an acquirer.
#[derive(Debug)]
pub enum Inbound {
    /// A message of a known MTI that is not itself an answer: the engine's.
    Request(Message),
    /// A malformed request, answered with a format error (DE39 = 30).
    Rejected,
    /// Nothing can answer it: an MTI that cannot be read or has reserved
    /// digits, a response or acknowledgement (the switch sends acquirers
    /// no requests), a malformed message that expects no answer, or a
    /// reject that cannot be built. The connection stops reading and is
    /// closed once the requests in flight on it are answered, so that
    /// the sender sees a close instead of waiting for an answer that
    /// never comes. The reason is a metric label.
    Close(&'static str),
}

/// Sorts one frame from an acquirer (see [`Inbound`]); answers a
/// malformed request, and logs and counts a frame that closes the
/// connection (once per connection: reading stops there).
pub async fn inbound(spec: &Spec, frame: &Frame, sender: &FrameSender, link: &str) -> Inbound {
    let outcome = match spec.parse(&frame.message) {
        Ok(m) if !m.mti().is_known() => Inbound::Close("reserved_mti"),
        Ok(m) if m.mti().is_answer() => {
            warn!(mti = %m.mti(), "an acquirer sent an answer: nothing answers it");
            Inbound::Close("answer_from_acquirer")
        }
        Ok(m) => Inbound::Request(m),
        Err(e) => {
            warn!(error = %e, "undecodable request");
            count_decode_error(link, &e);
            let mti = crate::message::parse::read_mti_only(spec, &frame.message);
            match mti {
                None => Inbound::Close("unreadable_mti"),
                Some(m) if !m.is_known() => Inbound::Close("reserved_mti"),
                Some(m) if m.is_answer() => Inbound::Close("answer_from_acquirer"),
                Some(m) if m.response().is_none() => Inbound::Close("malformed_unanswerable"),
                Some(_) => match format_error_reject(spec, &frame.message) {
                    Some(reject) => {
                        sender.reply(frame, reject).await;
                        Inbound::Rejected
                    }
                    None => Inbound::Close("reject_not_built"),
                },
            }
        }
    };
    if let Inbound::Close(reason) = outcome {
        warn!(
            reason,
            "closing the connection once its requests in flight are answered"
        );
        metrics::counter!("cardswitch_link_closed_on_input_total", "link" => link.to_string(), "reason" => reason)
            .increment(1);
    }
    outcome
}

/// One acquirer connection: every request runs in its own task, at most
/// `in_flight_max` at once (reading pauses beyond), each answered on this
/// connection. On shutdown, reading stops and the requests in flight finish.
async fn serve_acquirer(
    switch: Arc<Switch>,
    acq: Arc<Acquirer>,
    in_flight_max: u32,
    mut conn: Accepted,
) {
    let limit = Arc::new(Semaphore::new(in_flight_max as usize));
    // Set once the acquirer has closed its side: a response written after
    // that is accepted by the kernel but never read, so it counts as not
    // delivered (an approval is then reversed).
    let peer_gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    loop {
        let Some(frame) = conn.next_frame(&acq.name).await else {
            peer_gone.store(true, std::sync::atomic::Ordering::Relaxed);
            break;
        };
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        // A frame nothing can answer ends the reading; the requests in
        // flight are still answered below, then the connection closes.
        let request = match inbound(&acq.spec, &frame, &conn.sender, &acq.name).await {
            Inbound::Request(m) => m,
            Inbound::Rejected => continue,
            Inbound::Close(_) => break,
        };
        let span = info_span!("transaction", acquirer = %acq.name, mti = %request.mti(), stan = request.get_str(11).unwrap_or("-"));
        let (switch, acq, sender) = (switch.clone(), acq.clone(), conn.sender.clone());
        let peer_gone = peer_gone.clone();
        // Boxed where it is made: a request's future is large (it holds the
        // messages across the issuer's round trip), and spawning moves it
        // by value several times; a box moves once.
        tokio::spawn(
            Box::pin(async move {
                let _permit = permit;
                let Some(reply) = switch.handle(&acq, request).await else {
                    return;
                };
                let delivered = match (&reply.after, switch.journal()) {
                    _ if peer_gone.load(std::sync::atomic::Ordering::Relaxed) => false,
                    // The journal records "sent" only once it is true.
                    (Some(_), Some(_)) => sender.reply_written(&frame, reply.bytes).await,
                    _ => sender.reply(&frame, reply.bytes).await,
                };
                if !delivered && reply.after.is_none() {
                    warn!("acquirer connection closed before its response");
                }
                if let Some(after) = reply.after {
                    switch.replied(after, delivered).await;
                }
            })
            .instrument(span),
        );
    }
    // Requests in flight hold permits: wait for them (bounded by their time-outs).
    let _ = limit.acquire_many(in_flight_max).await;
}
