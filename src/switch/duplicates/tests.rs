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
    assert!(matches!(cache.check(key, t0, || 0), Seen::New(_)));
    assert!(
        matches!(cache.check(key, t0, || 7), Seen::InFlight),
        "a copy must wait for the original"
    );
    let resp = Bytes::from_static(b"0110 response");
    assert_eq!(
        cache.complete(key, None, resp.clone()),
        vec![7],
        "the waiter"
    );
    assert!(matches!(cache.check(key, t0, || 0), Seen::Answered(r) if r == resp));
    // The repeat MTI shares the key; another acquirer does not.
    let mut repeat = req("000001");
    repeat.set_mti("0101".parse().expect("mti"));
    assert_eq!(cache.key("pos", &repeat, PAN), Some(key));
    assert_ne!(cache.key("atm", &repeat, PAN), Some(key));
    // After the window the key is forgotten.
    assert!(matches!(
        cache.check(key, t0 + Duration::from_secs(61), || 0),
        Seen::New(_)
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
        assert!(matches!(cache.check(key, t0, || 0), Seen::New(_)));
        cache.complete(key, None, Bytes::from_static(b"0110"));
    }
    assert!(cache.len() <= 11, "{} keys kept", cache.len());
    let key = cache.key("pos", &req("999999"), PAN).expect("key");
    assert!(matches!(cache.check(key, t0, || 0), Seen::New(_)));
    for i in 0..WAITERS_MAX as u32 {
        assert!(matches!(cache.check(key, t0, || i), Seen::InFlight));
    }
    assert!(matches!(cache.check(key, t0, || 99), Seen::Flooded));
    assert_eq!(cache.complete(key, None, Bytes::new()).len(), WAITERS_MAX);
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
        assert!(matches!(cache.check(k, t0, || 0), Seen::New(_)));
    }
    for &k in open {
        cache.complete(k, None, Bytes::from_static(b"0110"));
    }
    for &k in later {
        assert!(matches!(cache.check(k, t0, || 0), Seen::New(_)));
        cache.complete(k, None, Bytes::from_static(b"0110"));
    }
    assert!(cache.len() <= 11, "{} keys kept", cache.len());
}

#[test]
fn sized_once_for_its_limit() {
    let mut cache = Cache::new(Duration::from_secs(60), 1_000, 7);
    let sizes = |c: &Cache| (c.index.capacity(), c.ring.capacity());
    let before = sizes(&cache);
    assert!(before.0 >= 2_000 && before.1 > 1_000, "{before:?}");
    let t0 = Instant::now();
    for i in 0..3_000 {
        let key = cache
            .key("pos", &req(&format!("{i:06}")), PAN)
            .expect("key");
        assert!(matches!(cache.check(key, t0, || 0), Seen::New(_)));
        cache.complete(key, None, Bytes::from_static(b"0110"));
    }
    assert_eq!(sizes(&cache), before, "grown under load");
}

/// An answer for a key the cache does not hold (a transaction restored
/// after a restart) is held from then: a later copy gets it, and it is
/// forgotten in its turn like any other.
#[test]
fn an_answer_for_a_key_not_held_is_held_and_forgotten_in_turn() {
    let mut cache = Cache::new(Duration::from_secs(60), 10, 7);
    let t0 = Instant::now();
    let restored = cache.key("pos", &req("777777"), PAN).expect("key");
    assert!(
        cache
            .complete(restored, None, Bytes::from_static(b"early"))
            .is_empty()
    );
    assert!(
        cache.is_empty(),
        "no time seen yet: nothing to hold it from"
    );
    let first = cache.key("pos", &req("000000"), PAN).expect("key");
    assert!(matches!(cache.check(first, t0, || 0), Seen::New(_)));
    assert!(
        cache
            .complete(restored, None, Bytes::from_static(b"0110"))
            .is_empty()
    );
    assert!(matches!(cache.check(restored, t0, || 0), Seen::Answered(r) if &r[..] == b"0110"));
    assert_eq!(cache.len(), 2);
    cache.complete(first, None, Bytes::from_static(b"0110"));
    assert!(matches!(
        cache.check(restored, t0 + Duration::from_secs(61), || 0),
        Seen::New(_)
    ));
}

