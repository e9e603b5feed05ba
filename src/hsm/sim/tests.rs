//! The dispatcher against values computed independently with `hsm::soft`:
//! each command's success, and the error codes a payShield would give.

use super::*;
use crate::hsm::command::request::*;
use crate::hsm::command::{KeyScheme, Sensitive};
use crate::hsm::soft::mac::{self, Padding};
use crate::hsm::soft::pin_block::{Pin, PinBlockFormat, account_number_12};
use crate::hsm::soft::translate::{PinBlock, PinKey, decrypt_pin, encrypt_pin};
use crate::hsm::soft::{cvv, emv};

const PAN: &str = "4012345678909";
const TPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const ZPK: &str = "89ABCDEF01234567FEDCBA9876543210";
const ZPK2: &str = "1C587F1C13924FEF0101010101010101";

pub(super) fn hsm() -> Hsm {
    Hsm::new(Lmk::test())
}

fn tdes(h: &str) -> TdesKey {
    TdesKey::from_hex(h).unwrap()
}

fn under(t: KeyType, h: &str) -> KeyCryptogram {
    Lmk::test().encrypt(t, &tdes(h), KeyScheme::U).unwrap()
}

pub(super) fn random(seed: u8) -> Random {
    let mut r = [0u8; 32];
    for (i, b) in r.iter_mut().enumerate() {
        *b = seed.wrapping_mul(31).wrapping_add(i as u8 * 7);
    }
    Secret::new(r)
}

pub(super) fn s(t: &str) -> Sensitive<String> {
    Sensitive(t.to_string())
}

fn account() -> Sensitive<String> {
    s(std::str::from_utf8(&account_number_12(PAN).unwrap()).unwrap())
}

fn block_under(key: &str, format: PinBlockFormat, pin: &str) -> String {
    let k = PinKey::Tdes(tdes(key));
    encrypt_pin(&k, format, &Pin::new(pin).unwrap(), PAN, &[0x3C; 8])
        .unwrap()
        .to_hex()
}

fn pin_under(key: &str, format: PinBlockFormat, hex_block: &str) -> Pin {
    let k = PinKey::Tdes(tdes(key));
    let b = PinBlock::from_bytes(&hex::decode(hex_block).unwrap()).unwrap();
    decrypt_pin(&k, format, &b, PAN).unwrap()
}

fn ca(block: String, source: u8, destination: u8) -> PinTranslate {
    PinTranslate {
        source_key: under(KeyType::TPK, TPK),
        destination_zpk: under(KeyType::ZPK, ZPK),
        max_pin_len: 12,
        pin_block: Sensitive(block),
        source_format: source,
        destination_format: destination,
        account: account(),
    }
}

fn translated(r: &Response) -> (u8, String, u8) {
    assert_eq!(r.error, ErrorCode::NoError, "{r:?}");
    match &r.body {
        ResponseBody::PinTranslated {
            pin_len,
            pin_block,
            format,
        } => (*pin_len, pin_block.as_str().to_string(), *format),
        other => panic!("not a PIN answer: {other:?}"),
    }
}

#[test]
fn ca_gives_the_same_pin_under_the_zpk() {
    let h = hsm();
    for (code, format) in [(1, PinBlockFormat::Iso0), (47, PinBlockFormat::Iso3)] {
        for (dcode, dformat) in [(1, PinBlockFormat::Iso0), (5, PinBlockFormat::Iso1)] {
            let req = Request::Ca(ca(block_under(TPK, format, "24680"), code, dcode));
            let r = h.handle(&req, &random(1));
            assert_eq!(&r.code, b"CB");
            let (len, block, f) = translated(&r);
            assert_eq!((len, f), (5, dcode));
            let pin = pin_under(ZPK, dformat, &block);
            assert!(pin.ct_eq(&Pin::new("24680").unwrap()));
        }
    }
}

