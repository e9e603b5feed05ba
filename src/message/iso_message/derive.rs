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
        // Room for the fields the switch adds, without growing.
        let mut slots = Vec::with_capacity(self.slots.len().max(FIELDS_TYPICAL));
        slots.extend_from_slice(&self.slots);
        if !was_checked {
            for s in &mut slots {
                s.checked = false;
            }
        }
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
    /// not copied), or removes it where `other` has none, in one walk of
    /// both field lists. A value equal to `other`'s stays where it is (an
    /// issuer echoes most restored fields: in the frame, it is part of a
    /// run its builder copies whole); a value set keeps its check when the
    /// same spec checked both messages.
    pub fn overlay(&mut self, other: &Message, fields: &[u16]) {
        debug_assert!(fields.windows(2).all(|w| w[0] < w[1]), "fields ascending");
        let keep_checks = other.checked_by != 0 && other.checked_by == self.checked_by;
        let (mut i, mut j) = (0, 0);
        for &n in fields {
            while self.slots.get(i).is_some_and(|s| s.number < n) {
                i += 1;
            }
            while other.slots.get(j).is_some_and(|s| s.number < n) {
                j += 1;
            }
            let mine = self.slots.get(i).filter(|s| s.number == n);
            let theirs = other.slots.get(j).filter(|s| s.number == n);
            match (mine, theirs) {
                (Some(m), Some(t)) if self.slice(m) == other.slice(t) => {}
                (_, Some(t)) => {
                    let value = other.slot_bytes(t);
                    self.put(n, value, keep_checks && t.checked);
                }
                (Some(_), None) => {
                    self.remove(n);
                }
                (None, None) => {}
            }
        }
    }

    /// Whether each of `fields` (ascending) present in both messages has
    /// the same value in both, in one walk of both field lists.
    pub fn agrees_on(&self, other: &Message, fields: &[u16]) -> bool {
        debug_assert!(fields.windows(2).all(|w| w[0] < w[1]), "fields ascending");
        let (mut i, mut j) = (0, 0);
        fields.iter().all(|&n| {
            while self.slots.get(i).is_some_and(|s| s.number < n) {
                i += 1;
            }
            while other.slots.get(j).is_some_and(|s| s.number < n) {
                j += 1;
            }
            let mine = self.slots.get(i).filter(|s| s.number == n);
            let theirs = other.slots.get(j).filter(|s| s.number == n);
            match (mine, theirs) {
                (Some(m), Some(t)) => self.slice(m) == other.slice(t),
                _ => true,
            }
        })
    }
}
