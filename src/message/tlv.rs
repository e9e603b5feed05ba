//! BER-TLV data objects as used by EMV in DE55 (EMV Book 3, Annex B):
//! tags of one to three bytes, lengths in short form or long form with one
//! to three length bytes. Parsed with nom; limits keep hostile input cheap.

use bytes::{BufMut, BytesMut};
use nom::IResult;
use nom::bytes::complete::take;
use nom::number::complete::be_u8;

/// Most data objects accepted in one field.
pub const TLV_OBJECTS_MAX: usize = 128;
/// Longest tag in bytes.
const TAG_BYTES_MAX: usize = 3;

/// One data object: tag (its bytes as a big-endian number, e.g. 0x9F26) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u32,
    pub value: &'a [u8],
}

impl Tlv<'_> {
    /// Whether the tag marks a constructed object (holding other objects).
    pub fn is_constructed(&self) -> bool {
        let first = tag_bytes(self.tag)[0];
        first & 0x20 != 0
    }
}

/// Malformed TLV data; `offset` is relative to the field value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlvError {
    #[error("TLV at offset {offset}: truncated {what}")]
    Truncated { offset: usize, what: &'static str },
    #[error("TLV at offset {offset}: tag longer than {TAG_BYTES_MAX} bytes")]
    TagTooLong { offset: usize },
    #[error("TLV at offset {offset}: unsupported length form")]
    BadLength { offset: usize },
    #[error("TLV: more than {TLV_OBJECTS_MAX} data objects")]
    TooManyObjects,
}

/// The tag's bytes without leading zeros.
pub fn tag_bytes(tag: u32) -> Vec<u8> {
    let be = tag.to_be_bytes();
    let skip = be.iter().take(3).take_while(|&&b| b == 0).count();
    be[skip..].to_vec()
}

/// Formats a tag as uppercase hex (`9F26`).
pub fn tag_hex(tag: u32) -> String {
    hex::encode_upper(tag_bytes(tag))
}

/// Parses a tag written as hex (`9F26`).
pub fn parse_tag_hex(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 2 * TAG_BYTES_MAX || s.len() % 2 == 1 {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

fn tag(input: &[u8]) -> IResult<&[u8], (u32, usize)> {
    let (mut rest, first) = be_u8(input)?;
    let mut tag = u32::from(first);
    let mut len = 1;
    if first & 0x1F == 0x1F {
        loop {
            let (r, b) = be_u8(rest)?;
            rest = r;
            tag = (tag << 8) | u32::from(b);
            len += 1;
            if b & 0x80 == 0 || len > TAG_BYTES_MAX {
                break;
            }
        }
    }
    Ok((rest, (tag, len)))
}

fn length(input: &[u8]) -> IResult<&[u8], Option<usize>> {
    let (rest, first) = be_u8(input)?;
    if first < 0x80 {
        return Ok((rest, Some(usize::from(first))));
    }
    let count = usize::from(first & 0x7F);
    if count == 0 || count > 3 {
        return Ok((rest, None));
    }
    let (rest, bytes) = take(count)(rest)?;
    let n = bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
    Ok((rest, Some(n)))
}

/// Parses a sequence of data objects (one level; see [`Tlv::is_constructed`]).
pub fn parse(data: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let offset = data.len() - rest.len();
        if out.len() == TLV_OBJECTS_MAX {
            return Err(TlvError::TooManyObjects);
        }
        let (r, (tag, tag_len)) = tag(rest).map_err(|_| TlvError::Truncated {
            offset,
            what: "tag",
        })?;
        if tag_len > TAG_BYTES_MAX {
            return Err(TlvError::TagTooLong { offset });
        }
        let (r, len) = length(r).map_err(|_| TlvError::Truncated {
            offset,
            what: "length",
        })?;
        let len = len.ok_or(TlvError::BadLength { offset })?;
        let taken: IResult<&[u8], &[u8]> = take(len)(r);
        let (r, value) = taken.map_err(|_| TlvError::Truncated {
            offset,
            what: "value",
        })?;
        out.push(Tlv { tag, value });
        rest = r;
    }
    Ok(out)
}

/// Whether `data` reads as data objects, exactly as [`parse`] reads them
/// (the same error for the same fault), without collecting them: the
/// parser runs this on every field whose spec says `structure = "tlv"`,
/// so it is a plain walk over the bytes.
#[inline]
pub fn check(data: &[u8]) -> Result<(), TlvError> {
    // Objects take two bytes at least: this much data holds no more than
    // the limit, so the walk need not count them.
    if data.len() <= 2 * TLV_OBJECTS_MAX && walks(data) {
        return Ok(());
    }
    check_exactly(data)
}

/// The common case of EMV data, walked with nothing else to track: tags of
/// one or two bytes, short-form lengths. `false` for anything else, valid
/// or not, which [`check_exactly`] then decides (about 10 instructions an
/// object instead of 30).
#[inline]
fn walks(data: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&first) = data.get(at) {
        let mut next = at + 1;
        if first & 0x1F == 0x1F {
            match data.get(next) {
                Some(&b) if b & 0x80 == 0 => next += 1,
                _ => return false,
            }
        }
        match data.get(next) {
            Some(&len) if len < 0x80 => at = next + 1 + usize::from(len),
            _ => return false,
        }
    }
    at == data.len()
}