#[test]
fn ca_errors_are_payshields() {
    let h = hsm();
    let good = block_under(TPK, PinBlockFormat::Iso0, "1234");
    let mut c = ca(good.clone(), 2, 1);
    assert_eq!(
        h.handle(&Request::Ca(c.clone()), &random(0)).error,
        ErrorCode::InvalidPinBlockFormat
    );
    c.source_format = 1;
    c.max_pin_len = 4;
    c.pin_block = Sensitive(block_under(TPK, PinBlockFormat::Iso0, "12345"));
    assert_eq!(
        h.handle(&Request::Ca(c.clone()), &random(0)).error,
        ErrorCode::PinLength
    );
    // A block under another key reads as garbage: 20, never another PIN.
    c.max_pin_len = 12;
    c.pin_block = Sensitive(block_under(ZPK, PinBlockFormat::Iso0, "1234"));
    assert_eq!(
        h.handle(&Request::Ca(c.clone()), &random(0)).error,
        ErrorCode::PinBlockData
    );
    // Keys under the wrong LMK pair fail parity: source 10, destination 11.
    c.pin_block = Sensitive(good);
    c.source_key = under(KeyType::ZPK, TPK);
    assert_eq!(
        h.handle(&Request::Ca(c.clone()), &random(0)).error,
        ErrorCode::SourceKeyParity
    );
    c.source_key = under(KeyType::TPK, TPK);
    c.destination_zpk = under(KeyType::TPK, ZPK);
    let r = h.handle(&Request::Ca(c), &random(0));
    assert_eq!(r.error, ErrorCode::DestinationKeyParity);
    assert_eq!(r.body, ResponseBody::Empty);
}

#[test]
fn cc_translates_zpk_to_zpk() {
    let mut c = ca(block_under(ZPK2, PinBlockFormat::Iso0, "9876"), 1, 47);
    c.source_key = under(KeyType::ZPK, ZPK2);
    let r = hsm().handle(&Request::Cc(c), &random(2));
    assert_eq!(&r.code, b"CD");
    let (_, block, _) = translated(&r);
    assert!(pin_under(ZPK, PinBlockFormat::Iso3, &block).ct_eq(&Pin::new("9876").unwrap()));
}

#[test]
fn g0_translates_the_x924_dukpt_block() {
    let req = Request::G0(DukptTranslate {
        bdk: under(KeyType::BDK, "0123456789ABCDEFFEDCBA9876543210"),
        zpk: under(KeyType::ZPK, ZPK),
        ksn_descriptor: "A05".into(),
        ksn: "FFFF9876543210E00001".into(),
        pin_block: s("1B9C1845EB993A7A"),
        source_format: 1,
        destination_format: 1,
        account: account(),
    });
    let r = hsm().handle(&req, &random(3));
    assert_eq!(&r.code, b"G1");
    let (len, block, _) = translated(&r);
    assert_eq!(len, 4);
    assert!(pin_under(ZPK, PinBlockFormat::Iso0, &block).ct_eq(&Pin::new("1234").unwrap()));
}

fn mac_command(key: KeyCryptogram, key_type: &str, mac: Option<String>) -> MacCommand {
    MacCommand {
        mode: 0,
        input_format: 0,
        algorithm: 3,
        padding: 1,
        key_type: key_type.into(),
        key,
        iv: None,
        message: Sensitive(b"0200 a message as sent".to_vec()),
        mac,
    }
}

#[test]
fn m6_and_m8_agree_with_the_retail_mac() {
    let h = hsm();
    let want = mac::alg3(&tdes(TPK), b"0200 a message as sent", Padding::Method1).unwrap();
    let want = hex::encode_upper(want);
    for (t, code) in [(KeyType::TAK, "003"), (KeyType::ZAK, "008")] {
        let r = h.handle(
            &Request::M6(mac_command(under(t, TPK), code, None)),
            &random(0),
        );
        assert_eq!(
            (&r.code, &r.body),
            (b"M7", &ResponseBody::Mac(want.clone()))
        );
        let ok = mac_command(under(t, TPK), code, Some(want.clone()));
        assert_eq!(
            h.handle(&Request::M8(ok), &random(0)).error,
            ErrorCode::NoError
        );
        let bad = mac_command(under(t, TPK), code, Some("0000000000000000".into()));
        let r = h.handle(&Request::M8(bad), &random(0));
        assert_eq!((&r.code, r.error), (b"M9", ErrorCode::VerificationFailure));
    }
    let wrong_type = mac_command(under(KeyType::TAK, TPK), "001", None);
    assert_eq!(
        h.handle(&Request::M6(wrong_type), &random(0)).error,
        ErrorCode::InvalidKeyTypeCode
    );
    let single = Lmk::test()
        .encrypt(KeyType::TAK, &tdes("0123456789ABCDEF"), KeyScheme::Z)
        .unwrap();
    let r = h.handle(&Request::M6(mac_command(single, "003", None)), &random(0));
    assert_eq!(r.error, ErrorCode::KeyLength);
}

