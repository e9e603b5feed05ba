//! The HSM's part of a request, through the core: checked and translated
//! while its acceptance goes to disk, forwarded only once both are done,
//! declined unsent when the HSM refuses, signed for an issuer with a MAC
//! key.

use bytes::Bytes;

use super::tests::*;
use super::*;
use crate::hsm::command::{KeyCryptogram, KeyScheme};
use crate::message::mac_field::{covered, read_mac};
use crate::message::response_codes::Outcome;
use crate::switch::security::{HsmOp, HsmReply, HsmResult, MacKey, PinBlock, PinKey};

const BLOCK: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
const TRANSLATED: [u8; 8] = [0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7];

fn key(c: char) -> KeyCryptogram {
    KeyCryptogram::new(KeyScheme::U, &c.to_string().repeat(32))
}

/// A journaled core whose acquirer and issuer have PIN zones, and the
/// issuer a MAC key if `sign`.
fn zoned(sign: bool) -> Core {
    let mut cfg = config(true, None);
    cfg.acquirers[0].keys.pin = Some((PinKey::Tpk(key('1')), 1));
    cfg.issuers[0].keys.pin = Some((key('2'), 1));
    if sign {
        cfg.issuers[0].keys.mac = Some(MacKey {
            key: key('3'),
            zone: true,
        });
    }
    Core::new(cfg)
}

fn with_pin() -> Message {
    let mut m = auth();
    m.set(52, Bytes::copy_from_slice(&BLOCK)).expect("DE52");
    m
}

