//! Bytes -> `Message` for a given spec. Reads with nom primitives over the
//! input slice; ASCII and binary values are zero-copy slices of the input,
//! transcoded values (BCD, EBCDIC, hex) share one scratch buffer. Everything
//! is bounded by the input's length, and every fault is a typed error.

use bytes::{Bytes, BytesMut};
use nom::IResult;
use nom::bytes::complete::take;

use super::bitmap::Bitmap;
use super::codec::{self, WireFault};
use super::ebcdic;
use super::error::{MessageError, Part};
use super::iso_message::Message;
use super::mti::Mti;
use super::spec::{BitmapEncoding, Encoding, FieldSpec, Length, Spec};

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
        let taken: IResult<&[u8], &[u8]> = take(n)(rest);
        match taken {
            Ok((_, out)) => {
                self.offset += n;
                Ok(out)
            }
            Err(_) => Err(MessageError::Truncated {
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
    let mut fields = Vec::new();
    parse_fields(spec, input, &mut fields)
}

/// What can be read of a malformed message: its MTI and the fields before
/// the fault, to address a format-error reject (DE39 = 30) to the sender.
/// `None` when not even the MTI and bitmap can be read.
pub fn salvage(spec: &Spec, input: &Bytes) -> Option<Message> {
    let mut fields = Vec::new();
    let mut r = Reader { input, offset: 0 };
    let mti = read_mti(spec, &mut r).ok()?;
    if parse_fields(spec, input, &mut fields).is_ok() {
        return None;
    }
    let mut msg = Message::new(mti);
    for (n, v) in fields {
        let _ = msg.set(n, v);
    }
    Some(msg)
}

fn parse_fields(
    spec: &Spec,
    input: &Bytes,
    fields: &mut Vec<(u16, Bytes)>,
) -> Result<Message, MessageError> {
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
    let mut scratch = BytesMut::new();
    fields.reserve_exact(fields_bitmap.count());
    for n in fields_bitmap.iter() {
        let start = r.offset;
        let Some(fs) = spec.field(n) else {
            return Err(MessageError::UndefinedField {
                part: Part::Field(n),
                offset: start,
                spec: spec.name.clone(),
            });
        };
        let value = read_field(fs, &mut r, input, &mut scratch)?;
        fields.push((n, value));
    }
    if r.offset != input.len() {
        return Err(MessageError::TrailingBytes {
            offset: r.offset,
            count: input.len() - r.offset,
        });
    }
    Ok(Message::from_sorted(
        mti,
        fields_bitmap,
        std::mem::take(fields),
    ))
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
            let mut word = 0u64;
            for (i, &c) in raw.iter().enumerate() {
                let v = codec::hex_value(c).ok_or(MessageError::BadHex {
                    part,
                    offset: start,
                    position: i,
                })?;
                word = (word << 4) | u64::from(v);
            }
            Ok(word)
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
    fs: &FieldSpec,
    r: &mut Reader<'_>,
    input: &Bytes,
    scratch: &mut BytesMut,
) -> Result<Bytes, MessageError> {
    let part = Part::Field(fs.number);
    let start = r.offset;
    let units = match fs.length {
        Length::Fixed(_) => codec::fixed_units(fs).unwrap_or(0),
        Length::Variable { digits, .. } => {
            let width = codec::prefix_bytes(digits, fs.length_encoding);
            let raw = r.take(width, part)?;
            let units = codec::read_prefix(raw, fs.length_encoding).ok_or(
                MessageError::BadLengthPrefix {
                    part,
                    offset: start,
                },
            )?;
            let max = codec::max_units(fs);
            if units > max {
                return Err(MessageError::TooLong {
                    part,
                    offset: start,
                    length: units,
                    max,
                });
            }
            if fs.encoding == Encoding::Hex && units % 2 == 1 {
                return Err(MessageError::BadLengthPrefix {
                    part,
                    offset: start,
                });
            }
            units
        }
    };
    let value_offset = r.offset;
    let wire = r.take(codec::wire_bytes(fs, units), part)?;
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
    let value = match fs.encoding {
        Encoding::Ascii | Encoding::Binary => input.slice(value_offset..value_offset + wire.len()),
        Encoding::Ebcdic => {
            reserve(scratch, input.len());
            codec::ebcdic_decode(wire, scratch);
            scratch.split().freeze()
        }
        Encoding::Bcd => {
            reserve(scratch, input.len());
            codec::bcd_decode(wire, units, fs.class, fs.padding, scratch).map_err(fault)?;
            scratch.split().freeze()
        }
        Encoding::Hex => {
            reserve(scratch, input.len());
            codec::hex_decode(wire, scratch).map_err(fault)?;
            scratch.split().freeze()
        }
    };
    fs.check_value(&value, value_offset)?;
    Ok(value)
}

/// Sizes the shared scratch buffer once per message: transcoding at most
/// doubles the input, so later fields never reallocate.
fn reserve(scratch: &mut BytesMut, input_len: usize) {
    if scratch.capacity() == 0 {
        scratch.reserve(input_len * 2 + 16);
    }
}
