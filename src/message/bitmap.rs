//! Presence bitmaps: bit 1 of the first bitmap is the most significant bit
//! of its first byte (ISO 8583-1 §5.3.2). Three 64-bit words cover the
//! primary, secondary and tertiary bitmaps.

/// Which of fields 1..=192 are present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bitmap([u64; 3]);

impl Bitmap {
    fn locate(field: u16) -> (usize, u64) {
        assert!((1..=192).contains(&field), "field number out of range");
        let i = usize::from(field - 1);
        (i / 64, 1u64 << (63 - (i % 64)))
    }

    /// Whether `field` is set.
    #[inline]
    pub fn get(&self, field: u16) -> bool {
        let (w, m) = Bitmap::locate(field);
        self.0[w] & m != 0
    }

    /// Sets `field`.
    #[inline]
    pub fn set(&mut self, field: u16) {
        let (w, m) = Bitmap::locate(field);
        self.0[w] |= m;
    }

    /// Clears `field`.
    #[inline]
    pub fn clear(&mut self, field: u16) {
        let (w, m) = Bitmap::locate(field);
        self.0[w] &= !m;
    }

    /// One of the three 64-bit bitmaps (0 = primary).
    pub fn word(&self, index: usize) -> u64 {
        self.0[index]
    }

    /// Replaces one of the three 64-bit bitmaps.
    pub fn set_word(&mut self, index: usize, word: u64) {
        self.0[index] = word;
    }

    /// Set fields in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        Fields {
            words: self.0,
            word: 0,
        }
    }

    /// Number of set fields below `field` (1..=192): where `field` is, or
    /// would go, in a list of the set fields in ascending order. A few
    /// instructions where a binary search of that list costs dozens.
    #[inline]
    pub fn rank(&self, field: u16) -> usize {
        let i = usize::from(field.clamp(1, 192) - 1);
        let (w, b) = (i / 64, i % 64);
        // The fields below `field` in its word are its top `b` bits.
        let lower = self.0[w] & !(u64::MAX.checked_shr(b as u32).unwrap_or(0));
        let before: u32 = self.0[..w].iter().map(|x| x.count_ones()).sum();
        (before + lower.count_ones()) as usize
    }

    /// Number of set fields.
    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
}

/// The set fields of a bitmap, lowest first: a plain loop over the three
/// words (the parser's per-field loop runs on it).
struct Fields {
    words: [u64; 3],
    word: usize,
}

impl Iterator for Fields {
    type Item = u16;

    #[inline]
    fn next(&mut self) -> Option<u16> {
        while let Some(rest) = self.words.get_mut(self.word) {
            if *rest != 0 {
                let lead = rest.leading_zeros();
                *rest &= !(1u64 << (63 - lead));
                return Some((self.word as u16) * 64 + lead as u16 + 1);
            }
            self.word += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_one_is_the_top_bit_of_the_first_byte() {
        let mut b = Bitmap::default();
        b.set(1);
        b.set(64);
        b.set(65);
        b.set(192);
        assert_eq!(b.word(0), 0x8000_0000_0000_0001);
        assert_eq!(b.word(1), 0x8000_0000_0000_0000);
        assert_eq!(b.word(2), 1);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![1, 64, 65, 192]);
        assert_eq!(b.count(), 4);
        b.clear(64);
        assert!(!b.get(64));
        assert!(b.get(65));
    }

    /// A field's rank is the count of set fields below it, for any set.
    #[test]
    fn rank_counts_the_fields_below() {
        use proptest::prelude::*;
        let sets = proptest::collection::btree_set(1u16..=192, 0..60);
        proptest!(|(fields in sets, probe in 1u16..=192)| {
            let mut b = Bitmap::default();
            for &f in &fields {
                b.set(f);
            }
            prop_assert_eq!(b.rank(probe), fields.range(..probe).count());
            prop_assert_eq!(b.rank(192) + usize::from(b.get(192)), fields.len());
        });
    }
}
