//! The cursor over a frame and the parts every message starts with: the
//! MTI and the primary, secondary and tertiary bitmaps.

use crate::message::bitmap::Bitmap;
use crate::message::codec;
use crate::message::ebcdic;
use crate::message::error::{MessageError, Part};
use crate::message::mti::Mti;
use crate::message::spec::{BitmapEncoding, Encoding, Spec};
use crate::message::swar;

/// A cursor over the input that knows its offset.
pub(in crate::message) struct Reader<'a> {
    pub(in crate::message) input: &'a [u8],
    pub(in crate::message) offset: usize,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.input[self.offset..]
    }

    pub(super) fn take(&mut self, n: usize, part: Part) -> Result<&'a [u8], MessageError> {
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

/// The MTI and bitmap readers are inlined (here and below): the fast pass
/// turns their errors into `None`, and inlined, it never builds them.
#[inline(always)]
pub(in crate::message) fn read_mti(spec: &Spec, r: &mut Reader<'_>) -> Result<Mti, MessageError> {
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
            ebcdic::to_latin1_into(r.take(4, Part::Mti)?, &mut digits);
        }
        _ => digits.copy_from_slice(r.take(4, Part::Mti)?),
    }
    Mti::from_digits(digits).ok_or(MessageError::BadMti { offset: 0 })
}

#[inline(always)]
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
#[inline(always)]
pub(in crate::message) fn read_bitmaps(
    spec: &Spec,
    r: &mut Reader<'_>,
) -> Result<(Bitmap, Bitmap), MessageError> {
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
