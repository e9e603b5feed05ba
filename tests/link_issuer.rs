//! Issuer links over loopback: reconnect after the issuer restarts, echo
//! based down detection, round robin over parallel connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use cardswitch::link::connector::{EndpointSettings, IssuerLink, LinkError};
use cardswitch::link::framing::{Frame, FrameCodec, Framing, LengthHeader};
use cardswitch::link::listener::{self, Accepted, ListenerSettings};
use cardswitch::message::netmgmt;
use cardswitch::message::{Message, Spec};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod support;

/// How long any state of the link may take to come about.
const WAIT: Duration = Duration::from_secs(10);

async fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    support::wait::wait_for(what, WAIT, cond).await;
}

fn codec() -> FrameCodec {
    FrameCodec::new(Framing::new(LengthHeader::Binary2))
}

#[derive(Default)]
struct PeerState {
    answer_echoes: AtomicBool,
    echoes_seen: AtomicUsize,
    connections: AtomicUsize,
}

/// A minimal issuer: answers 0100 with 0110/00 and, when allowed, echoes.
async fn start_peer(addr: &str, spec: Arc<Spec>, state: Arc<PeerState>) -> CancellationToken {
    let listener = TcpListener::bind(addr).await.expect("bind");
    let token = CancellationToken::new();
    let settings = ListenerSettings {
        name: "peer".into(),
        codec: codec(),
        tls: None,
        connections_max: 16,
        read_limits: Default::default(),
        drain_deadline: Duration::from_secs(1),
        limits: Default::default(),
    };
    let t = token.clone();
    tokio::spawn(async move {
        listener::serve(listener, settings, t, move |mut conn: Accepted| {
            let spec = spec.clone();
            let state = state.clone();
            async move {
                state.connections.fetch_add(1, Ordering::SeqCst);
                loop {
                    let frame = tokio::select! {
                        _ = conn.shutdown.cancelled() => break,
                        f = conn.reader.next() => f,
                    };
                    let Ok(Some(frame)) = frame else { break };
                    let msg = spec.parse(&frame.message).expect("parse");
                    let resp = if let Some(r) = netmgmt::answer(&msg) {
                        state.echoes_seen.fetch_add(1, Ordering::SeqCst);
                        if !state.answer_echoes.load(Ordering::SeqCst) {
                            continue;
                        }
                        r
                    } else {
                        let mut r = msg.clone();
                        r.set_mti(msg.mti().response().expect("response"));
                        r.set_str(39, "00").expect("set");
                        r
                    };
                    let bytes = spec.build(&resp).expect("build");
                    if conn.sender.send(Frame::new(bytes)).await.is_err() {
                        break;
                    }
                }
            }
        })
        .await;
    });
    token
}

