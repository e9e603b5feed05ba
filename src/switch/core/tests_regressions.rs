//! Regressions the network simulator (`sim::network`) found in the core,
//! each driven in virtual time.

use std::time::Duration;

use super::tests::*;
use super::*;
use crate::journal::Record;
use crate::message::Message;
use crate::switch::standin::{StandIn, StandInRules};

fn reversal_request() -> Message {
    let mut m = auth();
    m.set_mti("0400".parse().expect("MTI"));
    m
}

/// Forwards `message` on a core with a journal: the message sent.
fn forward(core: &mut Core, now: Time, message: Message) -> Message {
    core.handle(now, request(1, message));
    let token = durable_token(&drain(core));
    core.handle(now, Input::Durable { token, ok: true });
    sent_to_issuer(&drain(core)).expect("forwarded").clone()
}

#[test]
fn a_reversal_that_times_out_is_acknowledged_only_once_its_entry_is_durable() {
    let (mut core, now) = (core(true), start());
    forward(&mut core, now, reversal_request());
    let due = now.after(Duration::from_secs(5));
    core.handle(due, Input::Timer(TimerId::Response(TxnId(1))));
    let timing_out = drain(&mut core);
    assert!(reply(&timing_out).is_none(), "acknowledged before durable");
    let token = durable_token(&timing_out);
    core.handle(due, Input::Durable { token, ok: true });
    let (resp, _) = reply(&drain(&mut core))
        .map(|(m, c)| (m.clone(), c))
        .expect("acknowledged");
    assert_eq!(resp.get_str(39), Some("00"));
    assert_eq!(core.saf_depth(), 1);
}

#[test]
fn an_answer_under_the_stan_with_another_card_is_not_the_transactions() {
    let (mut core, now) = (core(false), start());
    core.handle(now, request(1, auth()));
    let sent = sent_to_issuer(&drain(&mut core)).expect("sent").clone();
    let mut other = answer(&sent, Some("00"));
    other.set_str(37, "OTHER0000001").expect("DE37");
    core.handle(now, from_issuer(other));
    assert!(drain(&mut core).is_empty(), "taken for the transaction");
    core.handle(now, from_issuer(answer(&sent, Some("00"))));
    assert!(reply(&drain(&mut core)).is_some(), "its own answer is");
}

#[test]
fn an_undelivered_stand_in_approval_reverses_its_advice() {
    let rules = StandInRules {
        per_transaction_max: 20_000,
        per_card_daily_count: 5,
        per_card_daily_amount: 50_000,
    };
    let (mut core, now) = (core_with(false, Some(StandIn::new(rules, 100, 7))), start());
    core.handle(now, request(1, stripe_auth()));
    drain(&mut core);
    let due = now.after(Duration::from_secs(5));
    core.handle(due, Input::Timer(TimerId::Response(TxnId(1))));
    let (resp, confirm) = reply(&drain(&mut core))
        .map(|(m, c)| (m.clone(), c))
        .expect("stood in");
    assert_eq!(resp.get_str(39), Some("00"));
    assert_eq!(
        core.saf_depth(),
        2,
        "the time-out's reversal and the advice"
    );
    let txn = confirm.expect("delivery asked for");
    core.handle(
        due,
        Input::Written {
            txn,
            delivered: false,
        },
    );
    assert_eq!(core.saf_depth(), 3, "the advice's reversal");
    core.handle(
        due,
        Input::IssuerUp {
            issuer: 0,
            up: true,
        },
    );
    let out = drain(&mut core);
    let reversal = out
        .iter()
        .filter_map(|a| match a {
            Action::ToIssuer { frame, .. } => Some(read_reply(frame)),
            _ => None,
        })
        .find(|m| m.get_str(90).is_some_and(|d| d.starts_with("0120")));
    assert!(reversal.is_some(), "a 0420 naming the 0120: {out:?}");
}

#[test]
fn a_reversal_whose_record_fails_is_written_again() {
    let (mut core, now) = (core(true), start());
    forward(&mut core, now, auth());
    let due = now.after(Duration::from_secs(5));
    core.handle(due, Input::Timer(TimerId::Response(TxnId(1))));
    let token = durable_token(&drain(&mut core));
    core.handle(due, Input::Durable { token, ok: false });
    let again = drain(&mut core);
    assert_eq!(queued_kinds(&again), ["timeout_reversal"], "written again");
    let token = durable_token(&again);
    core.handle(due, Input::Durable { token, ok: true });
    assert_eq!(core.saf_depth(), 1);
}

#[test]
fn an_undelivered_approval_is_reversed_before_its_delivery_is_recorded() {
    let (mut core, now) = (core(false), start());
    core.handle(now, request(1, auth()));
    let sent = sent_to_issuer(&drain(&mut core)).expect("sent").clone();
    core.handle(now, from_issuer(answer(&sent, Some("00"))));
    let (_, confirm) = reply(&drain(&mut core)).expect("replied");
    let txn = confirm.expect("delivery asked for");
    // Without a journal nothing is appended; with one, the order is
    // checked by the simulator. Here: a copy now gets a decline, not
    // the approval that is being reversed.
    core.handle(
        now,
        Input::Written {
            txn,
            delivered: false,
        },
    );
    assert_eq!(core.saf_depth(), 1);
    core.handle(now, request(2, auth()));
    let (resp, _) = reply(&drain(&mut core))
        .map(|(m, c)| (m.clone(), c))
        .expect("answered");
    assert_eq!(resp.get_str(39), Some("91"));
}

