//! What the switch asks its HSM, request by request.

use super::*;
use crate::hsm::command::KeyScheme;
use crate::message::Mti;

fn key(c: char) -> KeyCryptogram {
    KeyCryptogram::new(KeyScheme::U, &c.to_string().repeat(32))
}

fn mac_key() -> MacKey {
    MacKey {
        key: key('A'),
        zone: false,
    }
}

fn zones(from: PinKey) -> (AcquirerKeys, IssuerKeys) {
    (
        AcquirerKeys {
            pin: Some((from, 1)),
            mac: None,
            cvv2_field: None,
        },
        IssuerKeys {
            pin: Some((key('B'), 47)),
            ..Default::default()
        },
    )
}

/// A request parsed from its frame, as the node hands it over.
fn received(spec: &Spec, fields: &[(u16, &[u8])]) -> Message {
    let version = spec.version.digit();
    let mut m = Message::new(Mti::from_digits([b'0' + version, b'2', b'0', b'0']).unwrap());
    for (n, v) in fields {
        m.set(*n, Bytes::copy_from_slice(v)).unwrap();
    }
    spec.parse(&spec.build(&m).unwrap()).unwrap()
}

const PAN: &[u8] = b"4012345678909";
const BLOCK: &[u8] = &[1, 2, 3, 4, 5, 6, 7, 8];

#[test]
fn the_account_number_is_the_twelve_digits_before_the_check_digit() {
    assert_eq!(&account_number(PAN).unwrap(), b"401234567890");
    assert_eq!(
        &account_number(b"5413330089600010").unwrap(),
        b"333008960001"
    );
    assert_eq!(account_number(b"401234567890"), None, "too short");
    assert_eq!(account_number(b"40123456789A9"), None);
}

#[test]
fn without_keys_nothing_is_asked_and_de52_passes() {
    let spec = Spec::resolve("iso87-ascii").unwrap();
    let r = received(&spec, &[(2, PAN), (3, b"000000"), (52, BLOCK)]);
    let ops = inbound_ops(&AcquirerKeys::default(), &IssuerKeys::default(), &spec, &r);
    assert_eq!(ops, Ok(vec![]));
}

#[test]
fn a_mac_is_verified_over_the_frame_before_it() {
    let spec = Spec::resolve("iso87-ascii").unwrap();
    let mac = [9u8, 8, 7, 6, 5, 4, 3, 2];
    let r = received(&spec, &[(2, PAN), (3, b"000000"), (64, &mac)]);
    let acq = AcquirerKeys {
        pin: None,
        mac: Some(mac_key()),
        cvv2_field: None,
    };
    let ops = inbound_ops(&acq, &IssuerKeys::default(), &spec, &r).unwrap();
    let frame = r.frame_as_received().unwrap();
    assert_eq!(
        ops,
        vec![HsmOp::VerifyMac {
            key: mac_key(),
            data: frame.slice(..frame.len() - 16),
            mac,
        }]
    );
    // Missing, or the message changed since it was received: refused.
    let bare = received(&spec, &[(2, PAN), (3, b"000000")]);
    let refused = inbound_ops(&acq, &IssuerKeys::default(), &spec, &bare);
    assert_eq!(refused, Err(Outcome::SecurityViolation));
    let mut changed = r.clone();
    changed.set(3, "010000").unwrap();
    let refused = inbound_ops(&acq, &IssuerKeys::default(), &spec, &changed);
    assert_eq!(refused, Err(Outcome::SecurityViolation));
}

#[test]
fn a_pin_block_is_translated_between_the_zones() {
    let spec = Spec::resolve("iso87-ascii").unwrap();
    let r = received(&spec, &[(2, PAN), (3, b"000000"), (52, BLOCK)]);
    let (acq, iss) = zones(PinKey::Tpk(key('C')));
    let ops = inbound_ops(&acq, &iss, &spec, &r).unwrap();
    assert_eq!(
        ops,
        vec![HsmOp::TranslatePin {
            from: PinKey::Tpk(key('C')),
            ksn: None,
            to: key('B'),
            block: PinBlock(BLOCK.try_into().unwrap()),
            from_format: 1,
            to_format: 47,
            account: *b"401234567890",
        }]
    );
    // One side without a zone: not forwarded with a block the issuer
    // cannot read.
    let one_sided = IssuerKeys::default();
    assert_eq!(
        inbound_ops(&acq, &one_sided, &spec, &r),
        Err(Outcome::SystemMalfunction)
    );
    let no_pan = received(&spec, &[(3, b"000000"), (52, BLOCK)]);
    assert_eq!(
        inbound_ops(&acq, &iss, &spec, &no_pan),
        Err(Outcome::FormatError)
    );
}

#[test]
fn a_dukpt_block_needs_its_ksn_raw_or_hex() {
    let ksn = [0xFF, 0xFF, 0x98, 0x76, 0x54, 0x32, 0x10, 0xE0, 0x00, 0x01];
    let (acq, iss) = zones(PinKey::Dukpt {
        bdk: key('D'),
        ksn_field: 53,
    });
    let binary = Spec::resolve("iso93-ascii").unwrap();
    let r = received(
        &binary,
        &[(2, PAN), (3, b"000000"), (52, BLOCK), (53, &ksn)],
    );
    let ops = inbound_ops(&acq, &iss, &binary, &r).unwrap();
    assert!(matches!(&ops[0], HsmOp::TranslatePin { ksn: Some(k), .. } if *k == ksn));
    let (acq62, _) = zones(PinKey::Dukpt {
        bdk: key('D'),
        ksn_field: 62,
    });
    let text = Spec::resolve("iso87-ascii").unwrap();
    let hex_ksn = hex::encode_upper(ksn);
    let r = received(
        &text,
        &[
            (2, PAN),
            (3, b"000000"),
            (52, BLOCK),
            (62, hex_ksn.as_bytes()),
        ],
    );
    let ops = inbound_ops(&acq62, &iss, &text, &r).unwrap();
    assert!(matches!(&ops[0], HsmOp::TranslatePin { ksn: Some(k), .. } if *k == ksn));
    let r = received(
        &text,
        &[(2, PAN), (3, b"000000"), (52, BLOCK), (62, b"FFFF")],
    );
    assert_eq!(
        inbound_ops(&acq62, &iss, &text, &r),
        Err(Outcome::FormatError)
    );
}

#[test]
fn the_translated_block_replaces_de52_and_a_failure_declines() {
    let spec = Spec::resolve("iso87-ascii").unwrap();
    let mut m = received(&spec, &[(2, PAN), (52, BLOCK)]);
    let new = [0xAAu8; 8];
    let ok = vec![
        Ok(HsmReply::Verified),
        Ok(HsmReply::PinBlock(PinBlock(new))),
    ];
    assert_eq!(apply_inbound(ok, &mut m), Ok(()));
    assert_eq!(m.value(52), Some(&new[..]));
    let failed = vec![Ok(HsmReply::Verified), Err(Outcome::IncorrectPin)];
    assert_eq!(apply_inbound(failed, &mut m), Err(Outcome::IncorrectPin));
    assert_eq!(format!("{:?}", PinBlock(new)), "PinBlock(..)");
}