/// Keys, answers and waiters through a long random run against a plain
/// model of what was seen: the cache answers exactly as the model, with
/// its in-flight keys put back as they reach the front.
#[test]
fn agrees_with_a_model_through_a_long_run() {
    use std::collections::HashMap;
    let mut rng = fastrand::Rng::with_seed(11);
    let mut cache = Cache::new(Duration::from_secs(3600), 64, 7);
    let t0 = Instant::now();
    // stan -> answer (None: in flight); the keys the cache still holds
    // are the most recent, so the model only checks those it must hold.
    let mut model: HashMap<u32, Option<u32>> = HashMap::new();
    let mut open: Vec<u32> = Vec::new();
    // Where each open key was put: completed through its place, which
    // goes stale when an in-flight key is moved to the back.
    let mut places: HashMap<u32, Place> = HashMap::new();
    for step in 0..20_000u32 {
        let stan = rng.u32(..200);
        let key = cache
            .key("pos", &req(&format!("{stan:06}")), PAN)
            .expect("key");
        match cache.check(key, t0, || step) {
            Seen::New(place) => {
                places.insert(stan, place);
                assert!(
                    !matches!(model.get(&stan), Some(None)),
                    "in-flight {stan} forgotten"
                );
                model.insert(stan, None);
                open.push(stan);
            }
            Seen::Answered(r) => {
                let want = model
                    .get(&stan)
                    .copied()
                    .flatten()
                    .expect("answered in the model");
                assert_eq!(&r[..], want.to_string().as_bytes());
            }
            Seen::InFlight | Seen::Flooded => {
                assert_eq!(model.get(&stan), Some(&None), "{stan} is in flight");
            }
        }
        if !open.is_empty() && rng.u8(..3) == 0 {
            let stan = open.swap_remove(rng.usize(..open.len()));
            let key = cache
                .key("pos", &req(&format!("{stan:06}")), PAN)
                .expect("key");
            cache.complete(key, places.remove(&stan), Bytes::from(step.to_string()));
            model.insert(stan, Some(step));
        }
        assert!(
            cache.len() <= 64 + open.len() + 1,
            "{} keys held",
            cache.len()
        );
    }
}

/// A place goes stale when its in-flight key is moved to the back (it
/// reached the front of a full ring): completing through it answers the
/// key where it went, and no other.
#[test]
fn a_stale_place_finds_its_key_where_it_went() {
    let mut cache = Cache::new(Duration::from_secs(3600), 2, 7);
    let t0 = Instant::now();
    let keys: Vec<DupKey> = ["000001", "000002", "000003", "000004"]
        .iter()
        .map(|stan| cache.key("pos", &req(stan), PAN).expect("key"))
        .collect();
    let Seen::New(place) = cache.check(keys[0], t0, || 0) else {
        panic!("new")
    };
    assert!(matches!(cache.check(keys[1], t0, || 0), Seen::New(_)));
    cache.complete(keys[1], None, Bytes::from_static(b"second"));
    assert!(matches!(cache.check(keys[2], t0, || 0), Seen::New(_)));
    // Over the limit: the first key, in flight, goes to the back.
    assert!(matches!(cache.check(keys[3], t0, || 0), Seen::New(_)));
    cache.complete(keys[0], Some(place), Bytes::from_static(b"first"));
    assert!(matches!(cache.check(keys[0], t0, || 0), Seen::Answered(r) if &r[..] == b"first"));
    for &open in &keys[2..] {
        assert!(matches!(cache.check(open, t0, || 0), Seen::InFlight));
    }
}
