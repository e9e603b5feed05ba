//! Frame codecs: how one ISO 8583 message is delimited on a TCP stream.
//! The length headers seen in the field: a 2-byte big-endian binary length
//! (NAC style, optionally followed by a 5-byte TPDU), 4 ASCII decimal digits
//! (jPOS ASCIIChannel), and a 2-byte binary length that counts itself; any
//! of them may be followed by a fixed static header before the MTI.
//!
//! A frame larger than `frame_bytes_max`, or a malformed length, is an error
//! that ends that one connection; nothing is allocated beyond the limit.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Deserialize;
use tokio_util::codec::{Decoder, Encoder};

/// Default frame limit: 8 KiB, far above any authorization message.
pub const FRAME_BYTES_MAX_DEFAULT: usize = 8 * 1024;

/// The length header in front of each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LengthHeader {
    /// 2 bytes, big-endian, counting the bytes after it.
    Binary2,
    /// 2 bytes, big-endian, counting itself too.
    Binary2Inclusive,
    /// 4 ASCII decimal digits counting the bytes after them.
    Ascii4,
}

impl LengthHeader {
    fn bytes(self) -> usize {
        match self {
            LengthHeader::Binary2 | LengthHeader::Binary2Inclusive => 2,
            LengthHeader::Ascii4 => 4,
        }
    }

    /// The largest body the header can announce.
    fn body_max(self) -> usize {
        match self {
            LengthHeader::Binary2 => 0xFFFF,
            LengthHeader::Binary2Inclusive => 0xFFFF - 2,
            LengthHeader::Ascii4 => 9999,
        }
    }
}

/// How a link frames its messages.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Framing {
    pub length: LengthHeader,
    /// A 5-byte TPDU (`60 DDDD SSSS`) after the length.
    #[serde(default)]
    pub tpdu: bool,
    /// Fixed bytes (as hex in config) between the length (and TPDU) and the MTI.
    #[serde(default, with = "hex_bytes")]
    pub static_header: Bytes,
    #[serde(default = "default_frame_bytes_max")]
    pub frame_bytes_max: usize,
}

fn default_frame_bytes_max() -> usize {
    FRAME_BYTES_MAX_DEFAULT
}

mod hex_bytes {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s)
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
}

impl Framing {
    /// A framing with the given length header and nothing else.
    pub fn new(length: LengthHeader) -> Framing {
        Framing {
            length,
            tpdu: false,
            static_header: Bytes::new(),
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
        }
    }

    /// The same framing with a TPDU.
    pub fn with_tpdu(mut self) -> Framing {
        self.tpdu = true;
        self
    }

    /// The same framing with a static header.
    pub fn with_static_header(mut self, header: impl Into<Bytes>) -> Framing {
        self.static_header = header.into();
        self
    }

    /// The same framing with another frame limit.
    pub fn with_frame_bytes_max(mut self, max: usize) -> Framing {
        self.frame_bytes_max = max;
        self
    }

    fn prelude_bytes(&self) -> usize {
        usize::from(self.tpdu) * TPDU_BYTES + self.static_header.len()
    }
}

const TPDU_BYTES: usize = 5;

/// A transport protocol data unit: id (0x60), destination and source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tpdu {
    pub id: u8,
    pub destination: u16,
    pub source: u16,
}

impl Tpdu {
    /// The TPDU for the reply: source and destination swapped.
    pub fn reply(&self) -> Tpdu {
        Tpdu {
            id: self.id,
            destination: self.source,
            source: self.destination,
        }
    }
}

/// One framed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The TPDU, on framings that carry one.
    pub tpdu: Option<Tpdu>,
    /// The ISO 8583 message bytes, from the MTI on.
    pub message: Bytes,
}

impl Frame {
    /// A frame without TPDU.
    pub fn new(message: Bytes) -> Frame {
        Frame {
            tpdu: None,
            message,
        }
    }
}

