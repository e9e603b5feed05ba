//! Key exchange with an issuer: the HSM's new key sent under the zone
//! master key, used once the issuer approves; the old key kept, and the
//! alarm raised, on any failure.

use bytes::Bytes;

use super::tests::*;
use super::*;
use crate::hsm::command::{KeyCryptogram, KeyScheme};
use crate::switch::security::{HsmOp, HsmReply, PinKey};

fn key(c: char) -> KeyCryptogram {
    KeyCryptogram::new(KeyScheme::U, &c.to_string().repeat(32))
}

/// An issuer with a ZPK (key '2'), a ZMK and a daily schedule.
fn exchanging() -> Core {
    let mut cfg = config(false, None);
    cfg.acquirers[0].keys.pin = Some((PinKey::Tpk(key('1')), 1));
    cfg.issuers[0].keys.pin = Some((key('2'), 1));
    cfg.issuers[0].keys.zmk = Some(key('9'));
    cfg.issuers[0].keys.exchange_every = Some(Duration::from_secs(86_400));
    Core::new(cfg)
}

fn ask(actions: &[Action]) -> (Token, Vec<HsmOp>) {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Ask {
                token,
                question: Question::Hsm(ops),
            } => Some((*token, ops.clone())),
            _ => None,
        })
        .expect("an HSM question")
}

/// Exchanges once: the 0800 the issuer got.
fn exchange(core: &mut Core, now: Time) -> Message {
    core.handle(now, Input::ExchangeKeys { issuer: 0 });
    let (token, ops) = ask(&drain(core));
    assert_eq!(
        ops,
        vec![HsmOp::GenerateKey {
            zmk: key('9'),
            key_type: "001"
        }]
    );
    let results = vec![Ok(HsmReply::NewKey {
        lmk: key('7'),
        zmk: key('8'),
        kcv: "ABC123".into(),
    })];
    core.handle(now, Input::HsmAnswer { token, results });
    sent_to_issuer(&drain(core)).expect("the 0800 sent")
}

/// The key the next PIN block is translated to.
fn zpk_in_use(core: &mut Core, now: Time, stan: &str) -> KeyCryptogram {
    let mut m = auth();
    m.set_str(11, stan).expect("DE11");
    m.set(52, Bytes::from_static(&[1, 2, 3, 4, 5, 6, 7, 8]))
        .expect("DE52");
    core.handle(now, request(3, m));
    match &ask(&drain(core)).1[..] {
        [HsmOp::TranslatePin { to, .. }] => to.clone(),
        other => panic!("a translation: {other:?}"),
    }
}

#[test]
fn the_new_key_is_used_once_the_issuer_approves_it() {
    let now = start();
    let mut core = exchanging();
    let sent = exchange(&mut core, now);
    assert_eq!(sent.get_str(70), Some("161"));
    assert_eq!(
        sent.get_str(48),
        Some(format!("001{}ABC123", key('8').to_field()).as_str())
    );
    assert_eq!(
        zpk_in_use(&mut core, now, "000100"),
        key('2'),
        "switched before the answer"
    );
    let mut ok = answer(&sent, Some("00"));
    ok.set_str(48, "ABC123").expect("DE48");
    core.handle(now, from_issuer(ok));
    drain(&mut core);
    assert_eq!(core.counters().key_exchanges, 1);
    assert_eq!(zpk_in_use(&mut core, now, "000101"), key('7'));
    assert_eq!(core.key_exchange_failing(), 0);
}

#[test]
fn a_refused_or_unanswered_exchange_keeps_the_old_key_and_raises_the_alarm() {
    for case in ["refused", "other check value", "no answer", "hsm"] {
        let now = start();
        let mut core = exchanging();
        if case == "hsm" {
            core.handle(now, Input::ExchangeKeys { issuer: 0 });
            let (token, _) = ask(&drain(&mut core));
            let results = vec![Err(
                crate::message::response_codes::Outcome::SystemMalfunction,
            )];
            core.handle(now, Input::HsmAnswer { token, results });
        } else {
            let sent = exchange(&mut core, now);
            match case {
                "refused" => core.handle(now, from_issuer(answer(&sent, Some("12")))),
                "other check value" => {
                    let mut a = answer(&sent, Some("00"));
                    a.set_str(48, "FFFFFF").expect("DE48");
                    core.handle(now, from_issuer(a));
                }
                _ => {
                    let later = now.after(Duration::from_secs(11));
                    core.handle(later, Input::Timer(TimerId::KeyExchangeAnswer(0)));
                    // A late approval changes nothing.
                    core.handle(later, from_issuer(answer(&sent, Some("00"))));
                }
            }
        }
        drain(&mut core);
        assert_eq!(core.counters().key_exchanges_failed, 1, "{case}");
        assert_eq!(core.key_exchange_failing(), 1, "{case}");
        assert_eq!(zpk_in_use(&mut core, now, "000102"), key('2'), "{case}");
    }
}

