//! Frames per second through one link pair (encode, loopback socket, decode,
//! echo back, decode) with 200-byte messages and 64 frames in flight, and a
//! bare tokio echo over the same loopback as the reference in the same run.
//! Goal (issue 3): cardswitch's link at more than 0.8 of the bare echo.
//!
//!   cargo bench --bench link -- --noplot

use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use cardswitch::link::connection::{self, FrameReader, FrameSender};
use cardswitch::link::framing::{Frame, FrameCodec, Framing, LengthHeader};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MESSAGE_BYTES: usize = 200;
const WINDOW: u64 = 64;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn codec() -> FrameCodec {
    FrameCodec::new(Framing::new(LengthHeader::Binary2))
}

fn payload() -> Bytes {
    Bytes::from(vec![b'7'; MESSAGE_BYTES])
}

/// Our link on both ends: the server echoes every frame it reads.
async fn cardswitch_pair() -> (FrameReader<tokio::io::ReadHalf<TcpStream>>, FrameSender) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let (mut reader, sender, _w) = connection::open(s, codec());
        // A burst is handled as it arrives: the first frame awaited, the
        // rest already buffered taken without another read.
        while let Ok(Some(f)) = reader.next().await {
            if sender.send(f).await.is_err() {
                return;
            }
            while let Ok(Some(f)) = reader.next_buffered() {
                if sender.send(f).await.is_err() {
                    return;
                }
            }
        }
    });
    let s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let (reader, sender, _w) = connection::open(s, codec());
    (reader, sender)
}

async fn cardswitch_round_trips(
    reader: &mut FrameReader<tokio::io::ReadHalf<TcpStream>>,
    sender: &FrameSender,
    n: u64,
) -> Duration {
    let msg = payload();
    let start = Instant::now();
    let mut sent = 0;
    let mut received = 0;
    while received < n {
        while sent < n && sent - received < WINDOW {
            sender.send(Frame::new(msg.clone())).await.expect("send");
            sent += 1;
        }
        let f = reader.next().await.expect("read").expect("frame");
        assert_eq!(f.message.len(), MESSAGE_BYTES);
        received += 1;
        while let Some(f) = reader.next_buffered().expect("buffered") {
            assert_eq!(f.message.len(), MESSAGE_BYTES);
            received += 1;
        }
    }
    start.elapsed()
}

/// The reference: a plain `tokio::io::copy` echo server and a client that
/// writes length-prefixed frames in batches and counts them back.
async fn bare_pair() -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let (mut r, mut w) = s.into_split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    });
    let s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s
}

async fn bare_round_trips(stream: &mut TcpStream, n: u64) -> Duration {
    let mut frame = BytesMut::new();
    frame.put_u16(MESSAGE_BYTES as u16);
    frame.put_slice(&payload());
    let (mut r, mut w) = stream.split();
    let start = Instant::now();
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut inbuf = BytesMut::with_capacity(64 * 1024);
    let mut sent = 0;
    let mut received = 0;
    while received < n {
        while sent < n && sent - received < WINDOW {
            out.put_slice(&frame);
            sent += 1;
        }
        if !out.is_empty() {
            w.write_all(&out).await.expect("write");
            out.clear();
        }
        if r.read_buf(&mut inbuf).await.expect("read") == 0 {
            panic!("echo closed");
        }
        while inbuf.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([inbuf[0], inbuf[1]]));
            if inbuf.len() < 2 + len {
                break;
            }
            inbuf.advance(2 + len);
            received += 1;
        }
    }
    start.elapsed()
}

fn link(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("link-200B-window64");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));

    let (mut reader, sender) = rt.block_on(cardswitch_pair());
    group.bench_function("cardswitch", |b| {
        b.iter_custom(|iters| rt.block_on(cardswitch_round_trips(&mut reader, &sender, iters)))
    });
    let mut bare = rt.block_on(bare_pair());
    group.bench_function("bare-tokio-echo", |b| {
        b.iter_custom(|iters| rt.block_on(bare_round_trips(&mut bare, iters)))
    });
    group.finish();
}

criterion_group!(benches, link);
criterion_main!(benches);
