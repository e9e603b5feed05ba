//! Short byte strings that identify a message (the key that pairs a
//! response with its request, a duplicate key), and a fast hash for maps of
//! them. A key is a few dozen bytes (MTI class, STAN, terminal,
//! institution), so it is kept inline, and hashed a word at a time with a
//! per-map random seed instead of SipHash: a matching map holds at most the
//! link's in-flight limit, so a crafted collision can only slow one link.

use std::hash::{BuildHasher, Hasher};

/// Key bytes kept inline; a longer key (long configured key fields) spills to the heap.
const INLINE_BYTES: usize = 46;

/// Key bytes, assembled part by part. Equal and hashed by those bytes,
/// wherever they are kept.
#[derive(Clone)]
pub struct KeyBytes {
    len: u16,
    inline: [u8; INLINE_BYTES],
    spill: Option<Vec<u8>>,
}

impl KeyBytes {
    pub fn new() -> KeyBytes {
        KeyBytes {
            len: 0,
            inline: [0; INLINE_BYTES],
            spill: None,
        }
    }

    /// Appends bytes to the key.
    pub fn put(&mut self, bytes: &[u8]) {
        let len = usize::from(self.len);
        let end = len + bytes.len();
        match &mut self.spill {
            Some(heap) => heap.extend_from_slice(bytes),
            None if end <= INLINE_BYTES => self.inline[len..end].copy_from_slice(bytes),
            None => {
                let mut heap = Vec::with_capacity(end);
                heap.extend_from_slice(&self.inline[..len]);
                heap.extend_from_slice(bytes);
                self.spill = Some(heap);
            }
        }
        // Key fields are at most 999 bytes each and a handful in number.
        self.len = u16::try_from(end).unwrap_or(u16::MAX);
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.spill {
            Some(heap) => heap,
            None => &self.inline[..usize::from(self.len)],
        }
    }
}

/// Debug output shows the length only: key fields are configurable and
/// could include card data.
impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyBytes").field("len", &self.len).finish()
    }
}

impl PartialEq for KeyBytes {
    fn eq(&self, other: &KeyBytes) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for KeyBytes {}

impl std::hash::Hash for KeyBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
    }
}

impl Default for KeyBytes {
    fn default() -> KeyBytes {
        KeyBytes::new()
    }
}

/// Builds [`WordHasher`]s with one random seed per map.
#[derive(Debug, Clone)]
pub struct WordHash {
    seed: u64,
}

impl WordHash {
    pub fn random() -> WordHash {
        // `RandomState` is the standard library's source of per-process randomness.
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        WordHash { seed }
    }
}

impl BuildHasher for WordHash {
    type Hasher = WordHasher;
    fn build_hasher(&self) -> WordHasher {
        WordHasher(self.seed)
    }
}

/// Multiply-and-rotate over 8-byte words: a few instructions per word.
pub struct WordHasher(u64);

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

impl WordHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(MULTIPLIER).rotate_left(29);
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            self.mix(u64::from_le_bytes(word));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.mix(u64::from_le_bytes(word) ^ ((tail.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // A last multiply spreads the high bits hashbrown uses for its tags.
        (self.0 ^ (self.0 >> 32)).wrapping_mul(MULTIPLIER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_spill_and_compare_by_content() {
        let mut short = KeyBytes::new();
        short.put(b"1");
        short.put(b"000123");
        assert_eq!(short.as_bytes(), b"1000123");
        let mut long = KeyBytes::new();
        let mut expected = Vec::new();
        for part in [&b"1"[..], &[b'7'; 40], &[b'9'; 30]] {
            long.put(part);
            expected.extend_from_slice(part);
        }
        assert_eq!(long.as_bytes(), &expected[..]);
        let mut again = KeyBytes::new();
        again.put(&expected);
        assert_eq!(long, again, "same bytes, same key however assembled");
        let hash = WordHash::random();
        assert_eq!(hash.hash_one(&long), hash.hash_one(&again));
        assert_ne!(hash.hash_one(&long), hash.hash_one(&short));
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let mut key = KeyBytes::new();
        key.put(b"4761739001010119");
        let shown = format!("{key:?}");
        assert_eq!(shown, "KeyBytes { len: 16 }");
    }

    #[test]
    fn hash_spreads_keys_that_differ_in_one_digit() {
        use std::collections::HashSet;
        let hash = WordHash::random();
        let hashes: HashSet<u64> = (0..10_000u32)
            .map(|stan| {
                let mut k = KeyBytes::new();
                k.put(format!("1{stan:06}12345678").as_bytes());
                hash.hash_one(&k) >> 57
            })
            .collect();
        // hashbrown's 7-bit tags: all 128 values should occur.
        assert_eq!(hashes.len(), 128);
    }
}
