//! The codec's tests: known layouts byte for byte, encode -> decode round
//! trips over generated commands and responses, and arbitrary or mutated
//! bytes never panicking either decoder.

use proptest::prelude::*;

use super::error::CodecError;
use super::error_code::ErrorCode;
use super::fields::Sensitive;
use super::frame;
use super::key::{KeyCryptogram, KeyScheme};
use super::request::*;
use super::response::{Response, ResponseBody, response_code};

fn key(scheme: KeyScheme, seed: u8, len: usize) -> KeyCryptogram {
    let hex: String = (0..len)
        .map(|i| char::from(b"0123456789ABCDEF"[(i + seed as usize) % 16]))
        .collect();
    KeyCryptogram::new(scheme, &hex)
}

fn s(text: &str) -> Sensitive<String> {
    Sensitive(text.to_string())
}

/// One of each command, with values picked by `seed`.
pub(crate) fn sample_requests(seed: u8, data: &[u8]) -> Vec<Request> {
    let data = if data.is_empty() {
        vec![seed]
    } else {
        data.to_vec()
    };
    let pin = PinTranslate {
        source_key: key(KeyScheme::U, seed, 32),
        destination_zpk: key(KeyScheme::Untagged, seed, 16),
        max_pin_len: 12,
        pin_block: s("0123456789ABCDEF"),
        source_format: 1,
        destination_format: 47,
        account: s("401234567890"),
    };
    let mac = MacCommand {
        mode: seed % 4,
        input_format: 0,
        algorithm: 3,
        padding: 2,
        key_type: "008".into(),
        key: key(KeyScheme::T, seed, 48),
        iv: (seed % 4 >= 2).then(|| "00112233445566FF".to_string()),
        message: Sensitive(data.clone()),
        mac: None,
    };
    let mode = seed % 3;
    let kq = ArqcCommand {
        mode,
        scheme: seed % 2,
        mk_ac: key(KeyScheme::Untagged, seed, 32),
        pan_psn: Sensitive(vec![0x12; 8]),
        atc: [0, seed],
        un: [1, 2, 3, seed],
        data: (mode <= 1).then(|| Sensitive(data.iter().copied().take(255).collect())),
        arqc: [seed; 8],
        arc: (mode >= 1).then_some(*b"00"),
    };
    let cvv = CvvCommand {
        cvk: key(KeyScheme::U, seed, 32),
        cvv: None,
        pan: s("4123456789012345"),
        expiry: s("8701"),
        service_code: "101".into(),
    };
    vec![
        Request::Ca(pin.clone()),
        Request::Cc(pin.clone()),
        Request::G0(DukptTranslate {
            bdk: key(KeyScheme::U, seed, 32),
            zpk: key(KeyScheme::X, seed, 32),
            ksn_descriptor: "A05".into(),
            ksn: "FFFF9876543210E00001".into(),
            pin_block: s("1B9C1845EB993A7A"),
            source_format: 1,
            destination_format: 1,
            account: s("401234567890"),
        }),
        Request::M6(mac.clone()),
        Request::M8(MacCommand {
            mac: Some("A1B2C3D4E5F60718".into()),
            ..mac
        }),
        Request::Kq(kq),
        Request::Cw(cvv.clone()),
        Request::Cy(CvvCommand {
            cvv: Some(s("561")),
            ..cvv
        }),
        Request::A0(GenerateKey {
            mode: seed % 2,
            key_type: "001".into(),
            lmk_scheme: KeyScheme::U,
            zmk: (seed % 2 == 1).then(|| (key(KeyScheme::U, seed, 32), KeyScheme::X)),
        }),
        Request::Bu(KeyCheck {
            key_type_code: "01".into(),
            length_flag: 1,
            key: key(KeyScheme::U, seed, 32),
            key_type: seed.is_multiple_of(2).then(|| "001".to_string()),
        }),
        Request::A6(ImportKey {
            key_type: "001".into(),
            zmk: key(KeyScheme::U, seed, 32),
            key: key(KeyScheme::X, seed, 32),
            lmk_scheme: KeyScheme::U,
        }),
        Request::Nc,
    ]
}

/// One response of each shape.
fn sample_responses(seed: u8) -> Vec<Response> {
    let ok = |code: &[u8; 2], body| Response {
        code: *code,
        error: ErrorCode::NoError,
        body,
    };
    vec![
        ok(
            b"CB",
            ResponseBody::PinTranslated {
                pin_len: 4,
                pin_block: s("0123456789ABCDEF"),
                format: 1,
            },
        ),
        ok(
            b"G1",
            ResponseBody::PinTranslated {
                pin_len: 12,
                pin_block: s("FFFFFFFFFFFFFFFF"),
                format: 47,
            },
        ),
        ok(b"M7", ResponseBody::Mac("0011223344556677".into())),
        ok(b"M9", ResponseBody::Empty),
        ok(b"KR", ResponseBody::Arpc([seed; 8])),
        ok(b"KR", ResponseBody::Empty),
        ok(b"CX", ResponseBody::Cvv(s("561"))),
        ok(
            b"A1",
            ResponseBody::GeneratedKey {
                lmk: key(KeyScheme::U, seed, 32),
                zmk: seed.is_multiple_of(2).then(|| key(KeyScheme::X, seed, 32)),
                kcv: "08D7B4".into(),
            },
        ),
        ok(b"BV", ResponseBody::Kcv("08D7B4".into())),
        ok(b"BV", ResponseBody::Kcv("08D7B40000000000".into())),
        ok(
            b"A7",
            ResponseBody::ImportedKey {
                lmk: key(KeyScheme::U, seed, 32),
                kcv: "ABCDEF".into(),
            },
        ),
        Response {
            code: *b"A7",
            error: ErrorCode::VerificationFailure,
            body: ResponseBody::ImportedKey {
                lmk: key(KeyScheme::U, seed, 32),
                kcv: "ABCDEF".into(),
            },
        },
        ok(
            b"ND",
            ResponseBody::Diagnostics {
                lmk_check: "0123456789ABCDEF".into(),
                firmware: "1500-0000".into(),
            },
        ),
        Response::error(b"CA", ErrorCode::PinBlockData).unwrap(),
        Response::error(b"M8", ErrorCode::VerificationFailure).unwrap(),
    ]
}

