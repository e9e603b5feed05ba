//! A listener under hostile peers: garbage, half a frame, an oversized
//! length, a stall in the middle of a frame, and an idle peer each end their
//! own connection cleanly, while a well-behaved client on the same listener
//! keeps being served.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cardswitch::link::connection::{self, ReadLimits};
use cardswitch::link::framing::{Frame, FrameCodec, Framing, LengthHeader};
use cardswitch::link::listener::{self, Accepted, ListenerSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Counts {
    closed_with_error: AtomicUsize,
    echoed: AtomicUsize,
}

fn codec() -> FrameCodec {
    FrameCodec::new(Framing::new(LengthHeader::Ascii4).with_frame_bytes_max(512))
}

async fn start_echo_listener(counts: Arc<Counts>) -> (String, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let token = CancellationToken::new();
    let settings = ListenerSettings {
        name: "acquirers".into(),
        codec: codec(),
        tls: None,
        connections_max: 64,
        drain_deadline: Duration::from_secs(1),
        limits: Default::default(),
        read_limits: ReadLimits {
            idle: Some(Duration::from_millis(1500)),
            frame: Some(Duration::from_millis(300)),
        },
    };
    let t = token.clone();
    tokio::spawn(listener::serve(
        listener,
        settings,
        t,
        move |mut conn: Accepted| {
            let counts = counts.clone();
            async move {
                loop {
                    match conn.reader.next().await {
                        Ok(Some(frame)) => {
                            counts.echoed.fetch_add(1, Ordering::SeqCst);
                            if conn.sender.send(frame).await.is_err() {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(_) => {
                            counts.closed_with_error.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                    }
                }
            }
        },
    ));
    (addr, token)
}

/// Writes `bytes`, then waits for the server to close: returns how long it took.
async fn hostile(addr: &str, bytes: &[u8], then_close: bool) -> Duration {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    if then_close {
        s.shutdown().await.expect("shutdown");
    }
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("server must close the connection")
        .unwrap_or(0);
    assert_eq!(n, 0, "server answered a hostile peer");
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_end_only_their_own_connection() {
    let counts = Arc::new(Counts::default());
    let (addr, token) = start_echo_listener(counts.clone()).await;

    // A good client that keeps exchanging frames throughout.
    let good = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let stream = TcpStream::connect(&addr).await.expect("connect");
            let (mut reader, sender, _w) = connection::open(stream, codec());
            let mut n = 0;
            let until = Instant::now() + Duration::from_millis(1200);
            while Instant::now() < until {
                let msg = Bytes::from(format!("0800 good {n}"));
                sender.send(Frame::new(msg.clone())).await.expect("send");
                let back = reader.next().await.expect("read").expect("frame");
                assert_eq!(back.message, msg);
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            n
        })
    };

    hostile(&addr, b"GARBAGE!garbage", false).await; // not a length
    hostile(&addr, b"0050half a frame", true).await; // closed mid-frame
    hostile(&addr, b"9999", false).await; // over the 512-byte limit
    let stalled = hostile(&addr, b"0050stall", false).await; // stalls mid-frame
    assert!(
        stalled >= Duration::from_millis(250),
        "stall cut after {stalled:?}"
    );
    assert!(
        stalled < Duration::from_secs(2),
        "stall held for {stalled:?}"
    );

    let exchanged = good.await.expect("good client");
    assert!(exchanged > 20, "good client served only {exchanged} times");
    assert_eq!(counts.closed_with_error.load(Ordering::SeqCst), 4);

    // An idle connection is closed after the idle limit.
    let idle = hostile(&addr, b"", false).await;
    assert!(
        idle >= Duration::from_millis(1200),
        "idle cut after {idle:?}"
    );
    token.cancel();
}
