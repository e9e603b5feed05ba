//! Bytes -> `Message` for a given spec. A cursor over the input slice (a
//! checked `get` per part: nom's `take` cost 3% here, so it is kept for the
//! TLV and PDS sub-parsers), driven by the spec's compiled field table; ASCII and binary
//! values stay in the input frame (a span each), transcoded values (BCD,
//! EBCDIC, hex) share one buffer. Everything is bounded by the input's
//! length, and every fault is a typed error.

use bytes::Bytes;

use super::bitmap::Bitmap;
use super::codec::{self, WireFault};
use super::ebcdic::{self, Seen};
use super::error::{MessageError, Part};
use super::iso_message::{Message, ParsedParts, Slot, Source};
use super::layout::{FieldLayout, Inner};
use super::mti::Mti;
use super::plan::{Block, BlockKind, Plan, Step};
use super::spec::{BitmapEncoding, Class, Encoding, Padding, Spec};
use super::swar;
use super::{pds, tlv};

/// The largest message the parser accepts (a 2-byte length's range).
pub const MESSAGE_BYTES_MAX: usize = 65_535;

/// A cursor over the input that knows its offset.
pub(super) struct Reader<'a> {
    pub(super) input: &'a [u8],
    pub(super) offset: usize,
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
///
/// Two passes over the same rules: a fast one that only says whether the
/// message is valid, and, when it is not (or the fast pass cannot tell),
/// the checking parser, which names the fault, its field and offset. Both
/// accept exactly the same messages (a property test compares them).
pub fn parse(spec: &Spec, input: &Bytes) -> Result<Message, MessageError> {
    if let Some(msg) = parse_fast(spec, input) {
        return Ok(msg);
    }
    parse_checked(spec, input)
}

/// The checking parser alone: every fault is a typed error naming its
/// field and offset. `parse` gives the same results, faster for valid
/// messages; this is public so that tests can hold the two to that.
pub fn parse_checked(spec: &Spec, input: &Bytes) -> Result<Message, MessageError> {
    let mut fields = Fields::default();
    let (mti, present) = parse_fields(spec, input, &mut fields)?;
    Ok(fields.into_message(spec, mti, present, input))
}

/// What can be read of a malformed message (see `salvage.rs`).
pub use super::salvage::salvage;

/// The MTI of a frame, if its first bytes read as four digits in the
/// spec's MTI encoding (whatever follows).
pub fn read_mti_only(spec: &Spec, input: &[u8]) -> Option<Mti> {
    read_mti(spec, &mut Reader { input, offset: 0 }).ok()
}

/// The fields read so far: a span per value, and the values that had to
/// be transcoded (BCD, EBCDIC, hex) in one buffer.
#[derive(Default)]
pub(super) struct Fields {
    pub(super) slots: Vec<Slot>,
    pub(super) decoded: Vec<u8>,
}

