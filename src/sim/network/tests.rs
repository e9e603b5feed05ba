//! The simulator's checks can fail: each invariant the seeds do not break
//! today is broken here by hand.

use std::sync::Arc;

use super::Invariant;
use super::acquirer::Acquirers;
use super::checks::Checks;
use super::journal::Journal;
use crate::journal::Record;
use crate::journal::TxnOutcome;
use crate::journal::record::{Accepted, Answered};
use crate::message::{Message, Spec};
use crate::switch::core::{ConnId, Origin, Outgoing, TxnId};
use zeroize::Zeroizing;

fn spec() -> Arc<Spec> {
    Spec::resolve("iso87-ascii").expect("spec")
}

fn acquirers() -> Acquirers {
    Acquirers::new(1, 1, spec())
}

fn origin(tag: u64) -> Origin {
    Origin {
        conn: ConnId(1),
        acquirer: 0,
        tag,
    }
}

/// One request of acquirer 0 and its tag.
fn one_request(acq: &mut Acquirers) -> (u64, Message) {
    let mut rng = fastrand::Rng::with_seed(1);
    let wall = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_000_000);
    loop {
        let (tag, _, m) = acq.next(0, 0, wall, &mut rng);
        if m.mti().to_string() == "0100" || m.mti().to_string() == "0200" {
            return (tag, m);
        }
    }
}

fn answer(request: &Message) -> Message {
    let mut resp = request.clone();
    resp.set_mti(request.mti().response().expect("a request"));
    resp.set_str(39, "00").expect("DE39");
    resp
}

#[test]
fn a_second_reply_and_a_reply_never_asked_for_are_caught() {
    let (checks, journal, mut acq) = (Checks::default(), Journal::default(), acquirers());
    let (tag, request) = one_request(&mut acq);
    let reply = answer(&request);
    assert!(
        checks
            .reply(&mut acq, &journal, origin(tag), Some(&reply), None)
            .is_ok()
    );
    let again = checks.reply(&mut acq, &journal, origin(tag), Some(&reply), None);
    assert_eq!(again.map_err(|b| b.0), Err(Invariant::ExactlyOneReply));
    let unknown = checks.reply(&mut acq, &journal, origin(999), None, None);
    assert_eq!(unknown.map_err(|b| b.0), Err(Invariant::ExactlyOneReply));
}

#[test]
fn another_transactions_answer_and_an_undurable_approval_are_caught() {
    let (checks, journal, mut acq) = (Checks::default(), Journal::default(), acquirers());
    let (tag, request) = one_request(&mut acq);
    let mut other = answer(&request);
    other.set_str(4, "000000000001").expect("DE4");
    let r = checks.reply(&mut acq, &journal, origin(tag), Some(&other), None);
    assert_eq!(r.map_err(|b| b.0), Err(Invariant::ForeignAnswer));
    let (tag, request) = one_request(&mut acq);
    let r = checks.reply(
        &mut acq,
        &journal,
        origin(tag),
        Some(&answer(&request)),
        Some(TxnId(5)),
    );
    assert_eq!(
        r.map_err(|b| b.0),
        Err(Invariant::AcknowledgedBeforeDurable)
    );
}

#[test]
fn an_entry_out_twice_and_a_send_before_durable_are_caught() {
    let (mut checks, mut journal) = (Checks::default(), Journal::default());
    let mut m = Message::new("0420".parse().expect("MTI"));
    m.set_str(37, "RRN000000001").expect("DE37");
    let r = checks.sent_to_issuer(&journal, 0, Outgoing::Saf(1), &m);
    assert_eq!(r.map_err(|b| b.0), Err(Invariant::ForwardedBeforeDurable));
    let queued = Record::SafQueued(crate::journal::record::SafQueued {
        id: 1,
        txn_id: None,
        kind: "timeout_reversal",
        issuer: "visa".into(),
        message: Zeroizing::new(Vec::new()),
        queued_at_ms: 0,
    });
    let (group, _) = journal.append(vec![queued], None, 0, 1);
    journal.commit(group, false);
    assert!(
        checks
            .sent_to_issuer(&journal, 0, Outgoing::Saf(1), &m)
            .is_ok()
    );
    m.set_mti("0421".parse().expect("MTI"));
    let r = checks.sent_to_issuer(&journal, 0, Outgoing::Saf(1), &m);
    assert_eq!(r.map_err(|b| b.0), Err(Invariant::SafAttemptsOverlap));
}

#[test]
fn stand_in_past_the_cards_daily_count_is_caught() {
    let mut checks = Checks::default();
    let mut records = Vec::new();
    for id in 1..=3 {
        records.push(Record::Accepted(Box::new(Accepted {
            id,
            amount_minor: Some(1_000),
            pan: Some(Zeroizing::new(b"4761739001010119".to_vec())),
            ..Accepted::default()
        })));
        records.push(Record::Answered(Answered {
            id,
            response_code: None,
            approval_code: None,
            outcome: TxnOutcome::StandIn,
            response_at_ms: None,
            sent_at_ms: None,
        }));
    }
    let r = checks.appended(&records, 0);
    assert_eq!(r.map_err(|b| b.0), Err(Invariant::StandInLimits));
}

#[test]
fn a_crash_loses_what_was_not_durable_and_recovery_reverses_what_was_forwarded() {
    let mut journal = Journal::default();
    let forwarded = |id| {
        Record::Accepted(Box::new(Accepted {
            id,
            rrn: Some(format!("{id:012}")),
            route: Some(crate::journal::record::Forwarded {
                issuer: "visa".into(),
                issuer_stan: "000001".into(),
                message: Zeroizing::new(b"0100".to_vec()),
            }),
            ..Accepted::default()
        }))
    };
    let (kept, _) = journal.append(vec![forwarded(1)], None, 0, 10);
    let (_lost, _) = journal.append(vec![forwarded(2)], None, 0, 10);
    journal.commit(kept, false);
    journal.crash();
    assert!(journal.kept_txn(1).is_some() && journal.kept_txn(2).is_none());
    // The stored message is unreadable as a real 0100: recovery says so.
    let specs = [("visa", spec())];
    assert!(journal.recover(&specs).is_err());
}
