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

use foldhash::quality::FixedState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use crate::message::Message;

/// Requests waiting on one in-flight original, at most.
const WAITERS_MAX: usize = 16;

/// What the cache knows of a request's key.
pub enum Seen<R> {
    /// First time: forward it, then call `complete`.
    New,
    /// The original is in flight: the copy's waiter is registered, and
    /// `complete` hands it back with the response.
    InFlight,
    /// The original was answered with this response.
    Answered(R),
    /// Too many copies are waiting: answer 94.
    Flooded,
}

enum Entry<R, W> {
    InFlight(Vec<W>),
    Done(R),
}

/// Keys seen within the window, with their state.
pub struct DuplicateCache<R, W> {
    window: Duration,
    keys_max: usize,
    /// Keys are held as a 128-bit keyed hash: small, fixed-size entries,
    /// and request content is not kept (two independent random SipHash keys
    /// make a false match about 2^-100 likely at full size). Seeded by the
    /// caller: the core has no randomness of its own (the node draws the
    /// seed at start, secret; a simulator from its scenario's seed).
    hashers: (FixedState, FixedState),
    entries: HashMap<u128, Entry<R, W>, BuildHasherDefault<KeyedHashHasher>>,
    order: VecDeque<(Instant, u128)>,
    /// False only for the simulator's mutation check: the key leaves the
    /// content out.
    content: bool,
}

/// Key bytes assembled on the stack; a longer key goes to the heap.
const KEY_INLINE_BYTES: usize = 256;

/// Makes the second hasher's seed independent of the first's.
const SECOND_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Map keys here are already keyed hashes: hashing them again would only
/// cost time, so the map uses their low 64 bits as they are.
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

impl<R: Clone, W> DuplicateCache<R, W> {
    /// Sized for `keys_max` keys at once, twice over: growing a map of
    /// 100k+ keys rehashes it under the switch's lock, and that pause made
    /// the 11-21 ms worst latency of every open-loop run measured here; at
    /// half load, most removals leave reusable slots rather than tombstones,
    /// so rehashing in place (the same pause) stays rare too.
    pub fn new(window: Duration, keys_max: usize, seed: u64) -> DuplicateCache<R, W> {
        assert!(keys_max > 0, "duplicate cache needs room");
        DuplicateCache {
            window,
            keys_max,
            hashers: (
                FixedState::with_seed(seed),
                FixedState::with_seed(seed.rotate_left(32) ^ SECOND_SEED),
            ),
            entries: HashMap::with_capacity_and_hasher(2 * keys_max, Default::default()),
            order: VecDeque::with_capacity(keys_max + 1),
            content: true,
        }
    }

    /// Leaves the content out of the keys (the simulator's mutation check
    /// `no-duplicate-content-check`; never in the switch).
    #[doc(hidden)]
    pub fn ignore_content(&mut self) {
        self.content = false;
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            let old = now.saturating_duration_since(*at) > self.window;
            if !old && self.order.len() <= self.keys_max {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                // One probe of a table far larger than the caches (each is a
                // miss): removed, and an in-flight entry put back, since its
                // original still needs it (rare: a request older than the
                // window or than `keys_max` others). It goes to the back of
                // the order too, so it is forgotten once answered: the keys
                // held stay within `keys_max` plus the transactions open.
                if let Some(entry @ Entry::InFlight(_)) = self.entries.remove(&key) {
                    self.entries.insert(key, entry);
                    self.order.push_back((now, key));
                    break;
                }
            }
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
        self.expire(now);
        let key = key.0;
        match self.entries.get_mut(&key) {
            None => {
                self.entries.insert(key, Entry::InFlight(Vec::new()));
                self.order.push_back((now, key));
                Seen::New
            }
            Some(Entry::Done(resp)) => Seen::Answered(resp.clone()),
            Some(Entry::InFlight(waiters)) if waiters.len() >= WAITERS_MAX => Seen::Flooded,
            Some(Entry::InFlight(waiters)) => {
                waiters.push(waiter());
                Seen::InFlight
            }
        }
    }

    /// Records the response of a request registered by `check`; the
    /// copies that waited for it, to be answered with it.
    pub fn complete(&mut self, key: DupKey, response: R) -> Vec<W> {
        match self.entries.insert(key.0, Entry::Done(response)) {
            Some(Entry::InFlight(waiters)) => waiters,
            _ => Vec::new(),
        }
    }

