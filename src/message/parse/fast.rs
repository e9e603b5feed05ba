//! The fast pass: the same rules as the checking parser, with the work
//! per field cut down, and `None` for any fault.

use bytes::Bytes;

use super::MESSAGE_BYTES_MAX;
use super::reader::{Reader, read_bitmaps, read_mti};
use crate::message::bitmap::Bitmap;
use crate::message::codec;
use crate::message::ebcdic::{self, Seen};
use crate::message::iso_message::{Message, ParsedParts, Slot, Source};
use crate::message::layout::{FieldLayout, Inner};
use crate::message::plan::{Block, BlockKind, Plan, Step};
use crate::message::spec::{Class, Encoding, Padding, Spec};
use crate::message::swar;
use crate::message::{pds, tlv};

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
pub(super) fn parse_fast(spec: &Spec, input: &Bytes) -> Option<Message> {
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
        let frame = self.frame;
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
        let wire = frame.get(self.at..self.at + wire_len)?;
        self.at += wire_len;
        let (in_frame, start, len, seen) = self.transcode(layout, units, value_at, wire)?;
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
            if !inner_valid(layout.inner, buffer.get(start..start + len)?) {
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

    /// Where the value of `wire` (at `value_at` in the frame) ends up: in
    /// the frame, or transcoded to the front of the buffer; as (in the
    /// frame, start, length, what the EBCDIC transcoder saw of its bytes).
    #[inline(always)]
    fn transcode(
        &mut self,
        layout: &FieldLayout,
        units: usize,
        value_at: usize,
        wire: &[u8],
    ) -> Option<(bool, usize, usize, Seen)> {
        let (spec, frame) = (self.spec, self.frame);
        let wire_len = wire.len();
        // What the transcoding buffer is sized for on first use.
        let wire_left = frame.len().saturating_sub(value_at);
        let decoded = &mut self.decoded;
        Some(match layout.encoding {
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
        })
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

/// Whether a structured value (`structure = "tlv"` or `"pds"`) is well
/// formed; the fast pass's side of `checked::check_inner`.
#[inline(always)]
fn inner_valid(inner: Inner, value: &[u8]) -> bool {
    match inner {
        Inner::Tlv => tlv::check(value).is_ok(),
        Inner::Pds => pds::check(value).is_ok(),
        Inner::Unchecked => true,
    }
}