/// A stream that cannot be framed; the connection must end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// The length header announces more than the limit.
    #[error("frame of {length} bytes exceeds the limit of {max} bytes")]
    Oversized { length: usize, max: usize },
    /// The length header is not a length (non-digits in an ASCII header).
    #[error("malformed length header")]
    BadLength,
    /// The frame is shorter than its TPDU and static header.
    #[error("frame of {length} bytes is shorter than its {prelude}-byte TPDU and header")]
    TooShort { length: usize, prelude: usize },
    /// The static header differs from the configured one.
    #[error("static header mismatch")]
    HeaderMismatch,
    /// A message too large for the length header or the limit, on send.
    #[error("message of {length} bytes cannot be framed (limit {max})")]
    MessageTooLarge { length: usize, max: usize },
    /// The stream ended in the middle of a frame.
    #[error("connection closed in the middle of a frame ({buffered} bytes buffered)")]
    Truncated { buffered: usize },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl FramingError {
    /// A short stable name for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            FramingError::Oversized { .. } => "oversized",
            FramingError::BadLength => "bad_length",
            FramingError::TooShort { .. } => "too_short",
            FramingError::HeaderMismatch => "header_mismatch",
            FramingError::MessageTooLarge { .. } => "message_too_large",
            FramingError::Truncated { .. } => "truncated",
            FramingError::Io(_) => "io",
        }
    }
}

/// The tokio-util codec for a [`Framing`].
#[derive(Debug, Clone)]
pub struct FrameCodec {
    framing: Framing,
}

impl FrameCodec {
    pub fn new(framing: Framing) -> FrameCodec {
        assert!(framing.frame_bytes_max > 0, "frame limit must be positive");
        FrameCodec { framing }
    }

    pub fn framing(&self) -> &Framing {
        &self.framing
    }

