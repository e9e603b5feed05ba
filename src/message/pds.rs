//! Mastercard private data subelements (PDS), carried in DE48, DE62 and
//! DE123-125 of IPM records: a 4-digit tag, a 3-digit length, then the data.

use bytes::{BufMut, BytesMut};
use nom::IResult;
use nom::bytes::complete::take;

/// One subelement: tag 0..=9999 and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pds<'a> {
    pub tag: u16,
    pub value: &'a [u8],
}

/// Malformed PDS data; `offset` is relative to the field value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PdsError {
    #[error("PDS at offset {offset}: truncated {what}")]
    Truncated { offset: usize, what: &'static str },
    #[error("PDS at offset {offset}: {what} is not decimal digits")]
    NotDigits { offset: usize, what: &'static str },
    #[error("PDS tag {tag}: data of {length} bytes exceeds 999")]
    TooLong { tag: u16, length: usize },
}

fn digits(input: &[u8], n: usize) -> IResult<&[u8], Option<usize>> {
    let (rest, raw) = take(n)(input)?;
    if !raw.iter().all(u8::is_ascii_digit) {
        return Ok((rest, None));
    }
    Ok((
        rest,
        Some(raw.iter().fold(0, |v, d| v * 10 + usize::from(d - b'0'))),
    ))
}

/// Parses a field value into its subelements, in order.
pub fn parse(data: &[u8]) -> Result<Vec<Pds<'_>>, PdsError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let offset = data.len() - rest.len();
        let (r, tag) = digits(rest, 4).map_err(|_| PdsError::Truncated {
            offset,
            what: "tag",
        })?;
        let tag = tag.ok_or(PdsError::NotDigits {
            offset,
            what: "tag",
        })?;
        let (r, len) = digits(r, 3).map_err(|_| PdsError::Truncated {
            offset: offset + 4,
            what: "length",
        })?;
        let len = len.ok_or(PdsError::NotDigits {
            offset: offset + 4,
            what: "length",
        })?;
        let taken: IResult<&[u8], &[u8]> = take(len)(r);
        let (r, value) = taken.map_err(|_| PdsError::Truncated {
            offset: offset + 7,
            what: "data",
        })?;
        out.push(Pds {
            tag: tag as u16,
            value,
        });
        rest = r;
    }
    Ok(out)
}

/// Whether `data` reads as subelements, exactly as [`parse`] reads them
/// (the same error for the same fault), without collecting them: the
/// parser runs this on every field whose spec says `structure = "pds"`.
#[inline]
pub fn check(data: &[u8]) -> Result<(), PdsError> {
    if walks(data) {
        return Ok(());
    }
    check_exactly(data)
}

/// The walk of valid data: each tag and length checked as seven digits in
/// one word, read with the byte after it (set to a digit) where there is
/// one, so that a subelement costs one load instead of a copy. `false` for
/// any fault, which [`check_exactly`] then names.
#[inline]
fn walks(data: &[u8]) -> bool {
    const EIGHTH: u64 = 0xFF << 56;
    let mut at = 0;
    while let Some(head) = data.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*head) & !EIGHTH | (u64::from(b'0') << 56);
        if !all_digits(word) {
            return false;
        }
        at += 7 + length_of(word);
    }
    // The last subelement, if it has no data, is only its seven digits.
    match data.get(at..) {
        Some([]) => true,
        Some(rest) if rest.len() == 7 => {
            let mut word = [b'0'; 8];
            word[..7].copy_from_slice(rest);
            let word = u64::from_le_bytes(word);
            all_digits(word) && length_of(word) == 0
        }
        _ => false,
    }
}

/// The length digits (the 5th to 7th bytes) of a head read as a word.
#[inline]
fn length_of(word: u64) -> usize {
    let digit = |i: u32| ((word >> (8 * i)) & 0x0F) as usize;
    digit(4) * 100 + digit(5) * 10 + digit(6)
}

/// Whether all eight bytes of `word` are ASCII digits: their high nibbles
/// are 3, and stay 3 with 6 added (0x3A-0x3F would carry into 4; no byte
/// of 0x30-0x3F carries into the next).
#[inline]
fn all_digits(word: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    word & HIGH == THREES && word.wrapping_add(0x0606_0606_0606_0606) & HIGH == THREES
}

