//! The payShield host-command codec on both sides: any bytes, read as a
//! frame and as a request (the simulator's side) and a response (the
//! client's side), never panic; whatever decodes encodes again to the
//! same bytes (the decoders upper-case hex, so the comparison is on
//! upper-cased input) and decodes to the same value.
#![no_main]

use cardswitch::hsm::command::{Request, Response, frame};
use libfuzzer_sys::fuzz_target;

fn check(message: &[u8]) {
    if let Ok(req) = Request::decode(message) {
        let mut out = Vec::new();
        req.encode(&mut out).expect("a decoded request encodes");
        assert_eq!(
            Request::decode(&out).expect("re-encoded request decodes"),
            req
        );
    }
    match Response::decode(message) {
        Ok(resp) => {
            let mut out = Vec::new();
            resp.encode(&mut out).expect("a decoded response encodes");
            assert_eq!(
                Response::decode(&out).expect("re-encoded response decodes"),
                resp
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the header length (0..=7), as deployments do.
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if let Ok(Some((f, used))) = frame::decode(rest, usize::from(sel % 8)) {
        assert!(used <= rest.len());
        check(f.message);
    }
    check(rest);
});
