//! Copies that share the values instead of setting them one by one: the
//! switch's translation of a message between an acquirer's and an issuer's
//! dialect, where most fields cross unchanged, and the fields restored
//! from a request onto its response.

use bytes::Bytes;

use super::*;

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
        Some(self.slot_bytes(slot))
    }

    /// A slot's value as owned `Bytes` (see [`Message::value_bytes`]).
    fn slot_bytes(&self, slot: &Slot) -> Bytes {
        match slot.source {
            Source::Frame => shared_span(&self.frame, slot),
            Source::Owned => self
                .owned
                .get(slot.start as usize)
                .cloned()
                .unwrap_or_default(),
            Source::Decoded => Bytes::copy_from_slice(self.slice(slot)),
        }
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
            frame_spec: self.frame_spec,
        }
    }

    /// [`Message::derive`] when every field is carried (`carried(n)`):
    /// the slots are copied as they are, without a decision per value
    /// (~650 instructions a message of 22 fields); `None` when one is not.
    pub fn derive_all(
        &self,
        mti: Mti,
        from_spec: u64,
        to_spec: u64,
        carried: impl Fn(u16) -> bool,
    ) -> Option<Message> {
        if !self.slots.iter().all(|s| carried(s.number)) {
            return None;
        }
        let was_checked = from_spec != 0 && from_spec == self.checked_by;
        let mut slots = Vec::with_capacity(self.slots.len().max(FIELDS_TYPICAL));
        slots.extend(self.slots.iter().map(|s| Slot {
            checked: was_checked && s.checked,
            ..*s
        }));
        let uses_decoded = self.slots.iter().any(|s| s.source == Source::Decoded);
        Some(Message {
            mti,
            present: self.present,
            slots,
            frame: self.frame.clone(),
            decoded: if uses_decoded {
                self.decoded.clone()
            } else {
                Vec::new()
            },
            decoded_shared: OnceLock::new(),
            owned: self.owned.clone(),
            shared: OnceLock::new(),
            checked_by: to_spec,
            pristine: false,
            frame_spec: self.frame_spec,
        })
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
        self.owned.reserve(fields.len());
        let old = std::mem::take(&mut self.slots);
        let mut slots = Vec::with_capacity(old.len() + fields.len());
        let mut old = old.into_iter().peekable();
        for &n in fields {
            while let Some(s) = old.next_if(|s| s.number < n) {
                slots.push(s);
            }
            let mine = old.next_if(|s| s.number == n);
            let theirs = other.position(n).and_then(|i| other.slots.get(i));
            // An equal value stays where it is (in the frame, a run its
            // builder copies whole; an issuer echoes most restored fields).
            if let (Some(m), Some(t)) = (mine, theirs)
                && self.slice(&m) == other.slice(t)
            {
                slots.push(m);
                continue;
            }
            // A replaced owned value's place in `owned` is reused.
            let reuse = mine.and_then(|s| (s.source == Source::Owned).then_some(s.start));
            let Some((theirs, value)) = theirs.map(|s| (s, other.slot_bytes(s))) else {
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