/// [`check`] with the error [`parse`] gives.
#[cold]
#[inline(never)]
fn check_exactly(data: &[u8]) -> Result<(), PdsError> {
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        let Some(tag) = rest.get(..4) else {
            return Err(PdsError::Truncated {
                offset: at,
                what: "tag",
            });
        };
        if !tag.iter().all(u8::is_ascii_digit) {
            return Err(PdsError::NotDigits {
                offset: at,
                what: "tag",
            });
        }
        let Some(len) = rest.get(4..7) else {
            return Err(PdsError::Truncated {
                offset: at + 4,
                what: "length",
            });
        };
        if !len.iter().all(u8::is_ascii_digit) {
            return Err(PdsError::NotDigits {
                offset: at + 4,
                what: "length",
            });
        }
        let len = len.iter().fold(0, |v, d| v * 10 + usize::from(d - b'0'));
        if rest.len() - 7 < len {
            return Err(PdsError::Truncated {
                offset: at + 7,
                what: "data",
            });
        }
        at += 7 + len;
    }
    Ok(())
}

impl PdsError {
    /// Where the fault is in the value.
    pub fn offset(&self) -> usize {
        match *self {
            PdsError::Truncated { offset, .. } | PdsError::NotDigits { offset, .. } => offset,
            PdsError::TooLong { .. } => 0,
        }
    }

    /// The fault in a few words, for `MessageError::BadSubElement`.
    pub fn reason(&self) -> &'static str {
        match self {
            PdsError::Truncated { what: "tag", .. } => "PDS tag truncated",
            PdsError::Truncated { what: "length", .. } => "PDS length truncated",
            PdsError::Truncated { .. } => "PDS length beyond the data",
            PdsError::NotDigits { what: "tag", .. } => "PDS tag not digits",
            PdsError::NotDigits { .. } => "PDS length not digits",
            PdsError::TooLong { .. } => "PDS data over 999 bytes",
        }
    }
}

/// Appends one subelement.
pub fn write(tag: u16, value: &[u8], out: &mut BytesMut) -> Result<(), PdsError> {
    if value.len() > 999 {
        return Err(PdsError::TooLong {
            tag,
            length: value.len(),
        });
    }
    assert!(tag <= 9999, "PDS tag out of range");
    out.put_slice(format!("{tag:04}{:03}", value.len()).as_bytes());
    out.put_slice(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_subelements() {
        let data = b"0023003POI0158010MCC1234567";
        let items = parse(data).expect("pds");
        assert_eq!(items.len(), 2);
        assert_eq!((items[0].tag, items[0].value), (23, &b"POI"[..]));
        assert_eq!(items[1].tag, 158);
        let mut out = BytesMut::new();
        for p in &items {
            write(p.tag, p.value, &mut out).expect("write");
        }
        assert_eq!(&out[..], &data[..]);
    }

    #[test]
    fn faults_name_their_offset() {
        assert_eq!(
            parse(b"0023"),
            Err(PdsError::Truncated {
                offset: 4,
                what: "length"
            })
        );
        assert_eq!(
            parse(b"00230050AB"),
            Err(PdsError::Truncated {
                offset: 7,
                what: "data"
            })
        );
        assert_eq!(
            parse(b"00x3001A"),
            Err(PdsError::NotDigits {
                offset: 0,
                what: "tag"
            })
        );
        assert_eq!(
            parse(b"002"),
            Err(PdsError::Truncated {
                offset: 0,
                what: "tag"
            })
        );
    }

    proptest::proptest! {
        /// `check` finds exactly the faults `parse` finds.
        #[test]
        fn check_agrees_with_parse(
            data in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![b'0', b'0', b'0', b'1', b'2', b'9', b'A', b' ']),
                    proptest::arbitrary::any::<u8>(),
                ],
                0..30,
            )
        ) {
            proptest::prop_assert_eq!(check(&data), parse(&data).map(|_| ()));
        }

        /// The same on well-formed subelements (empty ones too, last or
        /// not), cut short or with one byte changed.
        #[test]
        fn check_agrees_with_parse_near_valid_data(
            items in proptest::collection::vec((0u16..10_000, 0usize..12), 0..6),
            cut in proptest::option::of(0usize..80),
            change in proptest::option::of((0usize..80, proptest::arbitrary::any::<u8>())),
        ) {
            let mut data = Vec::new();
            for (tag, len) in items {
                data.extend_from_slice(format!("{tag:04}{len:03}").as_bytes());
                data.extend(std::iter::repeat_n(b'X', len));
            }
            if let Some((at, byte)) = change.filter(|(at, _)| *at < data.len()) {
                data[at] = byte;
            }
            if let Some(cut) = cut.filter(|c| *c < data.len()) {
                data.truncate(cut);
            }
            proptest::prop_assert_eq!(check(&data), parse(&data).map(|_| ()));
        }
    }
}
