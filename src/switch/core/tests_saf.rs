//! The core's store-and-forward delivery, acquirers' advices, batch closes
//! and restarts, driven in virtual time.

use std::time::Duration;

use super::tests::*;
use super::*;
use crate::journal::Record;
use crate::message::Message;
use crate::message::response_codes::Outcome;

/// The messages sent to issuers, with what they are for.
fn sent(actions: &[Action]) -> Vec<(Outgoing, Message)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ToIssuer { what, frame, .. } => Some((*what, read_reply(frame))),
            _ => None,
        })
        .collect()
}

fn up(core: &mut Core, now: Time) -> Vec<Action> {
    core.handle(
        now,
        Input::IssuerUp {
            issuer: 0,
            up: true,
        },
    );
    drain(core)
}

#[test]
fn a_reversal_is_delivered_as_a_repeat_until_answered() {
    let (mut core, now) = (core(true), start());
    let due = now.after(Duration::from_secs(5));
    let timing_out = timed_out(&mut core, now, 1, "000001");
    let token = durable_token(&timing_out);
    core.handle(due, Input::Durable { token, ok: true });
    assert_eq!(core.saf_depth(), 1);
    // Nothing goes out while the issuer is down; it does once it is up.
    let first = sent(&up(&mut core, due));
    let [(Outgoing::Saf(id), advice)] = &first[..] else {
        panic!("one attempt: {first:?}");
    };
    assert_eq!(advice.mti().to_string(), "0420");
    // No answer in time: the attempt is journaled and retried later as 0421.
    let wait = due.after(Duration::from_secs(10));
    core.handle(wait, Input::Timer(TimerId::SafAnswer(*id)));
    let failed = drain(&mut core);
    assert!(matches!(
        records(&failed)[..],
        [Record::SafAttempted { attempts: 1, .. }]
    ));
    assert!(sent(&failed).is_empty(), "backs off");
    let retry = wait.after(Duration::from_secs(1));
    core.handle(retry, Input::Timer(TimerId::SafDue));
    let second = sent(&drain(&mut core));
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].1.mti().to_string(), "0421");
    // A 91 asks for another try; a 00 ends it.
    core.handle(retry, from_issuer(answer(&second[0].1, Some("91"))));
    assert_eq!(core.saf_depth(), 1, "91 retries");
    let again = retry.after(Duration::from_secs(2));
    core.handle(again, Input::Timer(TimerId::SafDue));
    let third = sent(&drain(&mut core));
    core.handle(again, from_issuer(answer(&third[0].1, Some("00"))));
    let done = drain(&mut core);
    assert!(matches!(
        records(&done)[..],
        [Record::SafDone {
            delivered: true,
            attempts: 3,
            ..
        }]
    ));
    assert_eq!(core.saf_depth(), 0);
    assert_eq!(core.counters().saf_delivered.total(), 1);
}

#[test]
fn an_acquirers_advice_is_acknowledged_once_durably_queued() {
    let (mut core, now) = (core(true), start());
    let mut advice = auth();
    advice.set_mti("0120".parse().expect("MTI"));
    core.handle(now, request(1, advice));
    let queuing = drain(&mut core);
    assert!(
        reply(&queuing).is_none(),
        "acknowledged before it is queued"
    );
    assert_eq!(queued_kinds(&queuing), ["acquirer_advice"]);
    let token = durable_token(&queuing);
    core.handle(now, Input::Durable { token, ok: true });
    let acked = drain(&mut core);
    let (resp, _) = reply(&acked).expect("acknowledged");
    assert_eq!(
        (resp.mti().to_string(), resp.get_str(39)),
        ("0130".to_string(), Some("00"))
    );
    assert!(sent(&acked).is_empty(), "the issuer is down");
    assert_eq!(core.saf_depth(), 1);
}

#[test]
fn an_answer_of_another_class_under_the_same_stan_is_not_the_transactions() {
    let (mut core, now) = (core(false), start());
    core.handle(now, request(1, auth()));
    let forwarded = sent(&drain(&mut core));
    let mut echo_answer = answer(&forwarded[0].1, Some("00"));
    echo_answer.set_mti("0810".parse().expect("MTI"));
    core.handle(now, from_issuer(echo_answer));
    assert!(drain(&mut core).is_empty());
    assert_eq!(core.open_transactions(), 1);
}

