//! pcap and pcapng files of TCP traffic: packets are taken apart down to
//! TCP (Ethernet, raw IP, BSD loopback and Linux cooked captures, IPv4 and
//! IPv6), then [`super::tcp`] reassembles the streams and applies the
//! link's framing. A broken record ends the file with an error naming the
//! packet and byte; a packet that is not TCP is skipped; a malformed one is
//! reported and skipped.

use std::net::SocketAddr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, PcapError, TsResolution};

use super::record::{Capture, Position};
use super::tcp::{Reassembler, Segment};
use crate::link::framing::Framing;

/// Why a pcap or pcapng file (or part of it) cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PcapReadError {
    #[error("byte 0: not a pcap or pcapng file (starts with {magic})")]
    NotPcap { magic: String },
    #[error("byte 0: bad {format} file header: {reason}")]
    Header {
        format: &'static str,
        reason: String,
    },
    #[error(
        "{position}: link type {linktype} is not supported (supported: Ethernet 1, raw IP 101/228/229, BSD loopback 0/108, Linux cooked 113/276)"
    )]
    UnknownLinkType { position: Position, linktype: u32 },
    #[error("{position}: the file ends inside this record")]
    TruncatedRecord { position: Position },
    #[error("{position}: broken record: {reason}; the rest of the file is skipped")]
    BrokenRecord { position: Position, reason: String },
    #[error("{position}: malformed packet: {reason}")]
    Malformed { position: Position, reason: String },
    #[error(
        "{position}: enhanced packet block names interface {interface}, which is not described"
    )]
    NoInterface { position: Position, interface: u32 },
}

/// Whether the bytes start like a pcap or pcapng file.
pub fn is_pcap(data: &[u8]) -> bool {
    matches!(
        data.get(..4),
        Some(
            [0xa1, 0xb2, 0xc3, 0xd4]
                | [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0x0a, 0x0d, 0x0d, 0x0a]
        )
    )
}

/// Reads the TCP streams of a pcap or pcapng file into frames; with
/// `server`, only the connections to that `ip:port`.
pub fn read(data: &[u8], framing: &Framing, server: Option<&str>) -> Capture {
    let mut r = Reassembler::new(framing.clone()).only_server(server);
    let result = match data.get(..4) {
        Some([0x0a, 0x0d, 0x0d, 0x0a]) => read_pcapng(data, &mut r),
        _ if is_pcap(data) => read_pcap(data, &mut r),
        _ => Err(PcapReadError::NotPcap {
            magic: hex::encode(&data[..data.len().min(4)]),
        }),
    };
    if let Err(e) = result {
        r.problem(e.to_string());
    }
    r.finish()
}

fn position(data: &[u8], rest: &[u8], number: u64) -> Position {
    Position::Packet {
        number,
        offset: (data.len() - rest.len()) as u64,
    }
}

fn read_pcap(data: &[u8], r: &mut Reassembler) -> Result<(), PcapReadError> {
    let (mut rest, parser) = PcapParser::new(data).map_err(|e| PcapReadError::Header {
        format: "pcap",
        reason: e.to_string(),
    })?;
    let header = parser.header();
    let linktype = header.datalink;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let pos = position(data, rest, number);
        let (next, packet) = match parser.next_raw_packet(rest) {
            Ok(x) => x,
            Err(PcapError::IncompleteBuffer) => {
                return Err(PcapReadError::TruncatedRecord { position: pos });
            }
            Err(e) => {
                return Err(PcapReadError::BrokenRecord {
                    position: pos,
                    reason: e.to_string(),
                });
            }
        };
        rest = next;
        let frac_us = match header.ts_resolution {
            TsResolution::MicroSecond => u64::from(packet.ts_frac),
            TsResolution::NanoSecond => u64::from(packet.ts_frac) / 1000,
        };
        let time_us = u64::from(packet.ts_sec) * 1_000_000 + frac_us;
        packet_to_tcp(linktype, &packet.data, pos, time_us, r)?;
    }
    Ok(())
}

/// Microseconds from a pcapng raw timestamp and the interface's resolution.
fn pcapng_time_us(raw: u64, tsresol: u8) -> u64 {
    let v = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        match v.cmp(&6) {
            std::cmp::Ordering::Equal => raw,
            std::cmp::Ordering::Greater => raw / 10u64.saturating_pow(v - 6),
            std::cmp::Ordering::Less => raw.saturating_mul(10u64.pow(6 - v)),
        }
    } else {
        ((u128::from(raw) * 1_000_000) >> v.min(127)) as u64
    }
}

