//! The issuer side: a pool of outgoing connections to one issuer endpoint.
//! Each slot connects (plain or TLS), reconnects on loss with exponential
//! backoff and jitter, signs on where configured, echoes when idle, and is
//! marked down while its echoes fail. Requests go round robin over the
//! slots that are up.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::connection::{self, FrameSender, ReadLimits};
use super::framing::{Frame, FrameCodec};
use super::listener::BoxedStream;
use super::mux::{Delivery, Mux, MuxError};
use super::peer_requests::SharedPeerRequests;
use super::tls::TlsClient;
use crate::message::mti::MessageClass;
use crate::message::netmgmt;
use crate::message::{Message, Spec};

/// How to reach and keep one issuer endpoint.
#[derive(Clone)]
pub struct EndpointSettings {
    pub name: String,
    /// host:port, tried in turn.
    pub addresses: Vec<String>,
    pub codec: FrameCodec,
    pub spec: Arc<Spec>,
    pub tls: Option<TlsClient>,
    /// Parallel connections.
    pub connections: usize,
    pub key_fields: Vec<u16>,
    /// Requests in flight per connection.
    pub in_flight_max: usize,
    /// Echo after this long without traffic; `None` disables echoes.
    pub echo_interval: Option<Duration>,
    pub echo_timeout: Duration,
    pub sign_on: bool,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
    /// How long a started frame may take to complete.
    pub frame_timeout: Duration,
    /// Where answers go that no request of the link's own waits for (the
    /// switch's core matches its transactions itself); `None` logs them.
    pub inbound: Option<Inbound>,
}

/// A handler for what an issuer link receives for someone else.
pub type Inbound = Arc<dyn Fn(LinkEvent) + Send + Sync>;

/// What an issuer link tells the one who sends through it.
#[derive(Debug)]
pub enum LinkEvent {
    /// A message no request of the link's own waits for (an answer to a
    /// message sent with `IssuerLink::send`), boxed as the core takes it.
    Message(Box<Message>),
    /// A request the issuer sent that the switch answers itself (a new
    /// key), by [`IssuerLink::answer`] under `id`.
    Request { id: u64, message: Box<Message> },
    /// A connection closed with these messages sent by `send` unanswered
    /// (by STAN): whether the issuer acted on them is unknown.
    Lost(Vec<u32>),
}

impl EndpointSettings {
    /// Settings with the usual defaults for one address.
    pub fn new(name: &str, address: &str, codec: FrameCodec, spec: Arc<Spec>) -> EndpointSettings {
        EndpointSettings {
            name: name.to_string(),
            addresses: vec![address.to_string()],
            codec,
            spec,
            tls: None,
            connections: 1,
            key_fields: super::mux::KEY_FIELDS_DEFAULT.to_vec(),
            in_flight_max: 4096,
            echo_interval: Some(Duration::from_secs(30)),
            echo_timeout: Duration::from_secs(5),
            sign_on: false,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(5),
            inbound: None,
        }
    }
}

/// Why a request could not be sent or answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    #[error("issuer link {0}: no connection is up")]
    NoConnection(String),
    #[error("issuer link {link}: {source}")]
    Mux {
        link: String,
        #[source]
        source: MuxError,
    },
}

struct Slot {
    mux: Mutex<Option<Arc<Mux>>>,
    /// Connected and echoes answered.
    up: AtomicBool,
}

impl Slot {
    fn current(&self) -> Option<Arc<Mux>> {
        self.mux.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, mux: Option<Arc<Mux>>) {
        *self.mux.lock().unwrap_or_else(|e| e.into_inner()) = mux;
    }
}

/// A pool of connections to one issuer endpoint.
pub struct IssuerLink {
    settings: EndpointSettings,
    slots: Vec<Arc<Slot>>,
    next: AtomicUsize,
    stan: AtomicU32,
    started: Instant,
    last_traffic_ms: Vec<AtomicU64>,
    round_trip: metrics::Histogram,
    /// Connections up now, watched by the switch.
    up_count: tokio::sync::watch::Sender<usize>,
    /// Requests the issuer sent that wait for the switch's answer.
    peer_requests: SharedPeerRequests,
}

