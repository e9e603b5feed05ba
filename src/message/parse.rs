//! Bytes -> `Message` for a given spec. A cursor over the input slice (a
//! checked `get` per part: nom's `take` cost 3% here, so it is kept for the
//! TLV and PDS sub-parsers), driven by the spec's compiled field table; ASCII and binary
//! values stay in the input frame (a span each), transcoded values (BCD,
//! EBCDIC, hex) share one buffer. Everything is bounded by the input's
//! length, and every fault is a typed error.

use bytes::Bytes;

use super::bitmap::Bitmap;
use super::codec::{self, WireFault};
use super::ebcdic;
use super::error::{MessageError, Part};
use super::iso_message::{Message, ParsedParts, Slot, Source};
use super::layout::FieldLayout;
use super::mti::Mti;
use super::spec::{BitmapEncoding, Encoding, Spec};
use super::swar;

/// The largest message the parser accepts (a 2-byte length's range).
pub const MESSAGE_BYTES_MAX: usize = 65_535;

/// A cursor over the input that knows its offset.
struct Reader<'a> {
    input: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.input[self.offset..]
    }

    fn take(&mut self, n: usize, part: Part) -> Result<&'a [u8], MessageError> {
        let rest = self.rest();
        match rest.get(..n) {
            Some(out) => {
                self.offset += n;
                Ok(out)
            }
            None => Err(MessageError::Truncated {
                part,
                offset: self.offset,
                needed: n,
                available: rest.len(),
            }),
        }
    }
}

/// Parses one message from `input` (a whole frame: trailing bytes are an error).
pub fn parse(spec: &Spec, input: &Bytes) -> Result<Message, MessageError> {
    let mut fields = Fields::default();
    let (mti, present) = parse_fields(spec, input, &mut fields)?;
    Ok(fields.into_message(spec, mti, present, input))
}

/// What can be read of a malformed message: its MTI and the fields before
/// the fault, to address a format-error reject (DE39 = 30) to the sender.
/// `None` when not even the MTI and bitmap can be read.
pub fn salvage(spec: &Spec, input: &Bytes) -> Option<Message> {
    let mut fields = Fields::default();
    let mut r = Reader { input, offset: 0 };
    let mti = read_mti(spec, &mut r).ok()?;
    if parse_fields(spec, input, &mut fields).is_ok() {
        return None;
    }
    let mut present = Bitmap::default();
    for slot in &fields.slots {
        present.set(slot.number());
    }
    Some(fields.into_message(spec, mti, present, input))
}

/// The fields read so far: a span per value, and the values that had to
/// be transcoded (BCD, EBCDIC, hex) in one buffer.
#[derive(Default)]
struct Fields {
    slots: Vec<Slot>,
    decoded: Vec<u8>,
}

impl Fields {
    fn into_message(self, spec: &Spec, mti: Mti, present: Bitmap, input: &Bytes) -> Message {
        Message::parsed(ParsedParts {
            mti,
            present,
            slots: self.slots,
            frame: input.clone(),
            decoded: self.decoded,
            spec_id: spec.id,
        })
    }
}

fn parse_fields(
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

fn read_mti(spec: &Spec, r: &mut Reader<'_>) -> Result<Mti, MessageError> {
    let mut digits = [0u8; 4];
    match spec.mti_encoding {
        Encoding::Bcd => {
            let raw = r.take(2, Part::Mti)?;
            for (i, b) in raw.iter().enumerate() {
                digits[2 * i] = b'0' + (b >> 4);
                digits[2 * i + 1] = b'0' + (b & 0x0F);
            }
        }
        Encoding::Ebcdic => {
            let raw = r.take(4, Part::Mti)?;
            for (d, &b) in digits.iter_mut().zip(raw) {
                *d = ebcdic::byte_to_latin1(b);
            }
        }
        _ => digits.copy_from_slice(r.take(4, Part::Mti)?),
    }
    Mti::from_digits(digits).ok_or(MessageError::BadMti { offset: 0 })
}

fn read_one_bitmap(spec: &Spec, r: &mut Reader<'_>, index: u8) -> Result<u64, MessageError> {
    let part = Part::Bitmap(index);
    match spec.bitmap_encoding {
        BitmapEncoding::Binary => {
            let raw = r.take(8, part)?;
            let mut word = [0u8; 8];
            word.copy_from_slice(raw);
            Ok(u64::from_be_bytes(word))
        }
        BitmapEncoding::Hex => {
            let start = r.offset;
            let raw = r.take(16, part)?;
            let mut text = [0u8; 16];
            text.copy_from_slice(raw);
            if let Some(word) = swar::hex16(&text) {
                return Ok(u64::from_be_bytes(word));
            }
            let position = raw
                .iter()
                .position(|&c| codec::hex_value(c).is_none())
                .unwrap_or(0);
            Err(MessageError::BadHex {
                part,
                offset: start,
                position,
            })
        }
    }
}

/// Reads the primary and any secondary / tertiary bitmap. Returns the raw
/// bitmap and the data-element presence (bitmap bits 1 and 65 removed).
fn read_bitmaps(spec: &Spec, r: &mut Reader<'_>) -> Result<(Bitmap, Bitmap), MessageError> {
    let mut bitmap = Bitmap::default();
    bitmap.set_word(0, read_one_bitmap(spec, r, 1)?);
    if spec.secondary_bitmap_always && !bitmap.get(1) {
        return Err(MessageError::MissingBitmap {
            part: Part::Bitmap(2),
            offset: r.offset,
        });
    }
    if bitmap.get(1) {
        let offset = r.offset;
        let word = read_one_bitmap(spec, r, 2)?;
        if word == 0 && !spec.secondary_bitmap_always {
            return Err(MessageError::EmptyBitmap {
                part: Part::Bitmap(2),
                offset,
            });
        }
        bitmap.set_word(1, word);
        if spec.tertiary_bitmap && bitmap.get(65) {
            let offset = r.offset;
            let word = read_one_bitmap(spec, r, 3)?;
            if word == 0 {
                return Err(MessageError::EmptyBitmap {
                    part: Part::Bitmap(3),
                    offset,
                });
            }
            bitmap.set_word(2, word);
        }
    }
    let mut fields = bitmap;
    fields.clear(1);
    if spec.tertiary_bitmap {
        fields.clear(65);
    }
    Ok((bitmap, fields))
}

fn read_field(
    n: u16,
    layout: &FieldLayout,
    r: &mut Reader<'_>,
    decoded: &mut Vec<u8>,
) -> Result<Slot, MessageError> {
    let part = Part::Field(n);
    let start = r.offset;
    let (units, wire_bytes) = if layout.is_variable() {
        let raw = r.take(usize::from(layout.prefix_bytes), part)?;
        let units = codec::read_prefix(raw, layout.prefix_encoding).ok_or(
            MessageError::BadLengthPrefix {
                part,
                offset: start,
            },
        )?;
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
        (units, layout.wire_bytes(units))
    } else {
        (layout.units as usize, layout.fixed_wire_bytes as usize)
    };
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
    Ok(Slot::parsed(n, Source::Decoded, decoded_start, value.len()))
}

/// Sizes the transcoding buffer once per message: transcoding at most
/// doubles the input, so later fields never reallocate.
fn reserve(decoded: &mut Vec<u8>, input_len: usize) {
    if decoded.capacity() == 0 {
        decoded.reserve_exact(input_len * 2 + 16);
    }
}