#[test]
fn m6_in_pieces_gives_the_whole_messages_mac() {
    let msg = b"a message longer than one block, MACed in three pieces".to_vec();
    for (algorithm, key) in [(3u8, TPK), (1, TPK), (1, "0123456789ABCDEF")] {
        let scheme = if key.len() == 16 {
            KeyScheme::Z
        } else {
            KeyScheme::U
        };
        let tak = Lmk::test()
            .encrypt(KeyType::TAK, &tdes(key), scheme)
            .unwrap();
        let want = if algorithm == 3 {
            mac::alg3(&tdes(key), &msg, Padding::Method2).unwrap()
        } else {
            mac::alg1(&tdes(key), &msg, Padding::Method2).unwrap()
        };
        let mut iv: Option<String> = None;
        let pieces: [(u8, &[u8]); 3] = [(1, &msg[..16]), (2, &msg[16..40]), (3, &msg[40..])];
        for (mode, part) in pieces {
            let mut c = mac_command(tak.clone(), "003", None);
            c.mode = mode;
            c.algorithm = algorithm;
            c.padding = 2;
            c.iv = iv.take().filter(|_| mode >= 2);
            c.message = Sensitive(part.to_vec());
            let r = hsm().handle(&Request::M6(c), &random(0));
            let ResponseBody::Mac(out) = r.body else {
                panic!("{r:?}");
            };
            iv = Some(out);
        }
        assert_eq!(
            iv.unwrap(),
            hex::encode_upper(want),
            "algorithm {algorithm}"
        );
    }
    // A first or middle piece must be whole blocks: 80.
    let mut c = mac_command(under(KeyType::TAK, TPK), "003", None);
    c.mode = 1;
    assert_eq!(
        hsm().handle(&Request::M6(c), &random(0)).error,
        ErrorCode::DataLength
    );
}

#[test]
fn kq_verifies_the_arqc_and_makes_the_arpc() {
    let imk = tdes(TPK);
    let pan = "5413330089020011";
    let data = b"transaction data the card covered".to_vec();
    let (atc, un) = ([0x00, 0x2A], [1, 2, 3, 4]);
    let mk = emv::icc_master_key(&imk, pan, 1).unwrap();
    let block = emv::pan_psn_block(pan, 1).unwrap();
    for scheme in [0u8, 1] {
        let (key, padding) = if scheme == 0 {
            (mk.clone(), Padding::Method1)
        } else {
            let sk = emv::session_key(&mk, emv::r_mchip(atc, un)).unwrap();
            (sk, Padding::Method2)
        };
        let arqc = emv::arqc(&key, &data, padding).unwrap();
        let mut c = ArqcCommand {
            mode: 1,
            scheme,
            mk_ac: under(KeyType::MK_AC, TPK),
            pan_psn: Sensitive(block.to_vec()),
            atc,
            un,
            data: Some(Sensitive(data.clone())),
            arqc,
            arc: Some(*b"00"),
        };
        let r = hsm().handle(&Request::Kq(c.clone()), &random(0));
        let arpc = emv::arpc_method1(&key, &arqc, *b"00").unwrap();
        assert_eq!(
            (&r.code, r.body),
            (b"KR", ResponseBody::Arpc(arpc)),
            "scheme {scheme}"
        );
        c.arqc[7] ^= 1;
        let r = hsm().handle(&Request::Kq(c), &random(0));
        assert_eq!(r.error, ErrorCode::VerificationFailure);
    }
}

