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

/// Where a field's value lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// In the frame as received (ASCII and binary values).
    Frame,
    /// In the buffer of values transcoded from BCD, EBCDIC or hex text.
    Decoded,
    /// In `Message::owned`, at index `start` (a value given to `set`).
    Owned,
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
    /// Parsed values shared as `Bytes` by `get`, by slot index: made on
    /// first use, dropped when the slots change.
    shared: OnceLock<Box<[OnceLock<Bytes>]>>,
    /// The spec (`Spec::id`) whose checks the slots marked `checked` passed; 0: none.
    checked_by: u64,
    /// No field was set or removed since the parse: every slot is checked
    /// and the message rebuilds, in its spec, to the frame's size.
    pristine: bool,
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

/// Fields a message usually has: room reserved up front.
const FIELDS_TYPICAL: usize = 24;

impl Message {
    /// An empty message of type `mti`.
    pub fn new(mti: Mti) -> Message {
        Message {
            mti,
            present: Bitmap::default(),
            slots: Vec::with_capacity(FIELDS_TYPICAL),
            frame: Bytes::new(),
            decoded: Vec::new(),
            decoded_shared: OnceLock::new(),
            owned: Vec::new(),
            shared: OnceLock::new(),
            checked_by: 0,
            pristine: false,
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
            shared: OnceLock::new(),
            checked_by: parts.spec_id,
            pristine: true,
        }
    }

