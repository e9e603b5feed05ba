//! The core driven in virtual time: each test plays the node, feeding
//! inputs and checking the actions, with no sockets, tasks or clocks.

use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;

use super::*;
use crate::journal::Record;
use crate::message::Spec;
use crate::node::config::SwitchConfig;
use crate::switch::saf::SafPolicy;
use crate::switch::standin::{StandIn, StandInRules};

const AUTH: &str = include_str!("../../../fixtures/golden/iso87-ascii/0100-auth-request.hex");

const CONFIG: &str = r#"
[switch]
institution_id = "99000000001"
[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = { length = "binary2" }
[[issuer]]
name = "visa"
addresses = ["127.0.0.1:9"]
spec = "iso87-ascii"
framing = { length = "binary2" }
[[route]]
bins = ["476173"]
issuer = "visa"
timeout_ms = 5000
"#;

/// A core on [`CONFIG`], with or without a journal.
pub(super) fn core(journal: bool) -> Core {
    core_with(journal, None)
}

/// [`core`] with the issuer's stand-in rules.
pub(super) fn core_with(journal: bool, stand_in: Option<StandIn>) -> Core {
    Core::new(config(journal, stand_in))
}

/// The configuration of [`core_with`], for tests that change it.
pub(super) fn config(journal: bool, stand_in: Option<StandIn>) -> CoreConfig {
    let cfg = SwitchConfig::from_toml(CONFIG, "switch.toml").expect("config");
    let spec = |name| Spec::resolve(name).expect("spec");
    CoreConfig {
        institution_id: Bytes::from_static(b"99000000001"),
        acquirers: vec![AcquirerSide {
            name: "pos".into(),
            spec: spec("iso87-ascii"),
            allowed_institutions: Vec::new(),
            keys: Default::default(),
        }],
        issuers: vec![IssuerSide {
            name: "visa".into(),
            spec: spec("iso87-ascii"),
            stand_in,
            keys: Default::default(),
        }],
        routes: cfg.route_table(),
        saf_policy: SafPolicy {
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            expiry: Duration::from_secs(3600),
            attempts_max: 10,
        },
        saf_entries_max: 100,
        transactions_max: 100,
        duplicate_window: Duration::from_secs(60),
        duplicate_keys_max: 1000,
        journal,
        saf_response_wait: Duration::from_secs(10),
        rules: None,
        seed: 7,
    }
}

/// The golden 0100 (BIN 476173, STAN 000001 at the terminal).
pub(super) fn auth() -> Message {
    let bytes = hex::decode(AUTH.trim()).expect("hex");
    Spec::resolve("iso87-ascii")
        .expect("spec")
        .parse(&Bytes::from(bytes))
        .expect("golden message")
}

/// The golden 0100 without its chip data (DE55): a magnetic stripe card,
/// which stand-in may approve without asking the HSM about a cryptogram.
pub(super) fn stripe_auth() -> Message {
    let mut m = auth();
    m.remove(55);
    m
}

/// Virtual time: a fixed start, moved on by the tests.
pub(super) fn start() -> Time {
    Time {
        mono: Instant::now(),
        wall: UNIX_EPOCH + Duration::from_secs(1_764_000_000),
    }
}

/// A request from the acquirer on connection `conn`.
pub(super) fn request(conn: u64, message: Message) -> Input {
    Input::Request {
        from: Origin {
            conn: ConnId(conn),
            acquirer: 0,
            tag: conn,
        },
        message: Box::new(message),
    }
}

/// A message from the issuer.
pub(super) fn from_issuer(message: Message) -> Input {
    Input::FromIssuer {
        issuer: 0,
        message: Box::new(message),
    }
}

pub(super) fn drain(core: &mut Core) -> Vec<Action> {
    std::iter::from_fn(|| core.poll_action()).collect()
}

/// The durability token of the only durable append in `actions`.
pub(super) fn durable_token(actions: &[Action]) -> Token {
    let tokens: Vec<Token> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Append {
                durable: Some(t), ..
            } => Some(*t),
            _ => None,
        })
        .collect();
    assert_eq!(tokens.len(), 1, "one durable append in {actions:#?}");
    tokens[0]
}

