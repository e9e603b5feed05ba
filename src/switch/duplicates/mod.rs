//! Duplicate detection: a request that is a copy of one seen within the
//! window is never forwarded again. It gets the original response, or
//! waits for it while the original is in flight. A copy has the same key
//! (MTI class and function, acquirer, STAN, terminal, transmission
//! date-time) AND the same content (PAN, processing code, amount,
//! currency): terminals reuse STANs (they wrap, some reset at batch close,
//! some send no DE7), so a key match with other content is another
//! transaction and is forwarded as one; it never gets another card's
//! answer. Bounded: the oldest keys are forgotten first.
//! Generic over what a response is (`R`: the core keeps the reply as
//! built for the acquirer, one buffer of its own, never slices that would
//! pin the buffers they were read into) and over what a waiting copy is (`W`: the core keeps where
//! it came from): no channels here, so the pure core can use it.

mod index;
#[cfg(test)]
mod tests;

use foldhash::quality::FixedState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use crate::message::Message;
use index::Index;

/// Requests waiting on one in-flight original, at most.
const WAITERS_MAX: usize = 16;

/// What the cache knows of a request's key.
pub enum Seen<R> {
    /// First time: forward it, then call `complete` (with the place).
    New(Place),
    /// The original is in flight: the copy's waiter is registered, and
    /// `complete` hands it back with the response.
    InFlight,
    /// The original was answered with this response.
    Answered(R),
    /// Too many copies are waiting: answer 94.
    Flooded,
}

/// Where `check` put a new key: `complete` and `replace` look there
/// first. The index would find it too, but its bucket, touched a round
/// trip earlier, is usually out of the cache by then (a third of
/// `Core::reply`'s time in a profile at 8 x 8); the ring's recent slots
/// are not. A key moved since (or forgotten) left a place before the
/// ring's front, and is found through the index; the slot's key is
/// compared too (a place from 2^32 keys ago would be in range again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place(u32);

/// A key held: when it was seen and, once answered, its response.
struct Slot<R> {
    key: DupKey,
    at: Instant,
    answer: Option<R>,
}

/// Keys seen within the window, with their state.
pub struct DuplicateCache<R, W> {
    window: Duration,
    keys_max: usize,
    /// Keys are held as a 128-bit keyed hash: small, fixed-size entries,
    /// and request content is not kept (two independent random keys
    /// make a false match about 2^-100 likely at full size). Seeded by the
    /// caller: the core has no randomness of its own (the node draws the
    /// seed at start, secret; a simulator from its scenario's seed).
    hashers: (FixedState, FixedState),
    /// The keys in the order they were first seen (an in-flight key that
    /// reaches the front goes to the back again): forgetting the oldest is
    /// a pop at the front and a new key is written at the back, so slots
    /// are read and written in sequence, not at random.
    ring: VecDeque<Slot<R>>,
    /// The sequence number of the ring's front slot; the index holds them.
    first: u32,
    index: Index,
    /// Copies waiting on an original in flight: rare, so kept aside
    /// rather than in every slot.
    waiting: HashMap<DupKey, Vec<W>, BuildHasherDefault<KeyedHashHasher>>,
    /// The latest time a key was checked at: an answer for a key not held
    /// (a transaction restored after a restart) is held from then.
    latest: Option<Instant>,
    /// False only for the simulator's mutation check: the key leaves the
    /// content out.
    content: bool,
}

/// Key bytes assembled on the stack; a longer key goes to the heap.
const KEY_INLINE_BYTES: usize = 256;

/// Makes the second hasher's seed independent of the first's.
const SECOND_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Keys here are already keyed hashes: hashing them again would only
/// cost time, so the waiters' map uses their low 64 bits as they are.
#[derive(Default)]
struct KeyedHashHasher(u64);

impl Hasher for KeyedHashHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys reach this map; fold anything else in anyway.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }
}