fn read_pcapng(data: &[u8], r: &mut Reassembler) -> Result<(), PcapReadError> {
    let (mut rest, mut parser) = PcapNgParser::new(data).map_err(|e| PcapReadError::Header {
        format: "pcapng",
        reason: e.to_string(),
    })?;
    let mut number = 0;
    let mut refused: Vec<u32> = Vec::new();
    while !rest.is_empty() {
        let pos_of_block = position(data, rest, number + 1);
        let (next, block) = match parser.next_block(rest) {
            Ok(x) => x,
            Err(PcapError::IncompleteBuffer) => {
                return Err(PcapReadError::TruncatedRecord {
                    position: pos_of_block,
                });
            }
            Err(e) => {
                return Err(PcapReadError::BrokenRecord {
                    position: pos_of_block,
                    reason: e.to_string(),
                });
            }
        };
        rest = next;
        let (interface, time_us, payload) = match &block {
            Block::EnhancedPacket(p) => {
                let Some(idb) = parser.packet_interface(p) else {
                    number += 1;
                    r.problem(
                        PcapReadError::NoInterface {
                            position: pos_of_block,
                            interface: p.interface_id,
                        }
                        .to_string(),
                    );
                    continue;
                };
                let tsresol = idb
                    .options
                    .iter()
                    .find_map(|o| match o {
                        InterfaceDescriptionOption::IfTsResol(v) => Some(*v),
                        _ => None,
                    })
                    .unwrap_or(6);
                // pcap-file hands the raw units over as nanoseconds.
                let raw = p.timestamp.as_nanos() as u64;
                (p.interface_id, pcapng_time_us(raw, tsresol), &p.data)
            }
            Block::SimplePacket(p) => (0, 0, &p.data),
            Block::SectionHeader(_) => {
                refused.clear();
                continue;
            }
            _ => continue,
        };
        number += 1;
        let Some(idb) = parser.interfaces().get(interface as usize) else {
            r.problem(
                PcapReadError::NoInterface {
                    position: pos_of_block,
                    interface,
                }
                .to_string(),
            );
            continue;
        };
        let linktype = idb.linktype;
        if refused.contains(&interface) {
            continue;
        }
        if let Err(e) = packet_to_tcp(linktype, payload, pos_of_block, time_us, r) {
            // One report per interface of an unsupported type.
            refused.push(interface);
            r.problem(e.to_string());
        }
    }
    Ok(())
}

/// Takes one packet apart and feeds its TCP segment; an unsupported link
/// type is an error, a malformed packet a reported problem.
fn packet_to_tcp(
    linktype: DataLink,
    data: &[u8],
    position: Position,
    time_us: u64,
    r: &mut Reassembler,
) -> Result<(), PcapReadError> {
    let sliced = match u32::from(linktype) {
        1 => SlicedPacket::from_ethernet(data),
        101 | 228 | 229 => SlicedPacket::from_ip(data),
        0 | 108 => match data.get(4..) {
            Some(ip) => SlicedPacket::from_ip(ip),
            None => {
                r.problem(
                    PcapReadError::Malformed {
                        position,
                        reason: "shorter than its loopback header".into(),
                    }
                    .to_string(),
                );
                return Ok(());
            }
        },
        113 => SlicedPacket::from_linux_sll(data),
        276 => match (data.get(..2), data.get(20..)) {
            (Some(p), Some(rest)) => SlicedPacket::from_ether_type(
                etherparse::EtherType(u16::from_be_bytes([p[0], p[1]])),
                rest,
            ),
            _ => {
                r.problem(
                    PcapReadError::Malformed {
                        position,
                        reason: "shorter than its Linux cooked header".into(),
                    }
                    .to_string(),
                );
                return Ok(());
            }
        },
        other => {
            return Err(PcapReadError::UnknownLinkType {
                position,
                linktype: other,
            });
        }
    };
    let sliced = match sliced {
        Ok(s) => s,
        Err(e) => {
            r.problem(
                PcapReadError::Malformed {
                    position,
                    reason: e.to_string(),
                }
                .to_string(),
            );
            return Ok(());
        }
    };
    let (src_ip, dst_ip) = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => (
            std::net::IpAddr::from(ip.header().source_addr()),
            std::net::IpAddr::from(ip.header().destination_addr()),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            std::net::IpAddr::from(ip.header().source_addr()),
            std::net::IpAddr::from(ip.header().destination_addr()),
        ),
        _ => return Ok(()),
    };
    let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else {
        return Ok(());
    };
    r.segment(Segment {
        position,
        time_us,
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        payload: tcp.payload(),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_resolutions() {
        assert_eq!(pcapng_time_us(1_500_000, 6), 1_500_000);
        assert_eq!(pcapng_time_us(1_500_000_000, 9), 1_500_000);
        assert_eq!(pcapng_time_us(15, 1), 1_500_000);
        assert_eq!(pcapng_time_us(3 << 20, 0x80 | 20), 3_000_000);
    }

    #[test]
    fn not_a_pcap_and_cut_headers_are_errors() {
        let framing = Framing::new(crate::link::framing::LengthHeader::Binary2);
        let c = read(b"hello world", &framing, None);
        assert_eq!(
            c.problems,
            vec!["byte 0: not a pcap or pcapng file (starts with 68656c6c)"]
        );
        let c = read(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0], &framing, None);
        assert!(
            c.problems[0].starts_with("byte 0: bad pcap file header"),
            "{:?}",
            c.problems
        );
    }
}
