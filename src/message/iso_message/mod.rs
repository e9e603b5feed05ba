//! The `Message` value: an MTI and data elements by number. Values are kept
//! in their logical form (text as Latin-1 characters, binary as raw bytes),
//! independent of any dialect, so one message can be built in another spec.
//!
//! A parsed message keeps the frame it came from (and one buffer of the
//! values that had to be transcoded) plus a span per field, instead of one
//! refcounted `Bytes` per field: a `Bytes` costs two atomic operations, and
//! most fields of a forwarded message are never looked at one by one. `get`
//! still hands out a `&Bytes`, made on first use; `value` is the cheap way.

use std::sync::OnceLock;

use bytes::Bytes;

use super::bitmap::Bitmap;
use super::error::MessageError;
use super::mti::Mti;
use super::spec::FIELD_NUMBER_MAX;

mod derive;

pub use derive::Carry;

/// Where a field's value lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// In the frame as received (ASCII and binary values).
    Frame,
    /// In the buffer of values transcoded from BCD, EBCDIC or hex text.
    Decoded,
    /// In `Message::owned`, at index `start` (a value given to `set`).
    Owned,
    /// In `Message::inline`, at `start..start + len` (a short value set:
    /// a STAN, an institution code), kept in the message itself.
    Inline,
}

/// One present field: where its value is. Small and `Copy`, so that a
/// parse pushes 12 bytes per field and a drop does not visit the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    number: u16,
    /// The value passed the checks of the spec `Message::checked_by`.
    checked: bool,
    source: Source,
    start: u32,
    len: u32,
}

impl Slot {
    /// A parsed value at `start..start + len` of `source`, checked by the parsing spec.
    #[inline]
    pub(crate) fn parsed(number: u16, source: Source, start: usize, len: usize) -> Slot {
        Slot {
            number,
            checked: true,
            source,
            // Frames are at most `MESSAGE_BYTES_MAX` (64 KiB) long.
            start: start as u32,
            len: len as u32,
        }
    }

    pub(crate) fn number(&self) -> u16 {
        self.number
    }

    /// Where the value starts in the message's frame, if it lies there.
    #[inline]
    pub(crate) fn in_frame(&self) -> Option<usize> {
        (self.source == Source::Frame).then_some(self.start as usize)
    }

    /// The slot of a plan's template (`plan.rs`) placed at `base`.
    #[inline]
    pub(crate) fn shifted(self, base: usize) -> Slot {
        Slot {
            start: self.start + base as u32,
            ..self
        }
    }
}

/// A slot's value as a slice of the shared `buffer` it points into (a
/// refcount, no copy), clamped to the buffer so that it never panics.
fn shared_span(buffer: &Bytes, slot: &Slot) -> Bytes {
    let start = (slot.start as usize).min(buffer.len());
    let end = (start + slot.len as usize).min(buffer.len());
    buffer.slice(start..end)
}

/// An ISO 8583 message: MTI plus fields 2..=192 (bitmaps are derived).
#[derive(Clone)]
pub struct Message {
    mti: Mti,
    present: Bitmap,
    /// Sorted by field number; the same set as `present`.
    slots: Vec<Slot>,
    frame: Bytes,
    /// Transcoded values. A plain vector: turning it into `Bytes` would
    /// cost an allocation per parse; `get` copies it into `decoded_shared`
    /// the first time it is asked for a transcoded value.
    decoded: Vec<u8>,
    decoded_shared: OnceLock<Bytes>,
    /// Values given to `set`; slots of source `Owned` index it.
    owned: Vec<Bytes>,
    /// Short values set (`Source::Inline`): without an allocation each.
    inline: Inline,
    /// Parsed values shared as `Bytes` by `get`, by slot index: made on
    /// first use, dropped when the slots change.
    shared: OnceLock<Box<[OnceLock<Bytes>]>>,
    /// The spec (`Spec::id`) whose checks the slots marked `checked` passed; 0: none.
    checked_by: u64,
    /// No field was set or removed since the parse: every slot is checked
    /// and the message rebuilds, in its spec, to the frame's size.
    pristine: bool,
    /// The spec (`Spec::id`) that parsed `frame`; 0: none. A value still
    /// in the frame lies there as that spec writes it, its length prefix
    /// before it, so that spec's builder copies runs of them whole.
    frame_spec: u64,
}