/// A request's duplicate key: a 128-bit keyed hash of the acquirer, MTI
/// class and function, STAN, terminal and transmission date-time, and of
/// the content a copy shares (PAN, DE3, DE4, DE49). The PAN enters only
/// the keyed hash; it is not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DupKey(u128);

impl DupKey {
    /// The 32 bits the index files the key under.
    fn index_hash(self) -> u32 {
        self.0 as u32
    }
}

impl<R: Clone, W> DuplicateCache<R, W> {
    /// Sized for `keys_max` keys at once, so the index is not rehashed
    /// under load (a pause of milliseconds at 100k+ keys: the 11-21 ms
    /// worst latency of open-loop runs once measured here).
    pub fn new(window: Duration, keys_max: usize, seed: u64) -> DuplicateCache<R, W> {
        assert!(keys_max > 0, "duplicate cache needs room");
        DuplicateCache {
            window,
            keys_max,
            hashers: (
                FixedState::with_seed(seed),
                FixedState::with_seed(seed.rotate_left(32) ^ SECOND_SEED),
            ),
            ring: VecDeque::with_capacity(keys_max + 1),
            first: 0,
            index: Index::with_capacity(keys_max),
            waiting: HashMap::default(),
            latest: None,
            content: true,
        }
    }

    /// Leaves the content out of the keys (the simulator's mutation check
    /// `no-duplicate-content-check`; never in the switch).
    #[doc(hidden)]
    pub fn ignore_content(&mut self) {
        self.content = false;
    }

    /// The ring position of `key`'s slot, when it is held.
    fn find(&self, key: DupKey) -> Option<usize> {
        let (ring, first) = (&self.ring, self.first);
        let holds = |seq: u32| {
            ring.get(seq.wrapping_sub(first) as usize)
                .is_some_and(|slot| slot.key == key)
        };
        let bucket = self.index.find(key.index_hash(), holds)?;
        Some(self.index.seq(bucket).wrapping_sub(first) as usize)
    }

    /// The ring position of `key`'s slot, looked for at `place` first.
    fn find_at(&self, key: DupKey, place: Option<Place>) -> Option<usize> {
        let hinted = place
            .map(|Place(seq)| seq.wrapping_sub(self.first) as usize)
            .filter(|&at| self.ring.get(at).is_some_and(|slot| slot.key == key));
        hinted.or_else(|| self.find(key))
    }

    fn push(&mut self, key: DupKey, at: Instant, answer: Option<R>) -> Place {
        let seq = self.first.wrapping_add(self.ring.len() as u32);
        self.ring.push_back(Slot { key, at, answer });
        self.index.insert(key.index_hash(), seq);
        Place(seq)
    }

    fn expire(&mut self, now: Instant) {
        while let Some(front) = self.ring.front() {
            let old = now.saturating_duration_since(front.at) > self.window;
            if !old && self.ring.len() <= self.keys_max {
                break;
            }
            let Some(slot) = self.ring.pop_front() else {
                break;
            };
            let seq = self.first;
            self.first = self.first.wrapping_add(1);
            let bucket = self.index.find(slot.key.index_hash(), |s| s == seq);
            let bucket = bucket.expect("every slot in the ring is indexed");
            if slot.answer.is_some() {
                self.index.remove(bucket);
                // The next key to forget is usually one request away: its
                // bucket, far from any recent one, is fetched meanwhile, and
                // the slot after it (read when that one is forgotten).
                if let Some(next) = self.ring.front() {
                    self.index.prefetch(next.key.index_hash());
                }
                if let Some(after) = self.ring.get(1) {
                    index::prefetch(after);
                }
                continue;
            }
            // In flight: its original still needs it (rare: a request older
            // than the window or than `keys_max` others). It goes to the
            // back, so it is forgotten once answered: the keys held stay
            // within `keys_max` plus the transactions open.
            let back = self.first.wrapping_add(self.ring.len() as u32);
            self.index.set_seq(bucket, back);
            self.ring.push_back(Slot { at: now, ..slot });
            break;
        }
    }

