//! The duplicate cache's index: from a key's hash to the sequence number
//! of the key's slot in the cache's ring. One `u64` a bucket (31 bits of
//! the hash, the sequence number), linear probing and deletion by
//! backward shift, so no tombstones: a look-up reads one cache line of a
//! table of a few megabytes. A map holding whole entries read two lines,
//! far apart, of a table of tens of megabytes, each a miss under load:
//! it was the largest single cost of a request in the switch's profile.

/// Set in every occupied bucket, so an empty one is zero.
const OCCUPIED: u64 = 1 << 63;
/// The hash bits a bucket keeps; its home bucket is taken from them, so
/// the table has at most 2^31 buckets.
const HASH_BITS: u32 = 0x7fff_ffff;
/// Grown (rehashed from the hashes it keeps) past 3/4 full.
const LOAD_NUMERATOR: usize = 3;
const LOAD_DENOMINATOR: usize = 4;

pub(super) struct Index {
    buckets: Vec<u64>,
    mask: usize,
    len: usize,
}

fn entry(hash: u32, seq: u32) -> u64 {
    OCCUPIED | (u64::from(hash & HASH_BITS) << 32) | u64::from(seq)
}

fn seq_of(entry: u64) -> u32 {
    entry as u32
}

fn hash_of(entry: u64) -> u32 {
    (entry >> 32) as u32 & HASH_BITS
}

impl Index {
    /// Room for `keys` entries at under half load.
    pub(super) fn with_capacity(keys: usize) -> Index {
        let buckets = (2 * keys).clamp(16, 1 << 31).next_power_of_two();
        Index {
            buckets: vec![0; buckets],
            mask: buckets - 1,
            len: 0,
        }
    }

    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.buckets.len()
    }

    fn home(&self, hash: u32) -> usize {
        (hash & HASH_BITS) as usize & self.mask
    }

    /// The bucket of the entry for `hash` whose sequence number `is`
    /// accepts (the caller compares the slot's whole key, or a number).
    pub(super) fn find(&self, hash: u32, mut is: impl FnMut(u32) -> bool) -> Option<usize> {
        let mut at = self.home(hash);
        loop {
            let e = self.buckets[at];
            if e == 0 {
                return None;
            }
            if hash_of(e) == hash & HASH_BITS && is(seq_of(e)) {
                return Some(at);
            }
            at = (at + 1) & self.mask;
        }
    }

    /// Asks the CPU to fetch `hash`'s home bucket now, so a look-up made
    /// a request later finds it in the cache, not in memory.
    pub(super) fn prefetch(&self, hash: u32) {
        prefetch(&self.buckets[self.home(hash)]);
    }

    pub(super) fn seq(&self, bucket: usize) -> u32 {
        seq_of(self.buckets[bucket])
    }

    pub(super) fn set_seq(&mut self, bucket: usize, seq: u32) {
        let e = self.buckets[bucket];
        debug_assert!(e != 0, "a sequence number set in an empty bucket");
        self.buckets[bucket] = entry(hash_of(e), seq);
    }

    /// Adds an entry; the caller knows none has this key.
    pub(super) fn insert(&mut self, hash: u32, seq: u32) {
        if (self.len + 1) * LOAD_DENOMINATOR > self.buckets.len() * LOAD_NUMERATOR {
            self.grow();
        }
        self.place(entry(hash, seq));
        self.len += 1;
    }

    fn place(&mut self, e: u64) {
        let mut at = self.home(hash_of(e));
        while self.buckets[at] != 0 {
            at = (at + 1) & self.mask;
        }
        self.buckets[at] = e;
    }

    /// Twice the buckets, rare: only when more keys are held than the
    /// cache was sized for (in-flight keys past its count limit).
    fn grow(&mut self) {
        let size = (self.buckets.len() * 2).min(1 << 31);
        assert!(size > self.buckets.len(), "duplicate index at its maximum");
        let old = std::mem::replace(&mut self.buckets, vec![0; size]);
        self.mask = size - 1;
        for e in old.into_iter().filter(|&e| e != 0) {
            self.place(e);
        }
    }

    /// Empties `bucket`, moving back the entries after it that would
    /// otherwise no longer be found from their home bucket.
    pub(super) fn remove(&mut self, bucket: usize) {
        debug_assert!(self.buckets[bucket] != 0, "removed an empty bucket");
        let mut hole = bucket;
        let mut at = bucket;
        loop {
            at = (at + 1) & self.mask;
            let e = self.buckets[at];
            if e == 0 {
                break;
            }
            // Moved when its home is not cyclically within (hole, at].
            let home = self.home(hash_of(e));
            if (at.wrapping_sub(home) & self.mask) >= (at.wrapping_sub(hole) & self.mask) {
                self.buckets[hole] = e;
                hole = at;
            }
        }
        self.buckets[hole] = 0;
        self.len -= 1;
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }
}

/// Asks the CPU to bring `value`'s cache line in, without waiting for it.
pub(super) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is only a hint (it never faults, whatever the
        // address, and here it is a live value), and SSE, its only target
        // feature, is part of x86-64 itself.
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast())
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Inserts and removes in a random order against a map: every entry
    /// left is found, every removed one is not, with many hashes sharing
    /// home buckets (runs that wrap the table's end included).
    #[test]
    fn agrees_with_a_map_through_inserts_and_removals() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut index = Index::with_capacity(32);
        let mut model: HashMap<u32, u32> = HashMap::new();
        for seq in 0..20_000u32 {
            // Few distinct homes: long probe runs.
            let hash = rng.u32(..) & 0x8000_003f;
            if model.len() < 90 && rng.bool() {
                index.insert(hash, seq);
                model.insert(seq, hash);
            } else if let Some((&gone, &h)) = model.iter().nth(rng.usize(..model.len().max(1))) {
                let bucket = index.find(h, |s| s == gone).expect("held entry found");
                assert_eq!(index.seq(bucket), gone);
                index.remove(bucket);
                model.remove(&gone);
                assert!(
                    index.find(h, |s| s == gone).is_none(),
                    "removed entry found"
                );
            }
            assert_eq!(index.len(), model.len());
        }
        for (&seq, &hash) in &model {
            assert!(index.find(hash, |s| s == seq).is_some(), "{seq} lost");
        }
        assert!(index.capacity() >= 128, "grown past 3/4 full");
    }

    #[test]
    fn a_sequence_number_is_replaced_in_place() {
        let mut index = Index::with_capacity(4);
        index.insert(0xdead_beef, 1);
        let bucket = index.find(0xdead_beef, |s| s == 1).expect("found");
        index.set_seq(bucket, 9);
        assert!(index.find(0xdead_beef, |s| s == 1).is_none());
        assert_eq!(index.find(0xdead_beef, |s| s == 9), Some(bucket));
    }
}
