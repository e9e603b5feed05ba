//! TCP stream reassembly for pcap readers: segments are put back in
//! sequence order per direction of each connection (retransmissions
//! trimmed, out-of-order segments held within a limit), and the link's
//! framing cuts each direction into frames. A gap, a framing error or a
//! stream that ends mid-frame is reported with its position and ends only
//! that direction of that connection; the others go on.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use super::record::{Capture, CapturedFrame, Position};
use crate::link::framing::{FrameCodec, Framing, FramingError};

/// Connections tracked at most in one capture.
pub const CONNECTIONS_MAX: usize = 10_000;
/// Out-of-order bytes held per direction before a gap is declared.
pub const OUT_OF_ORDER_BYTES_MAX: usize = 1024 * 1024;
/// Frames read from one capture at most.
pub const FRAMES_MAX: usize = 5_000_000;

/// One TCP segment of a packet.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub position: Position,
    pub time_us: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub syn: bool,
    pub ack: bool,
    pub payload: &'a [u8],
}

/// Why one direction of a stream could not be read to its end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    #[error("{position}: stream {flow}: {source}")]
    Framing {
        position: Position,
        flow: Flow,
        #[source]
        source: FramingError,
    },
    #[error(
        "{position}: stream {flow}: more than {max} bytes out of order; {missing} bytes missing before them"
    )]
    Gap {
        position: Position,
        flow: Flow,
        missing: u32,
        max: usize,
    },
    #[error(
        "{position}: stream {flow}: {missing} bytes never captured before the segment here; the rest of this direction is skipped"
    )]
    Missing {
        position: Position,
        flow: Flow,
        missing: u32,
    },
    #[error("stream {flow}: ends in the middle of a frame ({buffered} bytes after {position})")]
    Truncated {
        position: Position,
        flow: Flow,
        buffered: usize,
    },
    #[error("{position}: more than {max} TCP connections; this one is skipped")]
    TooManyConnections { position: Position, max: usize },
    #[error("{position}: more than {max} frames; the rest of the capture is skipped")]
    TooManyFrames { position: Position, max: usize },
}

/// A direction of a connection, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.src, self.dst)
    }
}

struct Half {
    next_seq: Option<u32>,
    buf: BytesMut,
    codec: FrameCodec,
    /// Segments ahead of `next_seq`, by sequence number.
    ahead: BTreeMap<u32, (Position, Vec<u8>)>,
    ahead_bytes: usize,
    broken: bool,
    last: Position,
}

struct Connection {
    index: u64,
    server: SocketAddr,
    client: SocketAddr,
    /// [from client, from server]
    halves: [Half; 2],
}

/// Reassembles the TCP streams of one capture.
pub struct Reassembler {
    framing: Framing,
    connections: HashMap<(SocketAddr, SocketAddr), Connection>,
    capture: Capture,
    full: bool,
    /// Only connections whose server is this `ip:port`, when given.
    server_filter: Option<String>,
}

fn key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b { (a, b) } else { (b, a) }
}

/// Signed distance from `from` to `to` in sequence space.
fn distance(from: u32, to: u32) -> i64 {
    i64::from(to.wrapping_sub(from) as i32)
}

impl Reassembler {
    pub fn new(framing: Framing) -> Reassembler {
        Reassembler {
            framing,
            connections: HashMap::new(),
            capture: Capture::default(),
            full: false,
            server_filter: None,
        }
    }

    /// Keeps only the connections whose server is `server` (`ip:port`).
    pub fn only_server(mut self, server: Option<&str>) -> Reassembler {
        self.server_filter = server.map(str::to_string);
        self
    }

    /// A problem found outside the streams (a packet that is not TCP/IP...).
    pub fn problem(&mut self, text: String) {
        self.capture.problems.push(text);
    }