/// The buffers a parser fills, turned into a `Message` by `Message::parsed`.
pub(crate) struct ParsedParts {
    pub mti: Mti,
    pub present: Bitmap,
    pub slots: Vec<Slot>,
    pub frame: Bytes,
    pub decoded: Vec<u8>,
    pub spec_id: u64,
}

/// Bytes of short values a message keeps in itself: a forwarded request's
/// STAN (6) and acquiring institution (up to 11), a reply's STAN restored.
const INLINE_BYTES: usize = 30;

/// The short values set on a message, one after another. A value removed
/// or replaced leaves its bytes unused: the area only fills, and values
/// that no longer fit are kept in `Message::owned`.
#[derive(Clone, Copy)]
struct Inline {
    bytes: [u8; INLINE_BYTES],
    len: u8,
}

impl Inline {
    const EMPTY: Inline = Inline {
        bytes: [0; INLINE_BYTES],
        len: 0,
    };

    /// Appends `value`, returning where it starts, if there is room.
    fn push(&mut self, value: &[u8]) -> Option<usize> {
        let start = usize::from(self.len);
        let end = start + value.len();
        self.bytes.get_mut(start..end)?.copy_from_slice(value);
        // `end` is at most INLINE_BYTES.
        self.len = end as u8;
        Some(start)
    }

    fn get(&self, slot: &Slot) -> &[u8] {
        let start = slot.start as usize;
        self.bytes
            .get(start..start + slot.len as usize)
            .unwrap_or(&[])
    }
}

/// Fields a message usually has: room reserved up front.
const FIELDS_TYPICAL: usize = 24;
/// Values set on a parsed message, usually: room reserved on the first.
const OWNED_TYPICAL: usize = 4;

impl Message {
    /// An empty message of type `mti`.
    pub fn new(mti: Mti) -> Message {
        Message {
            slots: Vec::with_capacity(FIELDS_TYPICAL),
            ..Message::empty(mti)
        }
    }

    /// An empty message that allocates nothing until a field is set (a
    /// placeholder for one taken out).
    pub fn empty(mti: Mti) -> Message {
        Message {
            mti,
            present: Bitmap::default(),
            slots: Vec::new(),
            frame: Bytes::new(),
            decoded: Vec::new(),
            decoded_shared: OnceLock::new(),
            owned: Vec::new(),
            inline: Inline::EMPTY,
            shared: OnceLock::new(),
            checked_by: 0,
            pristine: false,
            frame_spec: 0,
        }
    }

    /// Used by the parser, which delivers fields in ascending order.
    pub(crate) fn parsed(parts: ParsedParts) -> Message {
        debug_assert!(parts.slots.windows(2).all(|w| w[0].number < w[1].number));
        debug_assert_eq!(parts.present.count(), parts.slots.len());
        Message {
            mti: parts.mti,
            present: parts.present,
            slots: parts.slots,
            frame: parts.frame,
            decoded: parts.decoded,
            decoded_shared: OnceLock::new(),
            owned: Vec::new(),
            inline: Inline::EMPTY,
            shared: OnceLock::new(),
            checked_by: parts.spec_id,
            pristine: true,
            frame_spec: parts.spec_id,
        }
    }

    /// The bytes of a slot's value.
    #[inline]
    fn slice(&self, slot: &Slot) -> &[u8] {
        let buffer: &[u8] = match slot.source {
            Source::Frame => &self.frame,
            Source::Decoded => &self.decoded,
            Source::Owned => return self.owned.get(slot.start as usize).map_or(&[], |b| b),
            Source::Inline => return self.inline.get(slot),
        };
        let start = slot.start as usize;
        // The parser made the span inside its buffer; never panic regardless.
        buffer.get(start..start + slot.len as usize).unwrap_or(&[])
    }

