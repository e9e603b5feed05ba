//! The HSM simulator's dispatcher on any command the codec lets through:
//! it never panics, and its answer encodes and decodes back to itself (a
//! client can always read what `hsm-sim` sends). The committed seeds
//! (fuzz/seeds/hsm_sim/) carry keys under the test LMK, so mutations
//! reach the cryptography rather than stopping at a parity error.
#![no_main]

use std::sync::OnceLock;

use cardswitch::hsm::command::{Request, Response};
use cardswitch::hsm::sim::{Hsm, Lmk};
use cardswitch::hsm::soft::Secret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static HSM: OnceLock<Hsm> = OnceLock::new();
    let hsm = HSM.get_or_init(|| Hsm::new(Lmk::test()));
    // The first byte seeds the random bytes (new keys, PIN block fill).
    let Some((&seed, message)) = data.split_first() else {
        return;
    };
    if let Ok(request) = Request::decode(message) {
        let answer = hsm.handle(&request, &Secret::new([seed; 32]));
        let mut out = Vec::new();
        answer.encode(&mut out).expect("an answer encodes");
        assert_eq!(Response::decode(&out).expect("an answer decodes"), answer);
    }
});
