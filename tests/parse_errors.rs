//! Malformed messages give typed errors that name the part and the byte
//! offset, and never echo field content.

use bytes::Bytes;
use cardswitch::message::{MessageError, Part, Spec};

const ECHO_0800: &str = include_str!("../fixtures/golden/iso87-ascii/0800-echo.hex");

fn echo() -> Vec<u8> {
    hex::decode(ECHO_0800.trim()).expect("fixture hex")
}

fn parse(spec: &Spec, bytes: &[u8]) -> MessageError {
    spec.parse(&Bytes::copy_from_slice(bytes))
        .expect_err("must not parse")
}

#[test]
fn truncation_names_the_field_and_offset() {
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    let wire = echo();
    // MTI 4 + two hex bitmaps 32 + DE7 10 + DE11 6: DE70 starts at 52.
    assert_eq!(
        parse(&spec, &wire[..wire.len() - 1]),
        MessageError::Truncated {
            part: Part::Field(70),
            offset: 52,
            needed: 3,
            available: 2
        }
    );
    let e = parse(&spec, &wire[..10]);
    assert!(
        matches!(
            e,
            MessageError::Truncated {
                part: Part::Bitmap(1),
                offset: 4,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn trailing_bytes_and_bad_content_are_located() {
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    let mut wire = echo();
    wire.push(b'X');
    assert_eq!(
        parse(&spec, &wire),
        MessageError::TrailingBytes {
            offset: 55,
            count: 1
        }
    );
    let mut wire = echo();
    wire[48] = b'A';
    let e = parse(&spec, &wire);
    assert_eq!(
        e.to_string(),
        "field 11 at offset 46: invalid n content at position 2"
    );
    assert_eq!((e.field(), e.offset()), (Some(11), Some(46)));
}

#[test]
fn bitmap_faults() {
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    let mut wire = echo();
    wire[5] = b'G';
    assert_eq!(
        parse(&spec, &wire),
        MessageError::BadHex {
            part: Part::Bitmap(1),
            offset: 4,
            position: 1
        }
    );
    let mut wire = echo();
    wire[20..36].copy_from_slice(b"0000000000000000");
    assert_eq!(
        parse(&spec, &wire),
        MessageError::EmptyBitmap {
            part: Part::Bitmap(2),
            offset: 20
        }
    );
    let mut wire = echo();
    wire[0] = b'X';
    assert_eq!(parse(&spec, &wire), MessageError::BadMti { offset: 0 });
}

#[test]
fn fields_the_spec_does_not_define_are_refused() {
    let small = Spec::from_toml(
        r#"name = "small"
mti_encoding = "ascii"
bitmap_encoding = "hex"
fields = [
  { number = 7, name = "Transmission date and time", class = "n", length = "fixed", size = 10 },
  { number = 11, name = "STAN", class = "n", length = "fixed", size = 6 },
]"#,
        "small.toml",
        None,
    )
    .expect("small spec");
    let e = parse(&small, &echo());
    assert!(
        matches!(
            e,
            MessageError::UndefinedField {
                part: Part::Field(70),
                offset: 52,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn errors_never_carry_the_pan() {
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    let mut msg = cardswitch::message::Message::new("0100".parse().expect("mti"));
    msg.set_str(2, "4761739001010119").expect("set");
    msg.set_str(3, "000000").expect("set");
    let mut wire = spec.build(&msg).expect("build").to_vec();
    // Corrupt the last PAN digit: DE2 value starts after MTI, bitmap, LL.
    wire[4 + 16 + 2 + 15] = b'X';
    let e = parse(&spec, &wire);
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("476173900101"), "{shown}");
    assert!(shown.contains("field 2"), "{shown}");
    // Building a bad value is refused the same way.
    msg.set_str(2, "47617390010101X9").expect("set");
    let e = spec.build(&msg).expect_err("bad PAN must not build");
    assert!(!format!("{e:?}").contains("4761739"), "{e:?}");
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    let big = vec![b'0'; 70_000];
    assert!(matches!(
        parse(&spec, &big),
        MessageError::MessageTooLarge { .. }
    ));
}

/// An iso87-ascii 0100 carrying `de55` (raw bytes; the spec writes them as hex).
fn with_de55(de55: &[u8]) -> Vec<u8> {
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    let mut msg = cardswitch::message::Message::new("0100".parse().expect("mti"));
    msg.set_str(11, "000123").expect("set");
    msg.set(55, Bytes::copy_from_slice(de55)).expect("set");
    msg.set_str(41, "TERM0001").expect("set");
    spec.build(&msg).expect("build").to_vec()
}

#[test]
fn a_malformed_tlv_in_de55_is_a_format_error_naming_field_and_offset() {
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    // 9F26, then a length byte announcing 127 length bytes where one is.
    let e = parse(&spec, &with_de55(&[0x9F, 0x26, 0xFF, 0x01]));
    // MTI 4 + bitmap 16 + DE11 6 + DE41 8 + LLL 3: the value starts at 37.
    assert_eq!(
        e,
        MessageError::BadSubElement {
            part: Part::Field(55),
            offset: 37,
            position: 0,
            reason: "TLV length form unsupported",
        }
    );
    assert_eq!((e.field(), e.offset()), (Some(55), Some(37)));
    // A value shorter than its length says, after a good object.
    let e = parse(
        &spec,
        &with_de55(&[0x9F, 0x27, 0x01, 0x80, 0x9F, 0x26, 0x08, 0x01]),
    );
    assert!(
        matches!(
            e,
            MessageError::BadSubElement {
                position: 4,
                reason: "TLV length beyond the data",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("field 55 at offset 37"), "{e}");
    // Well-formed TLV parses.
    let good = with_de55(&[0x9F, 0x27, 0x01, 0x80, 0x82, 0x02, 0x19, 0x80]);
    assert!(spec.parse(&Bytes::from(good)).is_ok());
}

#[test]
fn a_malformed_pds_is_a_format_error() {
    let spec = Spec::resolve("mastercard-ipm").expect("spec");
    let golden = include_str!("../fixtures/golden/mastercard-ipm/1240-first-presentment.hex");
    let good = spec
        .parse(&Bytes::from(hex::decode(golden.trim()).expect("hex")))
        .expect("golden parses");
    for bad in ["0023003PO", "0023X03POI", "002"] {
        let mut msg = good.clone();
        msg.set_str(48, bad).expect("set");
        let wire = spec.build(&msg).expect("build");
        let e = spec.parse(&wire).expect_err("a bad PDS must not parse");
        assert!(
            matches!(
                e,
                MessageError::BadSubElement {
                    part: Part::Field(48),
                    ..
                }
            ),
            "{bad}: {e}"
        );
    }
}
