//! The fast pass against the checking parser, on golden messages of
//! every spec and edits of them.

use super::fast::parse_fast;
use super::*;
use proptest::prelude::*;

const GOLDEN: &[(&str, &str)] = &[
    (
        "iso87-ascii",
        include_str!("../../../fixtures/golden/iso87-ascii/0100-auth-request.hex"),
    ),
    (
        "iso87-ascii",
        include_str!("../../../fixtures/golden/iso87-ascii/0110-auth-response.hex"),
    ),
    (
        "iso87-ascii",
        include_str!("../../../fixtures/golden/iso87-ascii/0400-reversal.hex"),
    ),
    (
        "iso87-ascii",
        include_str!("../../../fixtures/golden/iso87-ascii/0800-echo.hex"),
    ),
    (
        "iso87-binary",
        include_str!("../../../fixtures/golden/iso87-binary/0100-auth-request.hex"),
    ),
    (
        "iso87-binary",
        include_str!("../../../fixtures/golden/iso87-binary/0800-echo.hex"),
    ),
    (
        "iso93-ascii",
        include_str!("../../../fixtures/golden/iso93-ascii/1100-auth-request.hex"),
    ),
    (
        "iso93-ascii",
        include_str!("../../../fixtures/golden/iso93-ascii/1804-echo.hex"),
    ),
    (
        "mastercard-ipm",
        include_str!("../../../fixtures/golden/mastercard-ipm/1240-first-presentment.hex"),
    ),
    (
        "mastercard-ipm",
        include_str!("../../../fixtures/golden/mastercard-ipm/1442-chargeback.hex"),
    ),
    (
        "mastercard-ipm",
        include_str!("../../../fixtures/golden/mastercard-ipm/1644-695-file-trailer.hex"),
    ),
    (
        "mastercard-ipm",
        include_str!("../../../fixtures/golden/mastercard-ipm/1644-697-file-header.hex"),
    ),
    (
        "mastercard-ipm",
        include_str!("../../../fixtures/golden/mastercard-ipm/1740-fee-collection.hex"),
    ),
];

/// Bytes near the edges of the classes and encodings: digits, letters,
/// separators, EBCDIC digits and space, BCD nibbles past 9, Latin-1.
fn edge_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(vec![
            b'0', b'9', b'/', b':', b'A', b'D', b'F', b'G', b'Z', b'a', b'f', b'z', b' ', b'=',
            b'C', b'~', 0x7F, 0x9F, 0xA0, 0xFF, 0x40, 0xF0, 0xF9, 0xFA, 0xC1, 0xC3, 0xC4, 0x7E,
            0x09, 0x0D, 0xD0, 0x1F, 0x00, 0x99,
        ]),
        any::<u8>(),
    ]
}

proptest! {
    // Each case loads its spec afresh (its plan cache must start empty),
    // which in a debug build takes most of the time: fewer cases there
    // (the test suite's build), all of them optimised.
    #![proptest_config(ProptestConfig {
        cases: if cfg!(debug_assertions) { 1000 } else { 4000 },
        ..ProptestConfig::default()
    })]

    /// The fast pass accepts exactly what the checking parser accepts,
    /// with the same values, on golden messages of every spec with a
    /// few bytes replaced, inserted or removed, or cut short.
    #[test]
    fn the_fast_pass_agrees_with_the_checking_parser(
        which in 0..GOLDEN.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), edge_byte(), 0u8..8), 0..4),
        plan_first in any::<bool>(),
    ) {
        let (name, text) = GOLDEN[which];
        let spec = Spec::resolve(name).expect("spec");
        let mut bytes = hex::decode(text.trim()).expect("hex");
        // Half the cases read the edited message by the golden bitmap's
        // plan, half field by field (and cache a plan if it is valid).
        if plan_first {
            let golden = Bytes::from(bytes.clone());
            prop_assert!(parse_fast(&spec, &golden).is_some());
            prop_assert_eq!(spec.plans.len(), 1);
        }
        for (at, byte, kind) in edits {
            let i = at.index(bytes.len() + 1);
            match kind {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => {
                    bytes.remove(i);
                }
                2 => bytes.truncate(i),
                _ if i < bytes.len() => bytes[i] = byte,
                _ => {}
            }
        }
        let input = Bytes::from(bytes);
        let checked = parse_checked(&spec, &input);
        // Twice: the second time by the plan the first one cached, if any.
        for round in 0..2 {
            let fast = parse_fast(&spec, &input);
            match (fast, &checked) {
                (Some(f), Ok(c)) => {
                    prop_assert_eq!(&f, c);
                    prop_assert!(f.values().eq(c.values()));
                }
                (None, Err(_)) => {}
                (f, c) => prop_assert!(false, "{name} round {round}: fast pass {:?}, checking parser {:?}", f.is_some(), c.as_ref().err()),
            }
        }
    }
}

#[test]
fn golden_messages_take_the_fast_pass() {
    for (name, text) in GOLDEN {
        let spec = Spec::resolve(name).expect("spec");
        let input = Bytes::from(hex::decode(text.trim()).expect("hex"));
        assert!(parse_fast(&spec, &input).is_some(), "{name}");
        assert_eq!(spec.plans.len(), 1, "{name}: the bitmap's plan is cached");
        assert!(parse_fast(&spec, &input).is_some(), "{name}, by its plan");
    }
}
