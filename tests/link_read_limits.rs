//! A frame reader's time limits in virtual time: the idle and the frame
//! limit are kept exactly, and waiting costs no wake-ups (the reader once
//! looked at the socket every 250 ms: 40,000 wake-ups a second for 10,000
//! idle terminals).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use cardswitch::link::connection::{self, ReadError, ReadLimits};
use cardswitch::link::framing::{FrameCodec, Framing, LengthHeader};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::time::Instant;

/// A stream that counts the reads asked of it.
struct Counted {
    inner: DuplexStream,
    reads: Arc<AtomicUsize>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

const LIMITS: ReadLimits = ReadLimits {
    idle: Some(Duration::from_secs(10)),
    frame: Some(Duration::from_secs(2)),
};

/// A reader with [`LIMITS`], its peer's end, and its read counter.
fn reader() -> (
    connection::FrameReader<tokio::io::ReadHalf<Counted>>,
    DuplexStream,
    Arc<AtomicUsize>,
) {
    let (ours, peer) = tokio::io::duplex(4096);
    let reads = Arc::new(AtomicUsize::new(0));
    let stream = Counted {
        inner: ours,
        reads: reads.clone(),
    };
    let codec = FrameCodec::new(Framing::new(LengthHeader::Binary2));
    let (mut reader, _sender, _writer) = connection::open(stream, codec);
    reader.set_limits(LIMITS);
    (reader, peer, reads)
}

#[tokio::test(start_paused = true)]
async fn an_idle_wait_ends_at_its_limit_without_waking_before() {
    let (mut reader, _peer, reads) = reader();
    let start = Instant::now();
    let error = reader.next().await.expect_err("no frame");
    assert!(
        matches!(error, ReadError::Idle(d) if d == Duration::from_secs(10)),
        "{error:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    // One read when the wait starts and one when its timer fires.
    assert!(
        reads.load(Ordering::Relaxed) <= 2,
        "{} reads",
        reads.load(Ordering::Relaxed)
    );
}

#[tokio::test(start_paused = true)]
async fn a_started_frame_has_the_frame_limit_from_its_first_byte() {
    let (mut reader, mut peer, _reads) = reader();
    let start = Instant::now();
    let feeder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        // A 2-byte length of 16, then 3 of the 16 bytes.
        peer.write_all(&[0x00, 0x10, b'0', b'1', b'0'])
            .await
            .expect("write");
        peer
    });
    let error = reader.next().await.expect_err("an incomplete frame");
    match error {
        ReadError::Stalled { waited, buffered } => {
            assert_eq!(waited, Duration::from_secs(2));
            assert_eq!(buffered, 5);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    drop(feeder.await);
}

#[tokio::test(start_paused = true)]
async fn frames_within_the_limits_are_read() {
    let (mut reader, mut peer, _reads) = reader();
    tokio::spawn(async move {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(9)).await;
            peer.write_all(&[0x00, 0x04, b'0', b'8', b'0', b'0'])
                .await
                .expect("write");
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    for _ in 0..3 {
        let frame = reader.next().await.expect("read").expect("a frame");
        assert_eq!(&frame.message[..], b"0800");
    }
}