impl Fields {
    pub(super) fn into_message(
        self,
        spec: &Spec,
        mti: Mti,
        present: Bitmap,
        input: &Bytes,
    ) -> Message {
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

/// The MTI and bitmap readers are inlined (here and below): the fast pass
/// turns their errors into `None`, and inlined, it never builds them.
#[inline(always)]
pub(super) fn read_mti(spec: &Spec, r: &mut Reader<'_>) -> Result<Mti, MessageError> {
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
pub(super) fn read_bitmaps(
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

pub(super) fn read_field(
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

/// A run of adjacent values of one class, checked in one scan when the
/// run ends: consecutive fixed numeric fields (3, 4, 7, 11, ...) are one
/// span of digits on the wire, so the per-value set-up of the scan is paid
/// once per run. `Class::B` (never scanned) stands for no run.
#[derive(Clone, Copy)]
struct Span {
    class: Class,
    /// In the frame (`true`) or in the transcoding buffer.
    in_frame: bool,
    start: usize,
    end: usize,
}

impl Span {
    const NONE: Span = Span {
        class: Class::B,
        in_frame: false,
        start: 0,
        end: 0,
    };

    /// Whether the bytes of the span belong to its class.
    #[inline]
    fn valid(&self, frame: &[u8], decoded: &[u8]) -> bool {
        if self.class == Class::B {
            return true;
        }
        let buffer = if self.in_frame { frame } else { decoded };
        swar::run_admits(buffer, self.start, self.end, self.class)
    }
}

/// The transcoding buffer of the fast pass: sized once, on first use, to
/// what the transcoded values of the rest of the frame can take at most (see
/// `Spec::decoded_per_wire_byte`), then filled front to back.
struct Decoded {
    buffer: Vec<u8>,
    used: usize,
}

impl Decoded {
    /// Room for the next value of `len` bytes; `wire_left` is what the
    /// frame holds from this value on: all the values still to transcode
    /// come from there, so the buffer is sized (and zeroed) for that only.
    #[inline]
    fn next(&mut self, len: usize, spec: &Spec, wire_left: usize) -> Option<&mut [u8]> {
        self.front(spec, wire_left)?.get_mut(..len)
    }

    /// The free rest of the buffer, for a transcoder that may write
    /// scratch bytes past its value (`ebcdic::to_latin1_front`): the buffer
    /// has 16 bytes of slack so that the last values have that room too.
    #[inline]
    fn front(&mut self, spec: &Spec, wire_left: usize) -> Option<&mut [u8]> {
        if self.buffer.is_empty() {
            // Allocated at its size (growing an empty vector goes through
            // the general reallocation path), then zeroed.
            let size = wire_left * usize::from(spec.decoded_per_wire_byte) + 16;
            self.buffer = Vec::with_capacity(size);
            self.buffer.resize(size, 0);
        }
        self.buffer.get_mut(self.used..)
    }
}

/// The fast pass of `parse`: the same rules as `parse_checked`, with the
/// work per field cut down, and `None` for any fault (or anything unusual)
/// instead of an error, to be named by `parse_checked`. What it skips
/// is proven by construction: BCD digits come out of the decoder as digits,
/// a fixed value's size is its layout's; class scans run over runs of
/// adjacent values (`Span`), and not at all over EBCDIC values whose
/// transcoding saw what proves their class (`ebcdic::Seen`); the
/// transcoding buffer is sized once. A bitmap
/// seen before is read by its plan (`plan.rs`), whose blocks read runs of
/// fixed-size fields at once; a new one field by field, and its plan is
/// cached when the message proves valid.
fn parse_fast(spec: &Spec, input: &Bytes) -> Option<Message> {
    let frame: &[u8] = input;
    if frame.len() > MESSAGE_BYTES_MAX {
        return None;
    }
    let mut r = Reader {
        input: frame,
        offset: 0,
    };
    let mti = read_mti(spec, &mut r).ok()?;
    let (_, present) = read_bitmaps(spec, &mut r).ok()?;
    let mut fast = Fast {
        spec,
        frame,
        at: r.offset,
        decoded: Decoded {
            buffer: Vec::new(),
            used: 0,
        },
        span: Span::NONE,
        slots: Vec::with_capacity(present.count()),
    };
    let planned = match spec.plans.get(&present) {
        Some(plan) => {
            fast.follow(plan)?;
            true
        }
        None => {
            fast.fields(&present)?;
            false
        }
    };
    let (slots, decoded) = fast.finish()?;
    if !planned && let Some(plan) = Plan::compile(&spec.layouts, present) {
        spec.plans.insert(plan);
    }
    Some(Message::parsed(ParsedParts {
        mti,
        present,
        slots,
        frame: input.clone(),
        decoded,
        spec_id: spec.id,
    }))
}

/// The state of the fast pass: where it is in the frame, the transcoding
/// buffer, the run of values awaiting their class check, the slots so far.
struct Fast<'a> {
    spec: &'a Spec,
    frame: &'a [u8],
    at: usize,
    decoded: Decoded,
    span: Span,
    slots: Vec<Slot>,
}

impl Fast<'_> {
    /// Reads the fields of `present` one by one.
    fn fields(&mut self, present: &Bitmap) -> Option<()> {
        for word_index in 0..3u16 {
            let mut word = present.word(usize::from(word_index));
            while word != 0 {
                let lead = word.leading_zeros();
                word &= !(1u64 << (63 - lead));
                let n = word_index * 64 + lead as u16 + 1;
                // A plan holds defined fields only (`Plan::compile`).
                let layout = self
                    .spec
                    .layouts
                    .get(usize::from(n))
                    .filter(|l| l.defined)?;
                self.field(n, layout)?;
            }
        }
        Some(())
    }

    /// Reads the fields as `plan` says; the plan was made for this bitmap.
    fn follow(&mut self, plan: &Plan) -> Option<()> {
        for step in plan.steps.iter() {
            match *step {
                Step::Field(n, ref layout) => self.field(n, layout)?,
                Step::Block(block) => self.block(plan, block)?,
            }
        }
        Some(())
    }

    /// A run of fixed-size fields: one bounds check, one transcoding loop,
    /// slots from the plan's template, checks merged in advance.
    #[inline]
    fn block(&mut self, plan: &Plan, block: Block) -> Option<()> {
        let wire_len = block.wire as usize;
        let wire = self.frame.get(self.at..self.at + wire_len)?;
        let values = block.values as usize;
        let in_frame = block.kind == BlockKind::Frame;
        let mut seen = Seen::NOTHING;
        let base = if in_frame {
            self.at
        } else {
            let wire_left = self.frame.len() - self.at;
            let dst = self.decoded.front(self.spec, wire_left)?;
            if block.kind == BlockKind::Ebcdic {
                let keep = plan.lanes_of(&block)?;
                seen = ebcdic::to_latin1_block(&self.frame[self.at..], dst, values, keep)?;
            } else {
                let dst = dst.get_mut(..values)?;
                if !codec::bcd_decode_into(wire, values, Class::N, Padding::Left, dst) {
                    return None;
                }
            }
            self.decoded.used
        };
        self.at += wire_len;
        for check in plan.checks_of(&block)? {
            // The transcoder's proofs cover the lanes of the checks.
            if seen.proves(check.class) {
                continue;
            }
            let start = base + check.start as usize;
            self.run(check.class, in_frame, start, base + check.end as usize)?;
        }
        let slots = plan.slots_of(&block)?;
        self.slots
            .extend(slots.iter().map(|slot| slot.shifted(base)));
        if !in_frame {
            self.decoded.used += values;
        }
        Some(())
    }

    /// One field, whatever its kind, of a `layout` the spec defines.
    #[inline(always)]
    fn field(&mut self, n: u16, layout: &FieldLayout) -> Option<()> {
        debug_assert!(layout.defined);
        let (spec, frame) = (self.spec, self.frame);
        let field_at = self.at;
        let (units, wire_len) = if layout.prefix_bytes == 0 {
            (layout.units as usize, layout.fixed_wire_bytes as usize)
        } else {
            let prefix = frame.get(self.at..self.at + usize::from(layout.prefix_bytes))?;
            let units = codec::read_prefix(prefix, layout.prefix_encoding)?;
            if units > layout.units as usize || (layout.encoding == Encoding::Hex && units % 2 == 1)
            {
                return None;
            }
            self.at += prefix.len();
            (units, layout.wire_bytes(units))
        };
        let value_at = self.at;
        // What the transcoding buffer is sized for on first use.
        let wire_left = frame.len().saturating_sub(value_at);
        let wire = frame.get(self.at..self.at + wire_len)?;
        self.at += wire_len;
        let decoded = &mut self.decoded;
        // `seen`: what the EBCDIC transcoder saw of the value's bytes.
        let (in_frame, start, len, seen) = match layout.encoding {
            Encoding::Ascii | Encoding::Binary => (true, value_at, wire_len, Seen::NOTHING),
            Encoding::Ebcdic => {
                let dst = decoded.front(spec, wire_left)?;
                let seen = ebcdic::to_latin1_front(&frame[value_at..], dst, wire_len)?;
                (false, decoded.used, wire_len, seen)
            }
            Encoding::Bcd => {
                let len = units + usize::from(layout.sign_bytes);
                let dst = decoded.next(len, spec, wire_left)?;
                if !codec::bcd_decode_into(wire, units, layout.class, layout.padding, dst) {
                    return None;
                }
                (false, decoded.used, len, Seen::NOTHING)
            }
            Encoding::Hex => {
                let len = wire_len / 2;
                let dst = decoded.next(len, spec, wire_left)?;
                if !swar::hex_decode_into(wire, dst) {
                    return None;
                }
                (false, decoded.used, len, Seen::NOTHING)
            }
        };
        let limit = layout.value_len as usize;
        if (layout.is_variable() && len > limit) || (!layout.is_variable() && len != limit) {
            return None;
        }
        if layout.scan && !seen.proves(layout.class) {
            let run_start = if layout.prefix_in_run {
                field_at
            } else {
                start
            };
            self.run(layout.class, in_frame, run_start, start + len)?;
        }
        if layout.inner != Inner::Unchecked {
            let buffer = if in_frame {
                frame
            } else {
                &self.decoded.buffer
            };
            let value = buffer.get(start..start + len)?;
            let valid = match layout.inner {
                Inner::Tlv => tlv::check(value).is_ok(),
                Inner::Pds => pds::check(value).is_ok(),
                Inner::Unchecked => true,
            };
            if !valid {
                return None;
            }
        }
        let source = if in_frame {
            Source::Frame
        } else {
            self.decoded.used += len;
            Source::Decoded
        };
        self.slots.push(Slot::parsed(n, source, start, len));
        Some(())
    }

    /// Adds `start..end` of the frame or the transcoding buffer to the run
    /// awaiting its class check, or checks that run and starts another.
    #[inline(always)]
    fn run(&mut self, class: Class, in_frame: bool, start: usize, end: usize) -> Option<()> {
        let span = &mut self.span;
        if span.class == class
            && span.in_frame == in_frame
            && span.end == start
            // `x+n` starts with its sign: never inside a run.
            && class != Class::Xn
        {
            span.end = end;
            return Some(());
        }
        if !span.valid(self.frame, &self.decoded.buffer) {
            return None;
        }
        *span = Span {
            class,
            in_frame,
            start,
            end,
        };
        Some(())
    }

    /// The last check and the end of the frame: the slots and the
    /// transcoded values, if all is well.
    fn finish(self) -> Option<(Vec<Slot>, Vec<u8>)> {
        if !self.span.valid(self.frame, &self.decoded.buffer) || self.at != self.frame.len() {
            return None;
        }
        let mut buffer = self.decoded.buffer;
        buffer.truncate(self.decoded.used);
        Some((self.slots, buffer))
    }
}

/// Sizes the transcoding buffer once per message: transcoding at most
/// doubles the input, so later fields never reallocate.
fn reserve(decoded: &mut Vec<u8>, input_len: usize) {
    if decoded.capacity() == 0 {
        decoded.reserve_exact(input_len * 2 + 16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOLDEN: &[(&str, &str)] = &[
        (
            "iso87-ascii",
            include_str!("../../fixtures/golden/iso87-ascii/0100-auth-request.hex"),
        ),
        (
            "iso87-ascii",
            include_str!("../../fixtures/golden/iso87-ascii/0110-auth-response.hex"),
        ),
        (
            "iso87-ascii",
            include_str!("../../fixtures/golden/iso87-ascii/0400-reversal.hex"),
        ),
        (
            "iso87-ascii",
            include_str!("../../fixtures/golden/iso87-ascii/0800-echo.hex"),
        ),
        (
            "iso87-binary",
            include_str!("../../fixtures/golden/iso87-binary/0100-auth-request.hex"),
        ),
        (
            "iso87-binary",
            include_str!("../../fixtures/golden/iso87-binary/0800-echo.hex"),
        ),
        (
            "iso93-ascii",
            include_str!("../../fixtures/golden/iso93-ascii/1100-auth-request.hex"),
        ),
        (
            "iso93-ascii",
            include_str!("../../fixtures/golden/iso93-ascii/1804-echo.hex"),
        ),
        (
            "mastercard-ipm",
            include_str!("../../fixtures/golden/mastercard-ipm/1240-first-presentment.hex"),
        ),
        (
            "mastercard-ipm",
            include_str!("../../fixtures/golden/mastercard-ipm/1442-chargeback.hex"),
        ),
        (
            "mastercard-ipm",
            include_str!("../../fixtures/golden/mastercard-ipm/1644-695-file-trailer.hex"),
        ),
        (
            "mastercard-ipm",
            include_str!("../../fixtures/golden/mastercard-ipm/1644-697-file-header.hex"),
        ),
        (
            "mastercard-ipm",
            include_str!("../../fixtures/golden/mastercard-ipm/1740-fee-collection.hex"),
        ),
    ];

    /// Bytes near the edges of the classes and encodings: digits, letters,
    /// separators, EBCDIC digits and space, BCD nibbles past 9, Latin-1.
    fn edge_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            prop::sample::select(vec![
                b'0', b'9', b'/', b':', b'A', b'D', b'F', b'G', b'Z', b'a', b'f', b'z', b' ', b'=',
                b'C', b'~', 0x7F, 0x9F, 0xA0, 0xFF, 0x40, 0xF0, 0xF9, 0xFA, 0xC1, 0xC3, 0xC4, 0x7E,
                0x09, 0x0D, 0xD0, 0x1F, 0x00, 0x99,
            ]),
            any::<u8>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

        /// The fast pass accepts exactly what the checking parser accepts,
        /// with the same values, on golden messages of every spec with a
        /// few bytes replaced, inserted or removed, or cut short.
        #[test]
        fn the_fast_pass_agrees_with_the_checking_parser(
            which in 0..GOLDEN.len(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), edge_byte(), 0u8..8), 0..4),
            plan_first in any::<bool>(),
        ) {
            let (name, text) = GOLDEN[which];
            let spec = Spec::resolve(name).expect("spec");
            let mut bytes = hex::decode(text.trim()).expect("hex");
            // Half the cases read the edited message by the golden bitmap's
            // plan, half field by field (and cache a plan if it is valid).
            if plan_first {
                let golden = Bytes::from(bytes.clone());
                prop_assert!(parse_fast(&spec, &golden).is_some());
                prop_assert_eq!(spec.plans.len(), 1);
            }
            for (at, byte, kind) in edits {
                let i = at.index(bytes.len() + 1);
                match kind {
                    0 => bytes.insert(i, byte),
                    1 if i < bytes.len() => {
                        bytes.remove(i);
                    }
                    2 => bytes.truncate(i),
                    _ if i < bytes.len() => bytes[i] = byte,
                    _ => {}
                }
            }
            let input = Bytes::from(bytes);
            let checked = parse_checked(&spec, &input);
            // Twice: the second time by the plan the first one cached, if any.
            for round in 0..2 {
                let fast = parse_fast(&spec, &input);
                match (fast, &checked) {
                    (Some(f), Ok(c)) => {
                        prop_assert_eq!(&f, c);
                        prop_assert!(f.values().eq(c.values()));
                    }
                    (None, Err(_)) => {}
                    (f, c) => prop_assert!(false, "{name} round {round}: fast pass {:?}, checking parser {:?}", f.is_some(), c.as_ref().err()),
                }
            }
        }
    }

    #[test]
    fn golden_messages_take_the_fast_pass() {
        for (name, text) in GOLDEN {
            let spec = Spec::resolve(name).expect("spec");
            let input = Bytes::from(hex::decode(text.trim()).expect("hex"));
            assert!(parse_fast(&spec, &input).is_some(), "{name}");
            assert_eq!(spec.plans.len(), 1, "{name}: the bitmap's plan is cached");
            assert!(parse_fast(&spec, &input).is_some(), "{name}, by its plan");
        }
    }
}