    /// The value of slot `i` as a shared `Bytes` (a refcount increment, made once).
    fn shared(&self, i: usize) -> &Bytes {
        static EMPTY: Bytes = Bytes::new();
        let Some(slot) = self.slots.get(i) else {
            return &EMPTY;
        };
        if slot.source == Source::Owned {
            return self.owned.get(slot.start as usize).unwrap_or(&EMPTY);
        }
        let table = self
            .shared
            .get_or_init(|| self.slots.iter().map(|_| OnceLock::new()).collect());
        let Some(cell) = table.get(i) else {
            return &EMPTY;
        };
        cell.get_or_init(|| match slot.source {
            Source::Frame => shared_span(&self.frame, slot),
            Source::Decoded => shared_span(
                self.decoded_shared
                    .get_or_init(|| Bytes::copy_from_slice(&self.decoded)),
                slot,
            ),
            Source::Inline | Source::Owned => Bytes::copy_from_slice(self.slice(slot)),
        })
    }

    pub fn mti(&self) -> Mti {
        self.mti
    }

    pub fn set_mti(&mut self, mti: Mti) {
        self.mti = mti;
    }

    /// Whether field `n` is present.
    #[inline]
    pub fn has(&self, n: u16) -> bool {
        (2..=FIELD_NUMBER_MAX).contains(&n) && self.present.get(n)
    }

    /// Where field `n` (in range) is in `slots` (`Ok`), or would go.
    #[inline]
    fn index(&self, n: u16) -> Result<usize, usize> {
        let i = self.present.rank(n);
        if self.present.get(n) && self.slots.get(i).is_some_and(|s| s.number == n) {
            Ok(i)
        } else {
            debug_assert!(!self.present.get(n), "slots and presence agree");
            Err(i)
        }
    }

    #[inline]
    fn position(&self, n: u16) -> Option<usize> {
        if !self.has(n) {
            return None;
        }
        self.index(n).ok()
    }

    /// The value of field `n`, shared as `Bytes` (see [`Message::value`]
    /// for the cheaper borrowed form).
    #[inline]
    pub fn get(&self, n: u16) -> Option<&Bytes> {
        self.position(n).map(|i| self.shared(i))
    }

    /// The value of field `n` as a borrowed slice: no refcount, no allocation.
    #[inline]
    pub fn value(&self, n: u16) -> Option<&[u8]> {
        self.position(n).map(|i| self.slice(&self.slots[i]))
    }

