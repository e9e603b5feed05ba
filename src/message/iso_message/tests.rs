//! The message value: setting, removing, deriving and overlaying fields.

use super::*;

#[test]
fn set_get_remove_keep_order_and_presence() {
    let mut m = Message::new("0100".parse().expect("mti"));
    m.set_str(11, "000001").expect("set");
    m.set_str(2, "4111111111111111").expect("set");
    m.set_num(4, 1250, 12).expect("set");
    assert_eq!(
        m.fields().map(|(n, _)| n).collect::<Vec<_>>(),
        vec![2, 4, 11]
    );
    assert_eq!(m.get_str(4), Some("000000001250"));
    assert_eq!(m.get_u64(4), Some(1250));
    assert_eq!(m.remove(2).as_deref(), Some(&b"4111111111111111"[..]));
    assert!(!m.has(2));
    assert_eq!(m.len(), 2);
    assert!(m.set_str(1, "x").is_err());
    assert!(m.set_str(193, "x").is_err());
}

/// `set_num` writes what `format!("{value:0width$}")` would: padded to
/// the width, never cut below the value's own digits.
#[test]
fn set_num_writes_zero_padded_digits() {
    use proptest::prelude::*;
    let value = prop_oneof![any::<u64>(), 0u64..1_000, Just(u64::MAX), Just(0)];
    proptest!(|(value in value, width in 0usize..25)| {
        let mut m = Message::new("0100".parse().expect("mti"));
        m.set_num(4, value, width).expect("set");
        let text = format!("{value:0width$}");
        prop_assert_eq!(m.get_str(4), Some(text.as_str()));
    });
}

/// Any sequence of sets (shared, or copied into the message's own short
/// values until they fill) and removes, on an empty or a parsed message,
/// reads back like a map of the same operations, and so does a copy.
#[test]
fn sets_and_removes_behave_like_a_map() {
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    let spec = crate::message::Spec::resolve("iso87-ascii").expect("spec");
    let golden = include_str!("../../../fixtures/golden/iso87-ascii/0100-auth-request.hex");
    let wire = Bytes::from(hex::decode(golden.trim()).expect("hex"));
    let ops = proptest::collection::vec((0u8..3, 2u16..12, any::<u8>()), 0..40);
    proptest!(|(start_parsed in any::<bool>(), ops in ops)| {
        let mut msg = if start_parsed {
            spec.parse(&wire).expect("golden parses")
        } else {
            Message::new("0100".parse().expect("mti"))
        };
        let mut model: BTreeMap<u16, Vec<u8>> =
            msg.values().map(|(n, v)| (n, v.to_vec())).collect();
        for (kind, n, byte) in ops {
            match kind {
                0 => {
                    msg.set(n, vec![byte; usize::from(byte % 5)]).expect("set");
                    model.insert(n, vec![byte; usize::from(byte % 5)]);
                }
                1 => {
                    // Up to 19 bytes: the short values' room fills after a few.
                    msg.set_copy(n, &vec![byte; usize::from(byte % 20)]).expect("set");
                    model.insert(n, vec![byte; usize::from(byte % 20)]);
                }
                _ => prop_assert_eq!(msg.remove(n).map(|b| b.to_vec()), model.remove(&n)),
            }
            // `get` and `value` agree, after `get` made its shared table.
            for (&k, v) in &model {
                prop_assert_eq!(msg.get(k).map(|b| b.to_vec()), Some(v.clone()));
                prop_assert_eq!(msg.value(k), Some(&v[..]));
            }
        }
        let fields: Vec<(u16, Vec<u8>)> = msg.fields().map(|(n, v)| (n, v.to_vec())).collect();
        let expected: Vec<(u16, Vec<u8>)> = model.into_iter().collect();
        prop_assert_eq!(&fields, &expected);
        prop_assert_eq!(msg.len(), msg.presence().count());
        let copy = msg.derive(msg.mti(), 0, 0, |_, _, _| Carry::Unchecked);
        let copied: Vec<(u16, Vec<u8>)> = copy.values().map(|(n, v)| (n, v.to_vec())).collect();
        prop_assert_eq!(copied, expected);
        prop_assert!(msg.derive_all(msg.mti(), 0, 0, |_| true) == Some(copy));
    });
}