    /// The bytes of a slot's value.
    #[inline]
    fn slice(&self, slot: &Slot) -> &[u8] {
        let buffer: &[u8] = match slot.source {
            Source::Frame => &self.frame,
            Source::Decoded => &self.decoded,
            Source::Owned => return self.owned.get(slot.start as usize).map_or(&[], |b| b),
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
        let buffer = match slot.source {
            Source::Frame => &self.frame,
            Source::Decoded => self
                .decoded_shared
                .get_or_init(|| Bytes::copy_from_slice(&self.decoded)),
            Source::Owned => return self.owned.get(slot.start as usize).unwrap_or(&EMPTY),
        };
        let table = self
            .shared
            .get_or_init(|| self.slots.iter().map(|_| OnceLock::new()).collect());
        let Some(cell) = table.get(i) else {
            return &EMPTY;
        };
        cell.get_or_init(|| shared_span(buffer, slot))
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

    fn index(&self, n: u16) -> Result<usize, usize> {
        self.slots.binary_search_by_key(&n, |s| s.number)
    }

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
        if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(v.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')))
    }

    /// Sets field `n` (2..=192) to a logical value; the spec checks it on build.
    pub fn set(&mut self, n: u16, value: impl Into<Bytes>) -> Result<(), MessageError> {
        if !(2..=FIELD_NUMBER_MAX).contains(&n) {
            return Err(MessageError::BadFieldNumber { field: n });
        }
        let value = value.into();
        self.shared.take();
        self.pristine = false;
        // Fields are mostly set in ascending order: append without a search.
        let at = if self.slots.last().is_none_or(|last| last.number < n) {
            Err(self.slots.len())
        } else {
            self.index(n)
        };
        match at {
            Ok(i) if self.slots[i].source == Source::Owned => {
                let slot = &mut self.slots[i];
                slot.checked = false;
                if let Some(old) = self.owned.get_mut(slot.start as usize) {
                    *old = value;
                }
            }
            Ok(i) => self.slots[i] = self.own(n, value),
            Err(i) => {
                let slot = self.own(n, value);
                self.slots.insert(i, slot);
                self.present.set(n);
            }
        }
        Ok(())
    }

    /// Keeps `value` in `owned` and returns a slot that points to it.
    fn own(&mut self, n: u16, value: Bytes) -> Slot {
        if self.owned.capacity() == 0 {
            self.owned.reserve(FIELDS_TYPICAL);
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

    /// Sets a text field.
    pub fn set_str(&mut self, n: u16, value: &str) -> Result<(), MessageError> {
        self.set(n, Bytes::copy_from_slice(value.as_bytes()))
    }

    /// Sets a numeric field to `value`, zero-padded on the left to `width` digits.
    /// The switch sets a STAN per forwarded request: digits are written by
    /// hand rather than through `format!`'s machinery.
    pub fn set_num(&mut self, n: u16, value: u64, width: usize) -> Result<(), MessageError> {
        // u64::MAX has 20 digits; a zero keeps one.
        let all = super::codec::decimal_digits::<20>(value);
        let first = all.iter().position(|&d| d != b'0').unwrap_or(all.len() - 1);
        let significant = &all[first..];
        let mut text = Vec::with_capacity(width.max(significant.len()));
        text.resize(width.saturating_sub(significant.len()), b'0');
        text.extend_from_slice(significant);
        self.set(n, Bytes::from(text))
    }

    /// Removes field `n`, returning its value.
    pub fn remove(&mut self, n: u16) -> Option<Bytes> {
        let i = self.position(n)?;
        let value = self.value_bytes(n)?;
        self.shared.take();
        self.pristine = false;
        self.present.clear(n);
        let slot = self.slots.remove(i);
        if slot.source == Source::Owned
            && let Some(last) = self.owned.len().checked_sub(1)
            && (slot.start as usize) <= last
        {
            // Keep `owned` as long as the owned slots: move its last value
            // into the freed place and repoint the slot that had it.
            let freed = slot.start;
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
        Some(value)
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

    /// Present fields for the builder of spec `spec_id`: number, value, and
    /// whether that spec has already checked the value (on parse).
    pub(crate) fn values_checked_by(
        &self,
        spec_id: u64,
    ) -> impl Iterator<Item = (u16, &[u8], bool)> {
        let same_spec = spec_id != 0 && spec_id == self.checked_by;
        self.slots
            .iter()
            .map(move |s| (s.number, self.slice(s), same_spec && s.checked))
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

/// What [`Message::derive`] does with a field of the message it copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carry {
    /// Left out.
    Drop,
    /// Carried, known to pass the target spec's checks (none at build).
    Checked,
    /// Carried; the target spec checks it when the message is built.
    Unchecked,
}

/// Copies that share the values instead of setting them one by one: the
/// switch's translation of a message between an acquirer's and an issuer's
/// dialect, where most fields cross unchanged.
impl Message {
    /// The value of field `n` as owned `Bytes`: a slice of the frame (a
    /// refcount, no copy) or a copy of a transcoded value. Unlike
    /// [`Message::get`], nothing is cached in the message.
    pub fn value_bytes(&self, n: u16) -> Option<Bytes> {
        let slot = self.slots.get(self.position(n)?)?;
        Some(match slot.source {
            Source::Frame => shared_span(&self.frame, slot),
            Source::Owned => self
                .owned
                .get(slot.start as usize)
                .cloned()
                .unwrap_or_default(),
            Source::Decoded => Bytes::copy_from_slice(self.slice(slot)),
        })
    }

    /// A message of type `mti` with the fields of this one that `carry`
    /// keeps, for building in the spec whose id is `to_spec`. Values are
    /// shared with this message, not copied one by one. `carry(n, value,
    /// checked)` decides per field; `checked` says whether the value passed
    /// the checks of spec `from_spec` when it was parsed.
    pub fn derive(
        &self,
        mti: Mti,
        from_spec: u64,
        to_spec: u64,
        mut carry: impl FnMut(u16, &[u8], bool) -> Carry,
    ) -> Message {
        let was_checked = from_spec != 0 && from_spec == self.checked_by;
        let mut slots = Vec::with_capacity(self.slots.len().max(FIELDS_TYPICAL));
        let mut owned = Vec::new();
        let mut present = Bitmap::default();
        let mut uses_decoded = false;
        for slot in &self.slots {
            let checked = match carry(slot.number, self.slice(slot), was_checked && slot.checked) {
                Carry::Drop => continue,
                Carry::Checked => true,
                Carry::Unchecked => false,
            };
            let mut kept = Slot { checked, ..*slot };
            match slot.source {
                Source::Owned => {
                    kept.start = owned.len() as u32;
                    owned.push(
                        self.owned
                            .get(slot.start as usize)
                            .cloned()
                            .unwrap_or_default(),
                    );
                }
                Source::Decoded => uses_decoded = true,
                Source::Frame => {}
            }
            present.set(kept.number);
            slots.push(kept);
        }
        Message {
            mti,
            present,
            slots,
            frame: self.frame.clone(),
            decoded: if uses_decoded {
                self.decoded.clone()
            } else {
                Vec::new()
            },
            decoded_shared: OnceLock::new(),
            owned,
            shared: OnceLock::new(),
            checked_by: to_spec,
            pristine: false,
        }
    }

    /// Sets each of `fields` (ascending) to `other`'s value of it (shared,
    /// not copied), or removes it where `other` has none: one merge of the
    /// two field lists instead of a search and an insert per field. A value
    /// keeps its check when the same spec checked both messages.
    pub fn overlay(&mut self, other: &Message, fields: &[u16]) {
        debug_assert!(fields.windows(2).all(|w| w[0] < w[1]), "fields ascending");
        let keep_checks = other.checked_by != 0 && other.checked_by == self.checked_by;
        self.shared.take();
        self.pristine = false;
        let old = std::mem::take(&mut self.slots);
        let mut slots = Vec::with_capacity(old.len() + fields.len());
        let mut old = old.into_iter().peekable();
        for &n in fields {
            while let Some(s) = old.next_if(|s| s.number < n) {
                slots.push(s);
            }
            // A replaced owned value's place in `owned` is reused.
            let reuse = old
                .next_if(|s| s.number == n)
                .and_then(|s| (s.source == Source::Owned).then_some(s.start));
            let theirs = other.position(n).and_then(|i| other.slots.get(i));
            let (Some(theirs), Some(value)) = (theirs, other.value_bytes(n)) else {
                if let Some(start) = reuse {
                    // Keep `owned` free of values no slot points to.
                    if let Some(v) = self.owned.get_mut(start as usize) {
                        *v = Bytes::new();
                    }
                }
                self.present.clear(n);
                continue;
            };
            let start = match reuse.and_then(|i| self.owned.get_mut(i as usize).map(|v| (i, v))) {
                Some((i, v)) => {
                    *v = value;
                    i
                }
                None => {
                    self.owned.push(value);
                    (self.owned.len() - 1) as u32
                }
            };
            self.present.set(n);
            slots.push(Slot {
                number: n,
                checked: keep_checks && theirs.checked,
                source: Source::Owned,
                start,
                len: 0,
            });
        }
        slots.extend(old);
        self.slots = slots;
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
mod tests {
    use super::*;

    #[test]
    fn set_get_remove_keep_order_and_presence() {
        let mut m = Message::new("0100".parse().expect("mti"));
        m.set_str(11, "000001").expect("set");
        m.set_str(2, "4111111111111111").expect("set");
        m.set_num(4, 1250, 12).expect("set");
        assert_eq!(
            m.fields().map(|(n, _)| n).collect::<Vec<_>>(),
            vec![2, 4, 11]
        );
        assert_eq!(m.get_str(4), Some("000000001250"));
        assert_eq!(m.get_u64(4), Some(1250));
        assert_eq!(m.remove(2).as_deref(), Some(&b"4111111111111111"[..]));
        assert!(!m.has(2));
        assert_eq!(m.len(), 2);
        assert!(m.set_str(1, "x").is_err());
        assert!(m.set_str(193, "x").is_err());
    }

    /// `set_num` writes what `format!("{value:0width$}")` would: padded to
    /// the width, never cut below the value's own digits.
    #[test]
    fn set_num_writes_zero_padded_digits() {
        use proptest::prelude::*;
        let value = prop_oneof![any::<u64>(), 0u64..1_000, Just(u64::MAX), Just(0)];
        proptest!(|(value in value, width in 0usize..25)| {
            let mut m = Message::new("0100".parse().expect("mti"));
            m.set_num(4, value, width).expect("set");
            let text = format!("{value:0width$}");
            prop_assert_eq!(m.get_str(4), Some(text.as_str()));
        });
    }

    /// Any sequence of sets and removes, on an empty or a parsed message,
    /// reads back like a map of the same operations.
    #[test]
    fn sets_and_removes_behave_like_a_map() {
        use proptest::prelude::*;
        use std::collections::BTreeMap;
        let spec = crate::message::Spec::resolve("iso87-ascii").expect("spec");
        let golden = include_str!("../../fixtures/golden/iso87-ascii/0100-auth-request.hex");
        let wire = Bytes::from(hex::decode(golden.trim()).expect("hex"));
        let ops = proptest::collection::vec((any::<bool>(), 2u16..12, any::<u8>()), 0..40);
        proptest!(|(start_parsed in any::<bool>(), ops in ops)| {
            let mut msg = if start_parsed {
                spec.parse(&wire).expect("golden parses")
            } else {
                Message::new("0100".parse().expect("mti"))
            };
            let mut model: BTreeMap<u16, Vec<u8>> =
                msg.values().map(|(n, v)| (n, v.to_vec())).collect();
            for (is_set, n, byte) in ops {
                if is_set {
                    msg.set(n, vec![byte; usize::from(byte % 5)]).expect("set");
                    model.insert(n, vec![byte; usize::from(byte % 5)]);
                } else {
                    prop_assert_eq!(msg.remove(n).map(|b| b.to_vec()), model.remove(&n));
                }
                // `get` and `value` agree, after `get` made its shared table.
                for (&k, v) in &model {
                    prop_assert_eq!(msg.get(k).map(|b| b.to_vec()), Some(v.clone()));
                    prop_assert_eq!(msg.value(k), Some(&v[..]));
                }
            }
            let fields: Vec<(u16, Vec<u8>)> = msg.fields().map(|(n, v)| (n, v.to_vec())).collect();
            let expected: Vec<(u16, Vec<u8>)> = model.into_iter().collect();
            prop_assert_eq!(fields, expected);
            prop_assert_eq!(msg.len(), msg.presence().count());
        });
    }

    #[test]
    fn derive_shares_values_and_keeps_only_what_carry_keeps() {
        let spec = crate::message::Spec::resolve("iso87-ascii").expect("spec");
        let golden = include_str!("../../fixtures/golden/iso87-ascii/0100-auth-request.hex");
        let wire = Bytes::from(hex::decode(golden.trim()).expect("hex"));
        let parsed = spec.parse(&wire).expect("golden parses");
        let mut seen_checked = Vec::new();
        let derived = parsed.derive(parsed.mti(), spec.id, spec.id, |n, _, checked| {
            seen_checked.push(checked);
            match n {
                2 => Carry::Drop,
                3 => Carry::Unchecked,
                _ => Carry::Checked,
            }
        });
        assert!(
            seen_checked.iter().all(|&c| c),
            "a parse checks every field"
        );
        assert!(!derived.has(2) && derived.has(3));
        assert_eq!(derived.len(), parsed.len() - 1);
        for (n, v) in derived.values() {
            assert_eq!(parsed.value(n), Some(v), "field {n}");
        }
        // Values are slices of the same frame, not copies.
        let frame = wire.as_ptr_range();
        let shared = derived.value_bytes(4).expect("DE4");
        assert!(frame.contains(&shared.as_ptr()));
        // Built in the same spec, it is the original without DE2.
        let mut expected = parsed.clone();
        expected.remove(2);
        assert_eq!(spec.build(&derived).ok(), spec.build(&expected).ok());
    }

    #[test]
    fn overlay_sets_replaces_or_removes_in_one_pass() {
        let mut a = Message::new("0110".parse().expect("mti"));
        for (n, v) in [
            (3, "000000"),
            (11, "000001"),
            (37, "RRN000000001"),
            (39, "00"),
        ] {
            a.set_str(n, v).expect("set");
        }
        let mut b = Message::new("0100".parse().expect("mti"));
        for (n, v) in [(7, "1123143005"), (11, "123456"), (41, "TERM0001")] {
            b.set_str(n, v).expect("set");
        }
        a.overlay(&b, &[7, 11, 37, 41, 42]);
        let fields: Vec<(u16, &str)> = a
            .values()
            .map(|(n, v)| (n, std::str::from_utf8(v).expect("text")))
            .collect();
        assert_eq!(
            fields,
            vec![
                (3, "000000"),
                (7, "1123143005"),
                (11, "123456"),
                (39, "00"),
                (41, "TERM0001")
            ]
        );
        assert_eq!(a.len(), a.presence().count());
        // Later edits still behave (owned places were reused, not leaked).
        assert_eq!(a.remove(7).as_deref(), Some(&b"1123143005"[..]));
        a.set_str(11, "654321").expect("set");
        assert_eq!(a.get_str(11), Some("654321"));
        assert_eq!(a.get_str(41), Some("TERM0001"));
    }

    #[test]
    fn debug_does_not_show_values() {
        let mut m = Message::new("0100".parse().expect("mti"));
        m.set_str(2, "4111111111111111").expect("set");
        let shown = format!("{m:?}");
        assert!(!shown.contains("4111111111111111"), "{shown}");
        assert!(shown.contains("0100"));
    }
}