#[test]
fn ca_layout_byte_for_byte() {
    let req = &sample_requests(0, b"x")[0];
    let mut out = Vec::new();
    req.encode(&mut out).unwrap();
    let want = concat!(
        "CA",
        "U0123456789ABCDEF0123456789ABCDEF", // source TPK
        "0123456789ABCDEF",                  // destination ZPK, untagged single
        "12",                                // maximum PIN length
        "0123456789ABCDEF",                  // PIN block
        "01",                                // ISO format 0
        "47",                                // ISO format 3
        "401234567890",                      // account number
    );
    assert_eq!(String::from_utf8(out.clone()).unwrap(), want);
    assert_eq!(&Request::decode(&out).unwrap(), req);
    let mut framed = Vec::new();
    frame::encode(b"0001", &out, &mut framed).unwrap();
    let (f, _) = frame::decode(&framed, 4).unwrap().unwrap();
    assert_eq!(f.message, &out[..]);
}

/// A frame too long for its 2-byte length, or whose message fails to
/// encode, is refused and leaves the buffer as it was.
#[test]
fn refused_frames_leave_the_buffer_untouched() {
    let mut out = b"kept".to_vec();
    assert!(frame::encode(b"0001", &vec![b'A'; 70_000], &mut out).is_err());
    let failing = |_: &mut Vec<u8>| {
        Err(CodecError::Encode {
            field: "f",
            why: "test",
        })
    };
    assert!(frame::encode_with(b"0001", &mut out, failing).is_err());
    assert_eq!(out, b"kept");
    frame::encode_with(b"0001", &mut out, |o| {
        o.extend_from_slice(b"NC");
        Ok(())
    })
    .unwrap();
    assert_eq!(out, b"kept\x00\x060001NC");
}

#[test]
fn response_codes_advance_the_second_character() {
    assert_eq!(response_code(b"CA"), Some(*b"CB"));
    assert_eq!(response_code(b"G0"), Some(*b"G1"));
    assert_eq!(response_code(b"NC"), Some(*b"ND"));
    assert_eq!(response_code(b"ZZ"), None);
    let r = Response::decode(b"CB24").unwrap();
    assert_eq!(
        (r.error, r.body),
        (ErrorCode::PinLength, ResponseBody::Empty)
    );
}

#[test]
fn malformed_inputs_are_typed_errors() {
    use super::CodecError as E;
    assert!(matches!(
        Request::decode(b"ZZ"),
        Err(E::UnknownCommand { .. })
    ));
    assert!(matches!(Request::decode(b"C"), Err(E::Truncated { .. })));
    assert!(matches!(
        Request::decode(b"NCX"),
        Err(E::TrailingBytes { extra: 1 })
    ));
    assert!(matches!(
        Request::decode(b"CAQ0123"),
        Err(E::KeyScheme { .. })
    ));
    assert!(matches!(
        Request::decode(b"CAU01G3"),
        Err(E::Truncated { .. }) | Err(E::NotHex { .. })
    ));
    assert!(matches!(
        Response::decode(b"XX00"),
        Err(E::UnknownResponse { .. })
    ));
    assert!(matches!(Response::decode(b"CB0"), Err(E::Truncated { .. })));
    assert!(matches!(
        Request::decode(b"CW0123456789ABCDEF0123456789ABCDEF4123"),
        Err(E::Truncated { .. })
    ));
    let long_pan = format!("CW{}{};", "0".repeat(32), "1".repeat(25));
    assert!(matches!(
        Request::decode(long_pan.as_bytes()),
        Err(E::FieldLength { .. })
    ));
    // The encoder refuses what it could not write back.
    let mut bad = sample_requests(0, b"x").remove(0);
    if let Request::Ca(c) = &mut bad {
        c.account = s("12345");
    }
    assert!(bad.encode(&mut Vec::new()).is_err());
}

#[test]
fn debug_hides_sensitive_fields() {
    let shown = format!("{:?}", sample_requests(0, b"x"));
    for secret in [
        "0123456789ABCDEF",
        "401234567890",
        "4123456789012345",
        "561",
    ] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
}

proptest! {
    #[test]
    fn requests_round_trip(seed in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..300)) {
        for req in sample_requests(seed, &data) {
            let mut out = Vec::new();
            req.encode(&mut out).unwrap();
            prop_assert_eq!(Request::decode(&out).unwrap(), req);
        }
    }

    #[test]
    fn responses_round_trip(seed in any::<u8>()) {
        for resp in sample_responses(seed) {
            let mut out = Vec::new();
            resp.encode(&mut out).unwrap();
            prop_assert_eq!(Response::decode(&out).unwrap(), resp);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes);
        let _ = frame::decode(&bytes, 4);
    }

    #[test]
    fn mutated_messages_never_panic(seed in any::<u8>(), at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
        for req in sample_requests(seed, b"abc") {
            let mut out = Vec::new();
            req.encode(&mut out).unwrap();
            let i = at % out.len();
            out[i] = byte;
            let _ = Request::decode(&out);
            let _ = Request::decode(&out[..cut % (out.len() + 1)]);
            let _ = Response::decode(&out);
        }
    }
}
