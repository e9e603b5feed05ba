//! Listeners and connectors under peers that hold connections without
//! using them: silent TCP sockets on a TLS listener, a listener at its
//! connection limit, one address taking every slot, connections that never
//! send a frame, a flood of failing handshakes (and its log lines), a
//! listen backlog, and an issuer that accepts TCP but never speaks TLS.
//! Each ends in a bounded time, on loopback only.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cardswitch::link::bind;
use cardswitch::link::connection::ReadLimits;
use cardswitch::link::connector::{EndpointSettings, IssuerLink};
use cardswitch::link::framing::{FrameCodec, Framing, LengthHeader};
use cardswitch::link::listener::{self, Accepted, ConnectionLimits, ListenerSettings};
use cardswitch::link::tls::{TlsClient, TlsServer};
use cardswitch::message::Spec;
use cardswitch::node::config::SwitchConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

mod support;

/// What "promptly" means for a refused connection.
const PROMPTLY: Duration = Duration::from_secs(1);
/// The longest any state here may take to come about on a busy machine.
const WAIT: Duration = Duration::from_secs(10);

/// One 4-byte frame with a 2-byte binary length.
const PING: &[u8] = b"\x00\x04ping";

fn codec() -> FrameCodec {
    FrameCodec::new(Framing::new(LengthHeader::Binary2))
}

/// An echo listener on 127.0.0.1 with the given limits.
async fn echo_listener(
    name: &str,
    tls: Option<TlsServer>,
    connections_max: usize,
    limits: ConnectionLimits,
) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let token = CancellationToken::new();
    let settings = ListenerSettings {
        name: name.into(),
        codec: codec(),
        tls,
        connections_max,
        read_limits: ReadLimits {
            idle: Some(Duration::from_secs(60)),
            frame: Some(Duration::from_secs(5)),
        },
        drain_deadline: Duration::from_secs(1),
        limits,
    };
    let name = name.to_string();
    tokio::spawn(listener::serve(
        listener,
        settings,
        token.clone(),
        move |mut conn: Accepted| {
            let name = name.clone();
            async move {
                while let Some(frame) = conn.next_frame(&name).await {
                    if conn.sender.send(frame).await.is_err() {
                        break;
                    }
                }
            }
        },
    ));
    (addr, token)
}

/// Sends a frame and reads its echo within `limit`.
async fn echoes<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, limit: Duration) -> bool {
    let round_trip = async {
        stream.write_all(PING).await?;
        let mut back = [0u8; 6];
        stream.read_exact(&mut back).await?;
        Ok::<_, std::io::Error>(back == PING)
    };
    matches!(tokio::time::timeout(limit, round_trip).await, Ok(Ok(true)))
}

/// Whether the server closes (EOF or reset) within `limit`.
async fn closed_within<S: AsyncRead + Unpin>(stream: &mut S, limit: Duration) -> bool {
    let closed = async {
        let mut buf = [0u8; 256];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, closed).await.is_ok()
}

/// Whether a connection is refused within [`PROMPTLY`]: reset while it
/// connects (the refusal can arrive before `connect` returns), or closed
/// right after.
async fn refused_promptly(connect: impl Future<Output = std::io::Result<TcpStream>>) -> bool {
    match tokio::time::timeout(PROMPTLY, connect).await {
        Ok(Ok(mut s)) => closed_within(&mut s, PROMPTLY).await,
        Ok(Err(_)) => true,
        Err(_) => false,
    }
}

/// A TCP connection from `source` (a loopback address) to `addr`.
async fn connect_from(source: [u8; 4], addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(addr).await
}

/// Certificates for `name`, and the directory holding them (keep it while
/// they are in use).
fn pki(name: &str) -> (support::certs::TempDir, support::certs::TestPki) {
    let dir = support::certs::temp_dir(name);
    let pki = support::certs::make_pki(&dir, name);
    (dir, pki)
}

