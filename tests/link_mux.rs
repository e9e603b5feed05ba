//! Framed connections and request matching over real loopback sockets.

use std::sync::Arc;
use std::time::Duration;

use cardswitch::link::connection;
use cardswitch::link::framing::{Frame, FrameCodec, Framing, LengthHeader};
use cardswitch::link::mux::{Delivery, KEY_FIELDS_DEFAULT, Mux, MuxError};
use cardswitch::message::{Message, Spec};
use tokio::net::{TcpListener, TcpStream};

mod support;

fn request(stan: u32) -> Message {
    let mut m = Message::new("0100".parse().expect("mti"));
    m.set_str(2, "4761739001010119").expect("set");
    m.set_str(3, "000000").expect("set");
    m.set_num(4, u64::from(stan) * 10, 12).expect("set");
    m.set_num(11, u64::from(stan), 6).expect("set");
    m.set_str(41, "TERM0001").expect("set");
    m
}

/// An issuer stand-in: answers every request with 00, after `delay` for
/// STANs divisible by 7, and twice for STANs divisible by 11.
async fn answering_peer(listener: TcpListener, spec: Arc<Spec>, delay: Duration) {
    let (stream, _) = listener.accept().await.expect("accept");
    let codec = FrameCodec::new(Framing::new(LengthHeader::Binary2));
    let (mut reader, sender, _writer) = connection::open(stream, codec);
    while let Ok(Some(frame)) = reader.next().await {
        let spec = spec.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            let req = spec.parse(&frame.message).expect("parse request");
            let stan = req.get_u64(11).expect("stan");
            let mut resp = req.clone();
            resp.set_mti(req.mti().response().expect("response mti"));
            resp.set_str(39, "00").expect("set");
            if stan.is_multiple_of(7) {
                tokio::time::sleep(delay).await;
            }
            let bytes = spec.build(&resp).expect("build");
            let _ = sender.send(Frame::new(bytes.clone())).await;
            if stan.is_multiple_of(11) {
                let _ = sender.send(Frame::new(bytes)).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_match_their_requests_and_late_ones_are_unmatched() {
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(answering_peer(
        listener,
        spec.clone(),
        Duration::from_millis(2000),
    ));

    let stream = TcpStream::connect(addr).await.expect("connect");
    let codec = FrameCodec::new(Framing::new(LengthHeader::Binary2));
    let (mut reader, sender, _writer) = connection::open(stream, codec);
    let mux = Arc::new(Mux::new(spec.clone(), sender, KEY_FIELDS_DEFAULT, 4096));
    let unmatched = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let mux = mux.clone();
        let spec = spec.clone();
        let unmatched = unmatched.clone();
        tokio::spawn(async move {
            while let Ok(Some(frame)) = reader.next().await {
                let msg = spec.parse(&frame.message).expect("parse response");
                if let Delivery::Unmatched(_) = mux.deliver(Box::new(msg)) {
                    unmatched.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
    }

    let mut tasks = Vec::new();
    for stan in 1..=500u32 {
        let mux = mux.clone();
        tasks.push(tokio::spawn(async move {
            let r = mux
                .request(&request(stan), Duration::from_millis(1000))
                .await;
            (stan, r)
        }));
    }
    let mut answered = 0;
    let mut timed_out = 0;
    for t in tasks {
        let (stan, r) = t.await.expect("task");
        match r {
            Ok(resp) => {
                assert_eq!(
                    resp.get_u64(11),
                    Some(u64::from(stan)),
                    "wrong response matched"
                );
                assert_eq!(resp.get_u64(4), Some(u64::from(stan) * 10));
                assert_eq!(resp.mti().to_string(), "0110");
                assert_ne!(stan % 7, 0, "a delayed answer arrived in time");
                answered += 1;
            }
            Err(MuxError::Timeout(_)) => {
                assert_eq!(stan % 7, 0, "stan {stan} timed out");
                timed_out += 1;
            }
            Err(e) => panic!("stan {stan}: {e}"),
        }
    }
    assert_eq!(timed_out, 500 / 7);
    assert_eq!(answered, 500 - 500 / 7);
    // Late answers (STAN % 7) and second copies (STAN % 11) are unmatched.
    // The late ones leave the peer 2 s after it read their requests: wait
    // for them all (within a limit), then hold the count to exactly that.
    let late = 500 / 7;
    let doubles = 500 / 11;
    let count = || unmatched.load(std::sync::atomic::Ordering::SeqCst);
    support::wait::wait_for("the late answers", Duration::from_secs(10), || {
        count() >= late + doubles
    })
    .await;
    // Anything more would have arrived with the rest.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(count(), late + doubles);
    assert_eq!(mux.in_flight(), 0);
}

#[tokio::test]
async fn in_flight_limit_and_duplicate_keys_are_refused() {
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // A peer that reads and never answers.
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut sink = tokio::io::sink();
        let _ = tokio::io::copy(&mut s, &mut sink).await;
    });
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (_reader, sender, _w) =
        connection::open(stream, FrameCodec::new(Framing::new(LengthHeader::Ascii4)));
    let mux = Arc::new(Mux::new(spec, sender, KEY_FIELDS_DEFAULT, 2));
    let a = {
        let mux = mux.clone();
        tokio::spawn(async move { mux.request(&request(1), Duration::from_millis(300)).await })
    };
    let b = {
        let mux = mux.clone();
        tokio::spawn(async move { mux.request(&request(2), Duration::from_millis(300)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(
        mux.request(&request(3), Duration::from_millis(10)).await,
        Err(MuxError::Busy(2))
    ));
    assert!(matches!(a.await.expect("task"), Err(MuxError::Timeout(_))));
    assert!(matches!(b.await.expect("task"), Err(MuxError::Timeout(_))));
    let c = {
        let mux = mux.clone();
        tokio::spawn(async move { mux.request(&request(4), Duration::from_millis(200)).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(matches!(
        mux.request(&request(4), Duration::from_millis(10)).await,
        Err(MuxError::DuplicateKey)
    ));
    assert!(matches!(c.await.expect("task"), Err(MuxError::Timeout(_))));
    assert_eq!(mux.in_flight(), 0);
}
