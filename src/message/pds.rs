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
}