#[test]
fn the_schedule_starts_with_the_link() {
    let now = start();
    let mut core = exchanging();
    core.handle(
        now,
        Input::IssuerUp {
            issuer: 0,
            up: true,
        },
    );
    let armed = drain(&mut core).into_iter().any(|a| {
        matches!(a, Action::Arm { timer: TimerId::KeyExchange(0), at }
            if at == now.mono + Duration::from_secs(86_400))
    });
    assert!(armed, "the daily exchange armed");
    let due = now.after(Duration::from_secs(86_400));
    core.handle(due, Input::Timer(TimerId::KeyExchange(0)));
    let actions = drain(&mut core);
    assert!(matches!(&ask(&actions).1[..], [HsmOp::GenerateKey { .. }]));
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Arm {
            timer: TimerId::KeyExchange(0),
            ..
        }
    )));
}

/// The issuer's 0800 bringing `key` (under the ZMK) of type `key_type`
/// with check value `kcv`.
fn issuer_sends(core: &mut Core, now: Time, key_type: &str, kcv: &str) -> Vec<Action> {
    let mut m = crate::message::netmgmt::request(0, "161", 4242, now.wall);
    let de48 = format!("{key_type}{}{kcv}", key('5').to_field());
    m.set_str(48, &de48).expect("DE48");
    let input = Input::IssuerRequest {
        issuer: 0,
        id: PeerRequest(7),
        message: Box::new(m),
    };
    core.handle(now, input);
    drain(core)
}

/// The switch's answer to the issuer's request 7: DE39 and DE48.
fn answer_to_issuer(actions: &[Action]) -> (String, Option<String>) {
    let m = actions
        .iter()
        .find_map(|a| match a {
            Action::AnswerIssuer {
                issuer: 0,
                id: PeerRequest(7),
                frame,
            } => Some(read_reply(frame)),
            _ => None,
        })
        .expect("an answer to the issuer");
    assert_eq!(m.mti().to_string(), "0810");
    assert_eq!(m.get_str(11), Some("004242"));
    let de39 = m.get_str(39).expect("DE39").to_string();
    (de39, m.get_str(48).map(str::to_string))
}

#[test]
fn a_key_the_issuer_sends_is_imported_and_used_when_its_check_value_holds() {
    let now = start();
    let mut core = exchanging();
    let (token, ops) = ask(&issuer_sends(&mut core, now, "001", "abc123"));
    assert_eq!(
        ops,
        vec![HsmOp::ImportKey {
            zmk: key('9'),
            key_type: "001",
            key: key('5'),
        }]
    );
    let results = vec![Ok(HsmReply::ImportedKey {
        lmk: key('6'),
        kcv: "ABC1230000000000".into(),
    })];
    core.handle(now, Input::HsmAnswer { token, results });
    let answer = answer_to_issuer(&drain(&mut core));
    assert_eq!(answer, ("00".into(), Some("ABC123".into())));
    assert_eq!(core.counters().key_exchanges, 1);
    assert_eq!(zpk_in_use(&mut core, now, "000103"), key('6'));
}

#[test]
fn a_key_the_issuer_sends_that_does_not_check_keeps_the_old_key() {
    for case in [
        "other check value",
        "hsm",
        "not a key",
        "other key type",
        "no zmk",
    ] {
        let now = start();
        let mut core = exchanging();
        if case == "no zmk" {
            core.cfg.issuers[0].keys.zmk = None;
        }
        let (key_type, kcv) = match case {
            "not a key" => ("001", "ABC12"),
            "other key type" => ("008", "ABC123"),
            _ => ("001", "ABC123"),
        };
        let actions = issuer_sends(&mut core, now, key_type, kcv);
        let actions = if let ["other check value" | "hsm"] = [case] {
            let (token, _) = ask(&actions);
            let results = vec![if case == "hsm" {
                Err(crate::message::response_codes::Outcome::SystemMalfunction)
            } else {
                Ok(HsmReply::ImportedKey {
                    lmk: key('6'),
                    kcv: "FFFFFF".into(),
                })
            }];
            core.handle(now, Input::HsmAnswer { token, results });
            drain(&mut core)
        } else {
            actions
        };
        let expected = match case {
            "not a key" => "30",
            "other key type" | "no zmk" => "12",
            _ => "96",
        };
        assert_eq!(
            answer_to_issuer(&actions),
            (expected.into(), None),
            "{case}"
        );
        let alarm = usize::from(expected == "96");
        assert_eq!(core.key_exchange_failing(), alarm, "{case}");
        assert_eq!(core.counters().key_exchanges, 0, "{case}");
        assert_eq!(zpk_in_use(&mut core, now, "000104"), key('2'), "{case}");
    }
}