    /// The key of a request from `acquirer` whose PAN is `pan`; `None`
    /// without a STAN. The parts, each after its length, are hashed in one
    /// pass per hasher. The origin digit is left out: a repeat (0101) is a
    /// copy of its original (0100); the function is in: an advice (0120)
    /// is not a copy of a request (0100).
    pub fn key<'a>(
        &self,
        acquirer: &'a str,
        msg: &'a Message,
        pan: Option<&'a [u8]>,
    ) -> Option<DupKey> {
        let stan = msg.value(11)?;
        let content = |v: Option<&'a [u8]>| if self.content { v } else { None };
        let parts: [&[u8]; 9] = [
            &msg.mti().digits()[1..3],
            acquirer.as_bytes(),
            stan,
            msg.value(41).unwrap_or_default(),
            msg.value(7).unwrap_or_default(),
            content(pan).unwrap_or_default(),
            content(msg.value(3)).unwrap_or_default(),
            content(msg.value(4)).unwrap_or_default(),
            content(msg.value(49)).unwrap_or_default(),
        ];
        // Assembled on the stack: a usual key is ~100 bytes, which spilled
        // `KeyBytes` to the heap (~900 instructions a request).
        let len: usize = parts.iter().map(|p| 4 + p.len()).sum();
        let (mut inline, mut spill) = ([0u8; KEY_INLINE_BYTES], Vec::new());
        let key: &mut [u8] = match inline.get_mut(..len) {
            Some(key) => key,
            None => {
                spill.resize(len, 0);
                &mut spill
            }
        };
        let mut at = 0;
        for part in parts {
            for bytes in [&(part.len() as u32).to_le_bytes()[..], part] {
                key[at..at + bytes.len()].copy_from_slice(bytes);
                at += bytes.len();
            }
        }
        let key: &[u8] = key;
        let digest = |state: &FixedState| state.hash_one(key);
        let (a, b) = (digest(&self.hashers.0), digest(&self.hashers.1));
        Some(DupKey((u128::from(a) << 64) | u128::from(b)))
    }

    /// Looks a request up, registering it as in flight when it is new, or
    /// the copy's `waiter` when its original is in flight.
    pub fn check(&mut self, key: DupKey, now: Instant, waiter: impl FnOnce() -> W) -> Seen<R> {
        // Fetched while the oldest keys are forgotten: a new key's bucket
        // is anywhere in the index, so usually not in the cache.
        self.index.prefetch(key.index_hash());
        self.latest = Some(now);
        self.expire(now);
        let Some(at) = self.find(key) else {
            return Seen::New(self.push(key, now, None));
        };
        if let Some(answer) = &self.ring[at].answer {
            return Seen::Answered(answer.clone());
        }
        let waiters = self.waiting.entry(key).or_default();
        if waiters.len() >= WAITERS_MAX {
            return Seen::Flooded;
        }
        waiters.push(waiter());
        Seen::InFlight
    }

    /// Records the response of a request registered by `check` (at
    /// `place`, when it said); the copies that waited for it, to be
    /// answered with it.
    pub fn complete(&mut self, key: DupKey, place: Option<Place>, response: R) -> Vec<W> {
        match (self.find_at(key, place), self.latest) {
            (Some(at), _) => self.ring[at].answer = Some(response),
            (None, Some(latest)) => {
                self.push(key, latest, Some(response));
            }
            (None, None) => {}
        }
        if self.waiting.is_empty() {
            return Vec::new();
        }
        self.waiting.remove(&key).unwrap_or_default()
    }

    /// Replaces the response copies of an answered key get (an approval
    /// that is being reversed); a key no longer held is left alone.
    pub fn replace(&mut self, key: DupKey, place: Option<Place>, response: R) {
        if let Some(at) = self.find_at(key, place)
            && let Some(answer) = &mut self.ring[at].answer
        {
            *answer = response;
        }
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        debug_assert_eq!(self.ring.len(), self.index.len(), "ring and index agree");
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}