#[test]
fn derive_shares_values_and_keeps_only_what_carry_keeps() {
    let spec = crate::message::Spec::resolve("iso87-ascii").expect("spec");
    let golden = include_str!("../../../fixtures/golden/iso87-ascii/0100-auth-request.hex");
    let wire = Bytes::from(hex::decode(golden.trim()).expect("hex"));
    let parsed = spec.parse(&wire).expect("golden parses");
    let mut seen_checked = Vec::new();
    let derived = parsed.derive(parsed.mti(), spec.id, spec.id, |n, _, checked| {
        seen_checked.push(checked);
        match n {
            2 => Carry::Drop,
            3 => Carry::Unchecked,
            _ => Carry::Checked,
        }
    });
    assert!(
        seen_checked.iter().all(|&c| c),
        "a parse checks every field"
    );
    assert!(!derived.has(2) && derived.has(3));
    assert_eq!(derived.len(), parsed.len() - 1);
    for (n, v) in derived.values() {
        assert_eq!(parsed.value(n), Some(v), "field {n}");
    }
    // Values are slices of the same frame, not copies.
    let frame = wire.as_ptr_range();
    let shared = derived.value_bytes(4).expect("DE4");
    assert!(frame.contains(&shared.as_ptr()));
    // Built in the same spec, it is the original without DE2.
    let mut expected = parsed.clone();
    expected.remove(2);
    assert_eq!(spec.build(&derived).ok(), spec.build(&expected).ok());
}

#[test]
fn overlay_sets_replaces_or_removes_in_one_pass() {
    let mut a = Message::new("0110".parse().expect("mti"));
    for (n, v) in [
        (3, "000000"),
        (11, "000001"),
        (37, "RRN000000001"),
        (39, "00"),
    ] {
        a.set_str(n, v).expect("set");
    }
    let mut b = Message::new("0100".parse().expect("mti"));
    for (n, v) in [(7, "1123143005"), (11, "123456"), (41, "TERM0001")] {
        b.set_str(n, v).expect("set");
    }
    a.overlay(&b, &[7, 11, 37, 41, 42]);
    let fields: Vec<(u16, &str)> = a
        .values()
        .map(|(n, v)| (n, std::str::from_utf8(v).expect("text")))
        .collect();
    assert_eq!(
        fields,
        vec![
            (3, "000000"),
            (7, "1123143005"),
            (11, "123456"),
            (39, "00"),
            (41, "TERM0001")
        ]
    );
    assert_eq!(a.len(), a.presence().count());
    // Later edits still behave (owned places were reused, not leaked).
    assert_eq!(a.remove(7).as_deref(), Some(&b"1123143005"[..]));
    a.set_str(11, "654321").expect("set");
    assert_eq!(a.get_str(11), Some("654321"));
    assert_eq!(a.get_str(41), Some("TERM0001"));
}

/// `overlay` and `agrees_on` against the field-by-field model: any two
/// messages, any ascending fields, values equal or not.
#[test]
fn overlay_and_agrees_on_match_field_by_field() {
    use proptest::prelude::*;
    let fields = proptest::collection::btree_map(2u16..20, 0u8..3, 0..12);
    proptest!(|(a in fields.clone(), b in fields, list in proptest::collection::btree_set(2u16..20, 0..10))| {
        let make = |m: &std::collections::BTreeMap<u16, u8>| {
            let mut msg = Message::new("0100".parse().expect("mti"));
            for (&n, &v) in m {
                msg.set(n, vec![b'0' + v]).expect("set");
            }
            msg
        };
        let (mut mine, theirs) = (make(&a), make(&b));
        let list: Vec<u16> = list.into_iter().collect();
        let agrees = list.iter().all(|&n| match (mine.value(n), theirs.value(n)) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        });
        prop_assert_eq!(mine.agrees_on(&theirs, &list), agrees);
        let mut model = mine.clone();
        for &n in &list {
            match theirs.value(n) {
                Some(v) => model.set(n, v.to_vec()).expect("set"),
                None => {
                    model.remove(n);
                }
            }
        }
        mine.overlay(&theirs, &list);
        prop_assert_eq!(&mine, &model);
        prop_assert_eq!(mine.len(), mine.presence().count());
    });
}

#[test]
fn debug_does_not_show_values() {
    let mut m = Message::new("0100".parse().expect("mti"));
    m.set_str(2, "4111111111111111").expect("set");
    let shown = format!("{m:?}");
    assert!(!shown.contains("4111111111111111"), "{shown}");
    assert!(shown.contains("0100"));
}

/// A numeric field reads as the integer its digits spell; anything else
/// (a sign, a space, no digits, more than 19) reads as none.
#[test]
fn get_u64_reads_digits_only() {
    use proptest::prelude::*;
    proptest!(|(text in "[0-9 +a]{0,21}")| {
        let mut m = Message::new("0100".parse().expect("mti"));
        m.set_str(4, &text).expect("set");
        let digits = !text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit());
        let expected = digits.then(|| text.parse::<u64>().expect("digits"));
        prop_assert_eq!(m.get_u64(4), expected);
    });
}