#[test]
fn a_batch_close_is_answered_by_the_rules_or_declined() {
    let (mut core, now) = (core(false), start());
    let mut close = auth();
    close.set_mti("0500".parse().expect("MTI"));
    for (n, answer) in [(1, true), (2, false)] {
        core.handle(now, request(n, close.clone()));
        let asked = drain(&mut core);
        let [Action::Ask { token, .. }] = asked[..] else {
            panic!("asked once: {asked:?}");
        };
        let mut resp = close.clone();
        resp.set_mti("0510".parse().expect("MTI"));
        let answer = if answer {
            Ok(resp)
        } else {
            Err(Outcome::SystemMalfunction)
        };
        let answer = answer.map(Box::new);
        core.handle(now, Input::Answer { token, answer });
        let replied = drain(&mut core);
        let (resp, _) = reply(&replied).expect("replied");
        assert_eq!(resp.mti().to_string(), "0510");
        let code = resp.get_str(39).map(str::to_string);
        let expected = if n == 1 {
            close.get_str(39)
        } else {
            Some("96")
        };
        assert_eq!(code.as_deref(), expected);
    }
}

#[test]
fn a_restart_repeats_pending_entries_and_reverses_unfinished_requests() {
    let (mut core, now) = (core(true), start());
    let mut pending = auth();
    pending.set_mti("0420".parse().expect("MTI"));
    pending.set_str(11, "000500").expect("DE11");
    let count = core.restore(
        now,
        Restored {
            next_txn_id: 40,
            next_saf_id: 9,
            pending_saf: vec![RestoredSaf {
                id: 8,
                txn_id: Some(3),
                kind: crate::switch::saf::SafKind::TimeoutReversal,
                issuer: 0,
                message: pending,
                attempts: 0,
            }],
            unfinished: vec![RestoredTxn {
                txn_id: 39,
                issuer: 0,
                message: auth(),
            }],
        },
    );
    assert_eq!((count.requeued, count.reversed, count.dropped), (1, 1, 0));
    let restored = drain(&mut core);
    let events: Vec<_> = records(&restored)
        .into_iter()
        .filter_map(|r| match r {
            Record::Event { txn_id, kind, .. } => Some((*txn_id, *kind)),
            Record::SafQueued(q) => Some((q.txn_id, q.kind)),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        [
            (Some(39), "timeout_reversal"),
            (Some(39), "reversed_after_restart")
        ]
    );
    core.handle(
        now,
        Input::Durable {
            token: durable_token(&restored),
            ok: true,
        },
    );
    let out = sent(&up(&mut core, now));
    let mtis: Vec<(Outgoing, String)> =
        out.iter().map(|(w, m)| (*w, m.mti().to_string())).collect();
    assert_eq!(
        mtis,
        [
            (Outgoing::Saf(8), "0421".to_string()),
            (Outgoing::Saf(9), "0420".to_string())
        ],
        "the pending entry as a repeat, the new reversal numbered after it"
    );
    // New transactions continue the journal's numbering.
    core.handle(now, request(1, auth()));
    let token = durable_token(&drain(&mut core));
    core.handle(now, Input::Durable { token, ok: true });
    let forwarded = drain(&mut core);
    assert!(forwarded.iter().any(|a| matches!(
        a,
        Action::ToIssuer {
            what: Outgoing::Txn(TxnId(40)),
            ..
        }
    )));
}

#[test]
fn a_request_lost_with_its_connection_is_reversed_at_once() {
    let (mut core, now) = (core(false), start());
    core.handle(now, request(1, auth()));
    let forwarded = sent(&drain(&mut core));
    let stan = forwarded[0].1.get_u64(11).expect("STAN") as u32;
    core.handle(
        now,
        Input::Lost {
            issuer: 0,
            stans: vec![stan + 1, stan],
        },
    );
    let actions = drain(&mut core);
    let (resp, _) = reply(&actions).expect("answered at once");
    assert_eq!(resp.get_str(39), Some("91"));
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Disarm {
            timer: TimerId::Response(TxnId(1))
        }
    )));
    assert_eq!(core.saf_depth(), 1, "reversed");
}