/// The first message sent to an issuer, as the issuer reads it.
pub(super) fn sent_to_issuer(actions: &[Action]) -> Option<Message> {
    actions.iter().find_map(|a| match a {
        Action::ToIssuer { frame, .. } => Some(read_reply(frame)),
        _ => None,
    })
}

/// The first reply in `actions`, as the acquirer reads it.
pub(super) fn reply(actions: &[Action]) -> Option<(Message, Option<TxnId>)> {
    actions.iter().find_map(|a| match a {
        Action::Reply {
            frame: Some(frame),
            confirm,
            ..
        } => Some((read_reply(frame), *confirm)),
        _ => None,
    })
}

/// A frame parsed in the dialect of [`CONFIG`]'s acquirer and issuer.
pub(super) fn read_reply(frame: &Bytes) -> Message {
    Spec::resolve("iso87-ascii")
        .expect("spec")
        .parse(frame)
        .expect("a readable reply")
}

pub(super) fn records(actions: &[Action]) -> Vec<&Record> {
    actions
        .iter()
        .flat_map(|a| match a {
            Action::Append { records, .. } => records.iter().collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// The issuer's answer to `forwarded` with response code `code`.
pub(super) fn answer(forwarded: &Message, code: Option<&str>) -> Message {
    let mut resp = forwarded.clone();
    resp.set_mti(forwarded.mti().response().expect("a request"));
    match code {
        Some(c) => resp.set_str(39, c).expect("DE39"),
        None => {
            resp.remove(39);
        }
    }
    resp
}

/// A request accepted and forwarded: the message the issuer got.
pub(super) fn forwarded(core: &mut Core, now: Time) -> Message {
    core.handle(now, request(7, auth()));
    let accepting = drain(core);
    assert!(
        sent_to_issuer(&accepting).is_none(),
        "forwarded before it is durable"
    );
    let token = durable_token(&accepting);
    core.handle(now, Input::Durable { token, ok: true });
    let forwarding = drain(core);
    let sent = sent_to_issuer(&forwarding).expect("forwarded once durable");
    assert!(forwarding.iter().any(|a| matches!(a, Action::Arm { .. })));
    sent.clone()
}

#[test]
fn an_approval_is_durable_before_it_is_replied_and_its_delivery_recorded() {
    let (mut core, now) = (core(true), start());
    let sent = forwarded(&mut core, now);
    assert_eq!(sent.get_str(11), Some("000001"), "the core's STAN");
    assert_eq!(sent.get_str(33), Some("99000000001"));
    let later = now.after(Duration::from_millis(40));
    core.handle(later, from_issuer(answer(&sent, Some("00"))));
    let answering = drain(&mut core);
    assert!(reply(&answering).is_none(), "replied before durable");
    let token = durable_token(&answering);
    core.handle(later, Input::Durable { token, ok: true });
    let replying = drain(&mut core);
    let (resp, confirm) = reply(&replying).expect("replied");
    assert_eq!(resp.mti().to_string(), "0110");
    assert_eq!(resp.get_str(39), Some("00"));
    assert_eq!(resp.get(11), auth().get(11), "the acquirer's own STAN back");
    let txn = confirm.expect("delivery asked for");
    core.handle(
        later,
        Input::Written {
            txn,
            delivered: true,
        },
    );
    let done = drain(&mut core);
    assert!(matches!(
        records(&done)[..],
        [Record::Delivery {
            delivered: true,
            ..
        }]
    ));
    assert_eq!(core.open_transactions(), 0);
    assert_eq!(core.saf_depth(), 0);
}

#[test]
fn a_time_out_answers_91_and_queues_a_durable_reversal() {
    let (mut core, now) = (core(true), start());
    let sent = forwarded(&mut core, now);
    let due = now.after(Duration::from_secs(5));
    core.handle(due, Input::Timer(TimerId::Response(TxnId(1))));
    let timing_out = drain(&mut core);
    let (resp, _) = reply(&timing_out).expect("answered");
    assert_eq!(resp.get_str(39), Some("91"));
    let stan = sent.get_u64(11).expect("STAN") as u32;
    assert!(
        timing_out
            .iter()
            .any(|a| matches!(a, Action::Forget { issuer: 0, stan: s } if *s == stan)),
        "the link may forget it"
    );
    let token = durable_token(&timing_out);
    let queued = records(&timing_out)
        .into_iter()
        .any(|r| matches!(r, Record::SafQueued(q) if q.kind == "timeout_reversal"));
    assert!(queued, "{timing_out:#?}");
    assert_eq!(core.saf_depth(), 0, "queued only once durable");
    core.handle(due, Input::Durable { token, ok: true });
    assert_eq!(core.saf_depth(), 1);
    // The answer that comes too late changes nothing.
    core.handle(due, from_issuer(answer(&sent, Some("00"))));
    assert!(drain(&mut core).is_empty());
}

#[test]
fn an_answer_without_a_response_code_is_an_unknown_outcome() {
    let (mut core, now) = (core(false), start());
    core.handle(now, request(1, auth()));
    let sent = sent_to_issuer(&drain(&mut core)).expect("sent").clone();
    core.handle(now, from_issuer(answer(&sent, None)));
    let (resp, _) = reply(&drain(&mut core))
        .map(|(m, c)| (m.clone(), c))
        .expect("answered");
    assert_eq!(resp.get_str(39), Some("91"));
    assert_eq!(core.saf_depth(), 1, "reversed");
}

#[test]
fn an_undelivered_approval_is_reversed() {
    let (mut core, now) = (core(false), start());
    core.handle(now, request(1, auth()));
    let sent = sent_to_issuer(&drain(&mut core)).expect("sent").clone();
    core.handle(now, from_issuer(answer(&sent, Some("00"))));
    let (_, confirm) = reply(&drain(&mut core)).expect("replied");
    let txn = confirm.expect("delivery asked for");
    core.handle(
        now,
        Input::Written {
            txn,
            delivered: false,
        },
    );
    assert_eq!(core.saf_depth(), 1);
    assert_eq!(core.open_transactions(), 0);
}

#[test]
fn a_request_the_journal_cannot_keep_is_not_forwarded() {
    let (mut core, now) = (core(true), start());
    core.handle(now, request(1, auth()));
    let token = durable_token(&drain(&mut core));
    core.handle(now, Input::Durable { token, ok: false });
    let actions = drain(&mut core);
    assert!(sent_to_issuer(&actions).is_none());
    let (resp, _) = reply(&actions).expect("answered");
    assert_eq!(resp.get_str(39), Some("96"));
}

#[test]
fn an_answer_under_another_stan_is_not_taken_for_the_request() {
    let (mut core, now) = (core(false), start());
    core.handle(now, request(1, auth()));
    let sent = sent_to_issuer(&drain(&mut core)).expect("sent").clone();
    let mut wrong = answer(&sent, Some("00"));
    wrong.set_str(11, "000002").expect("DE11");
    core.handle(now, from_issuer(wrong));
    assert!(drain(&mut core).is_empty());
    assert_eq!(core.open_transactions(), 1, "still waiting for its own");
}

#[test]
fn the_same_inputs_give_the_same_actions() {
    let run = || {
        let (mut core, now) = (core(true), start());
        let sent = forwarded(&mut core, now);
        core.handle(now, from_issuer(answer(&sent, Some("05"))));
        format!("{:?}", drain(&mut core))
    };
    let first = run();
    assert!(first.contains("outcome: Declined"), "{first}");
    assert_eq!(first, run());
}

#[test]
fn a_copy_gets_the_original_reply_and_is_never_forwarded() {
    let (mut core, now) = (core(false), start());
    core.handle(now, request(1, auth()));
    let sent = sent_to_issuer(&drain(&mut core)).expect("sent").clone();
    // A copy while the original is in flight waits; it is not forwarded.
    core.handle(now, request(2, auth()));
    assert!(drain(&mut core).is_empty());
    core.handle(now, from_issuer(answer(&sent, Some("00"))));
    let replies: Vec<(ConnId, String)> = drain(&mut core)
        .into_iter()
        .filter_map(|a| match a {
            Action::Reply {
                to,
                frame: Some(frame),
                ..
            } => Some((
                to.conn,
                read_reply(&frame).get_str(39).unwrap_or("").to_string(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        replies,
        vec![(ConnId(1), "00".to_string()), (ConnId(2), "00".to_string())]
    );
    // A copy afterwards gets the reply at once.
    core.handle(now, request(3, auth()));
    let later = drain(&mut core);
    assert!(sent_to_issuer(&later).is_none());
    let (resp, confirm) = reply(&later).expect("answered from the cache");
    assert_eq!((resp.get_str(39), confirm), (Some("00"), None));
    // The same STAN with another amount is another transaction.
    let mut other = auth();
    other.set_str(4, "000000000999").expect("DE4");
    core.handle(now, request(4, other));
    assert!(sent_to_issuer(&drain(&mut core)).is_some(), "forwarded");
}

/// Transaction `txn` (STAN `stan` at the terminal) accepted, forwarded
/// and timed out: the actions of the time-out.
pub(super) fn timed_out(core: &mut Core, now: Time, txn: u64, stan: &str) -> Vec<Action> {
    let mut message = stripe_auth();
    message.set_str(11, stan).expect("DE11");
    core.handle(now, request(1, message));
    let token = durable_token(&drain(core));
    core.handle(now, Input::Durable { token, ok: true });
    drain(core);
    let due = now.after(Duration::from_secs(5));
    core.handle(due, Input::Timer(TimerId::Response(TxnId(txn))));
    drain(core)
}

pub(super) fn queued_kinds(actions: &[Action]) -> Vec<&'static str> {
    records(actions)
        .into_iter()
        .filter_map(|r| match r {
            Record::SafQueued(q) => Some(q.kind),
            _ => None,
        })
        .collect()
}

#[test]
fn stand_in_approves_within_its_limits_and_advises_the_issuer() {
    let rules = StandInRules {
        per_transaction_max: 20_000,
        per_card_daily_count: 1,
        per_card_daily_amount: 50_000,
    };
    let (mut core, now) = (core_with(true, Some(StandIn::new(rules, 100, 7))), start());
    // The first time-out is stood in: a reversal of what may have reached
    // the issuer and an advice of the stand-in approval, which is replied
    // once it is durable (the approval rides in the advice's group).
    let first = timed_out(&mut core, now, 1, "000001");
    assert_eq!(
        queued_kinds(&first),
        ["timeout_reversal", "stand_in_advice"]
    );
    assert!(reply(&first).is_none(), "an approval waits for the disk");
    let approval = first
        .iter()
        .find_map(|a| match a {
            Action::Append {
                records,
                durable: Some(t),
            } if records.iter().any(|r| matches!(r, Record::Answered(_))) => Some(*t),
            _ => None,
        })
        .expect("the approval, durably");
    core.handle(
        now,
        Input::Durable {
            token: approval,
            ok: true,
        },
    );
    let replied = drain(&mut core);
    let (resp, _) = reply(&replied).expect("replied");
    assert_eq!(resp.get_str(39), Some("00"));
    assert_eq!(resp.get_str(38), Some("S00001"));
    // The second is over the card's daily count: 91, a reversal only.
    let second = timed_out(&mut core, now, 2, "000002");
    assert_eq!(queued_kinds(&second), ["timeout_reversal"]);
    let (resp, _) = reply(&second).expect("declined at once");
    assert_eq!(resp.get_str(39), Some("91"));
}

/// The reply frames in `actions`.
fn frames(actions: &[Action]) -> Vec<Bytes> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply { frame: Some(f), .. } => Some(f.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_copy_after_the_answer_gets_the_very_bytes_of_the_original_reply() {
    let (mut core, now) = (core(false), start());
    core.handle(now, request(1, auth()));
    let sent = sent_to_issuer(&drain(&mut core)).expect("sent").clone();
    core.handle(now, from_issuer(answer(&sent, Some("00"))));
    let original = frames(&drain(&mut core));
    assert_eq!(original.len(), 1, "one reply");
    core.handle(now, request(2, auth()));
    assert_eq!(frames(&drain(&mut core)), original);
    assert_eq!(read_reply(&original[0]).get_str(39), Some("00"));
}

/// Inputs and actions cross the node's channels and the core's queue by
/// value: one as large as a message (216 bytes) made every input a copy
/// that size at every hop (a regression guard, not a tuning knob).
#[test]
fn inputs_and_actions_stay_small() {
    assert!(
        std::mem::size_of::<Input>() <= 48,
        "{}",
        std::mem::size_of::<Input>()
    );
    assert!(
        std::mem::size_of::<super::Action>() <= 80,
        "{}",
        std::mem::size_of::<super::Action>()
    );
}