fn limits() -> ConnectionLimits {
    ConnectionLimits {
        first_frame_timeout: Some(Duration::from_secs(60)),
        ..ConnectionLimits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_do_not_lock_a_tls_listener() {
    let (_dir, pki) = pki("dos-handshake");
    let server = TlsServer::from_files(&pki.server_cert, &pki.server_key, None).expect("server");
    let limits = ConnectionLimits {
        handshake_timeout: Duration::from_millis(300),
        ..limits()
    };
    let (addr, token) = echo_listener("dos-handshake", Some(server), 4, limits).await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(addr).await.expect("silent connect"));
    }
    let client = TlsClient::from_files(&pki.ca, "localhost", None)
        .expect("client")
        .with_handshake_timeout(Duration::from_secs(2));
    // The silent sockets hold every slot until their handshakes time out;
    // a client refused meanwhile tries again, as a terminal would.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut served = false;
    while !served && tokio::time::Instant::now() < deadline {
        // Refused (reset) while the slots are held: try again.
        if let Ok(tcp) = TcpStream::connect(addr).await
            && let Ok(mut tls) = client.connect(tcp).await
        {
            served = echoes(&mut tls, Duration::from_secs(2)).await;
        }
        if !served {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(served, "a TLS client was locked out by silent sockets");
    for s in &mut silent {
        assert!(closed_within(s, WAIT).await, "a silent socket was kept");
    }
    token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_listener_closes_a_further_connection_at_once() {
    let (addr, token) = echo_listener("dos-full", None, 2, limits()).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        assert!(echoes(&mut s, WAIT).await, "a connection within the limit");
        held.push(s);
    }
    assert!(
        refused_promptly(TcpStream::connect(addr)).await,
        "a connection beyond connections_max was left waiting"
    );
    for s in &mut held {
        assert!(echoes(s, WAIT).await, "the held connections still work");
    }
    // A freed slot is reused.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut served = false;
    while !served && tokio::time::Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(addr).await {
            served = echoes(&mut s, PROMPTLY).await;
        }
    }
    assert!(served, "a freed slot was not reused");
    token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_address_cannot_take_every_slot() {
    let limits = ConnectionLimits {
        per_peer_max: 2,
        ..limits()
    };
    let (addr, token) = echo_listener("dos-peer", None, 3, limits).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from([127, 0, 0, 1], addr).await.expect("connect");
        assert!(echoes(&mut s, WAIT).await, "within the per-peer limit");
        held.push(s);
    }
    assert!(
        refused_promptly(connect_from([127, 0, 0, 1], addr)).await,
        "a third connection from one address was kept"
    );
    let mut other = connect_from([127, 0, 0, 2], addr).await.expect("connect");
    assert!(
        echoes(&mut other, WAIT).await,
        "another peer address was locked out"
    );
    token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_a_first_frame_is_closed_early() {
    let limits = ConnectionLimits {
        first_frame_timeout: Some(Duration::from_millis(300)),
        ..limits()
    };
    let (addr, token) = echo_listener("dos-first", None, 8, limits).await;
    let mut talker = TcpStream::connect(addr).await.expect("connect");
    assert!(echoes(&mut talker, WAIT).await, "first frame");
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    // The idle limit is 60 s: only the first-frame limit closes it.
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)).await,
        "a connection that never sent a frame was kept"
    );
    // The first-frame limit no longer applies once a frame has come.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        echoes(&mut talker, WAIT).await,
        "a connection that spoke was closed by the first-frame limit"
    );
    token.cancel();
}

/// Log lines written by the process-wide subscriber this test binary
/// installs (at info level, so the connection span's link name shows).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let c = Captured::default();
        tracing_subscriber::fmt()
            .with_writer(c.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
        c
    })
}