    /// Feeds one segment.
    pub fn segment(&mut self, seg: Segment<'_>) {
        if self.full {
            return;
        }
        let k = key(seg.src, seg.dst);
        if !self.connections.contains_key(&k) {
            if self.connections.len() >= CONNECTIONS_MAX {
                self.problem(
                    StreamError::TooManyConnections {
                        position: seg.position,
                        max: CONNECTIONS_MAX,
                    }
                    .to_string(),
                );
                return;
            }
            let server = match (seg.syn, seg.ack) {
                (true, false) => seg.dst,
                (true, true) => seg.src,
                _ if seg.src.port() < seg.dst.port() => seg.src,
                _ => seg.dst,
            };
            if self
                .server_filter
                .as_ref()
                .is_some_and(|f| *f != server.to_string())
            {
                return;
            }
            let half = || Half {
                next_seq: None,
                buf: BytesMut::new(),
                codec: FrameCodec::new(self.framing.clone()),
                ahead: BTreeMap::new(),
                ahead_bytes: 0,
                broken: false,
                last: seg.position,
            };
            let index = self.connections.len() as u64 + 1;
            let client = if server == seg.dst { seg.src } else { seg.dst };
            self.connections.insert(
                k,
                Connection {
                    index,
                    server,
                    client,
                    halves: [half(), half()],
                },
            );
        }
        let Some(conn) = self.connections.get_mut(&k) else {
            return;
        };
        let from_client = seg.dst == conn.server;
        let flow = Flow {
            src: seg.src,
            dst: seg.dst,
        };
        let link = conn.server.to_string();
        let index = conn.index;
        let half = &mut conn.halves[usize::from(!from_client)];
        let out = &mut self.capture;
        if half.broken {
            return;
        }
        let mut seq = seg.seq;
        if seg.syn {
            seq = seq.wrapping_add(1);
        }
        let next = *half.next_seq.get_or_insert(seq);
        if seg.payload.is_empty() {
            return;
        }
        half.last = seg.position;
        let d = distance(next, seq);
        if d > 0 {
            half.ahead_bytes += seg.payload.len();
            half.ahead.insert(seq, (seg.position, seg.payload.to_vec()));
            if half.ahead_bytes > OUT_OF_ORDER_BYTES_MAX {
                half.broken = true;
                out.problems.push(
                    StreamError::Gap {
                        position: seg.position,
                        flow,
                        missing: d as u32,
                        max: OUT_OF_ORDER_BYTES_MAX,
                    }
                    .to_string(),
                );
            }
            return;
        }
        append(half, seq, seg.payload);
        // Segments that now follow on.
        while let Some((&s, _)) = half
            .ahead
            .iter()
            .find(|(s, _)| distance(half.next_seq.unwrap_or(**s), **s) <= 0)
        {
            if let Some((pos, data)) = half.ahead.remove(&s) {
                half.ahead_bytes -= data.len();
                half.last = pos;
                append(half, s, &data);
            }
        }
        let ctx = FrameContext {
            link: &link,
            connection: index,
            from_client,
            flow,
            time_us: seg.time_us,
        };
        if !drain_frames(half, &ctx, out) {
            self.full = true;
        }
    }

    /// Ends the capture: reports gaps and streams cut mid-frame.
    pub fn finish(mut self) -> Capture {
        let mut conns: Vec<_> = self.connections.into_values().collect();
        conns.sort_by_key(|c| c.index);
        for conn in conns {
            for (i, half) in conn.halves.iter().enumerate() {
                if half.broken {
                    continue;
                }
                let (src, dst) = if i == 0 {
                    (conn.client, conn.server)
                } else {
                    (conn.server, conn.client)
                };
                let flow = Flow { src, dst };
                if let (Some((&s, (pos, _))), Some(next)) =
                    (half.ahead.iter().next(), half.next_seq)
                {
                    self.capture.problems.push(
                        StreamError::Missing {
                            position: *pos,
                            flow,
                            missing: s.wrapping_sub(next),
                        }
                        .to_string(),
                    );
                } else if !half.buf.is_empty() {
                    self.capture.problems.push(
                        StreamError::Truncated {
                            position: half.last,
                            flow,
                            buffered: half.buf.len(),
                        }
                        .to_string(),
                    );
                }
            }
        }
        self.capture
    }
}

fn append(half: &mut Half, seq: u32, payload: &[u8]) {
    let next = half.next_seq.unwrap_or(seq);
    let skip = (-distance(next, seq)).max(0) as usize;
    if skip >= payload.len() {
        return; // a retransmission of bytes already taken
    }
    half.buf.extend_from_slice(&payload[skip..]);
    half.next_seq = Some(next.wrapping_add((payload.len() - skip) as u32));
}

