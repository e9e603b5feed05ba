//! Writes frames as a pcap file that Wireshark reads as TCP streams:
//! synthetic Ethernet / IPv4 / TCP headers (checksums included), a
//! three-way handshake per connection and consecutive sequence numbers in
//! each direction, segments of at most 1460 bytes.
//!
//! Addresses are made up: the server of the N-th link seen (1-based) is
//! `10.0.0.N:8583` (`10.0.N/250.N%250` past 249 links), its clients are
//! `10.1.x.y` with a port per connection. So a dissector is pointed at
//! `tcp.port==8583`, and the reader's link names are `10.0.0.N:8583`.

use std::collections::HashMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::pcap::PcapHeader;
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

/// The TCP port every synthetic server listens on.
pub const SERVER_PORT: u16 = 8583;
/// TCP payload per packet at most (an Ethernet MSS).
pub const SEGMENT_BYTES_MAX: usize = 1460;
const CLIENT_ISN: u32 = 1_000;
const SERVER_ISN: u32 = 500_000;
const WINDOW: u16 = 65_535;

/// A pcap file that cannot be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PcapWriteError {
    #[error("pcap: {0}")]
    Pcap(#[from] PcapError),
    #[error("packet: {0}")]
    Build(String),
    #[error("write: {0}")]
    Io(#[from] std::io::Error),
}

struct Stream {
    client: (Ipv4Addr, u16),
    server: (Ipv4Addr, u16),
    client_seq: u32,
    server_seq: u32,
}

/// A pcap writer keeping per-connection TCP state.
pub struct PcapFrameWriter<W: Write> {
    out: W,
    links: HashMap<String, u32>,
    streams: HashMap<(String, u64), Stream>,
}

impl<W: Write> PcapFrameWriter<W> {
    pub fn new(mut w: W) -> Result<PcapFrameWriter<W>, PcapWriteError> {
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            snaplen: 65_535,
            endianness: Endianness::Little,
            ..PcapHeader::default()
        };
        header.write_to(&mut w)?;
        Ok(PcapFrameWriter {
            out: w,
            links: HashMap::new(),
            streams: HashMap::new(),
        })
    }

    /// Writes one frame's wire bytes (length header included) on its stream.
    pub fn write_frame(
        &mut self,
        time_us: u64,
        link: &str,
        connection: u64,
        from_client: bool,
        wire: &[u8],
    ) -> Result<(), PcapWriteError> {
        let key = (link.to_string(), connection);
        if !self.streams.contains_key(&key) {
            let n = self.links.len() as u32;
            let link_index = *self.links.entry(link.to_string()).or_insert(n);
            let server_ip = Ipv4Addr::new(
                10,
                0,
                (link_index / 250) as u8,
                (link_index % 250) as u8 + 1,
            );
            let c = connection;
            let client_ip = Ipv4Addr::new(10, 1, (c >> 8) as u8, c as u8);
            let client_port = 20_000 + ((c >> 16) % 40_000) as u16;
            let stream = Stream {
                client: (client_ip, client_port),
                server: (server_ip, SERVER_PORT),
                client_seq: CLIENT_ISN.wrapping_add(1),
                server_seq: SERVER_ISN.wrapping_add(1),
            };
            self.handshake(time_us, &stream)?;
            self.streams.insert(key.clone(), stream);
        }
        let Some(stream) = self.streams.get_mut(&key) else {
            return Ok(());
        };
        let (src, dst) = if from_client {
            (stream.client, stream.server)
        } else {
            (stream.server, stream.client)
        };
        let mut segments = Vec::new();
        for chunk in wire.chunks(SEGMENT_BYTES_MAX) {
            let (seq, ack) = if from_client {
                (stream.client_seq, stream.server_seq)
            } else {
                (stream.server_seq, stream.client_seq)
            };
            segments.push(packet(src, dst, Flags::Data { seq, ack }, chunk)?);
            let advanced = seq.wrapping_add(chunk.len() as u32);
            if from_client {
                stream.client_seq = advanced;
            } else {
                stream.server_seq = advanced;
            }
        }
        for p in segments {
            self.put(time_us, &p)?;
        }
        Ok(())
    }

    fn handshake(&mut self, time_us: u64, s: &Stream) -> Result<(), PcapWriteError> {
        let syn = packet(s.client, s.server, Flags::Syn { seq: CLIENT_ISN }, &[])?;
        let syn_ack = packet(
            s.server,
            s.client,
            Flags::SynAck {
                seq: SERVER_ISN,
                ack: CLIENT_ISN.wrapping_add(1),
            },
            &[],
        )?;
        let ack = packet(
            s.client,
            s.server,
            Flags::Ack {
                seq: CLIENT_ISN.wrapping_add(1),
                ack: SERVER_ISN.wrapping_add(1),
            },
            &[],
        )?;
        for p in [syn, syn_ack, ack] {
            self.put(time_us, &p)?;
        }
        Ok(())
    }

    /// One record: the 16-byte little-endian record header, then the packet.
    fn put(&mut self, time_us: u64, data: &[u8]) -> Result<(), PcapWriteError> {
        let t = Duration::from_micros(time_us);
        let mut record = [0u8; 16];
        record[..4].copy_from_slice(&(t.as_secs() as u32).to_le_bytes());
        record[4..8].copy_from_slice(&t.subsec_micros().to_le_bytes());
        record[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        record[12..].copy_from_slice(&(data.len() as u32).to_le_bytes());
        self.out.write_all(&record)?;
        self.out.write_all(data)?;
        Ok(())
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

enum Flags {
    Syn { seq: u32 },
    SynAck { seq: u32, ack: u32 },
    Ack { seq: u32, ack: u32 },
    Data { seq: u32, ack: u32 },
}

fn mac(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

fn packet(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: Flags,
    payload: &[u8],
) -> Result<Vec<u8>, PcapWriteError> {
    let ip =
        PacketBuilder::ethernet2(mac(src.0), mac(dst.0)).ipv4(src.0.octets(), dst.0.octets(), 64);
    let tcp = match flags {
        Flags::Syn { seq } => ip.tcp(src.1, dst.1, seq, WINDOW).syn(),
        Flags::SynAck { seq, ack } => ip.tcp(src.1, dst.1, seq, WINDOW).syn().ack(ack),
        Flags::Ack { seq, ack } => ip.tcp(src.1, dst.1, seq, WINDOW).ack(ack),
        Flags::Data { seq, ack } => ip.tcp(src.1, dst.1, seq, WINDOW).ack(ack).psh(),
    };
    let mut out = Vec::with_capacity(tcp.size(payload.len()));
    tcp.write(&mut out, payload)
        .map_err(|e| PcapWriteError::Build(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::pcap_read;
    use crate::link::framing::{Framing, LengthHeader};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever is written (frames over several segments, interleaved
        /// connections and links) reads back as the same frames in order.
        #[test]
        fn written_frames_read_back(
            frames in proptest::collection::vec(
                (0u8..2, 1u64..4, any::<bool>(), proptest::collection::vec(any::<u8>(), 1..4000)),
                1..12,
            )
        ) {
            let mut w = PcapFrameWriter::new(Vec::new()).expect("writer");
            for (i, (link, conn, from_client, msg)) in frames.iter().enumerate() {
                let mut wire = (msg.len() as u16).to_be_bytes().to_vec();
                wire.extend_from_slice(msg);
                w.write_frame(i as u64 * 10, &format!("l{link}"), *conn, *from_client, &wire).expect("write");
            }
            let data = w.into_inner();
            let framing = Framing::new(LengthHeader::Binary2).with_frame_bytes_max(8192);
            let cap = pcap_read::read(&data, &framing, None);
            prop_assert!(cap.problems.is_empty(), "{:?}", cap.problems);
            prop_assert_eq!(cap.frames.len(), frames.len());
            for ((link, _, from_client, msg), f) in frames.iter().zip(&cap.frames) {
                prop_assert_eq!(&f.message[..], &msg[..]);
                prop_assert_eq!(f.from_client, *from_client);
                prop_assert_eq!(&f.link, &format!("10.0.0.{}:8583", if *link == frames[0].0 { 1 } else { 2 }));
            }
        }
    }
}
