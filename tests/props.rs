//! Property tests over every shipped spec: random valid messages round-trip
//! exactly (parse(build(m)) == m and build(parse(b)) == b), and random or
//! mutated bytes never panic the parser.

use std::sync::Arc;

use bytes::Bytes;
use cardswitch::message::parse::parse_checked;
use cardswitch::message::spec::{Class, Length, Structure};
use cardswitch::message::{Message, Mti, Spec, pds, tlv};
use proptest::prelude::*;

fn specs() -> Vec<Arc<Spec>> {
    cardswitch::message::spec_file::builtin_names()
        .map(|n| Spec::resolve(n).expect("shipped spec"))
        .collect()
}

fn chars(class: Class) -> Vec<u8> {
    match class {
        Class::N => (b'0'..=b'9').collect(),
        Class::Z => (b'0'..=b'9').chain([b'=']).collect(),
        Class::A => (b'A'..=b'Z').chain(b'a'..=b'z').chain([b' ']).collect(),
        Class::An => (b'A'..=b'Z')
            .chain(b'0'..=b'9')
            .chain([b' ', b'q'])
            .collect(),
        Class::Ans => (0x20..=0x7E).chain([0xA0, 0xC9, 0xE9, 0xFF]).collect(),
        Class::B | Class::Xn => Vec::new(),
    }
}

/// A valid value for one field of a spec.
fn value_strategy(class: Class, length: Length) -> BoxedStrategy<Vec<u8>> {
    let len: BoxedStrategy<usize> = match length {
        Length::Fixed(size) => Just(size).boxed(),
        Length::Variable { max, .. } => (0..=max.min(60)).boxed(),
    };
    match class {
        Class::B => len
            .prop_flat_map(|n| prop::collection::vec(any::<u8>(), n))
            .boxed(),
        Class::Xn => len
            .prop_flat_map(|n| {
                (
                    prop::sample::select(vec![b'C', b'D']),
                    prop::collection::vec(b'0'..=b'9', n),
                )
            })
            .prop_map(|(sign, digits)| {
                let mut v = vec![sign];
                v.extend(digits);
                v
            })
            .boxed(),
        other => {
            let alphabet = chars(other);
            len.prop_flat_map(move |n| {
                prop::collection::vec(prop::sample::select(alphabet.clone()), n)
            })
            .boxed()
        }
    }
}

/// A valid value of a field whose spec declares a TLV or PDS structure
/// (the parser checks it): a few objects within the field's maximum.
fn structured_strategy(structure: &Structure, length: Length) -> Option<BoxedStrategy<Vec<u8>>> {
    let Length::Variable { max, .. } = length else {
        return None;
    };
    let max = max.min(60);
    match structure {
        Structure::Tlv => {
            let tags = prop::sample::select(vec![0x82u32, 0x95, 0x9F26, 0x5F2A]);
            let objects =
                prop::collection::vec((tags, prop::collection::vec(any::<u8>(), 0..8)), 0..5);
            Some(
                objects
                    .prop_map(move |objects| {
                        let mut out = bytes::BytesMut::new();
                        for (tag, value) in &objects {
                            if out.len() + value.len() + 3 > max {
                                break;
                            }
                            tlv::write(*tag, value, &mut out);
                        }
                        out.to_vec()
                    })
                    .boxed(),
            )
        }
        Structure::Pds => {
            let text = prop::collection::vec(prop::sample::select(chars(Class::Ans)), 0..10);
            let items = prop::collection::vec((0..=9999u16, text), 0..4);
            Some(
                items
                    .prop_map(move |items| {
                        let mut out = bytes::BytesMut::new();
                        for (tag, value) in &items {
                            if out.len() + value.len() + 7 > max {
                                break;
                            }
                            pds::write(*tag, value, &mut out).expect("short PDS");
                        }
                        out.to_vec()
                    })
                    .boxed(),
            )
        }
        _ => None,
    }
}

fn message_strategy(spec: Arc<Spec>) -> impl Strategy<Value = Message> {
    let fields: Vec<(u16, Class, Length, Structure)> = spec
        .fields()
        .map(|f| (f.number, f.class, f.length, f.structure.clone()))
        .collect();
    let count = fields.len();
    (
        prop::sample::subsequence(fields, 0..=count.min(40)),
        prop::collection::vec(b'0'..=b'9', 4),
    )
        .prop_flat_map(|(chosen, mti)| {
            let values: Vec<_> = chosen
                .iter()
                .map(|(n, class, length, structure)| {
                    let n = *n;
                    structured_strategy(structure, *length)
                        .unwrap_or_else(|| value_strategy(*class, *length))
                        .prop_map(move |v| (n, v))
                })
                .collect();
            (Just(mti), values)
        })
        .prop_map(|(mti, values)| {
            let mti = Mti::from_digits([mti[0], mti[1], mti[2], mti[3]]).expect("digits");
            let mut m = Message::new(mti);
            for (n, v) in values {
                m.set(n, Bytes::from(v)).expect("field number");
            }
            m
        })
}

fn spec_and_message() -> impl Strategy<Value = (Arc<Spec>, Message)> {
    prop::sample::select(specs()).prop_flat_map(|spec| (Just(spec.clone()), message_strategy(spec)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn build_then_parse_is_identity((spec, msg) in spec_and_message()) {
        let wire = spec.build(&msg).map_err(|e| TestCaseError::fail(format!("{}: {e}", spec.name)))?;
        let back = spec.parse(&wire).map_err(|e| TestCaseError::fail(format!("{}: {e}", spec.name)))?;
        prop_assert_eq!(&back, &msg, "spec {}", spec.name);
        prop_assert_eq!(parse_checked(&spec, &wire).ok(), Some(back.clone()));
        for (n, v) in msg.fields() {
            prop_assert_eq!(back.get(n), Some(v), "spec {} field {}", spec.name, n);
        }
        let again = spec.build(&back).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again, wire);
    }

    #[test]
    fn random_bytes_never_panic(spec in prop::sample::select(specs()), data in prop::collection::vec(any::<u8>(), 0..600)) {
        let data = Bytes::from(data);
        prop_assert_eq!(spec.parse(&data), parse_checked(&spec, &data));
        if let Ok(msg) = spec.parse(&data) {
            // Whatever parses must build back to the same bytes or to a
            // canonical form that parses to the same message.
            let wire = spec.build(&msg).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(spec.parse(&wire).ok(), Some(msg));
        }
    }

    #[test]
    fn mutated_messages_never_panic((spec, msg) in spec_and_message(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
        let wire = spec.build(&msg).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut bytes = wire.to_vec();
        if !bytes.is_empty() {
            for (i, b) in flips {
                let at = i.index(bytes.len());
                bytes[at] = b;
            }
        }
        // The fast pass of `parse` and the checking parser agree.
        let bytes = Bytes::from(bytes);
        prop_assert_eq!(spec.parse(&bytes), parse_checked(&spec, &bytes));
        let truncated = cut.index(wire.len() + 1);
        let r = spec.parse(&wire.slice(..truncated));
        if truncated < wire.len() {
            prop_assert!(r.is_err(), "a truncated message parsed");
        }
    }
}
