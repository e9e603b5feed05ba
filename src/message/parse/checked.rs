//! The checking parser: field by field, every fault a typed error naming
//! its field and offset (the fast pass's fallback, and salvage's reader).

use bytes::Bytes;

use super::reader::{Reader, read_bitmaps, read_mti};
use super::{Fields, MESSAGE_BYTES_MAX};
use crate::message::bitmap::Bitmap;
use crate::message::codec::{self, WireFault};
use crate::message::error::{MessageError, Part};
use crate::message::iso_message::{Slot, Source};
use crate::message::layout::{FieldLayout, Inner};
use crate::message::mti::Mti;
use crate::message::spec::{Encoding, Spec};
use crate::message::{pds, tlv};

/// Reads the MTI, the bitmaps and every field present into `fields`,
/// checking that nothing follows the last one.
pub(super) fn parse_fields(
    spec: &Spec,
    input: &Bytes,
    fields: &mut Fields,
) -> Result<(Mti, Bitmap), MessageError> {
    if input.len() > MESSAGE_BYTES_MAX {
        return Err(MessageError::MessageTooLarge {
            length: input.len(),
            max: MESSAGE_BYTES_MAX,
        });
    }
    let mut r = Reader { input, offset: 0 };
    let mti = read_mti(spec, &mut r)?;
    let (bitmap, fields_bitmap) = read_bitmaps(spec, &mut r)?;
    debug_assert!(bitmap.count() >= fields_bitmap.count());
    fields.slots.reserve_exact(fields_bitmap.count());
    for n in fields_bitmap.iter() {
        let Some(layout) = spec.layout(n) else {
            return Err(MessageError::UndefinedField {
                part: Part::Field(n),
                offset: r.offset,
                spec: spec.name.clone(),
            });
        };
        let slot = read_field(n, layout, &mut r, &mut fields.decoded)?;
        fields.slots.push(slot);
    }
    if r.offset != input.len() {
        return Err(MessageError::TrailingBytes {
            offset: r.offset,
            count: input.len() - r.offset,
        });
    }
    Ok((mti, fields_bitmap))
}

/// One field at the reader's offset, checked: its value stays in the
/// frame (a span) or is transcoded into `decoded`.
pub(in crate::message) fn read_field(
    n: u16,
    layout: &FieldLayout,
    r: &mut Reader<'_>,
    decoded: &mut Vec<u8>,
) -> Result<Slot, MessageError> {
    let part = Part::Field(n);
    let (units, wire_bytes) = read_length(part, layout, r)?;
    let value_offset = r.offset;
    let wire = r.take(wire_bytes, part)?;
    let fault = |f: WireFault| match f {
        WireFault::Bcd(position) => MessageError::BadBcd {
            part,
            offset: value_offset,
            position,
        },
        WireFault::Hex(position) => MessageError::BadHex {
            part,
            offset: value_offset,
            position,
        },
    };
    let decoded_start = decoded.len();
    match layout.encoding {
        Encoding::Ascii | Encoding::Binary => {
            layout.check(n, wire, value_offset)?;
            check_inner(n, layout, wire, value_offset)?;
            return Ok(Slot::parsed(n, Source::Frame, value_offset, wire.len()));
        }
        Encoding::Ebcdic => {
            reserve(decoded, r.input.len());
            codec::ebcdic_decode(wire, decoded);
        }
        Encoding::Bcd => {
            reserve(decoded, r.input.len());
            codec::bcd_decode(wire, units, layout.class, layout.padding, decoded).map_err(fault)?;
        }
        Encoding::Hex => {
            reserve(decoded, r.input.len());
            codec::hex_decode(wire, decoded).map_err(fault)?;
        }
    }
    let value = decoded.get(decoded_start..).unwrap_or_default();
    layout.check(n, value, value_offset)?;
    check_inner(n, layout, value, value_offset)?;
    Ok(Slot::parsed(n, Source::Decoded, decoded_start, value.len()))
}

/// A field's length in units and on the wire: its layout's, or read from
/// its length prefix (then checked against the layout's maximum).
fn read_length(
    part: Part,
    layout: &FieldLayout,
    r: &mut Reader<'_>,
) -> Result<(usize, usize), MessageError> {
    if !layout.is_variable() {
        return Ok((layout.units as usize, layout.fixed_wire_bytes as usize));
    }
    let start = r.offset;
    let raw = r.take(usize::from(layout.prefix_bytes), part)?;
    let units =
        codec::read_prefix(raw, layout.prefix_encoding).ok_or(MessageError::BadLengthPrefix {
            part,
            offset: start,
        })?;
    let max = layout.units as usize;
    if units > max {
        return Err(MessageError::TooLong {
            part,
            offset: start,
            length: units,
            max,
        });
    }
    if layout.encoding == Encoding::Hex && units % 2 == 1 {
        return Err(MessageError::BadLengthPrefix {
            part,
            offset: start,
        });
    }
    Ok((units, layout.wire_bytes(units)))
}

/// A value's inner structure (`structure = "tlv"` or `"pds"` in the spec):
/// a malformed one is a format error like a bad length, so that a request
/// with, say, a DE55 whose TLV length runs past the data is never taken for
/// a valid one (and approved). A walk without allocation: tens of ns for
/// an EMV DE55 of 100 bytes.
#[inline]
fn check_inner(
    n: u16,
    layout: &FieldLayout,
    value: &[u8],
    offset: usize,
) -> Result<(), MessageError> {
    let (position, reason) = match layout.inner {
        Inner::Unchecked => return Ok(()),
        Inner::Tlv => match tlv::check(value) {
            Ok(()) => return Ok(()),
            Err(e) => (e.offset(), e.reason()),
        },
        Inner::Pds => match pds::check(value) {
            Ok(()) => return Ok(()),
            Err(e) => (e.offset(), e.reason()),
        },
    };
    Err(MessageError::BadSubElement {
        part: Part::Field(n),
        offset,
        position,
        reason,
    })
}

/// Sizes the transcoding buffer once per message: transcoding at most
/// doubles the input, so later fields never reallocate.
fn reserve(decoded: &mut Vec<u8>, input_len: usize) {
    if decoded.capacity() == 0 {
        decoded.reserve_exact(input_len * 2 + 16);
    }
}
