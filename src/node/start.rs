//! Starts a switch from its configuration: the journal (and what a
//! restart must pick up), the issuer links, the core in its loop, and the
//! acquirer listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::acquirer::{AcquirerPort, serve_acquirer};
use super::core_config::core_config;
use super::event_loop::{EVENTS_MAX, Event, Node, NodeHandle, now};
use super::hsm::{PayShield, check_keys, start_hsm};
use super::link_settings::{acquirer_settings, issuer_link};
use super::metrics::NodeMetrics;
use super::restore::restored;
use super::start_error::StartError;
use super::timers::Timers;
use crate::journal::crypto::{CryptoError, Keyring};
use crate::journal::log::journal::{LogJournal, OpenError};
use crate::journal::{Journal, JournalError, Recovery, open_store};
use crate::link::connector::{IssuerLink, LinkEvent};
use crate::link::listener;
use crate::node::config::{JournalSettings, SwitchConfig};
use crate::switch::core::{Core, Input, PeerRequest};
use crate::switch::hooks::AcquirerRules;

/// How long a start waits for the issuer links to come up before letting
/// acquirers in: long enough for a reachable issuer (connect, sign-on), so
/// that the first requests are not declined for a link about to come up;
/// short enough that an issuer that is down does not hold the switch back.
const ISSUER_STARTUP_WAIT: Duration = Duration::from_secs(1);

/// A started switch.
pub struct Running {
    /// Reaches the core's loop (route reloads).
    pub node: NodeHandle,
    /// Each acquirer listener's name and bound address.
    pub acquirers: Vec<(String, SocketAddr)>,
    listeners: tokio_util::task::TaskTracker,
    node_task: tokio::task::JoinHandle<()>,
    stop_node: CancellationToken,
    links: CancellationToken,
    journal: Option<Journal>,
    /// The HSM client, when `[hsm]` is configured (not used by any flow
    /// yet: the core's PIN and MAC steps come next).
    pub hsm: Option<PayShield>,
    stop_hsm: CancellationToken,
}

