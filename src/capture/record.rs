//! One captured frame, whatever file it came from: when, on which stream,
//! which way (client to server or back) and the message with its TPDU.

use std::fmt;

use bytes::Bytes;

use crate::link::framing::Tpdu;
use crate::message::Encoding;
use crate::message::ebcdic::byte_to_latin1;

/// Where in its file a frame or a problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// A packet of a pcap or pcapng file (1-based) and its byte offset.
    Packet { number: u64, offset: u64 },
    /// A line of a text file (1-based).
    Line { number: u64 },
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Packet { number, offset } => write!(f, "packet {number} (byte {offset})"),
            Position::Line { number } => write!(f, "line {number}"),
        }
    }
}

/// A frame read from a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedFrame {
    /// Microseconds since the Unix epoch (0 when the file has no times).
    pub time_us: u64,
    /// The link: its name in cardswitch's JSON lines, the server's
    /// `ip:port` in a pcap, `hexlog` in a hex log.
    pub link: String,
    /// The connection within the link (TCP stream), numbered per file.
    pub connection: u64,
    /// Sent by the side that opened the connection (requests usually are).
    pub from_client: bool,
    pub tpdu: Option<Tpdu>,
    /// The ISO 8583 message, from the MTI on.
    pub message: Bytes,
    pub position: Position,
}

/// Frames and the problems met while reading them; reading goes on past
/// a problem wherever the rest of the file can still be trusted.
#[derive(Debug, Default)]
pub struct Capture {
    pub frames: Vec<CapturedFrame>,
    pub problems: Vec<String>,
}

impl Capture {
    /// The links in order of first appearance.
    pub fn links(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for f in &self.frames {
            if !seen.contains(&f.link.as_str()) {
                seen.push(&f.link);
            }
        }
        seen
    }
}

/// A TPDU as 10 hex digits, as written in JSON lines and hex logs.
pub fn tpdu_hex(t: &Tpdu) -> String {
    format!("{:02X}{:04X}{:04X}", t.id, t.destination, t.source)
}

/// A TPDU from 5 bytes.
pub fn tpdu_from(b: &[u8; 5]) -> Tpdu {
    Tpdu {
        id: b[0],
        destination: u16::from_be_bytes([b[1], b[2]]),
        source: u16::from_be_bytes([b[3], b[4]]),
    }
}

/// The MTI at the start of a message as four digits, read in the link's
/// MTI encoding (two packed BCD bytes, four EBCDIC or four ASCII
/// characters); `None` when the bytes are not an MTI in that encoding.
pub fn mti_text(encoding: Encoding, message: &[u8]) -> Option<String> {
    let digits: Vec<u8> = match encoding {
        Encoding::Bcd => message
            .get(..2)?
            .iter()
            .flat_map(|b| [b >> 4, b & 0x0F])
            .map(|n| if n <= 9 { b'0' + n } else { b'?' })
            .collect(),
        Encoding::Ebcdic => message
            .get(..4)?
            .iter()
            .map(|&b| byte_to_latin1(b))
            .collect(),
        _ => message.get(..4)?.to_vec(),
    };
    digits
        .iter()
        .all(u8::is_ascii_digit)
        .then(|| String::from_utf8_lossy(&digits).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mti_in_each_encoding() {
        assert_eq!(
            mti_text(Encoding::Bcd, &[0x01, 0x00, 0x72]).as_deref(),
            Some("0100")
        );
        assert_eq!(
            mti_text(Encoding::Ebcdic, &[0xF1, 0xF2, 0xF4, 0xF0]).as_deref(),
            Some("1240")
        );
        assert_eq!(
            mti_text(Encoding::Ascii, b"0800\x82").as_deref(),
            Some("0800")
        );
        assert_eq!(mti_text(Encoding::Ascii, &[0x01, 0x00, 0x72, 0x38]), None);
        assert_eq!(mti_text(Encoding::Bcd, &[0x0A, 0x00]), None);
        assert_eq!(mti_text(Encoding::Ebcdic, b"12"), None);
    }
}
