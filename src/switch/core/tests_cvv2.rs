//! Stand-in for cards not present: where the issuer has a CVK, approved
//! only once the HSM verified the CVV2; refused without one to check.

use super::tests::*;
use super::tests_chip::{standing_in, timed_out_request};
use super::*;
use crate::hsm::command::{KeyCryptogram, KeyScheme};
use crate::message::response_codes::Outcome;
use crate::switch::security::{HsmOp, HsmReply};

/// The field the test acquirer carries CVV2s in.
const CVV2_FIELD: u16 = 48;

/// The golden 0100 keyed in: no track or chip data, the expiry and a
/// CVV2 given.
fn keyed_auth(cvv2: Option<&str>) -> Message {
    let mut m = stripe_auth();
    m.remove(35);
    m.remove(45);
    m.set_str(14, "2812").expect("DE14");
    if let Some(c) = cvv2 {
        m.set_str(CVV2_FIELD, c).expect("CVV2");
    }
    m
}

/// A standing-in core whose issuer has a CVK (if `cvk`) and whose
/// acquirer sends CVV2s in `CVV2_FIELD` (if `field`).
fn checking(cvk: bool, field: bool) -> Core {
    let mut core = standing_in(false);
    if cvk {
        core.cfg.issuers[0].keys.cvv = Some(KeyCryptogram::new(KeyScheme::U, &"6".repeat(32)));
    }
    if field {
        core.cfg.acquirers[0].keys.cvv2_field = Some(CVV2_FIELD);
    }
    core
}

fn asked(actions: &[Action]) -> Option<(Token, Vec<HsmOp>)> {
    actions.iter().find_map(|a| match a {
        Action::Ask {
            token,
            question: Question::Hsm(ops),
        } => Some((*token, ops.clone())),
        _ => None,
    })
}

/// The answer to `request` when the HSM answers its CVV2 check with `result`.
fn stood_in_with(result: Result<HsmReply, Outcome>) -> (String, u64) {
    let now = start();
    let mut core = checking(true, true);
    let actions = timed_out_request(&mut core, now, keyed_auth(Some("123")));
    assert!(
        reply(&actions).is_none(),
        "answered before the CVV2 was checked"
    );
    let (token, ops) = asked(&actions).expect("the CVV2 asked about");
    let [HsmOp::VerifyCvv2 { card, .. }] = &ops[..] else {
        panic!("one CVV2 check: {ops:?}");
    };
    assert_eq!((card.cvv2.as_str(), card.expiry.as_str()), ("123", "2812"));
    assert!(!format!("{ops:?}").contains("2812"), "card data in Debug");
    core.handle(
        now,
        Input::HsmAnswer {
            token,
            results: vec![result],
        },
    );
    let (answer, _) = reply(&drain(&mut core)).expect("answered");
    let code = answer.get_str(39).unwrap_or_default().to_string();
    (code, core.counters().stood_in)
}

#[test]
fn a_card_not_present_is_stood_in_once_its_cvv2_verifies() {
    assert_eq!(stood_in_with(Ok(HsmReply::Verified)), ("00".into(), 1));
}

#[test]
fn a_wrong_cvv2_is_not_honoured_and_an_hsm_fault_is_no_stand_in() {
    assert_eq!(stood_in_with(Err(Outcome::DoNotHonour)), ("05".into(), 0));
    assert_eq!(
        stood_in_with(Err(Outcome::SystemMalfunction)),
        ("91".into(), 0)
    );
}

/// Without a CVV2 in the request, or an acquirer that says where it is,
/// there is nothing to check: no stand-in. A card present (its stripe
/// read) or an issuer without a CVK is stood in without the check.
#[test]
fn an_unverifiable_card_not_present_gets_no_stand_in() {
    let now = start();
    for (core, request) in [
        (checking(true, true), keyed_auth(None)),
        (checking(true, false), keyed_auth(Some("123"))),
    ] {
        let mut core = core;
        let actions = timed_out_request(&mut core, now, request);
        assert!(asked(&actions).is_none());
        assert_eq!(reply(&actions).expect("declined").0.get_str(39), Some("91"));
    }
    for (core, request) in [
        (checking(true, true), stripe_auth()),
        (checking(false, true), keyed_auth(Some("123"))),
    ] {
        let mut core = core;
        let actions = timed_out_request(&mut core, now, request);
        assert!(asked(&actions).is_none());
        assert_eq!(reply(&actions).expect("stood in").0.get_str(39), Some("00"));
    }
}
