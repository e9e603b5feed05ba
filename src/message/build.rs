//! `Message` -> bytes for a given spec. Bitmaps are computed from the fields
//! present; every value is checked against its field's class and length
//! before a byte is written (values this spec checked when it parsed them
//! are not checked twice), and on error the output is left as it was.

use bytes::{Bytes, BytesMut};

use super::bitmap::Bitmap;
use super::codec::{self, Output};
use super::ebcdic;
use super::error::{MessageError, Part};
use super::iso_message::Message;
use super::spec::{BitmapEncoding, Encoding, Spec};

/// Builds `msg` into a new buffer of exactly its size.
pub fn build(spec: &Spec, msg: &Message) -> Result<Bytes, MessageError> {
    let (bitmap, size) = plan(spec, msg)?;
    let mut out = Vec::with_capacity(size);
    write_message(spec, msg, bitmap, &mut out)?;
    debug_assert_eq!(out.len(), size, "build planned the wrong size");
    // A vector whose length is its capacity becomes `Bytes` without copying
    // or a second allocation.
    Ok(Bytes::from(out))
}

/// Appends `msg` to `out`. On error `out` is left as it was.
pub fn build_into(spec: &Spec, msg: &Message, out: &mut BytesMut) -> Result<(), MessageError> {
    let (bitmap, size) = plan(spec, msg)?;
    out.reserve(size);
    let start = out.len();
    let result = write_message(spec, msg, bitmap, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Checks every field and returns the wire bitmap and the message's size in
/// bytes, before anything is written.
fn plan(spec: &Spec, msg: &Message) -> Result<(Bitmap, usize), MessageError> {
    let bitmap = wire_bitmap(spec, msg)?;
    let words = 1 + usize::from(bitmap.get(1)) + usize::from(bitmap.word(2) != 0);
    let bitmap_bytes = match spec.bitmap_encoding {
        BitmapEncoding::Binary => 8,
        BitmapEncoding::Hex => 16,
    };
    let mti_bytes = if spec.mti_encoding == Encoding::Bcd {
        2
    } else {
        4
    };
    let mut size = mti_bytes + words * bitmap_bytes;
    // Offsets in errors count from the message start, as the parser's do.
    for (n, value, checked) in msg.values_checked_by(spec.id) {
        let Some(layout) = spec.layout(n) else {
            return Err(MessageError::UndefinedField {
                part: Part::Field(n),
                offset: size,
                spec: spec.name.clone(),
            });
        };
        let prefix = usize::from(layout.prefix_bytes);
        if !checked {
            layout.check(n, value, size)?;
        }
        size += prefix + layout.wire_bytes(layout.units_of_value(value.len()));
    }
    Ok((bitmap, size))
}

fn write_message(
    spec: &Spec,
    msg: &Message,
    bitmap: Bitmap,
    out: &mut impl Output,
) -> Result<(), MessageError> {
    write_mti(spec, msg, out);
    write_bitmap(spec, bitmap.word(0), out);
    if bitmap.get(1) {
        write_bitmap(spec, bitmap.word(1), out);
        if spec.tertiary_bitmap && bitmap.get(65) {
            write_bitmap(spec, bitmap.word(2), out);
        }
    }
    for (n, value) in msg.values() {
        // `plan` has found every field defined and every value valid.
        let Some(layout) = spec.layout(n) else {
            return Err(MessageError::UndefinedField {
                part: Part::Field(n),
                offset: out.written(),
                spec: spec.name.clone(),
            });
        };
        if layout.is_variable() {
            let units = layout.units_of_value(value.len());
            codec::write_prefix(units, layout.prefix_digits, layout.prefix_encoding, out);
        }
        match layout.encoding {
            Encoding::Ascii | Encoding::Binary => out.put(value),
            Encoding::Ebcdic => codec::ebcdic_encode(value, out),
            Encoding::Bcd => codec::bcd_encode(value, layout.class, layout.padding, out),
            Encoding::Hex => codec::hex_encode(value, out),
        }
    }
    Ok(())
}

/// The bitmap as sent: the presence bits plus bit 1 (secondary follows) and,
/// with a tertiary bitmap, bit 65.
fn wire_bitmap(spec: &Spec, msg: &Message) -> Result<Bitmap, MessageError> {
    let mut bitmap = msg.presence();
    if let Some(n) = bitmap
        .iter()
        .find(|&n| n > spec.field_number_max() || (spec.tertiary_bitmap && n == 65))
    {
        return Err(MessageError::UndefinedField {
            part: Part::Field(n),
            offset: 0,
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

fn write_mti(spec: &Spec, msg: &Message, out: &mut impl Output) {
    let d = msg.mti().digits();
    match spec.mti_encoding {
        Encoding::Bcd => out.put(&[
            ((d[0] - b'0') << 4) | (d[1] - b'0'),
            ((d[2] - b'0') << 4) | (d[3] - b'0'),
        ]),
        Encoding::Ebcdic => out.put(&d.map(ebcdic::byte_from_latin1)),
        _ => out.put(&d),
    }
}

fn write_bitmap(spec: &Spec, word: u64, out: &mut impl Output) {
    match spec.bitmap_encoding {
        BitmapEncoding::Binary => out.put(&word.to_be_bytes()),
        BitmapEncoding::Hex => codec::hex_encode(&word.to_be_bytes(), out),
    }
}