fn auth(stan: u64) -> Message {
    let mut m = Message::new("0100".parse().expect("mti"));
    m.set_str(3, "000000").expect("set");
    m.set_num(4, 100, 12).expect("set");
    m.set_num(11, stan, 6).expect("set");
    m.set_str(41, "TERM0001").expect("set");
    m
}

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_issuer_restarts() {
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    let addr = free_port();
    let state = Arc::new(PeerState::default());
    state.answer_echoes.store(true, Ordering::SeqCst);
    let peer = start_peer(&addr, spec.clone(), state.clone()).await;

    let mut settings = EndpointSettings::new("issuer-a", &addr, codec(), spec.clone());
    settings.connections = 2;
    settings.backoff_min = Duration::from_millis(20);
    settings.backoff_max = Duration::from_millis(200);
    let shutdown = CancellationToken::new();
    let link = IssuerLink::start(settings, shutdown.clone());
    wait_for("both connections up", || link.up_connections() == 2).await;
    for stan in 1..=10 {
        let r = link
            .request(&auth(stan), Duration::from_secs(2))
            .await
            .expect("answer");
        assert_eq!(r.get_u64(11), Some(stan));
    }

    peer.cancel();
    wait_for("connections down", || link.up_connections() == 0).await;
    assert!(matches!(
        link.request(&auth(11), Duration::from_millis(100)).await,
        Err(LinkError::NoConnection(_))
    ));

    let before = state.connections.load(Ordering::SeqCst);
    let _peer = start_peer(&addr, spec.clone(), state.clone()).await;
    wait_for("reconnected", || link.up_connections() == 2).await;
    // The link counts a connection up once the kernel completes the
    // handshake, which can be before the peer's accept loop has run its
    // handler: wait for the peer's own count rather than reading it once.
    wait_for("the peer accepted both new connections", || {
        state.connections.load(Ordering::SeqCst) >= before + 2
    })
    .await;
    let r = link
        .request(&auth(12), Duration::from_secs(2))
        .await
        .expect("answer after restart");
    assert_eq!(r.get_str(39), Some("00"));
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_echoes_mark_the_link_down_until_they_recover() {
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    let addr = free_port();
    let state = Arc::new(PeerState::default());
    state.answer_echoes.store(true, Ordering::SeqCst);
    let _peer = start_peer(&addr, spec.clone(), state.clone()).await;

    let mut settings = EndpointSettings::new("issuer-b", &addr, codec(), spec.clone());
    settings.echo_interval = Some(Duration::from_millis(200));
    settings.echo_timeout = Duration::from_millis(300);
    settings.sign_on = true;
    let shutdown = CancellationToken::new();
    let link = IssuerLink::start(settings, shutdown.clone());
    wait_for("up", || link.up_connections() == 1).await;
    wait_for("echoes sent", || {
        state.echoes_seen.load(Ordering::SeqCst) >= 3
    })
    .await;

    state.answer_echoes.store(false, Ordering::SeqCst);
    wait_for("marked down", || link.up_connections() == 0).await;
    assert!(matches!(
        link.request(&auth(1), Duration::from_millis(100)).await,
        Err(LinkError::NoConnection(_))
    ));
    state.answer_echoes.store(true, Ordering::SeqCst);
    wait_for("back up", || link.up_connections() == 1).await;
    link.request(&auth(2), Duration::from_secs(1))
        .await
        .expect("answer once up");
    shutdown.cancel();
}

/// An issuer's own echo is answered by the link (0810, DE39 00), the link
/// signs on (DE70 001) when configured, and signs off (002) on shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_echoes_are_answered_and_the_link_signs_on_and_off() {
    use cardswitch::link::connection;
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let mut settings = EndpointSettings::new("issuer-c", &addr, codec(), spec.clone());
    settings.sign_on = true;
    settings.echo_interval = None;
    let shutdown = CancellationToken::new();
    let link = IssuerLink::start(settings, shutdown.clone());

    let (stream, _) = listener.accept().await.expect("accept");
    let (mut reader, sender, _w) = connection::open(stream, codec());
    let sign_on = read_message(&mut reader, &spec).await;
    assert_eq!(
        (sign_on.mti().to_string().as_str(), sign_on.get_str(70)),
        ("0800", Some("001"))
    );
    let answer = netmgmt::answer(&sign_on).expect("answer");
    sender
        .send(Frame::new(spec.build(&answer).expect("build")))
        .await
        .expect("send");
    wait_for("up after sign-on", || link.up_connections() == 1).await;

    // The issuer echoes the switch: the link answers by itself.
    let echo = netmgmt::request(0, netmgmt::ECHO, 777_777, std::time::SystemTime::now());
    sender
        .send(Frame::new(spec.build(&echo).expect("build")))
        .await
        .expect("send");
    let reply = read_message(&mut reader, &spec).await;
    assert_eq!(reply.mti().to_string(), "0810");
    assert_eq!(
        (reply.get_str(11), reply.get_str(39)),
        (Some("777777"), Some("00"))
    );

    shutdown.cancel();
    let sign_off = read_message(&mut reader, &spec).await;
    assert_eq!(
        (sign_off.mti().to_string().as_str(), sign_off.get_str(70)),
        ("0800", Some("002"))
    );
}

async fn read_message<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut cardswitch::link::connection::FrameReader<R>,
    spec: &Spec,
) -> Message {
    let frame = tokio::time::timeout(Duration::from_secs(5), reader.next())
        .await
        .expect("in time")
        .expect("read")
        .expect("a frame");
    spec.parse(&frame.message).expect("parse")
}
