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

/// Room beyond its frame's size for a message made from a frame (a
/// changed STAN, an acquiring institution added): it rarely grows more.
const FROM_FRAME_SLACK_BYTES: usize = 64;

/// How `write_message` goes about it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `plan` checked every value: values still in a frame this spec
    /// parsed are copied in runs, or (`false`) each written on its own.
    Planned(bool),
    /// Nothing checked yet: each value not checked by this spec is checked
    /// before it is written; values checked are copied in runs.
    Checking,
}

/// Builds `msg` into a new buffer of exactly its size.
pub fn build(spec: &Spec, msg: &Message) -> Result<Bytes, MessageError> {
    if msg.known_size(spec.id).is_none()
        && let Some(frame) = msg.frame_of(spec.id)
    {
        return build_from_frame(spec, msg, frame.len());
    }
    let (bitmap, size) = plan_or_skip(spec, msg)?;
    // The planned size is exact: fill a buffer of that size in place (one
    // memset up front instead of a capacity check and zero fill per value).
    // Not `vec![0; size]`: calloc costs ~450 instructions more a build
    // here than malloc and a memset (callgrind, golden 0100).
    #[allow(clippy::slow_vector_initialization)]
    let mut buffer = {
        let mut v = Vec::with_capacity(size);
        v.resize(size, 0);
        v
    };
    let mut out = Filler {
        buffer: &mut buffer,
        at: 0,
        overflow: false,
    };
    write_message(spec, msg, bitmap, &mut out, Mode::Planned(true))?;
    if out.overflow || out.at != size {
        // Only a wrong plan gets here (a bug): the growing buffer, each
        // value written on its own, is right regardless.
        debug_assert!(false, "build planned the wrong size");
        let mut out = Vec::with_capacity(size);
        write_message(spec, msg, bitmap, &mut out, Mode::Planned(false))?;
        return Ok(Bytes::from(out));
    }
    // A vector whose length is its capacity becomes `Bytes` without copying
    // or a second allocation.
    Ok(Bytes::from(buffer))
}

/// A message made from a frame this spec parsed (a forwarded request, a
/// reply) is mostly runs of that frame: checked and written in one pass,
/// without a plan, into a buffer of about the frame's size.
fn build_from_frame(spec: &Spec, msg: &Message, frame_len: usize) -> Result<Bytes, MessageError> {
    let bitmap = wire_bitmap(spec, msg)?;
    let mut out = Vec::with_capacity(frame_len + FROM_FRAME_SLACK_BYTES);
    write_message(spec, msg, bitmap, &mut out, Mode::Checking)?;
    // Shrunk in place by the allocator: `Bytes` then needs no header of
    // its own, and a cached reply keeps no slack.
    Ok(Bytes::from(out.into_boxed_slice()))
}

/// Writes into a buffer of the planned size. Writing past its end (never,
/// when the plan is right) writes nothing and is remembered.
struct Filler<'a> {
    buffer: &'a mut [u8],
    at: usize,
    overflow: bool,
}

impl Output for Filler<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at + bytes.len();
        match self.buffer.get_mut(self.at..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.at = end;
            }
            None => self.overflow = true,
        }
    }
    #[inline]
    fn grow(&mut self, count: usize) -> &mut [u8] {
        let start = self.at;
        let end = start + count;
        if end > self.buffer.len() {
            self.overflow = true;
            return &mut [];
        }
        self.at = end;
        &mut self.buffer[start..end]
    }
    #[inline]
    fn written(&self) -> usize {
        self.at
    }
    #[inline]
    fn truncate_to(&mut self, len: usize) {
        self.at = self.at.min(len);
    }
    #[inline]
    fn put_mapped(&mut self, bytes: &[u8], table: &[u8; 256]) {
        for (d, &b) in self.grow(bytes.len()).iter_mut().zip(bytes) {
            *d = table[usize::from(b)];
        }
    }
}