#[test]
fn cw_and_cy_give_the_published_cvv() {
    let h = hsm();
    let mut c = CvvCommand {
        cvk: under(KeyType::CVK, TPK),
        cvv: None,
        pan: s("4123456789012345"),
        expiry: s("8701"),
        service_code: "101".into(),
    };
    let want = cvv::cvv(&tdes(TPK), "4123456789012345", "8701", "101").unwrap();
    assert_eq!(want.expose(), b"561");
    let r = h.handle(&Request::Cw(c.clone()), &random(0));
    assert_eq!((&r.code, r.body), (b"CX", ResponseBody::Cvv(s("561"))));
    c.cvv = Some(s("561"));
    assert_eq!(
        h.handle(&Request::Cy(c.clone()), &random(0)).error,
        ErrorCode::NoError
    );
    c.cvv = Some(s("562"));
    let r = h.handle(&Request::Cy(c), &random(0));
    assert_eq!((&r.code, r.error), (b"CZ", ErrorCode::VerificationFailure));
}

#[test]
fn a0_generates_under_lmk_and_zmk_bu_and_a6_agree() {
    let h = hsm();
    let zmk = under(KeyType::ZMK, ZPK2);
    let req = Request::A0(GenerateKey {
        mode: 1,
        key_type: "001".into(),
        lmk_scheme: KeyScheme::U,
        zmk: Some((zmk.clone(), KeyScheme::X)),
    });
    let r = h.handle(&req, &random(9));
    let ResponseBody::GeneratedKey {
        lmk,
        zmk: Some(under_zmk),
        kcv,
    } = r.body
    else {
        panic!("{r:?}");
    };
    let clear = Lmk::test().decrypt(KeyType::ZPK, &lmk).unwrap();
    assert_eq!(clear.kcv_hex(), kcv);
    let exported = lmk::unwrap(&tdes(ZPK2), &under_zmk).unwrap();
    assert_eq!(exported.as_bytes(), clear.as_bytes());

    let bu = |flag: u8| {
        Request::Bu(KeyCheck {
            key_type_code: "01".into(),
            length_flag: flag,
            key: lmk.clone(),
            key_type: None,
        })
    };
    assert_eq!(
        h.handle(&bu(1), &random(0)).body,
        ResponseBody::Kcv(kcv.clone())
    );
    assert_eq!(
        h.handle(&bu(0), &random(0)).error,
        ErrorCode::InvalidKeyLengthFlag
    );

    let import = |key: KeyCryptogram| {
        Request::A6(ImportKey {
            key_type: "001".into(),
            zmk: zmk.clone(),
            key,
            lmk_scheme: KeyScheme::U,
        })
    };
    let r = h.handle(&import(under_zmk), &random(0));
    assert_eq!(r.error, ErrorCode::NoError);
    let ResponseBody::ImportedKey {
        lmk: again,
        kcv: kcv2,
    } = r.body
    else {
        panic!("{r:?}");
    };
    assert_eq!((again, kcv2), (lmk, kcv));
    // A key of even parity is imported with the advice 01.
    let even = TdesKey::from_bytes(&[0u8; 16]).unwrap();
    let wrapped = lmk::wrap(&tdes(ZPK2), &even, KeyScheme::X).unwrap();
    let r = h.handle(&import(wrapped), &random(0));
    assert_eq!(r.error, ErrorCode::VerificationFailure);
    assert!(matches!(r.body, ResponseBody::ImportedKey { .. }));
}

#[test]
fn nc_reports_the_lmk_check_and_firmware() {
    let r = hsm().handle(&Request::Nc, &random(0));
    let mut out = Vec::new();
    r.encode(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text, format!("ND00{}{FIRMWARE}", Lmk::test().check_value()));
}

#[test]
fn answers_never_show_keys_or_pins_in_debug() {
    let req = Request::Ca(ca(block_under(TPK, PinBlockFormat::Iso0, "1234"), 1, 1));
    let r = hsm().handle(&req, &random(1));
    let (_, block, _) = translated(&r);
    let shown = format!("{r:?} {req:?} {:?}", hsm());
    assert!(!shown.contains(&block));
    assert!(!shown.contains(TPK) && !shown.contains("0123456789ABCDEF"));
}