fn warnings_mentioning(link: &str, what: &str) -> usize {
    let text = String::from_utf8_lossy(&captured().0.lock().expect("capture")).into_owned();
    text.lines()
        .filter(|l| l.contains(" WARN ") && l.contains(link) && l.contains(what))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_about_one_hostile_peer_are_rate_limited() {
    captured();
    let (_dir, pki) = pki("dos-warn");
    let server = TlsServer::from_files(&pki.server_cert, &pki.server_key, None).expect("server");
    let (tls_addr, tls_token) = echo_listener("dos-warn-tls", Some(server), 64, limits()).await;
    let (plain_addr, plain_token) = echo_listener("dos-warn-plain", None, 64, limits()).await;
    let (full_addr, full_token) = echo_listener("dos-warn-full", None, 1, limits()).await;
    let mut held = TcpStream::connect(full_addr).await.expect("connect");
    assert!(echoes(&mut held, WAIT).await, "the one slot");
    let hostile = 30;
    for _ in 0..hostile {
        // Not a TLS hello: the handshake fails.
        let mut s = TcpStream::connect(tls_addr).await.expect("connect");
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.expect("write");
        assert!(closed_within(&mut s, WAIT).await, "refused handshake");
        // A length above frame_bytes_max: the connection is closed.
        let mut s = TcpStream::connect(plain_addr).await.expect("connect");
        s.write_all(b"\xff\xffxx").await.expect("write");
        assert!(closed_within(&mut s, WAIT).await, "oversized frame");
        // Beyond connections_max: refused.
        assert!(refused_promptly(TcpStream::connect(full_addr)).await);
    }
    // Each warning is written before its connection closes.
    let tls_lines = warnings_mentioning("dos-warn-tls", "TLS handshake");
    let plain_lines = warnings_mentioning("dos-warn-plain", "closing connection");
    assert!(
        (1..=3).contains(&tls_lines),
        "{tls_lines} handshake warnings for {hostile} connections from one peer"
    );
    assert!(
        (1..=3).contains(&plain_lines),
        "{plain_lines} framing warnings for {hostile} connections from one peer"
    );
    let full_lines = warnings_mentioning("dos-warn-full", "connection refused");
    assert!(
        (1..=3).contains(&full_lines),
        "{full_lines} refusal warnings for {hostile} connections from one peer"
    );
    tls_token.cancel();
    plain_token.cancel();
    full_token.cancel();
}

/// Connections the kernel completes on a listener that never accepts.
async fn completed_without_accept(listener: &TcpListener, tries: usize) -> usize {
    let addr = listener.local_addr().expect("addr");
    let mut open = Vec::new();
    for _ in 0..tries {
        // A SYN the full queue dropped is retried after 1 s: 300 ms tells.
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await
        {
            open.push(s);
        }
    }
    open.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listen_backlog_reaches_the_kernel() {
    let small = bind::listen("127.0.0.1:0", 3, "dos-backlog")
        .await
        .expect("listen");
    let completed = completed_without_accept(&small, 12).await;
    // Linux queues backlog + 1 completed connections.
    assert!(
        (1..=4).contains(&completed),
        "{completed} connections completed with a backlog of 3"
    );
    let large = bind::listen("127.0.0.1:0", 64, "dos-backlog")
        .await
        .expect("listen");
    assert_eq!(completed_without_accept(&large, 12).await, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_above_somaxconn_is_logged() {
    captured();
    let cap = bind::somaxconn().expect("net.core.somaxconn is readable on Linux");
    let _listener = bind::listen("127.0.0.1:0", cap + 1, "dos-somaxconn")
        .await
        .expect("listen");
    assert_eq!(
        warnings_mentioning("dos-somaxconn", "above net.core.somaxconn"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_that_never_speaks_tls_does_not_hang_the_link() {
    let (_dir, pki) = pki("dos-issuer");
    let mute = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = mute.local_addr().expect("addr").to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let mute_task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = mute.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    let mut settings = EndpointSettings::new("dos-issuer", &addr, codec(), spec);
    settings.tls = Some(
        TlsClient::from_files(&pki.ca, "localhost", None)
            .expect("client")
            .with_handshake_timeout(Duration::from_millis(200)),
    );
    settings.backoff_min = Duration::from_millis(20);
    settings.backoff_max = Duration::from_millis(100);
    let shutdown = CancellationToken::new();
    let link = IssuerLink::start(settings, shutdown.clone());
    support::wait::wait_for("the link retried after handshake time-outs", WAIT, || {
        accepted.load(Ordering::SeqCst) >= 3
    })
    .await;
    assert_eq!(link.up_connections(), 0);
    shutdown.cancel();
    mute_task.abort();
}

fn switch_config(issuer: &str) -> String {
    format!(
        r#"
[switch]
institution_id = "99000000001"

[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
connections_per_peer_max = 1
first_frame_timeout_ms = 60000
listen_backlog = 16

[[issuer]]
name = "issuer-a"
addresses = ["{issuer}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
handshake_timeout_ms = 500
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switch_applies_its_acquirer_limits() {
    // An issuer address nothing listens on: the acquirer side is tested.
    let issuer = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .to_string();
    let config = SwitchConfig::from_toml(&switch_config(&issuer), "dos.toml").expect("config");
    let acquirer = &config.acquirers[0];
    assert_eq!(acquirer.link.listen_backlog, 16);
    assert_eq!(acquirer.link.first_frame_timeout, Duration::from_secs(60));
    assert_eq!(
        config.issuers[0].handshake_timeout,
        Duration::from_millis(500)
    );
    let shutdown = CancellationToken::new();
    let running = cardswitch::node::start(&config, shutdown.clone())
        .await
        .expect("start");
    let addr = running.acquirers[0].1;
    // Accepted in the order they connect: the first is admitted.
    let _first = TcpStream::connect(addr).await.expect("connect");
    assert!(
        refused_promptly(TcpStream::connect(addr)).await,
        "connections_per_peer_max = 1 let a second connection in"
    );
    shutdown.cancel();
    running.stopped().await;
}

#[test]
fn the_limits_default_as_documented() {
    let text = switch_config("127.0.0.1:9")
        .lines()
        .filter(|l| {
            ![
                "connections_per_peer_max",
                "first_frame_timeout_ms",
                "listen_backlog",
                "handshake_timeout_ms",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = SwitchConfig::from_toml(&text, "dos.toml").expect("config");
    let a = &config.acquirers[0];
    assert_eq!(a.link.handshake_timeout, Duration::from_secs(10));
    assert_eq!(a.link.first_frame_timeout, Duration::from_secs(30));
    assert_eq!(a.link.connections_per_peer_max, 256);
    assert_eq!(a.link.listen_backlog, 8192);
    assert_eq!(config.issuers[0].handshake_timeout, Duration::from_secs(10));
}

#[test]
fn out_of_range_limits_are_refused_with_file_line_and_range() {
    let cases = [
        (
            "connections_per_peer_max = 1",
            "connections_per_peer_max = 0",
            "1..=100000",
        ),
        (
            "first_frame_timeout_ms = 60000",
            "first_frame_timeout_ms = 50",
            "100..=600000",
        ),
        ("listen_backlog = 16", "listen_backlog = 70000", "1..=65535"),
        (
            "handshake_timeout_ms = 500",
            "handshake_timeout_ms = 60001",
            "100..=60000",
        ),
    ];
    let good = switch_config("127.0.0.1:9");
    for (from, to, range) in cases {
        let text = good.replace(from, to);
        let line = text
            .lines()
            .position(|l| l == to)
            .expect("the changed line")
            + 1;
        let err = SwitchConfig::from_toml(&text, "dos.toml").expect_err(to);
        let shown = err.to_string();
        assert_eq!(err.line(), Some(line), "{shown}");
        assert!(shown.starts_with(&format!("dos.toml:{line}:")), "{shown}");
        assert!(shown.contains(range), "{shown}");
    }
}