    /// The body length announced by a complete header.
    fn body_len(&self, header: &[u8]) -> Result<usize, FramingError> {
        match self.framing.length {
            LengthHeader::Binary2 => Ok(usize::from(u16::from_be_bytes([header[0], header[1]]))),
            LengthHeader::Binary2Inclusive => {
                let total = usize::from(u16::from_be_bytes([header[0], header[1]]));
                total.checked_sub(2).ok_or(FramingError::BadLength)
            }
            LengthHeader::Ascii4 => header.iter().try_fold(0usize, |n, &d| {
                if d.is_ascii_digit() {
                    Ok(n * 10 + usize::from(d - b'0'))
                } else {
                    Err(FramingError::BadLength)
                }
            }),
        }
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FramingError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        let header_len = self.framing.length.bytes();
        if src.len() < header_len {
            return Ok(None);
        }
        let body = self.body_len(&src[..header_len])?;
        if body > self.framing.frame_bytes_max {
            return Err(FramingError::Oversized {
                length: body,
                max: self.framing.frame_bytes_max,
            });
        }
        let prelude = self.framing.prelude_bytes();
        if body < prelude {
            return Err(FramingError::TooShort {
                length: body,
                prelude,
            });
        }
        if src.len() < header_len + body {
            src.reserve(header_len + body - src.len());
            return Ok(None);
        }
        src.advance(header_len);
        let mut frame = src.split_to(body);
        let tpdu = if self.framing.tpdu {
            let t = &frame[..TPDU_BYTES];
            let tpdu = Tpdu {
                id: t[0],
                destination: u16::from_be_bytes([t[1], t[2]]),
                source: u16::from_be_bytes([t[3], t[4]]),
            };
            frame.advance(TPDU_BYTES);
            Some(tpdu)
        } else {
            None
        };
        let header_len = self.framing.static_header.len();
        if header_len > 0 {
            if frame[..header_len] != self.framing.static_header[..] {
                return Err(FramingError::HeaderMismatch);
            }
            frame.advance(header_len);
        }
        Ok(Some(Frame {
            tpdu,
            message: frame.freeze(),
        }))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FramingError::Truncated {
                buffered: src.len(),
            }),
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FramingError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FramingError> {
        let body = self.framing.prelude_bytes() + frame.message.len();
        let max = self
            .framing
            .frame_bytes_max
            .min(self.framing.length.body_max());
        if body > max {
            return Err(FramingError::MessageTooLarge { length: body, max });
        }
        dst.reserve(self.framing.length.bytes() + body);
        match self.framing.length {
            LengthHeader::Binary2 => dst.put_u16(body as u16),
            LengthHeader::Binary2Inclusive => dst.put_u16((body + 2) as u16),
            LengthHeader::Ascii4 => dst.put_slice(format!("{body:04}").as_bytes()),
        }
        if self.framing.tpdu {
            let t = frame.tpdu.unwrap_or(Tpdu {
                id: 0x60,
                destination: 0,
                source: 0,
            });
            dst.put_u8(t.id);
            dst.put_u16(t.destination);
            dst.put_u16(t.source);
        }
        dst.put_slice(&self.framing.static_header);
        dst.put_slice(&frame.message);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(framing: Framing, frame: Frame) -> BytesMut {
        let mut codec = FrameCodec::new(framing);
        let mut buf = BytesMut::new();
        codec.encode(frame.clone(), &mut buf).expect("encode");
        let wire = buf.clone();
        // Feed byte by byte: a frame appears only when complete.
        let mut partial = BytesMut::new();
        let mut got = None;
        for (i, b) in wire.iter().enumerate() {
            partial.put_u8(*b);
            let r = codec.decode(&mut partial).expect("decode");
            if i + 1 < wire.len() {
                assert!(r.is_none(), "frame decoded early at byte {i}");
            } else {
                got = r;
            }
        }
        assert_eq!(got, Some(frame));
        assert!(partial.is_empty());
        wire
    }

    #[test]
    fn every_length_header_round_trips() {
        let msg = Bytes::from_static(b"0800822000000000000004000000000000001123143005000001301");
        let wire = round_trip(Framing::new(LengthHeader::Binary2), Frame::new(msg.clone()));
        assert_eq!(&wire[..2], &(msg.len() as u16).to_be_bytes());
        let wire = round_trip(
            Framing::new(LengthHeader::Binary2Inclusive),
            Frame::new(msg.clone()),
        );
        assert_eq!(&wire[..2], &(msg.len() as u16 + 2).to_be_bytes());
        let wire = round_trip(Framing::new(LengthHeader::Ascii4), Frame::new(msg.clone()));
        assert_eq!(&wire[..4], format!("{:04}", msg.len()).as_bytes());
        let framing = Framing::new(LengthHeader::Binary2)
            .with_tpdu()
            .with_static_header(&b"ISO026000075"[..]);
        let tpdu = Tpdu {
            id: 0x60,
            destination: 0x0001,
            source: 0x0203,
        };
        let wire = round_trip(
            framing,
            Frame {
                tpdu: Some(tpdu),
                message: msg.clone(),
            },
        );
        assert_eq!(&wire[2..7], &[0x60, 0x00, 0x01, 0x02, 0x03]);
        assert_eq!(&wire[7..19], b"ISO026000075");
        assert_eq!(
            tpdu.reply(),
            Tpdu {
                id: 0x60,
                destination: 0x0203,
                source: 0x0001
            }
        );
    }

    #[test]
    fn oversized_and_malformed_lengths_are_errors() {
        let mut codec =
            FrameCodec::new(Framing::new(LengthHeader::Binary2).with_frame_bytes_max(100));
        let mut buf = BytesMut::from(&[0x01, 0x00][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FramingError::Oversized {
                length: 256,
                max: 100
            })
        ));
        let mut codec = FrameCodec::new(Framing::new(LengthHeader::Ascii4));
        let mut buf = BytesMut::from(&b"00a1xxxx"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FramingError::BadLength)
        ));
        let mut codec = FrameCodec::new(Framing::new(LengthHeader::Binary2Inclusive));
        let mut buf = BytesMut::from(&[0x00, 0x01][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FramingError::BadLength)
        ));
        let mut codec = FrameCodec::new(Framing::new(LengthHeader::Binary2).with_tpdu());
        let mut buf = BytesMut::from(&[0x00, 0x03, 0x60, 0, 0][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FramingError::TooShort {
                length: 3,
                prelude: 5
            })
        ));
        let mut buf = BytesMut::from(&[0x00, 0x09, 0x60][..]);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(FramingError::Truncated { buffered: 3 })
        ));
        let mut big = BytesMut::new();
        let huge = Frame::new(Bytes::from(vec![b'0'; 9000]));
        assert!(matches!(
            codec.encode(huge, &mut big),
            Err(FramingError::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn a_wrong_static_header_is_refused() {
        let mut codec =
            FrameCodec::new(Framing::new(LengthHeader::Binary2).with_static_header(&b"HDR"[..]));
        let mut buf = BytesMut::from(&[0x00, 0x05, b'X', b'D', b'R', b'0', b'8'][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FramingError::HeaderMismatch)
        ));
    }
}