impl Running {
    /// Waits until the listeners have drained (after shutdown: every
    /// request in flight answered), then stops the core's loop and the
    /// issuer links, and flushes the journal.
    pub async fn stopped(self) {
        self.listeners.close();
        self.listeners.wait().await;
        self.stop_node.cancel();
        let _ = self.node_task.await;
        self.links.cancel();
        self.stop_hsm.cancel();
        if let Some(journal) = self.journal {
            if let Err(e) = journal.flush().await {
                warn!(error = %e, "journal not flushed at shutdown");
            }
            journal.close().await;
        }
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
    let keys = Arc::new(keys);
    let Some(log) = &settings.log else {
        let mut store = open_store(&settings.path, keys).map_err(journal_error)?;
        let recovery = store.recover().map_err(journal_error)?;
        let (journal, _thread) = Journal::start(store, settings.group_records_max);
        info!(path = %settings.path.display(), "journal open (durable in SQLite)");
        return Ok((journal, recovery));
    };
    let (journal, opened) =
        LogJournal::open(&settings.path, &log.dir, log.limits, keys).map_err(|e| match e {
            OpenError::Journal(e) => journal_error(e),
            other => fail("path", settings.path_line, other.to_string()),
        })?;
    if let Some(t) = &opened.tail {
        warn!(
            segment = %t.segment.display(),
            offset = t.offset,
            dropped_bytes = t.dropped_bytes,
            dropped_records = t.dropped_records,
            reason = %t.reason,
            "journal log: torn tail cut off (entries never acknowledged)"
        );
    }
    info!(
        path = %settings.path.display(),
        log = %log.dir.display(),
        log_records = opened.log_records,
        caught_up = opened.caught_up,
        "journal open (durable in the log, SQLite fed from it)"
    );
    Ok((Journal::on_log(journal), opened.recovery))
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
    // The HSM first: a switch that cannot reach its HSM does not start.
    let stop_hsm = CancellationToken::new();
    let hsm = match &config.hsm {
        Some(h) => {
            let hsm = start_hsm(&config.file, h, stop_hsm.clone()).await?;
            if let Err(e) = check_keys(config, &hsm).await {
                stop_hsm.cancel();
                return Err(e);
            }
            Some(hsm)
        }
        None => None,
    };
    // A start that fails after this point stops the pool again.
    let hsm_guard = stop_hsm.clone().drop_guard();
    let (journal, recovery) = match &config.journal {
        Some(j) => {
            let (journal, recovery) = open_journal(&config.file, j)?;
            (Some(journal), Some(recovery))
        }
        None => (None, None),
    };
    let (events_tx, events) = mpsc::channel(EVENTS_MAX);
    let (own_tx, own) = mpsc::unbounded_channel();
    let handle = NodeHandle {
        events: events_tx,
        own: own_tx,
    };
    // Issuer links run until the node has stopped, not on `shutdown`:
    // requests still in flight at a shutdown get their answers.
    let links = CancellationToken::new();
    let mut issuers = Vec::with_capacity(config.issuers.len());
    for (index, cfg) in config.issuers.iter().enumerate() {
        let own = handle.own.clone();
        let inbound = Arc::new(move |event| {
            let input = match event {
                LinkEvent::Message(message) => Input::FromIssuer {
                    issuer: index,
                    message,
                },
                LinkEvent::Request { id, message } => Input::IssuerRequest {
                    issuer: index,
                    id: PeerRequest(id),
                    message,
                },
                LinkEvent::Lost(stans) => Input::Lost {
                    issuer: index,
                    stans,
                },
            };
            let _ = own.send(Event::Input(input));
        });
        issuers.push(issuer_link(&config.file, cfg, inbound, &links)?);
    }
    let mut core = Core::new(core_config(config, rules.clone()));
    if let Some(recovery) = recovery {
        let count = core.restore(now(), restored(recovery, &config.issuers));
        info!(
            requeued = count.requeued,
            reversed = count.reversed,
            dropped = count.dropped,
            "recovered from the journal"
        );
    }
    for (index, link) in issuers.iter().enumerate() {
        tokio::spawn(watch_link(
            index,
            link.clone(),
            handle.clone(),
            links.clone(),
        ));
    }
    let node = Node {
        core,
        timers: Timers::default(),
        conns: Default::default(),
        confirming: Vec::new(),
        held: Default::default(),
        next_tag: 0,
        issuers: issuers.clone(),
        journal: journal.clone(),
        rules,
        hsm: hsm.clone().map(|h| Arc::new(h) as Arc<dyn super::hsm::Hsm>),
        handle: handle.clone(),
        metrics: NodeMetrics::new(),
    };
    let stop_node = CancellationToken::new();
    let node_task = tokio::spawn(node.run(events, own, stop_node.clone()));
    await_issuer_links(&issuers, &config.issuers, ISSUER_STARTUP_WAIT).await;
    let listeners = tokio_util::task::TaskTracker::new();
    let mut bound = Vec::new();
    let next_conn = Arc::new(AtomicU64::new(1));
    for (index, cfg) in config.acquirers.iter().enumerate() {
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
        let port = Arc::new(AcquirerPort {
            index,
            name: cfg.name.clone(),
            spec: cfg.spec.clone(),
            // Checked at load (at most ACQUIRER_IN_FLIGHT_MAX_RANGE's end),
            // so the drain's `acquire_many` takes it whole.
            in_flight_max: u32::try_from(cfg.in_flight_max)
                .expect("in_flight_max within its range"),
            node: handle.clone(),
            next_conn: next_conn.clone(),
        });
        listeners.spawn(listener::serve(
            listener,
            settings,
            shutdown.clone(),
            move |conn| serve_acquirer(port.clone(), conn),
        ));
    }
    hsm_guard.disarm();
    Ok(Running {
        node: handle,
        acquirers: bound,
        listeners,
        node_task,
        stop_node,
        links,
        journal,
        hsm,
        stop_hsm,
    })
}

/// Tells the core when an issuer's link has a connection up or none.
async fn watch_link(
    issuer: usize,
    link: Arc<IssuerLink>,
    node: NodeHandle,
    stop: CancellationToken,
) {
    let mut up = link.watch_up();
    let mut was = None;
    loop {
        let now_up = *up.borrow_and_update() > 0;
        if was != Some(now_up) {
            was = Some(now_up);
            let input = Input::IssuerUp { issuer, up: now_up };
            if node.own.send(Event::Input(input)).is_err() {
                return;
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            r = up.changed() => if r.is_err() { return },
        }
    }
}

/// Waits until every issuer link has a connection up, or `limit` has
/// passed; names the links still down.
async fn await_issuer_links(
    links: &[Arc<IssuerLink>],
    configs: &[crate::node::config::IssuerConfig],
    limit: Duration,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while links.iter().any(|l| l.up_connections() == 0) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (link, cfg) in links.iter().zip(configs) {
        if link.up_connections() == 0 {
            warn!(issuer = %cfg.name, "issuer link not up at start: its requests get stand-in or 91 until it is");
        }
    }
}
