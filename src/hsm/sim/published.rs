//! The dispatcher against the published test vectors of a payShield
//! simulator run on the test LMK (facts: cryptograms and answers, byte
//! for byte). They pin the LMK values, each key type's pair and variant,
//! the schemes' variants (under the LMK and under a ZMK) and the answer
//! layouts to what test HSMs give.

use super::tests::{hsm, random, s};
use super::*;
use crate::hsm::command::KeyScheme;
use crate::hsm::command::request::*;

/// Published test values of a payShield simulator run on the test LMK:
/// the X9.24 BDK under the LMK, a ZPK, and G0's answer for the X9.24 PIN
/// block of counter 1. They pin the LMK values, the pair of each key type
/// and the `U` scheme's variants to what test HSMs give.
#[test]
fn test_lmk_matches_published_cryptograms() {
    let bdk = KeyCryptogram::new(KeyScheme::U, "8E3D3E2FD5919657F05A1AA90D32A014");
    let clear = Lmk::test().decrypt(KeyType::BDK, &bdk).unwrap();
    assert_eq!(
        hex::encode_upper(clear.as_bytes()),
        "0123456789ABCDEFFEDCBA9876543210"
    );
    let again = Lmk::test()
        .encrypt(KeyType::BDK, &clear, KeyScheme::U)
        .unwrap();
    assert_eq!(again, bdk);
    let req = Request::G0(DukptTranslate {
        bdk,
        zpk: KeyCryptogram::new(KeyScheme::U, "9D961F6AF1D24B38AB37B320022FF57D"),
        ksn_descriptor: "A05".into(),
        ksn: "FFFF9876543210E00001".into(),
        pin_block: s("1B9C1845EB993A7A"),
        source_format: 1,
        destination_format: 1,
        account: s("401234567890"),
    });
    let mut out = Vec::new();
    hsm().handle(&req, &random(0)).encode(&mut out).unwrap();
    assert_eq!(out, b"G100047D26134E85E7DADF01");
}

/// The same simulator's CW vectors: the published CVV example's CVK
/// under the test LMK as `U` and untagged (two single-length halves).
#[test]
fn cvk_cryptograms_match_published_cw_vectors() {
    for (scheme, hex) in [
        (KeyScheme::U, "9B4934384B19946B040CD702B4D58145"),
        (KeyScheme::Untagged, "0A61E674E88C6A7EEABC38C2B2BB492F"),
    ] {
        let c = CvvCommand {
            cvk: KeyCryptogram::new(scheme, hex),
            cvv: None,
            pan: s("4123456789012345"),
            expiry: s("8701"),
            service_code: "101".into(),
        };
        let mut out = Vec::new();
        hsm()
            .handle(&Request::Cw(c), &random(0))
            .encode(&mut out)
            .unwrap();
        assert_eq!(out, b"CX00561", "{scheme:?}");
    }
}

/// Encodes the answer to `req` as it goes on the wire.
fn wire(req: &Request) -> String {
    let mut out = Vec::new();
    hsm().handle(req, &random(0)).encode(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn k(scheme: KeyScheme, hex: &str) -> KeyCryptogram {
    KeyCryptogram::new(scheme, hex)
}

/// The same simulator's CA, BU and A6 vectors: keys under the test LMK
/// (single untagged and `U`), a key imported from under a ZMK by the
/// variant method (`U` under the ZMK), check values.
#[test]
fn ca_bu_and_a6_match_published_vectors() {
    let ca = |tpk, zpk, block: &str| {
        Request::Ca(PinTranslate {
            source_key: tpk,
            destination_zpk: zpk,
            max_pin_len: 12,
            pin_block: s(block),
            source_format: 1,
            destination_format: 1,
            account: s("550000025321"),
        })
    };
    let tpk = k(KeyScheme::U, "8463435FC4B4DAA0C49025272C29B12C");
    let zpk = k(KeyScheme::U, "1EF828AA8F6B80EB83E19FBC373F3A85");
    assert_eq!(
        wire(&ca(tpk, zpk.clone(), "6428EB94035AF53B")),
        "CB000491DDDA0A7C12CFAA01"
    );
    let tpk1 = k(KeyScheme::Untagged, "0406FBB23A5214DF");
    let zpk1 = k(KeyScheme::Untagged, "BAB32D775A38E4AB");
    assert_eq!(
        wire(&ca(tpk1, zpk1, "AE7A708F877571A9")),
        "CB0004E98FFDA17099AF5501"
    );
    let bu = Request::Bu(KeyCheck {
        key_type_code: "01".into(),
        length_flag: 1,
        key: zpk,
        key_type: None,
    });
    assert_eq!(wire(&bu), "BV006F1E3F");
    let a6 = |zmk: &str, key, scheme| {
        Request::A6(ImportKey {
            key_type: "001".into(),
            zmk: k(KeyScheme::U, zmk),
            key,
            lmk_scheme: scheme,
        })
    };
    let single = k(KeyScheme::Untagged, "2B930A07119F93A8");
    assert_eq!(
        wire(&a6(
            "1457FF6ADF6250C66C368416B4C9D383",
            single,
            KeyScheme::Z
        )),
        "A700BAB32D775A38E4AB73936E"
    );
    let double = k(KeyScheme::U, "482C4E722BB0CF1845E1E5BD16310119");
    assert_eq!(
        wire(&a6(
            "71979DEB8587E2734F1E99D5DCAEF9AC",
            double,
            KeyScheme::U
        )),
        "A700U0E07CDC0161A0DE3B5AA44DF227EC9DEABDEBC"
    );
}
