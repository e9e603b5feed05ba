//! Stand-in for chip cards: approved only once the HSM verified the ARQC,
//! the ARPC in the reply's DE55; refused without a key to check with.

use bytes::Bytes;

use super::tests::*;
use super::*;
use crate::hsm::command::{KeyCryptogram, KeyScheme};
use crate::message::response_codes::Outcome;
use crate::message::tlv;
use crate::switch::chip::{ChipKey, ChipScheme};
use crate::switch::security::{HsmOp, HsmReply};
use crate::switch::standin::StandInRules;

fn chip_auth() -> Message {
    let mut m = auth();
    m.set(55, crate::switch::chip::sample_chip_data())
        .expect("DE55");
    m
}

/// A core without a journal whose issuer stands in, with an MK-AC if
/// `keyed`.
pub(super) fn standing_in(keyed: bool) -> Core {
    let rules = StandInRules {
        per_transaction_max: 20_000,
        per_card_daily_count: 5,
        per_card_daily_amount: 50_000,
    };
    let mut cfg = config(
        false,
        Some(crate::switch::standin::StandIn::new(rules, 100, 7)),
    );
    if keyed {
        cfg.issuers[0].keys.chip = Some(ChipKey {
            key: KeyCryptogram::new(KeyScheme::U, &"5".repeat(32)),
            scheme: ChipScheme::Mchip,
        });
    }
    Core::new(cfg)
}

/// Sends `request`, lets its answer time out; the actions after.
pub(super) fn timed_out_request(core: &mut Core, now: Time, request_in: Message) -> Vec<Action> {
    core.handle(now, request(1, request_in));
    drain(core);
    let due = now.after(Duration::from_secs(5));
    core.handle(due, Input::Timer(TimerId::Response(TxnId(1))));
    drain(core)
}

#[test]
fn a_chip_card_is_stood_in_once_its_arqc_verifies() {
    let now = start();
    let mut core = standing_in(true);
    let actions = timed_out_request(&mut core, now, chip_auth());
    assert!(
        reply(&actions).is_none(),
        "approved before the ARQC was checked"
    );
    let (token, ops) = actions
        .iter()
        .find_map(|a| match a {
            Action::Ask {
                token,
                question: Question::Hsm(ops),
            } => Some((*token, ops.clone())),
            _ => None,
        })
        .expect("the ARQC asked about");
    let [
        HsmOp::VerifyArqc {
            cryptogram, arc, ..
        },
    ] = &ops[..]
    else {
        panic!("one ARQC: {ops:?}");
    };
    assert_eq!((cryptogram.arqc, *arc), ([1, 2, 3, 4, 5, 6, 7, 8], *b"00"));
    let results = vec![Ok(HsmReply::Arpc([0xEE; 8]))];
    core.handle(now, Input::HsmAnswer { token, results });
    let (approved, _) = reply(&drain(&mut core)).expect("stood in");
    assert_eq!(approved.get_str(39), Some("00"));
    let de55 = approved.value(55).expect("DE55");
    let objects = tlv::parse(de55).expect("TLV");
    assert_eq!(objects[0].tag, 0x91);
    assert_eq!(objects[0].value[..8], [0xEE; 8]);
}

#[test]
fn a_chip_card_whose_arqc_fails_is_not_honoured() {
    let now = start();
    let mut core = standing_in(true);
    let actions = timed_out_request(&mut core, now, chip_auth());
    let token = actions
        .iter()
        .find_map(|a| match a {
            Action::Ask { token, .. } => Some(*token),
            _ => None,
        })
        .expect("asked");
    let results = vec![Err(Outcome::DoNotHonour)];
    core.handle(now, Input::HsmAnswer { token, results });
    let (declined, _) = reply(&drain(&mut core)).expect("declined");
    assert_eq!(declined.get_str(39), Some("05"));
    assert_eq!(core.counters().stood_in, 0);
}

/// Without an MK-AC, or with DE55 lacking what the check needs, a chip
/// card gets no stand-in (91); a card without chip is stood in as before.
#[test]
fn an_unverifiable_chip_card_gets_no_stand_in() {
    let now = start();
    let mut core = standing_in(false);
    let actions = timed_out_request(&mut core, now, chip_auth());
    assert!(!actions.iter().any(|a| matches!(a, Action::Ask { .. })));
    assert_eq!(reply(&actions).expect("declined").0.get_str(39), Some("91"));
    let mut core = standing_in(true);
    let mut partial = chip_auth();
    let de55 = partial.value(55).expect("DE55").to_vec();
    partial
        .set(55, Bytes::from(de55[..14].to_vec()))
        .expect("DE55");
    let actions = timed_out_request(&mut core, now, partial);
    assert_eq!(reply(&actions).expect("declined").0.get_str(39), Some("91"));
    let mut core = standing_in(false);
    let actions = timed_out_request(&mut core, now, stripe_auth());
    assert_eq!(reply(&actions).expect("stood in").0.get_str(39), Some("00"));
}