    /// The value of field `n` as text, if it is valid UTF-8 (ASCII text is).
    pub fn get_str(&self, n: u16) -> Option<&str> {
        self.value(n).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The value of a numeric field as an integer.
    pub fn get_u64(&self, n: u16) -> Option<u64> {
        let v = self.value(n)?;
        if v.is_empty() || v.len() > 19 {
            return None;
        }
        // One pass: each byte checked as it is added (a STAN a request).
        v.iter().try_fold(0u64, |acc, &d| {
            let digit = d.wrapping_sub(b'0');
            (digit <= 9).then(|| acc * 10 + u64::from(digit))
        })
    }

    /// Sets field `n` (2..=192) to a logical value; the spec checks it on build.
    pub fn set(&mut self, n: u16, value: impl Into<Bytes>) -> Result<(), MessageError> {
        if !(2..=FIELD_NUMBER_MAX).contains(&n) {
            return Err(MessageError::BadFieldNumber { field: n });
        }
        self.put(n, value.into(), false);
        Ok(())
    }

    /// Sets field `n` (in range) to `value`, which passed the checks of
    /// spec `checked_by` when `checked`.
    fn put(&mut self, n: u16, value: Bytes, checked: bool) {
        self.place(n, checked, |m| m.own(n, value));
    }

    /// Sets field `n` (in range) to a copy of `value`: kept in the message
    /// itself when it is short, without an allocation.
    fn put_copy(&mut self, n: u16, value: &[u8], checked: bool) {
        match self.inline.push(value) {
            Some(start) => self.place(n, checked, |_| Slot {
                number: n,
                checked: false,
                source: Source::Inline,
                start: start as u32,
                len: value.len() as u32,
            }),
            None => self.put(n, Bytes::copy_from_slice(value), checked),
        }
    }

    /// Puts the slot `make` keeps its value in at field `n`'s place.
    fn place(&mut self, n: u16, checked: bool, make: impl FnOnce(&mut Message) -> Slot) {
        self.shared.take();
        self.pristine = false;
        // Fields are mostly set in ascending order: append without a search.
        let at = if self.slots.last().is_none_or(|last| last.number < n) {
            Err(self.slots.len())
        } else {
            self.index(n)
        };
        let slot = Slot {
            checked,
            ..make(self)
        };
        match at {
            Ok(i) => {
                let old = std::mem::replace(&mut self.slots[i], slot);
                if old.source == Source::Owned {
                    self.forget_owned(old.start);
                }
            }
            Err(i) => {
                self.slots.insert(i, slot);
                self.present.set(n);
            }
        }
    }

    /// Keeps `value` in `owned` and returns a slot that points to it.
    fn own(&mut self, n: u16, value: Bytes) -> Slot {
        // A switch sets two or three fields of a message it forwards: a
        // small first reservation (24 values was 768 bytes a message).
        if self.owned.capacity() == 0 {
            self.owned.reserve(OWNED_TYPICAL);
        }
        self.owned.push(value);
        Slot {
            number: n,
            checked: false,
            source: Source::Owned,
            start: (self.owned.len() - 1) as u32,
            len: 0,
        }
    }

    /// Drops the owned value at `freed`, which no slot points to now.
    /// `owned` stays as long as the owned slots: its last value moves into
    /// the freed place and the slot that had it is repointed.
    fn forget_owned(&mut self, freed: u32) {
        let Some(last) = self.owned.len().checked_sub(1) else {
            return;
        };
        if freed as usize > last {
            return;
        }
        let last = last as u32;
        if freed < last
            && let Some(moved) = self
                .slots
                .iter_mut()
                .find(|s| s.source == Source::Owned && s.start == last)
        {
            moved.start = freed;
        }
        self.owned.swap_remove(freed as usize);
    }

    /// Sets a text field.
    pub fn set_str(&mut self, n: u16, value: &str) -> Result<(), MessageError> {
        self.set_copy(n, value.as_bytes())
    }

    /// Sets field `n` (2..=192) to a copy of `value` (a short one is kept
    /// in the message itself, without an allocation).
    pub fn set_copy(&mut self, n: u16, value: &[u8]) -> Result<(), MessageError> {
        if !(2..=FIELD_NUMBER_MAX).contains(&n) {
            return Err(MessageError::BadFieldNumber { field: n });
        }
        self.put_copy(n, value, false);
        Ok(())
    }

    /// Sets a numeric field to `value`, zero-padded on the left to `width` digits.
    /// The switch sets a STAN per forwarded request: digits are written by
    /// hand rather than through `format!`'s machinery.
    pub fn set_num(&mut self, n: u16, value: u64, width: usize) -> Result<(), MessageError> {
        // u64::MAX has 20 digits; a zero keeps one.
        let all = super::codec::decimal_digits::<20>(value);
        let first = all.iter().position(|&d| d != b'0').unwrap_or(all.len() - 1);
        let significant = &all[first..];
        if width <= all.len() {
            // The digits, zero-padded on the left, are a tail of `all`.
            let start = all.len() - width.max(significant.len());
            return self.set_copy(n, &all[start..]);
        }
        let mut text = Vec::with_capacity(width);
        text.resize(width - significant.len(), b'0');
        text.extend_from_slice(significant);
        self.set(n, Bytes::from(text))
    }

    /// Removes field `n`, returning its value.
    pub fn remove(&mut self, n: u16) -> Option<Bytes> {
        let i = self.position(n)?;
        let value = self.slot_bytes(&self.slots[i]);
        self.remove_at(i);
        Some(value)
    }

    /// Removes field `n`, if present (without making its value, as
    /// [`Message::remove`] does); whether it was.
    pub fn unset(&mut self, n: u16) -> bool {
        let Some(i) = self.position(n) else {
            return false;
        };
        self.remove_at(i);
        true
    }

    fn remove_at(&mut self, i: usize) {
        self.shared.take();
        self.pristine = false;
        let slot = self.slots.remove(i);
        self.present.clear(slot.number);
        if slot.source == Source::Owned {
            self.forget_owned(slot.start);
        }
    }

    /// Present fields in ascending order, each shared as `Bytes` (see
    /// [`Message::values`] for the cheaper borrowed form).
    pub fn fields(&self) -> impl Iterator<Item = (u16, &Bytes)> {
        self.slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.number, self.shared(i)))
    }

    /// Present fields in ascending order, as borrowed slices.
    pub fn values(&self) -> impl Iterator<Item = (u16, &[u8])> {
        self.slots.iter().map(|s| (s.number, self.slice(s)))
    }

    /// Whether spec `spec_id` parsed this message and no field changed
    /// since (its MTI may have): every field is then defined there and
    /// passed its checks.
    pub fn parsed_by(&self, spec_id: u64) -> bool {
        self.known_size(spec_id).is_some()
    }

    /// The frame, when spec `spec_id` parsed it: its values are then
    /// written there as that spec writes them (see `frame_spec`).
    pub(crate) fn frame_of(&self, spec_id: u64) -> Option<&[u8]> {
        (spec_id != 0 && spec_id == self.frame_spec).then_some(&self.frame[..])
    }

    /// The present fields' slots, in ascending order (for the builder).
    pub(crate) fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// A slot's value (see [`Message::slots`]).
    #[inline]
    pub(crate) fn slot_value(&self, slot: &Slot) -> &[u8] {
        self.slice(slot)
    }

    /// The length of a slot's value, without finding the value when
    /// the slot has it.
    #[inline]
    pub(crate) fn slot_len(&self, slot: &Slot) -> usize {
        match slot.source {
            Source::Owned => self.slice(slot).len(),
            Source::Frame | Source::Decoded | Source::Inline => slot.len as usize,
        }
    }

    /// Whether the slots marked checked passed the checks of spec `spec_id`.
    pub(crate) fn checks_of(&self, spec_id: u64) -> bool {
        spec_id != 0 && spec_id == self.checked_by
    }

    /// Whether a slot passed its checks (see [`Message::checks_of`]).
    #[inline]
    pub(crate) fn slot_checked(slot: &Slot) -> bool {
        slot.checked
    }

    /// The frame this message was parsed from, while no field has been set
    /// or removed since: what a MAC over the message as received covers.
    pub fn frame_as_received(&self) -> Option<&Bytes> {
        self.pristine.then_some(&self.frame)
    }

    /// The size in bytes of this message built in spec `spec_id`, when it
    /// is known without looking at the fields: a parsed message nobody
    /// changed (but its MTI) rebuilds to the size of its frame.
    pub(crate) fn known_size(&self, spec_id: u64) -> Option<usize> {
        (self.pristine && spec_id != 0 && spec_id == self.checked_by).then_some(self.frame.len())
    }

    /// Number of present fields.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no field is present.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The presence bitmap of the data elements (bits 1 and 65 not included).
    pub fn presence(&self) -> Bitmap {
        self.present
    }
}

/// Equal when the MTI and every field's value are: where the values live
/// (a parsed frame or `set`) does not matter.
impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.mti == other.mti
            && self.present == other.present
            && self.slots.len() == other.slots.len()
            && self.values().eq(other.values())
    }
}

impl Eq for Message {}

/// Debug output never shows values: a message may carry card data.
impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let numbers: Vec<u16> = self.slots.iter().map(|s| s.number).collect();
        f.debug_struct("Message")
            .field("mti", &self.mti)
            .field("fields", &numbers)
            .finish()
    }
}

#[cfg(test)]
mod tests;