/// One valid request of each command, to mutate.
fn seeds() -> Vec<Request> {
    let zmk = under(KeyType::ZMK, ZPK2);
    let mac = mac_command(under(KeyType::TAK, TPK), "003", None);
    let cvv = CvvCommand {
        cvk: under(KeyType::CVK, TPK),
        cvv: Some(s("561")),
        pan: s("4123456789012345"),
        expiry: s("8701"),
        service_code: "101".into(),
    };
    let generated = GenerateKey {
        mode: 1,
        key_type: "001".into(),
        lmk_scheme: KeyScheme::U,
        zmk: Some((zmk.clone(), KeyScheme::X)),
    };
    vec![
        Request::Ca(ca(block_under(TPK, PinBlockFormat::Iso0, "1234"), 1, 47)),
        Request::G0(DukptTranslate {
            bdk: under(KeyType::BDK, TPK),
            zpk: under(KeyType::ZPK, ZPK),
            ksn_descriptor: "A05".into(),
            ksn: "FFFF9876543210E00001".into(),
            pin_block: s("1B9C1845EB993A7A"),
            source_format: 1,
            destination_format: 5,
            account: account(),
        }),
        Request::M6(mac.clone()),
        Request::M8(MacCommand {
            mac: Some("0011223344556677".into()),
            ..mac
        }),
        Request::Kq(ArqcCommand {
            mode: 1,
            scheme: 1,
            mk_ac: under(KeyType::MK_AC, TPK),
            pan_psn: Sensitive(emv::pan_psn_block(PAN, 0).unwrap().to_vec()),
            atc: [0, 1],
            un: [9, 8, 7, 6],
            data: Some(Sensitive(vec![0x5A; 29])),
            arqc: [1; 8],
            arc: Some(*b"00"),
        }),
        Request::Cy(cvv),
        Request::A0(generated),
        Request::Bu(KeyCheck {
            key_type_code: "FF".into(),
            length_flag: 1,
            key: zmk.clone(),
            key_type: Some("000".into()),
        }),
        Request::A6(ImportKey {
            key_type: "001".into(),
            zmk: zmk.clone(),
            key: lmk::wrap(&tdes(ZPK2), &tdes(ZPK), KeyScheme::X).unwrap(),
            lmk_scheme: KeyScheme::U,
        }),
        Request::Nc,
    ]
}

mod mutated {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Any request the codec lets through gets an answer that encodes
        /// and decodes again: the dispatcher neither panics nor makes a
        /// response the client could not read.
        #[test]
        fn every_decodable_request_gets_a_readable_answer(
            which in 0usize..10,
            edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..4),
            seed in any::<u8>(),
        ) {
            let mut bytes = Vec::new();
            seeds()[which].encode(&mut bytes).unwrap();
            for (at, b) in edits {
                let i = usize::from(at) % bytes.len();
                // Mostly printable: hex digits and scheme letters reach
                // further into the dispatcher than arbitrary bytes.
                bytes[i] = if b % 2 == 0 { b"0123456789ABCDEFUTXYZ"[usize::from(b) % 21] } else { b };
            }
            if let Ok(req) = Request::decode(&bytes) {
                let r = hsm().handle(&req, &random(seed));
                let mut out = Vec::new();
                r.encode(&mut out).unwrap();
                prop_assert_eq!(Response::decode(&out).unwrap(), r);
            }
        }
    }
}

#[test]
fn untagged_answers_are_single_length_only() {
    let mut all = seeds();
    let Request::A6(mut import) = all.remove(8) else {
        panic!("seed order")
    };
    let Request::A0(mut generate) = all.remove(6) else {
        panic!("seed order")
    };
    import.lmk_scheme = KeyScheme::Untagged;
    generate.zmk = generate.zmk.map(|(k, _)| (k, KeyScheme::Untagged));
    for req in [Request::A6(import), Request::A0(generate)] {
        let r = hsm().handle(&req, &random(0));
        let mut out = Vec::new();
        r.encode(&mut out).unwrap();
        assert_eq!(Response::decode(&out).unwrap(), r);
        assert_eq!(r.error, ErrorCode::KeyLength, "{req:?}");
    }
}