/// The one HSM question in `actions`.
fn hsm_question(actions: &[Action]) -> (Token, Vec<HsmOp>) {
    let asked: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Ask {
                token,
                question: Question::Hsm(ops),
            } => Some((*token, ops.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 1, "one HSM question in {actions:#?}");
    asked.into_iter().next().expect("one")
}

fn translated() -> Vec<HsmResult> {
    vec![Ok(HsmReply::PinBlock(PinBlock(TRANSLATED)))]
}

/// The PIN translated and the acceptance durable: what `accepting` waited for.
fn translated_and_durable(core: &mut Core, now: Time, accepting: &[Action]) {
    let (token, _) = hsm_question(accepting);
    let results = translated();
    core.handle(now, Input::HsmAnswer { token, results });
    let token = durable_token(accepting);
    core.handle(now, Input::Durable { token, ok: true });
}

/// The first frame sent to an issuer in `actions`, as sent.
fn issuer_frame(actions: &[Action]) -> Option<Bytes> {
    actions.iter().find_map(|a| match a {
        Action::ToIssuer { frame, .. } => Some(frame.clone()),
        _ => None,
    })
}

/// Either order of the disk and the HSM: forwarded once, after both,
/// with the translated block.
#[test]
fn forwarded_once_both_the_disk_and_the_hsm_are_done() {
    for hsm_first in [false, true] {
        let now = start();
        let mut core = zoned(false);
        core.handle(now, request(7, with_pin()));
        let accepting = drain(&mut core);
        let durable = durable_token(&accepting);
        let (token, ops) = hsm_question(&accepting);
        assert!(matches!(&ops[..], [HsmOp::TranslatePin { block, .. }] if block.0 == BLOCK));
        assert!(sent_to_issuer(&accepting).is_none());
        let first = if hsm_first {
            Input::HsmAnswer {
                token,
                results: translated(),
            }
        } else {
            Input::Durable {
                token: durable,
                ok: true,
            }
        };
        core.handle(now, first);
        assert!(
            sent_to_issuer(&drain(&mut core)).is_none(),
            "sent after one of two"
        );
        let second = if hsm_first {
            Input::Durable {
                token: durable,
                ok: true,
            }
        } else {
            Input::HsmAnswer {
                token,
                results: translated(),
            }
        };
        core.handle(now, second);
        let sent = sent_to_issuer(&drain(&mut core)).expect("forwarded");
        assert_eq!(sent.value(52), Some(&TRANSLATED[..]));
    }
}

/// A PIN the HSM refuses: 55 to the acquirer, nothing ever sent, also
/// when the acceptance becomes durable afterwards.
#[test]
fn a_refused_pin_is_declined_and_never_sent() {
    let now = start();
    let mut core = zoned(false);
    core.handle(now, request(7, with_pin()));
    let accepting = drain(&mut core);
    let durable = durable_token(&accepting);
    let (token, _) = hsm_question(&accepting);
    let results = vec![Err(Outcome::IncorrectPin)];
    core.handle(now, Input::HsmAnswer { token, results });
    let declined = drain(&mut core);
    let (reply, _) = reply(&declined).expect("declined");
    assert_eq!(reply.get_str(39), Some("55"));
    core.handle(
        now,
        Input::Durable {
            token: durable,
            ok: true,
        },
    );
    let after = drain(&mut core);
    assert!(sent_to_issuer(&declined).is_none() && sent_to_issuer(&after).is_none());
}

/// A request with a PIN block and no zone on the issuer's side is not
/// forwarded with a block the issuer cannot read.
#[test]
fn a_one_sided_zone_declines_without_asking() {
    let now = start();
    let mut cfg = config(true, None);
    cfg.acquirers[0].keys.pin = Some((PinKey::Tpk(key('1')), 1));
    let mut core = Core::new(cfg);
    core.handle(now, request(7, with_pin()));
    let actions = drain(&mut core);
    assert!(!actions.iter().any(|a| matches!(a, Action::Ask { .. })));
    assert_eq!(reply(&actions).expect("declined").0.get_str(39), Some("96"));
}

/// An issuer with a MAC key gets the request signed: the MAC the HSM made
/// over the bytes before DE64 is in the frame sent.
#[test]
fn requests_to_an_issuer_with_a_mac_key_are_signed() {
    let now = start();
    let mut core = zoned(true);
    core.handle(now, request(7, with_pin()));
    let accepting = drain(&mut core);
    translated_and_durable(&mut core, now, &accepting);
    let signing = drain(&mut core);
    assert!(sent_to_issuer(&signing).is_none(), "sent unsigned");
    let (token, ops) = hsm_question(&signing);
    let [HsmOp::GenerateMac { data, .. }] = &ops[..] else {
        panic!("one MAC to make: {ops:?}");
    };
    let mac = [0x5A; 8];
    let results = vec![Ok(HsmReply::Mac(mac))];
    core.handle(now, Input::HsmAnswer { token, results });
    let frame = issuer_frame(&drain(&mut core)).expect("sent once signed");
    let spec = crate::message::Spec::resolve("iso87-ascii").expect("spec");
    assert_eq!(read_mac(&spec, &frame, 64), Some(mac));
    assert_eq!(covered(&spec, &frame, 64), Some(&data[..]));
    assert_eq!(read_reply(&frame).value(52), Some(&TRANSLATED[..]));
}

/// The HSM failing to sign: declined unsent (96).
#[test]
fn a_request_that_cannot_be_signed_is_not_sent() {
    let now = start();
    let mut core = zoned(true);
    core.handle(now, request(7, with_pin()));
    let accepting = drain(&mut core);
    translated_and_durable(&mut core, now, &accepting);
    let (token, _) = hsm_question(&drain(&mut core));
    let results = vec![Err(Outcome::SystemMalfunction)];
    core.handle(now, Input::HsmAnswer { token, results });
    let actions = drain(&mut core);
    assert!(sent_to_issuer(&actions).is_none());
    assert_eq!(reply(&actions).expect("declined").0.get_str(39), Some("96"));
    assert_eq!(
        core.open_transactions(),
        1,
        "open until its delivery is known"
    );
}

/// An acquirer that must sign: a request without a MAC is declined 63
/// before the HSM is asked.
#[test]
fn a_missing_mac_is_a_security_violation() {
    let now = start();
    let mut cfg = config(true, None);
    cfg.acquirers[0].keys.mac = Some(MacKey {
        key: key('4'),
        zone: false,
    });
    let mut core = Core::new(cfg);
    core.handle(now, request(7, auth()));
    // Nothing to verify: only the decline's own MAC is asked for.
    let (token, ops) = hsm_question(&drain(&mut core));
    assert!(matches!(&ops[..], [HsmOp::GenerateMac { .. }]), "{ops:?}");
    let results = vec![Ok(HsmReply::Mac([0x66; 8]))];
    core.handle(now, Input::HsmAnswer { token, results });
    let actions = drain(&mut core);
    assert_eq!(reply(&actions).expect("declined").0.get_str(39), Some("63"));
}

/// A journaled core whose issuer signs (and checks), and its acquirer if
/// `acquirer_signs`.
fn signing(acquirer_signs: bool) -> Core {
    let mut cfg = config(true, None);
    cfg.issuers[0].keys.mac = Some(MacKey {
        key: key('3'),
        zone: true,
    });
    if acquirer_signs {
        cfg.acquirers[0].keys.mac = Some(MacKey {
            key: key('4'),
            zone: false,
        });
    }
    Core::new(cfg)
}

/// `message` as received from a peer: built with `mac` in DE64, parsed.
fn received_with_mac(message: &Message, mac: [u8; 8]) -> Message {
    let spec = crate::message::Spec::resolve("iso87-ascii").expect("spec");
    let mut m = message.clone();
    m.set(64, Bytes::copy_from_slice(&mac)).expect("DE64");
    spec.parse(&spec.build(&m).expect("build")).expect("parse")
}

/// Drives a request (signed by the terminal when `acquirer_signs`) to the
/// issuer: returns what the issuer got.
fn forwarded_signed(core: &mut Core, now: Time, acquirer_signs: bool) -> Message {
    let request_in = if acquirer_signs {
        received_with_mac(&auth(), [0x11; 8])
    } else {
        auth()
    };
    core.handle(now, request(7, request_in));
    let accepting = drain(core);
    if acquirer_signs {
        let (token, ops) = hsm_question(&accepting);
        assert!(matches!(&ops[..], [HsmOp::VerifyMac { mac, .. }] if *mac == [0x11; 8]));
        let results = vec![Ok(HsmReply::Verified)];
        core.handle(now, Input::HsmAnswer { token, results });
    }
    core.handle(
        now,
        Input::Durable {
            token: durable_token(&accepting),
            ok: true,
        },
    );
    let (token, _) = hsm_question(&drain(core));
    let results = vec![Ok(HsmReply::Mac([0x22; 8]))];
    core.handle(now, Input::HsmAnswer { token, results });
    sent_to_issuer(&drain(core)).expect("sent")
}

/// The issuer's answer counts once its MAC verifies over the bytes before
/// it.
#[test]
fn an_answer_counts_once_its_mac_verifies() {
    let now = start();
    let mut core = signing(false);
    let sent = forwarded_signed(&mut core, now, false);
    let answer = received_with_mac(&answer(&sent, Some("00")), [0x33; 8]);
    core.handle(now, from_issuer(answer.clone()));
    let checking = drain(&mut core);
    assert!(
        reply(&checking).is_none(),
        "replied before the MAC was checked"
    );
    let (token, ops) = hsm_question(&checking);
    let frame = answer.frame_as_received().expect("as received");
    let [HsmOp::VerifyMac { data, mac, .. }] = &ops[..] else {
        panic!("one MAC to verify: {ops:?}");
    };
    assert_eq!((&data[..], *mac), (&frame[..frame.len() - 16], [0x33; 8]));
    let results = vec![Ok(HsmReply::Verified)];
    core.handle(now, Input::HsmAnswer { token, results });
    let approving = drain(&mut core);
    core.handle(
        now,
        Input::Durable {
            token: durable_token(&approving),
            ok: true,
        },
    );
    let (replied, _) = reply(&drain(&mut core)).expect("replied");
    assert_eq!(replied.get_str(39), Some("00"));
}

/// An answer whose MAC fails (or that has none) is not trusted: the
/// acquirer gets 63 and the issuer a reversal, since it may have approved.
#[test]
fn an_answer_whose_mac_fails_is_reversed_and_declined() {
    for with_mac in [true, false] {
        let now = start();
        let mut core = signing(false);
        let sent = forwarded_signed(&mut core, now, false);
        let plain = answer(&sent, Some("00"));
        let answer = if with_mac {
            received_with_mac(&plain, [0x33; 8])
        } else {
            plain
        };
        core.handle(now, from_issuer(answer));
        let mut actions = drain(&mut core);
        if with_mac {
            let (token, _) = hsm_question(&actions);
            let results = vec![Err(Outcome::SecurityViolation)];
            core.handle(now, Input::HsmAnswer { token, results });
            actions = drain(&mut core);
        }
        assert!(
            records(&actions)
                .iter()
                .any(|r| matches!(r, crate::journal::Record::SafQueued { .. })),
            "a reversal queued: {actions:#?}"
        );
        let (replied, _) = reply(&actions).expect("declined");
        assert_eq!(replied.get_str(39), Some("63"), "with MAC: {with_mac}");
    }
}

/// An acquirer that signs gets its reply signed: the HSM's MAC over the
/// bytes before DE64.
#[test]
fn replies_to_a_signing_acquirer_are_signed() {
    let spec = crate::message::Spec::resolve("iso87-ascii").expect("spec");
    // The issuer's MAC and the reply's asked together (one round trip);
    // or, when that signature fails, the reply's asked again on its own.
    for together in [true, false] {
        let now = start();
        let mut core = signing(true);
        let sent = forwarded_signed(&mut core, now, true);
        let answer = received_with_mac(&answer(&sent, Some("05")), [0x33; 8]);
        core.handle(now, from_issuer(answer));
        let (token, ops) = hsm_question(&drain(&mut core));
        let [HsmOp::VerifyMac { .. }, HsmOp::GenerateMac { data, .. }] = &ops[..] else {
            panic!("the answer's MAC and the reply's: {ops:?}");
        };
        let mut data = data.clone();
        let second = if together {
            Ok(HsmReply::Mac([0x44; 8]))
        } else {
            Err(Outcome::SystemMalfunction)
        };
        let results = vec![Ok(HsmReply::Verified), second];
        core.handle(now, Input::HsmAnswer { token, results });
        let mut replying = drain(&mut core);
        if !together {
            assert!(reply(&replying).is_none(), "replied unsigned");
            let (token, ops) = hsm_question(&replying);
            let [HsmOp::GenerateMac { data: again, .. }] = &ops[..] else {
                panic!("one MAC to make: {ops:?}");
            };
            data = again.clone();
            let results = vec![Ok(HsmReply::Mac([0x44; 8]))];
            core.handle(now, Input::HsmAnswer { token, results });
            replying = drain(&mut core);
        }
        let frame = replying
            .iter()
            .find_map(|a| match a {
                Action::Reply { frame: Some(f), .. } => Some(f.clone()),
                _ => None,
            })
            .expect("replied");
        assert_eq!(read_mac(&spec, &frame, 64), Some([0x44; 8]));
        assert_eq!(covered(&spec, &frame, 64), Some(&data[..]));
        assert_eq!(read_reply(&frame).get_str(39), Some("05"));
    }
}

/// A reversal to an issuer with a MAC key is signed before each attempt;
/// a MAC the HSM cannot make fails the attempt (retried later), never
/// sends it unsigned.
#[test]
fn store_and_forward_entries_are_signed() {
    let now = start();
    let mut core = signing(false);
    core.handle(
        now,
        Input::IssuerUp {
            issuer: 0,
            up: true,
        },
    );
    let sent = forwarded_signed(&mut core, now, false);
    core.handle(now, from_issuer(answer(&sent, Some("00"))));
    let queued = drain(&mut core);
    core.handle(
        now,
        Input::Durable {
            token: durable_token(&queued),
            ok: true,
        },
    );
    let (token, ops) = hsm_question(&drain(&mut core));
    assert!(matches!(&ops[..], [HsmOp::GenerateMac { .. }]), "{ops:?}");
    let results = vec![Err(Outcome::SystemMalfunction)];
    core.handle(now, Input::HsmAnswer { token, results });
    let failed = drain(&mut core);
    assert!(sent_to_issuer(&failed).is_none(), "sent unsigned");
    // The retry, after its backoff.
    let later = now.after(Duration::from_secs(2));
    core.handle(later, Input::Timer(TimerId::SafDue));
    let (token, _) = hsm_question(&drain(&mut core));
    let results = vec![Ok(HsmReply::Mac([0x77; 8]))];
    core.handle(later, Input::HsmAnswer { token, results });
    let frame = issuer_frame(&drain(&mut core)).expect("the reversal sent");
    let spec = crate::message::Spec::resolve("iso87-ascii").expect("spec");
    let reversal = read_reply(&frame);
    assert_eq!(
        reversal.mti().class(),
        crate::message::mti::MessageClass::Reversal
    );
    assert_eq!(read_mac(&spec, &frame, 64), Some([0x77; 8]));
}

/// Regression: the switch's own declines to a 1993 acquirer carried the
/// 1987 code ("55", "91") in the three-digit DE39, did not build, and the
/// terminal got no answer at all (found by tests/hsm_e2e.rs).
#[test]
fn the_switchs_own_declines_build_in_a_1993_dialect() {
    let spec = crate::message::Spec::resolve("iso93-ascii").expect("spec");
    let mut m = Message::new("1200".parse().expect("mti"));
    m.set_str(2, "4012345678909").expect("DE2");
    m.set_str(11, "000001").expect("DE11");
    for (outcome, code) in [
        (Outcome::IncorrectPin, "117"),
        (Outcome::IssuerUnavailable, "911"),
        (Outcome::SecurityViolation, "916"),
        (Outcome::SystemMalfunction, "909"),
    ] {
        let reject = super::request::reject(&m, outcome);
        let built = spec.build(&reject).expect("builds");
        let read = spec.parse(&built).expect("parses");
        assert_eq!(read.get_str(39), Some(code));
    }
    let fallback = crate::switch::responses::malfunction(&m);
    assert_eq!(fallback.get_str(39), Some("909"));
}

/// An answer with fewer results than operations asked (a broken HSM
/// glue) declines: the acquirer's block is never forwarded as it came.
#[test]
fn a_short_hsm_answer_declines() {
    let now = start();
    let mut core = zoned(false);
    core.handle(now, request(7, with_pin()));
    let accepting = drain(&mut core);
    let (token, _) = hsm_question(&accepting);
    core.handle(
        now,
        Input::HsmAnswer {
            token,
            results: Vec::new(),
        },
    );
    core.handle(
        now,
        Input::Durable {
            token: durable_token(&accepting),
            ok: true,
        },
    );
    let actions = drain(&mut core);
    assert!(sent_to_issuer(&actions).is_none());
    assert_eq!(reply(&actions).expect("declined").0.get_str(39), Some("96"));
}
