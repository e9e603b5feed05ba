//! `Message` -> bytes for a given spec. Bitmaps are computed from the fields
//! present; every value is checked against its field's class and length
//! before a byte is written, and on error the output is left as it was.

use bytes::{BufMut, Bytes, BytesMut};

use super::bitmap::Bitmap;
use super::codec;
use super::ebcdic;
use super::error::{MessageError, Part};
use super::iso_message::Message;
use super::spec::{BitmapEncoding, Encoding, FieldSpec, Length, Spec};

/// Builds `msg` into a new buffer.
pub fn build(spec: &Spec, msg: &Message) -> Result<Bytes, MessageError> {
    let mut out = BytesMut::with_capacity(estimate(msg));
    build_into(spec, msg, &mut out)?;
    Ok(out.freeze())
}

/// A capacity guess good enough to avoid regrowing for typical messages.
fn estimate(msg: &Message) -> usize {
    let values: usize = msg.fields().map(|(_, v)| v.len() * 2 + 4).sum();
    4 + 48 + values
}

/// Appends `msg` to `out`. On error `out` is truncated back to where it was.
pub fn build_into(spec: &Spec, msg: &Message, out: &mut BytesMut) -> Result<(), MessageError> {
    let start = out.len();
    let result = write_message(spec, msg, out, start);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_message(
    spec: &Spec,
    msg: &Message,
    out: &mut BytesMut,
    start: usize,
) -> Result<(), MessageError> {
    let bitmap = wire_bitmap(spec, msg, start)?;
    write_mti(spec, msg, out);
    write_bitmap(spec, bitmap.word(0), out);
    if bitmap.get(1) {
        write_bitmap(spec, bitmap.word(1), out);
        if spec.tertiary_bitmap && bitmap.get(65) {
            write_bitmap(spec, bitmap.word(2), out);
        }
    }
    for (n, value) in msg.fields() {
        let offset = out.len() - start;
        let Some(fs) = spec.field(n) else {
            return Err(MessageError::UndefinedField {
                part: Part::Field(n),
                offset,
                spec: spec.name.clone(),
            });
        };
        write_field(fs, value, offset, out)?;
    }
    Ok(())
}

/// The bitmap as sent: the presence bits plus bit 1 (secondary follows) and,
/// with a tertiary bitmap, bit 65.
fn wire_bitmap(spec: &Spec, msg: &Message, start: usize) -> Result<Bitmap, MessageError> {
    let mut bitmap = msg.presence();
    if let Some(n) = msg
        .fields()
        .map(|(n, _)| n)
        .find(|&n| n > spec.field_number_max() || (spec.tertiary_bitmap && n == 65))
    {
        return Err(MessageError::UndefinedField {
            part: Part::Field(n),
            offset: start,
            spec: spec.name.clone(),
        });
    }
    if bitmap.word(2) != 0 {
        bitmap.set(65);
    }
    if bitmap.word(1) != 0 || spec.secondary_bitmap_always {
        bitmap.set(1);
    }
    Ok(bitmap)
}

fn write_mti(spec: &Spec, msg: &Message, out: &mut BytesMut) {
    let d = msg.mti().digits();
    match spec.mti_encoding {
        Encoding::Bcd => {
            out.put_u8(((d[0] - b'0') << 4) | (d[1] - b'0'));
            out.put_u8(((d[2] - b'0') << 4) | (d[3] - b'0'));
        }
        Encoding::Ebcdic => {
            for b in d {
                out.put_u8(ebcdic::byte_from_latin1(b));
            }
        }
        _ => out.put_slice(&d),
    }
}

fn write_bitmap(spec: &Spec, word: u64, out: &mut BytesMut) {
    match spec.bitmap_encoding {
        BitmapEncoding::Binary => out.put_u64(word),
        BitmapEncoding::Hex => codec::hex_encode(&word.to_be_bytes(), out),
    }
}

fn write_field(
    fs: &FieldSpec,
    value: &[u8],
    offset: usize,
    out: &mut BytesMut,
) -> Result<(), MessageError> {
    fs.check_value(value, offset)?;
    if let Length::Variable { digits, .. } = fs.length {
        let units = codec::units_of_value(fs, value.len());
        codec::write_prefix(units, digits, fs.length_encoding, out);
    }
    match fs.encoding {
        Encoding::Ascii | Encoding::Binary => out.put_slice(value),
        Encoding::Ebcdic => codec::ebcdic_encode(value, out),
        Encoding::Bcd => codec::bcd_encode(value, fs.class, fs.padding, out),
        Encoding::Hex => codec::hex_encode(value, out),
    }
    Ok(())
}