/// Appends `msg` to `out`. On error `out` is left as it was.
pub fn build_into(spec: &Spec, msg: &Message, out: &mut BytesMut) -> Result<(), MessageError> {
    let (bitmap, size) = plan_or_skip(spec, msg)?;
    out.reserve(size);
    let start = out.len();
    let result = write_message(spec, msg, bitmap, out, Mode::Planned(true));
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// `plan`, unless this spec parsed the message and nothing changed since:
/// then every field is defined and checked, and the size is the frame's.
fn plan_or_skip(spec: &Spec, msg: &Message) -> Result<(Bitmap, usize), MessageError> {
    match msg.known_size(spec.id) {
        Some(size) => Ok((wire_bitmap(spec, msg)?, size)),
        None => plan(spec, msg),
    }
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
    let checks_kept = msg.checks_of(spec.id);
    for slot in msg.slots() {
        let n = slot.number();
        let Some(layout) = spec.layout(n) else {
            return Err(MessageError::UndefinedField {
                part: Part::Field(n),
                offset: size,
                spec: spec.name.clone(),
            });
        };
        let prefix = usize::from(layout.prefix_bytes);
        let len = if checks_kept && Message::slot_checked(slot) {
            msg.slot_len(slot)
        } else {
            let value = msg.slot_value(slot);
            layout.check(n, value, size)?;
            value.len()
        };
        size += prefix + layout.wire_bytes(layout.units_of_value(len));
    }
    Ok((bitmap, size))
}

/// Writes the MTI, the bitmaps and the fields (see [`Mode`]). Values still
/// in a frame this spec parsed are copied from it with their length
/// prefixes, each run of adjacent ones at once (a forwarded request or a
/// reply differs from the frame it came from in a few fields only).
fn write_message(
    spec: &Spec,
    msg: &Message,
    bitmap: Bitmap,
    out: &mut impl Output,
    mode: Mode,
) -> Result<(), MessageError> {
    let checking = mode == Mode::Checking;
    let checks_kept = msg.checks_of(spec.id);
    write_mti(spec, msg, out);
    write_bitmap(spec, bitmap.word(0), out);
    if bitmap.get(1) {
        write_bitmap(spec, bitmap.word(1), out);
        if spec.tertiary_bitmap && bitmap.get(65) {
            write_bitmap(spec, bitmap.word(2), out);
        }
    }
    let frame = msg
        .frame_of(spec.id)
        .filter(|_| mode != Mode::Planned(false));
    // The frame's bytes not yet written: start..end.
    let mut run = (0, 0);
    for slot in msg.slots() {
        let n = slot.number();
        // `plan` has found every field defined and every value valid.
        let Some(layout) = spec.layout(n) else {
            return Err(MessageError::UndefinedField {
                part: Part::Field(n),
                offset: out.written(),
                spec: spec.name.clone(),
            });
        };
        let checked = checks_kept && Message::slot_checked(slot);
        let wire = slot
            .in_frame()
            .filter(|_| checked || !checking)
            .and_then(|at| Some((at.checked_sub(usize::from(layout.prefix_bytes))?, at)));
        if let (Some(frame), Some((begin, at))) = (frame, wire) {
            if run.1 != begin {
                put_run(frame, run, out);
                run.0 = begin;
            }
            run.1 = at + msg.slot_len(slot);
            continue;
        }
        put_run(frame.unwrap_or_default(), run, out);
        run = (0, 0);
        let value = msg.slot_value(slot);
        if checking && !checked {
            layout.check(n, value, out.written())?;
        }
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
    put_run(frame.unwrap_or_default(), run, out);
    Ok(())
}

/// Copies `frame[start..end]`; a span outside the frame (never: the parser
/// made it) writes nothing, which the caller's size check catches.
#[inline]
fn put_run(frame: &[u8], (start, end): (usize, usize), out: &mut impl Output) {
    if let Some(bytes) = frame.get(start..end).filter(|b| !b.is_empty()) {
        out.put(bytes);
    }
}

/// The bitmap as sent: the presence bits plus bit 1 (secondary follows) and,
/// with a tertiary bitmap, bit 65.
fn wire_bitmap(spec: &Spec, msg: &Message) -> Result<Bitmap, MessageError> {
    let mut bitmap = msg.presence();
    // The lowest field this spec cannot carry: 65 is the tertiary bitmap's
    // flag where there is one, and 129 up need a tertiary bitmap.
    let undefined = if spec.tertiary_bitmap {
        bitmap.get(65).then_some(65)
    } else {
        let word = bitmap.word(2);
        (word != 0).then(|| 129 + word.leading_zeros() as u16)
    };
    if let Some(n) = undefined {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Spec;

    fn golden() -> (std::sync::Arc<Spec>, Bytes, Message) {
        let spec = Spec::resolve("iso87-ascii").expect("spec");
        let text = include_str!("../../fixtures/golden/iso87-ascii/0100-auth-request.hex");
        let wire = Bytes::from(hex::decode(text.trim()).expect("hex"));
        let msg = spec.parse(&wire).expect("golden parses");
        (spec, wire, msg)
    }

    /// A copy of `msg` made with `set`, so that nothing is remembered as checked.
    fn fresh_copy(msg: &Message) -> Message {
        let mut copy = Message::new(msg.mti());
        for (n, v) in msg.values() {
            copy.set(n, Bytes::copy_from_slice(v)).expect("set");
        }
        copy
    }

    #[test]
    fn a_parsed_message_rebuilds_like_a_fresh_copy() {
        let (spec, wire, mut msg) = golden();
        assert_eq!(build(&spec, &msg).expect("build"), wire);
        msg.set_mti("0101".parse().expect("mti"));
        let rebuilt = build(&spec, &msg).expect("build");
        assert_eq!(rebuilt, build(&spec, &fresh_copy(&msg)).expect("build"));
        assert_eq!(&rebuilt[..4], b"0101");
        let mut into = BytesMut::from(&b"xx"[..]);
        build_into(&spec, &msg, &mut into).expect("build_into");
        assert_eq!(&into[2..], &rebuilt[..]);
    }

    /// Values copied from the frame in runs (`write_message`) build the
    /// same bytes as values written one by one, whatever changed between
    /// them: in every dialect with goldens, every field in turn set to its
    /// own value (out of the frame) and then removed.
    #[test]
    fn runs_copied_from_the_frame_build_like_values_written_one_by_one() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden");
        let mut built = 0;
        for spec_name in [
            "iso87-ascii",
            "iso87-binary",
            "iso93-ascii",
            "mastercard-ipm",
        ] {
            let spec = Spec::resolve(spec_name).expect("spec");
            for entry in std::fs::read_dir(dir.join(spec_name)).expect("goldens") {
                let path = entry.expect("entry").path();
                if path.extension().is_none_or(|e| e != "hex") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("read");
                let wire = Bytes::from(hex::decode(text.trim()).expect("hex"));
                let msg = spec.parse(&wire).expect("golden parses");
                assert_eq!(build(&spec, &msg).expect("build"), wire);
                let numbers: Vec<u16> = msg.values().map(|(n, _)| n).collect();
                for &n in &numbers {
                    let mut changed = msg.clone();
                    let value = Bytes::copy_from_slice(msg.value(n).expect("present"));
                    changed.set(n, value).expect("set");
                    let fresh = build(&spec, &fresh_copy(&changed)).expect("build");
                    assert_eq!(
                        build(&spec, &changed).expect("build"),
                        fresh,
                        "{path:?} set {n}"
                    );
                    changed.remove(n);
                    let fresh = build(&spec, &fresh_copy(&changed)).expect("build");
                    assert_eq!(
                        build(&spec, &changed).expect("build"),
                        fresh,
                        "{path:?} drop {n}"
                    );
                    let mut into = BytesMut::new();
                    build_into(&spec, &changed, &mut into).expect("build_into");
                    assert_eq!(&into[..], &fresh[..]);
                    built += 1;
                }
            }
        }
        assert!(built > 50, "goldens found: {built} fields changed");
    }

    #[test]
    fn a_value_set_after_parsing_is_checked() {
        let (spec, _, mut msg) = golden();
        msg.set(4, &b"00000001250A"[..]).expect("set");
        let err = build(&spec, &msg).expect_err("letter in an n field");
        assert_eq!(err.kind(), "invalid_content");
        assert_eq!(err.field(), Some(4));
        // Made from the frame (checked as written) or not (planned first):
        // the same fault at the same offset.
        let planned = build(&spec, &fresh_copy(&msg)).expect_err("planned");
        assert_eq!(err.offset(), planned.offset());
        assert!(err.offset().is_some());
        msg.set(4, &b"000000012500"[..]).expect("set");
        msg.remove(11);
        let rebuilt = build(&spec, &msg).expect("build");
        assert_eq!(spec.parse(&rebuilt).expect("parse"), msg);
    }

    #[test]
    fn another_spec_checks_parsed_values_again() {
        let (_, _, msg) = golden();
        let ipm = Spec::resolve("mastercard-ipm").expect("spec");
        let binary = Spec::resolve("iso87-binary").expect("spec");
        assert_eq!(
            build(&ipm, &msg).map_err(|e| e.kind()),
            build(&ipm, &fresh_copy(&msg)).map_err(|e| e.kind())
        );
        let wire = build(&binary, &msg).expect("the 0100 fits iso87-binary");
        assert_eq!(wire, build(&binary, &fresh_copy(&msg)).expect("build"));
        assert_eq!(binary.parse(&wire).expect("parse"), msg);
    }
}