    /// Replaces the response copies of an answered key get (an approval
    /// that is being reversed); a key no longer held is left alone.
    pub fn replace(&mut self, key: DupKey, response: R) {
        if let Some(Entry::Done(r)) = self.entries.get_mut(&key.0) {
            *r = response;
        }
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    /// Responses as bytes, waiters as numbers.
    type Cache = DuplicateCache<Bytes, u32>;

    const PAN: Option<&[u8]> = Some(b"4761739001010119");

    fn req(stan: &str) -> Message {
        let mut m = Message::new("0100".parse().expect("mti"));
        m.set_str(3, "000000").expect("set");
        m.set_str(4, "000000001000").expect("set");
        m.set_str(7, "1123143005").expect("set");
        m.set_str(11, stan).expect("set");
        m.set_str(41, "TERM0001").expect("set");
        m.set_str(49, "978").expect("set");
        m
    }

    /// Regression (issue 19, point 1): a terminal that reuses a STAN for
    /// another card, amount, processing code or currency, or sends an
    /// advice under a request's key, sends another transaction: its key
    /// differs, so it is forwarded and never gets the first one's answer.
    #[test]
    fn a_key_match_with_other_content_is_another_transaction() {
        let cache = Cache::new(Duration::from_secs(60), 100, 7);
        let original = req("000001");
        let key = cache.key("pos", &original, PAN).expect("key");
        assert_eq!(cache.key("pos", &req("000001"), PAN), Some(key), "a copy");
        let other_pan: Option<&[u8]> = Some(b"4761739001010127");
        assert_ne!(cache.key("pos", &original, other_pan), Some(key), "PAN");
        assert_ne!(cache.key("pos", &original, None), Some(key), "no PAN");
        for (field, value) in [(3, "200000"), (4, "000000009999"), (49, "840")] {
            let mut other = req("000001");
            other.set_str(field, value).expect("set");
            assert_ne!(cache.key("pos", &other, PAN), Some(key), "DE{field}");
        }
        let mut no_de7 = req("000001");
        no_de7.remove(7);
        let no_de7_key = cache.key("pos", &no_de7, PAN).expect("key");
        let mut refund = no_de7.clone();
        refund.set_str(3, "200000").expect("set");
        assert_ne!(
            cache.key("pos", &refund, PAN),
            Some(no_de7_key),
            "refund without DE7"
        );
        let mut advice = req("000001");
        advice.set_mti("0120".parse().expect("mti"));
        assert_ne!(cache.key("pos", &advice, PAN), Some(key), "an advice");
    }

    #[test]
    fn copies_wait_for_or_get_the_original_response() {
        let mut cache = Cache::new(Duration::from_secs(60), 100, 7);
        let t0 = Instant::now();
        let key = cache.key("pos", &req("000001"), PAN).expect("key");
        assert!(matches!(cache.check(key, t0, || 0), Seen::New));
        assert!(
            matches!(cache.check(key, t0, || 7), Seen::InFlight),
            "a copy must wait for the original"
        );
        let resp = Bytes::from_static(b"0110 response");
        assert_eq!(cache.complete(key, resp.clone()), vec![7], "the waiter");
        assert!(matches!(cache.check(key, t0, || 0), Seen::Answered(r) if r == resp));
        // The repeat MTI shares the key; another acquirer does not.
        let mut repeat = req("000001");
        repeat.set_mti("0101".parse().expect("mti"));
        assert_eq!(cache.key("pos", &repeat, PAN), Some(key));
        assert_ne!(cache.key("atm", &repeat, PAN), Some(key));
        // After the window the key is forgotten.
        assert!(matches!(
            cache.check(key, t0 + Duration::from_secs(61), || 0),
            Seen::New
        ));
    }

    #[test]
    fn bounded_in_keys_and_waiters() {
        let mut cache = Cache::new(Duration::from_secs(60), 10, 7);
        let t0 = Instant::now();
        for i in 0..50 {
            let key = cache
                .key("pos", &req(&format!("{i:06}")), PAN)
                .expect("key");
            assert!(matches!(cache.check(key, t0, || 0), Seen::New));
            cache.complete(key, Bytes::from_static(b"0110"));
        }
        assert!(cache.len() <= 11, "{} keys kept", cache.len());
        let key = cache.key("pos", &req("999999"), PAN).expect("key");
        assert!(matches!(cache.check(key, t0, || 0), Seen::New));
        for i in 0..WAITERS_MAX as u32 {
            assert!(matches!(cache.check(key, t0, || i), Seen::InFlight));
        }
        assert!(matches!(cache.check(key, t0, || 99), Seen::Flooded));
        assert_eq!(cache.complete(key, Bytes::new()).len(), WAITERS_MAX);
    }

    #[test]
    fn keys_in_flight_past_the_limit_are_forgotten_once_answered() {
        // Regression: a key still in flight when the count limit reached it
        // left the order but stayed in the table, never to be forgotten.
        let mut cache = Cache::new(Duration::from_secs(60), 10, 7);
        let t0 = Instant::now();
        let keys: Vec<DupKey> = (0..50)
            .map(|i| {
                cache
                    .key("pos", &req(&format!("{i:06}")), PAN)
                    .expect("key")
            })
            .collect();
        let (open, later) = keys.split_at(20);
        for &k in open {
            assert!(matches!(cache.check(k, t0, || 0), Seen::New));
        }
        for &k in open {
            cache.complete(k, Bytes::from_static(b"0110"));
        }
        for &k in later {
            assert!(matches!(cache.check(k, t0, || 0), Seen::New));
            cache.complete(k, Bytes::from_static(b"0110"));
        }
        assert!(cache.len() <= 11, "{} keys kept", cache.len());
    }

    #[test]
    fn sized_once_for_its_limit() {
        let mut cache = Cache::new(Duration::from_secs(60), 1_000, 7);
        let sizes = |c: &Cache| (c.entries.capacity(), c.order.capacity());
        let before = sizes(&cache);
        assert!(before.0 >= 2_000 && before.1 > 1_000, "{before:?}");
        let t0 = Instant::now();
        for i in 0..3_000 {
            let key = cache
                .key("pos", &req(&format!("{i:06}")), PAN)
                .expect("key");
            assert!(matches!(cache.check(key, t0, || 0), Seen::New));
            cache.complete(key, Bytes::from_static(b"0110"));
        }
        // Removals may leave tombstones (less room left), never growth.
        let after = sizes(&cache);
        assert!(
            after.0 <= before.0 && after.1 == before.1,
            "{before:?} -> {after:?}"
        );
    }
}