/// [`check`] with every rule and the error [`parse`] gives.
#[cold]
#[inline(never)]
fn check_exactly(data: &[u8]) -> Result<(), TlvError> {
    let mut at = 0;
    let mut objects = 0;
    while let Some(&first) = data.get(at) {
        if objects == TLV_OBJECTS_MAX {
            return Err(TlvError::TooManyObjects);
        }
        objects += 1;
        let offset = at;
        at += 1;
        if first & 0x1F == 0x1F {
            let mut tag_len = 1;
            loop {
                let Some(&b) = data.get(at) else {
                    return Err(TlvError::Truncated {
                        offset,
                        what: "tag",
                    });
                };
                at += 1;
                tag_len += 1;
                if b & 0x80 == 0 || tag_len > TAG_BYTES_MAX {
                    break;
                }
            }
            if tag_len > TAG_BYTES_MAX {
                return Err(TlvError::TagTooLong { offset });
            }
        }
        let Some(&first_len) = data.get(at) else {
            return Err(TlvError::Truncated {
                offset,
                what: "length",
            });
        };
        at += 1;
        let len = if first_len < 0x80 {
            usize::from(first_len)
        } else {
            let count = usize::from(first_len & 0x7F);
            if count == 0 || count > 3 {
                return Err(TlvError::BadLength { offset });
            }
            let Some(bytes) = data.get(at..at + count) else {
                return Err(TlvError::Truncated {
                    offset,
                    what: "length",
                });
            };
            at += count;
            bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
        };
        if data.len() - at < len {
            return Err(TlvError::Truncated {
                offset,
                what: "value",
            });
        }
        at += len;
    }
    Ok(())
}

impl TlvError {
    /// Where the faulty object starts in the value (0 for too many objects).
    pub fn offset(&self) -> usize {
        match *self {
            TlvError::Truncated { offset, .. }
            | TlvError::TagTooLong { offset }
            | TlvError::BadLength { offset } => offset,
            TlvError::TooManyObjects => 0,
        }
    }

    /// The fault in a few words, for `MessageError::BadSubElement`.
    pub fn reason(&self) -> &'static str {
        match self {
            TlvError::Truncated { what: "tag", .. } => "TLV tag truncated",
            TlvError::Truncated { what: "length", .. } => "TLV length truncated",
            TlvError::Truncated { .. } => "TLV length beyond the data",
            TlvError::TagTooLong { .. } => "TLV tag longer than 3 bytes",
            TlvError::BadLength { .. } => "TLV length form unsupported",
            TlvError::TooManyObjects => "more than 128 TLV data objects",
        }
    }
}

/// Appends one data object in minimal BER form.
pub fn write(tag: u32, value: &[u8], out: &mut BytesMut) {
    out.put_slice(&tag_bytes(tag));
    let len = value.len();
    match len {
        0..=0x7F => out.put_u8(len as u8),
        0x80..=0xFF => {
            out.put_u8(0x81);
            out.put_u8(len as u8);
        }
        0x100..=0xFFFF => {
            out.put_u8(0x82);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(0x83);
            out.put_slice(&(len as u32).to_be_bytes()[1..]);
        }
    }
    out.put_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_emv_objects() {
        let data =
            hex::decode("9F2608A1B2C3D4E5F607189F2701809F100706011203A000009A031911205F2A020978")
                .expect("hex");
        let objects = parse(&data).expect("tlv");
        let tags: Vec<String> = objects.iter().map(|t| tag_hex(t.tag)).collect();
        assert_eq!(tags, ["9F26", "9F27", "9F10", "9A", "5F2A"]);
        assert_eq!(objects[0].value.len(), 8);
        assert_eq!(objects[4].value, &[0x09, 0x78]);
        let mut out = BytesMut::new();
        for t in &objects {
            write(t.tag, t.value, &mut out);
        }
        assert_eq!(&out[..], &data[..]);
    }

    #[test]
    fn long_lengths_and_faults() {
        let value = vec![0xAB; 200];
        let mut out = BytesMut::new();
        write(0x9F10, &value, &mut out);
        assert_eq!(&out[..4], &[0x9F, 0x10, 0x81, 200]);
        assert_eq!(parse(&out).expect("tlv")[0].value.len(), 200);
        assert_eq!(
            parse(&[0x9F, 0x26, 0x08, 0x01]),
            Err(TlvError::Truncated {
                offset: 0,
                what: "value"
            })
        );
        assert_eq!(
            parse(&[0x9F]),
            Err(TlvError::Truncated {
                offset: 0,
                what: "tag"
            })
        );
        assert_eq!(
            parse(&[0x82, 0x85, 0x00]),
            Err(TlvError::BadLength { offset: 0 })
        );
        assert_eq!(
            parse(&[0x9F, 0xFF, 0xFF, 0xFF, 0x01, 0x00]),
            Err(TlvError::TagTooLong { offset: 0 })
        );
    }

    proptest::proptest! {
        /// `check` finds exactly the faults `parse` finds, on bytes near
        /// the edges of the tag and length forms.
        #[test]
        fn check_agrees_with_parse(
            data in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![0x00u8, 0x01, 0x1F, 0x5F, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0x9F, 0xFF]),
                    proptest::arbitrary::any::<u8>(),
                ],
                0..40,
            )
        ) {
            proptest::prop_assert_eq!(check(&data), parse(&data).map(|_| ()));
        }
    }

    #[test]
    fn check_walks_many_objects_and_refuses_the_129th() {
        let mut out = BytesMut::new();
        for _ in 0..TLV_OBJECTS_MAX {
            write(0x9F26, &[1; 8], &mut out);
        }
        assert_eq!(check(&out), Ok(()));
        assert_eq!(
            check(&[0x9F, 0x26, 0xFF, 0x01]),
            Err(TlvError::BadLength { offset: 0 })
        );
        write(0x82, &[], &mut out);
        assert_eq!(check(&out), Err(TlvError::TooManyObjects));
    }
}