#[test]
fn an_undelivered_approval_is_recorded_in_the_group_of_its_reversal_even_after_a_failure() {
    let (mut core, now) = (core(true), start());
    let sent = forward(&mut core, now, auth());
    core.handle(now, from_issuer(answer(&sent, Some("00"))));
    let token = durable_token(&drain(&mut core));
    core.handle(now, Input::Durable { token, ok: true });
    let (_, confirm) = reply(&drain(&mut core)).expect("replied");
    let txn = confirm.expect("delivery asked for");
    core.handle(
        now,
        Input::Written {
            txn,
            delivered: false,
        },
    );
    // One group with both, and the same group again when it fails.
    for ok in [false, true] {
        let actions = drain(&mut core);
        let groups: Vec<Vec<&str>> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Append { records, .. } => Some(
                    records
                        .iter()
                        .map(|r| match r {
                            Record::SafQueued(_) => "queued",
                            Record::Delivery { .. } => "delivery",
                            _ => "other",
                        })
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        assert_eq!(groups, [["queued", "delivery"]]);
        let token = durable_token(&actions);
        core.handle(now, Input::Durable { token, ok });
    }
    assert_eq!(core.saf_depth(), 1);
}

#[test]
fn a_stand_in_approval_the_journal_cannot_keep_is_refused_and_its_advice_never_sent() {
    let rules = StandInRules {
        per_transaction_max: 20_000,
        per_card_daily_count: 5,
        per_card_daily_amount: 50_000,
    };
    let (mut core, now) = (core_with(true, Some(StandIn::new(rules, 100, 7))), start());
    let first = timed_out(&mut core, now, 1, "000001");
    // The approval is written in the advice's group: all or nothing.
    let groups: Vec<(Token, Vec<&'static str>)> = first
        .iter()
        .filter_map(|a| match a {
            Action::Append {
                records,
                durable: Some(t),
            } => Some((
                *t,
                records
                    .iter()
                    .map(|r| match r {
                        Record::SafQueued(q) => q.kind,
                        Record::Answered(_) => "answered",
                        _ => "other",
                    })
                    .collect(),
            )),
            _ => None,
        })
        .collect();
    let kinds: Vec<&Vec<&str>> = groups.iter().map(|(_, k)| k).collect();
    assert_eq!(
        kinds,
        [
            &vec!["timeout_reversal"],
            &vec!["stand_in_advice", "answered"]
        ]
    );
    core.handle(
        now,
        Input::Durable {
            token: groups[0].0,
            ok: true,
        },
    );
    drain(&mut core);
    core.handle(
        now,
        Input::Durable {
            token: groups[1].0,
            ok: false,
        },
    );
    let failed = drain(&mut core);
    assert!(
        queued_kinds(&failed).is_empty(),
        "nothing to reverse: {failed:?}"
    );
    let (resp, _) = reply(&failed)
        .map(|(m, c)| (m.clone(), c))
        .expect("refused");
    assert_eq!(resp.get_str(39), Some("96"));
    core.handle(
        now,
        Input::IssuerUp {
            issuer: 0,
            up: true,
        },
    );
    let names: Vec<String> = drain(&mut core)
        .iter()
        .filter_map(|a| match a {
            Action::ToIssuer { frame, .. } => Some(read_reply(frame).mti().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["0420"], "the time-out's reversal only");
}

#[test]
fn a_restart_reverses_the_stand_in_advice_of_a_request_never_answered_on_disk() {
    let (mut core, now) = (core(true), start());
    let mut advice = auth();
    advice.set_mti("0120".parse().expect("MTI"));
    advice.set_str(11, "000007").expect("DE11");
    let count = core.restore(
        now,
        Restored {
            next_txn_id: 10,
            next_saf_id: 5,
            pending_saf: vec![RestoredSaf {
                id: 4,
                txn_id: Some(9),
                kind: crate::switch::saf::SafKind::StandInAdvice,
                issuer: 0,
                message: advice,
                attempts: 0,
            }],
            unfinished: vec![RestoredTxn {
                txn_id: 9,
                issuer: 0,
                message: auth(),
            }],
        },
    );
    assert_eq!((count.requeued, count.reversed), (1, 2));
    let named: Vec<String> = records(&drain(&mut core))
        .into_iter()
        .filter_map(|r| match r {
            Record::SafQueued(q) => Some(q.kind.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(named, ["timeout_reversal", "timeout_reversal"]);
}

#[test]
fn a_time_outs_answer_is_journaled_in_its_reversals_group() {
    let (mut core, now) = (core(true), start());
    let timing_out = timed_out(&mut core, now, 1, "000001");
    let groups: Vec<Vec<&str>> = timing_out
        .iter()
        .filter_map(|a| match a {
            Action::Append { records, .. } => Some(
                records
                    .iter()
                    .map(|r| match r {
                        Record::SafQueued(_) => "queued",
                        Record::Answered(_) => "answered",
                        _ => "other",
                    })
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(groups, [vec!["other"], vec!["queued", "answered"]]);
}