struct FrameContext<'a> {
    link: &'a str,
    connection: u64,
    from_client: bool,
    flow: Flow,
    time_us: u64,
}

/// Cuts the complete frames; false when the frame limit is reached.
fn drain_frames(half: &mut Half, ctx: &FrameContext<'_>, out: &mut Capture) -> bool {
    loop {
        match half.codec.decode(&mut half.buf) {
            Ok(Some(frame)) => {
                if out.frames.len() >= FRAMES_MAX {
                    out.problems.push(
                        StreamError::TooManyFrames {
                            position: half.last,
                            max: FRAMES_MAX,
                        }
                        .to_string(),
                    );
                    return false;
                }
                out.frames.push(CapturedFrame {
                    time_us: ctx.time_us,
                    link: ctx.link.to_string(),
                    connection: ctx.connection,
                    from_client: ctx.from_client,
                    tpdu: frame.tpdu,
                    message: frame.message,
                    position: half.last,
                });
            }
            Ok(None) => return true,
            Err(source) => {
                out.problems.push(
                    StreamError::Framing {
                        position: half.last,
                        flow: ctx.flow,
                        source,
                    }
                    .to_string(),
                );
                half.broken = true;
                half.buf.clear();
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::framing::LengthHeader;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    fn seg<'a>(n: u64, src: &str, dst: &str, seq: u32, payload: &'a [u8]) -> Segment<'a> {
        Segment {
            position: Position::Packet {
                number: n,
                offset: n * 100,
            },
            time_us: n,
            src: addr(src),
            dst: addr(dst),
            seq,
            syn: false,
            ack: true,
            payload,
        }
    }

    fn framed(msg: &[u8]) -> Vec<u8> {
        let mut v = (msg.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(msg);
        v
    }

    #[test]
    fn reorders_trims_retransmissions_and_splits_frames() {
        let c = "10.0.0.2:40000";
        let s = "10.0.0.1:8583";
        let mut wire = framed(b"0100AAAA");
        wire.extend(framed(b"0100BBBB"));
        let mut r = Reassembler::new(Framing::new(LengthHeader::Binary2));
        let mut syn = seg(1, c, s, 999, b"");
        syn.syn = true;
        syn.ack = false;
        r.segment(syn);
        r.segment(seg(2, c, s, 1000, &wire[..5]));
        r.segment(seg(3, c, s, 1012, &wire[12..])); // ahead
        r.segment(seg(4, c, s, 1003, &wire[3..12])); // overlaps 2 bytes
        r.segment(seg(5, s, c, 7, &framed(b"0110AAAA")));
        let cap = r.finish();
        assert!(cap.problems.is_empty(), "{:?}", cap.problems);
        let msgs: Vec<&[u8]> = cap.frames.iter().map(|f| &f.message[..]).collect();
        assert_eq!(msgs, vec![&b"0100AAAA"[..], b"0100BBBB", b"0110AAAA"]);
        assert!(cap.frames[0].from_client && !cap.frames[2].from_client);
        assert_eq!(cap.frames[0].link, "10.0.0.1:8583");
        assert_eq!(
            cap.frames[1].position,
            Position::Packet {
                number: 3,
                offset: 300
            }
        );
    }

    #[test]
    fn gaps_and_cut_frames_are_reported_with_positions() {
        let c = "10.0.0.2:40000";
        let s = "10.0.0.1:8583";
        let wire = framed(b"0100AAAA");
        let mut r = Reassembler::new(Framing::new(LengthHeader::Binary2));
        r.segment(seg(1, c, s, 0, &wire[..4]));
        r.segment(seg(2, c, s, 6, &wire[6..]));
        r.segment(seg(3, s, c, 0, &framed(b"0110")[..4]));
        let cap = r.finish();
        assert!(cap.frames.is_empty());
        assert_eq!(
            cap.problems,
            vec![
                "packet 2 (byte 200): stream 10.0.0.2:40000 -> 10.0.0.1:8583: 2 bytes never captured before the segment here; the rest of this direction is skipped",
                "stream 10.0.0.1:8583 -> 10.0.0.2:40000: ends in the middle of a frame (4 bytes after packet 3 (byte 300))",
            ]
        );
    }
}
