//! Copies that share the values instead of setting them one by one: the
//! switch's translation of a message between an acquirer's and an issuer's
//! dialect, where most fields cross unchanged, and the fields restored
//! from a request onto its response.

use bytes::Bytes;

use super::*;

/// Values up to this long are copied by [`Message::overlay`] (into the
/// message itself, while there is room) rather than shared.
const COPIED_BYTES_MAX: usize = 12;

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
    pub(super) fn slot_bytes(&self, slot: &Slot) -> Bytes {
        match slot.source {
            Source::Frame => shared_span(&self.frame, slot),
            Source::Owned => self
                .owned
                .get(slot.start as usize)
                .cloned()
                .unwrap_or_default(),
            Source::Decoded | Source::Inline => Bytes::copy_from_slice(self.slice(slot)),
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
                Source::Frame | Source::Inline => {}
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
            inline: self.inline,
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
            inline: self.inline,
            shared: OnceLock::new(),
            checked_by: to_spec,
            pristine: false,
            frame_spec: self.frame_spec,
        })
    }

    /// [`Message::derive_all`] of a message no longer needed as it is:
    /// the same message, retyped for spec `to_spec`, with nothing copied.
    pub fn rederived(mut self, mti: Mti, from_spec: u64, to_spec: u64) -> Message {
        let was_checked = from_spec != 0 && from_spec == self.checked_by;
        if !was_checked {
            for s in &mut self.slots {
                s.checked = false;
            }
        }
        self.mti = mti;
        self.checked_by = to_spec;
        self.pristine = false;
        self
    }

    /// Sets each of `fields` to `other`'s value of it (a short one copied,
    /// a longer one shared), or removes it where `other` has none; each
    /// found by its presence bit's rank, without a search. A value equal to `other`'s stays where it is (an
    /// issuer echoes most restored fields: in the frame, it is part of a
    /// run its builder copies whole); a value set keeps its check when the
    /// same spec checked both messages.
    pub fn overlay(&mut self, other: &Message, fields: &[u16]) {
        let keep_checks = other.checked_by != 0 && other.checked_by == self.checked_by;
        for &n in fields {
            let theirs = other.position(n).and_then(|j| other.slots.get(j));
            match (self.value(n), theirs) {
                (Some(mine), Some(t)) if mine == other.slice(t) => {}
                (_, Some(t)) => {
                    let checked = keep_checks && t.checked;
                    let value = other.slice(t);
                    if value.len() <= COPIED_BYTES_MAX {
                        self.put_copy(n, value, checked);
                    } else {
                        self.put(n, other.slot_bytes(t), checked);
                    }
                }
                (Some(_), None) => {
                    self.unset(n);
                }
                (None, None) => {}
            }
        }
    }

    /// Whether each of `fields` present in both messages has the same
    /// value in both.
    pub fn agrees_on(&self, other: &Message, fields: &[u16]) -> bool {
        fields
            .iter()
            .all(|&n| match (self.value(n), other.value(n)) {
                (Some(mine), Some(theirs)) => mine == theirs,
                _ => true,
            })
    }
}
