//! Parse -> build -> parse with the spec the first byte selects. Whatever
//! parses must build; the rebuilt bytes must parse to the same message; and
//! building that again must give the same bytes (the first build may differ
//! from the input: lower-case hex is accepted but upper case is written).
#![no_main]

use bytes::{Bytes, BytesMut};
use cardswitch::message::build::build_into;
use cardswitch_fuzz::select;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((spec, wire)) = select(data) else {
        return;
    };
    let input = Bytes::copy_from_slice(wire);
    let Ok(first) = spec.parse(&input) else {
        return;
    };
    let built = spec
        .build(&first)
        .unwrap_or_else(|e| panic!("parsed message does not build: {e}"));
    let second = spec
        .parse(&built)
        .unwrap_or_else(|e| panic!("built message does not parse: {e}"));
    assert_eq!(second, first, "parse(build(m)) != m");
    let rebuilt = spec.build(&second).expect("second build");
    assert_eq!(rebuilt, built, "build is not deterministic");

    // build_into appends after existing content and leaves it alone.
    let mut out = BytesMut::from(&b"prefix"[..]);
    build_into(spec, &first, &mut out).expect("build_into");
    assert_eq!(&out[..6], b"prefix");
    assert_eq!(&out[6..], &built[..]);
});