impl IssuerLink {
    /// Starts the slot tasks; they run until `shutdown` is cancelled.
    pub fn start(settings: EndpointSettings, shutdown: CancellationToken) -> Arc<IssuerLink> {
        assert!(
            settings.connections > 0,
            "an issuer link needs a connection"
        );
        assert!(
            !settings.addresses.is_empty(),
            "an issuer link needs an address"
        );
        let name = settings.name.clone();
        let slots = (0..settings.connections)
            .map(|_| {
                Arc::new(Slot {
                    mux: Mutex::new(None),
                    up: AtomicBool::new(false),
                })
            })
            .collect();
        let link = Arc::new(IssuerLink {
            last_traffic_ms: (0..settings.connections)
                .map(|_| AtomicU64::new(0))
                .collect(),
            settings,
            slots,
            next: AtomicUsize::new(0),
            stan: AtomicU32::new(1),
            started: Instant::now(),
            round_trip: metrics::histogram!("cardswitch_link_round_trip_seconds", "link" => name),
            up_count: tokio::sync::watch::Sender::new(0),
            peer_requests: Default::default(),
        });
        for i in 0..link.slots.len() {
            let span = info_span!("issuer_link", link = %link.settings.name, slot = i);
            tokio::spawn(link.clone().run_slot(i, shutdown.clone()).instrument(span));
        }
        link
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Watches the number of connections up.
    pub fn watch_up(&self) -> tokio::sync::watch::Receiver<usize> {
        self.up_count.subscribe()
    }

    /// Marks slot `index` up or down; false when it already was.
    fn set_up(&self, index: usize, up: bool) -> bool {
        let was = self.slots[index].up.swap(up, Ordering::AcqRel);
        if was != up {
            self.up_count.send_replace(self.up_connections());
        }
        was != up
    }

    /// Sends a message built in the link's dialect, its STAN `stan`, on
    /// the next connection that is up without waiting for an answer (its
    /// answer goes to the `inbound` handler): an error means nothing was
    /// sent. `now` is the caller's clock (read once for many sends).
    pub fn send(&self, stan: u32, frame: Bytes, now: Instant) -> Result<(), LinkError> {
        let (idx, mux) = self.next_up()?;
        self.touch_at(idx, now);
        mux.send_only(stan, frame, now)
            .map_err(|source| self.mux_error(source))
    }

    /// The next connection that is up, round robin.
    fn next_up(&self) -> Result<(usize, Arc<Mux>), LinkError> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| (start + i) % n)
            .filter(|&idx| self.slots[idx].up.load(Ordering::Acquire))
            .find_map(|idx| self.slots[idx].current().map(|mux| (idx, mux)))
            .ok_or_else(|| LinkError::NoConnection(self.settings.name.clone()))
    }

    fn mux_error(&self, source: MuxError) -> LinkError {
        LinkError::Mux {
            link: self.settings.name.clone(),
            source,
        }
    }

    /// Forgets a message sent by [`send`](Self::send) under `stan`: its
    /// sender no longer waits for the answer (it counts no more against
    /// the connection's in-flight limit).
    pub fn forget(&self, stan: u32) {
        for slot in &self.slots {
            if let Some(mux) = slot.current() {
                mux.forget(stan);
            }
        }
    }

    /// Answers the request the issuer sent under `id` (a
    /// [`LinkEvent::Request`]) with `frame`, on its connection; dropped
    /// when that connection has closed.
    pub fn answer(&self, id: u64, frame: Bytes) {
        let queued = self
            .peer_requests
            .lock()
            .expect("peer requests")
            .answer(id, frame);
        if !queued {
            warn!(link = %self.settings.name, "answer to the issuer's request not sent: its connection closed");
        }
    }

    /// Connections that are up now.
    pub fn up_connections(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.up.load(Ordering::Acquire))
            .count()
    }

    /// Sends a request on the next connection that is up and waits for its
    /// response.
    pub async fn request(&self, msg: &Message, timeout: Duration) -> Result<Message, LinkError> {
        let (idx, mux) = self.next_up()?;
        // Sent traffic; the answer's arrival is marked by the reader.
        let started = Instant::now();
        self.touch_at(idx, started);
        let r = mux.request(msg, timeout).await;
        if r.is_ok() {
            self.round_trip.record(started.elapsed().as_secs_f64());
        }
        r.map_err(|source| self.mux_error(source))
    }

    /// A STAN for the link's own network management messages.
    pub fn next_stan(&self) -> u32 {
        self.stan.fetch_add(1, Ordering::Relaxed) % 1_000_000
    }

    fn touch(&self, slot: usize) {
        self.touch_at(slot, Instant::now());
    }

    fn touch_at(&self, slot: usize, now: Instant) {
        let ms = now.saturating_duration_since(self.started).as_millis() as u64;
        self.last_traffic_ms[slot].store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self, slot: usize) -> Duration {
        let last = self.last_traffic_ms[slot].load(Ordering::Relaxed);
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(last))
    }

    async fn connect(&self, address: &str) -> std::io::Result<BoxedStream> {
        let tcp = tokio::time::timeout(self.settings.connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        let _ = tcp.set_nodelay(true);
        // The TLS client carries its own handshake time-out (the issuer's
        // `handshake_timeout_ms`): an issuer that accepts TCP and never
        // speaks TLS fails this attempt, and the slot backs off and retries.
        Ok(match &self.settings.tls {
            Some(tls) => Box::new(tls.connect(tcp).await?),
            None => Box::new(tcp),
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let min = self.settings.backoff_min.as_millis() as u64;
        let max = self.settings.backoff_max.as_millis() as u64;
        let exp = min.saturating_mul(1u64 << attempt.min(16)).min(max);
        // Full jitter over the upper half, so peers do not reconnect in step.
        Duration::from_millis(exp / 2 + fastrand::u64(0..=exp / 2))
    }

    async fn run_slot(self: Arc<Self>, index: usize, shutdown: CancellationToken) {
        let mut attempt: u32 = 0;
        let mut address_index = index;
        while !shutdown.is_cancelled() {
            let address = &self.settings.addresses[address_index % self.settings.addresses.len()];
            let connected = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.connect(address) => r,
            };
            match connected {
                Ok(stream) => {
                    info!(%address, "connected");
                    attempt = 0;
                    self.run_session(index, stream, &shutdown).await;
                    info!(%address, "disconnected");
                }
                Err(e) => {
                    debug!(%address, error = %e, "connect failed");
                    address_index += 1;
                }
            }
            let delay = self.backoff(attempt);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn run_session(&self, index: usize, stream: BoxedStream, shutdown: &CancellationToken) {
        let settings = &self.settings;
        let slot = &self.slots[index];
        let (mut reader, sender, writer) =
            connection::open_named(stream, settings.codec.clone(), &settings.name);
        reader.set_limits(ReadLimits {
            idle: None,
            frame: Some(settings.frame_timeout),
        });
        let mux = Arc::new(Mux::new(
            settings.spec.clone(),
            sender.clone(),
            &settings.key_fields,
            settings.in_flight_max,
        ));
        let version = settings.spec.version.digit();
        let session = CancellationToken::new();
        // Echo task: when idle, check the peer answers; mark the slot down
        // while it does not.
        let echo = {
            let mux = mux.clone();
            let session = session.clone();
            let interval = settings.echo_interval;
            let timeout = settings.echo_timeout;
            let sign_on = settings.sign_on;
            async move {
                if sign_on {
                    let m = netmgmt::request(
                        version,
                        netmgmt::SIGN_ON,
                        self.next_stan(),
                        SystemTime::now(),
                    );
                    if let Err(e) = mux.request(&m, timeout).await {
                        warn!(error = %e, "sign-on failed");
                        return;
                    }
                }
                self.set_up(index, true);
                let Some(interval) = interval else {
                    session.cancelled().await;
                    return;
                };
                loop {
                    tokio::select! {
                        _ = session.cancelled() => return,
                        _ = tokio::time::sleep(interval / 4) => {}
                    }
                    if self.idle_for(index) < interval && slot.up.load(Ordering::Acquire) {
                        continue;
                    }
                    let m = netmgmt::request(
                        version,
                        netmgmt::ECHO,
                        self.next_stan(),
                        SystemTime::now(),
                    );
                    let ok = mux.request(&m, timeout).await.is_ok();
                    self.touch(index);
                    if self.set_up(index, ok) {
                        if ok {
                            info!("echo answered: link up");
                        } else {
                            warn!("echo failed: link marked down");
                        }
                    }
                    metrics::gauge!("cardswitch_issuer_link_up", "link" => self.settings.name.clone(), "slot" => index.to_string())
                        .set(if ok { 1.0 } else { 0.0 });
                }
            }
        };
        slot.set(Some(mux.clone()));
        let read = async {
            loop {
                let Some(frame) = reader.next_until(shutdown).await else {
                    break;
                };
                let frame = match frame {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        warn!(error = %e, "read failed");
                        metrics::counter!("cardswitch_link_decode_errors_total", "link" => settings.name.clone(), "kind" => e.kind()).increment(1);
                        break;
                    }
                };
                // One clock read a frame: its traffic and its round trip.
                let now = Instant::now();
                self.touch_at(index, now);
                let msg = match settings.spec.parse(&frame.message) {
                    Ok(m) => Box::new(m),
                    Err(e) => {
                        warn!(error = %e, "undecodable message from issuer");
                        metrics::counter!("cardswitch_link_decode_errors_total", "link" => settings.name.clone(), "kind" => e.kind()).increment(1);
                        continue;
                    }
                };
                match mux.deliver(msg) {
                    Delivery::Matched => {}
                    // A network management answer goes up only when the
                    // switch sent its request (a key exchange); the link's
                    // own echoes are matched above.
                    Delivery::Unmatched(m)
                        if settings.inbound.is_some()
                            && (m.mti().class() != MessageClass::NetworkManagement
                                || mux.awaits(&m)) =>
                    {
                        if let Some(took) = mux.answered(&m, now) {
                            self.round_trip.record(took.as_secs_f64());
                        }
                        if let Some(inbound) = &settings.inbound {
                            inbound(LinkEvent::Message(m));
                        }
                    }
                    Delivery::Unmatched(m) => {
                        metrics::counter!("cardswitch_link_unmatched_responses_total", "link" => settings.name.clone()).increment(1);
                        warn!(mti = %m.mti(), stan = m.get_str(11).unwrap_or("-"), "late or unmatched response");
                    }
                    Delivery::NotAResponse(m) => {
                        let held = match &settings.inbound {
                            Some(_) if netmgmt::brings_new_key(&m) => self
                                .peer_requests
                                .lock()
                                .expect("peer requests")
                                .hold(&sender, &frame),
                            _ => None,
                        };
                        match (held, &settings.inbound) {
                            (Some(id), Some(inbound)) => {
                                inbound(LinkEvent::Request { id, message: m })
                            }
                            _ => answer_netmgmt(&settings.spec, &sender, &frame, &m).await,
                        }
                    }
                }
            }
        };
        tokio::join!(echo, async {
            read.await;
            session.cancel();
        });
        self.set_up(index, false);
        slot.set(None);
        mux.close_all();
        let lost = mux.take_unanswered();
        if let (false, Some(inbound)) = (lost.is_empty(), &settings.inbound) {
            inbound(LinkEvent::Lost(lost));
        }
        if shutdown.is_cancelled() && settings.sign_on {
            let m = netmgmt::request(
                version,
                netmgmt::SIGN_OFF,
                self.next_stan(),
                SystemTime::now(),
            );
            if let Ok(bytes) = settings.spec.build(&m) {
                let _ = sender.send(Frame::new(bytes)).await;
            }
        }
        drop(sender);
        drop(mux);
        let _ = writer.await;
    }
}

/// The link's own answer to an issuer's network management request (see
/// [`netmgmt::answer`]), on the connection it came on.
async fn answer_netmgmt(spec: &Spec, sender: &FrameSender, frame: &Frame, m: &Message) {
    match netmgmt::answer(m) {
        Some(resp) => match spec.build(&resp) {
            Ok(bytes) => {
                if let Err(e) = sender.reply(frame, bytes).await {
                    warn!(error = %e, "cannot answer network management request");
                }
            }
            Err(e) => warn!(error = %e, "cannot answer network management request"),
        },
        None => warn!(mti = %m.mti(), "unexpected request from issuer ignored"),
    }
}
