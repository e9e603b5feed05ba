//! Recovery from the log against SQLite's: random record sequences,
//! written to the log (real files) and to SQLite the old way, give the
//! same [`Recovery`]; the log's entries fed to SQLite give the same rows
//! as the old way (sealed columns compared opened: the nonces differ).
//! Then the fold's limits.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use proptest::prelude::*;
use rusqlite::types::Value;
use zeroize::Zeroizing;

use super::feed::LogFeed;
use super::record::{Entry, LogRecord, encode_entry};
use super::recover::{LogRecovery, RecoverError, RecoverLimits};
use super::seal::Sealer;
use super::tests::{accepted, keys};
use super::writer::{Limits, LogWriter, SEGMENT_BYTES_MIN};
use crate::journal::TxnOutcome;
use crate::journal::crypto::Keyring;
use crate::journal::record::{Answered, Record, SafQueued};
use crate::journal::sqlite::{SqliteJournal, open_connection};
use crate::journal::store::{JournalStore, Recovery};

pub(super) use crate::test_dir::TempDir;

/// A step of a random history; `Option<usize>` picks an earlier
/// transaction or entry (`None`: an id never used).
#[derive(Debug, Clone)]
pub(super) enum Op {
    Accept(bool, bool),
    Answer(Option<usize>),
    Deliver(usize, bool),
    Event(usize),
    Queue(u8, Option<usize>),
    Attempt(Option<usize>, u32),
    Done(Option<usize>, bool, u32),
}

/// An id no history assigns.
const UNKNOWN_ID: u64 = 1 << 50;

pub(super) fn any_op() -> impl Strategy<Value = Op> {
    let pick = || prop::option::weighted(0.9, any::<usize>());
    prop_oneof![
        3 => (any::<bool>(), any::<bool>()).prop_map(|(p, r)| Op::Accept(p, r)),
        2 => pick().prop_map(Op::Answer),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(t, d)| Op::Deliver(t, d)),
        1 => any::<usize>().prop_map(Op::Event),
        2 => (0u8..3, pick()).prop_map(|(k, t)| Op::Queue(k, t)),
        1 => (pick(), 0u32..60).prop_map(|(s, a)| Op::Attempt(s, a)),
        1 => (pick(), any::<bool>(), 0u32..60).prop_map(|(s, d, a)| Op::Done(s, d, a)),
    ]
}

fn choose(ids: &[u64], pick: Option<usize>) -> u64 {
    match pick {
        Some(i) if !ids.is_empty() => ids[i % ids.len()],
        _ => UNKNOWN_ID,
    }
}

/// The records of a history, ids assigned in order as the switch does.
pub(super) fn history(ops: &[Op]) -> Vec<Record> {
    let (mut txns, mut safs) = (Vec::new(), Vec::new());
    let mut out = Vec::new();
    for op in ops {
        out.push(match *op {
            Op::Accept(pan, route) => {
                let id = txns.len() as u64 + 1;
                txns.push(id);
                let mut r = accepted(id, pan, route);
                if let Record::Accepted(a) = &mut r
                    && let Some(rt) = &mut a.route
                {
                    rt.message = Zeroizing::new(format!("0100 to issuer, txn {id}").into_bytes());
                }
                r
            }
            Op::Answer(t) => Record::Answered(Answered {
                id: choose(&txns, t),
                response_code: Some("00".into()),
                approval_code: Some("A1B2C3".into()),
                outcome: TxnOutcome::Approved,
                response_at_ms: Some(7),
                sent_at_ms: None,
            }),
            Op::Deliver(t, delivered) => Record::Delivery {
                id: choose(&txns, Some(t)),
                at_ms: 9,
                delivered,
            },
            Op::Event(t) => Record::Event {
                txn_id: Some(choose(&txns, Some(t))),
                at_ms: 3,
                kind: "timed_out",
                detail: format!("event {}", out.len()),
            },
            Op::Queue(k, t) => {
                let id = safs.len() as u64 + 1;
                safs.push(id);
                let kind = ["timeout_reversal", "acquirer_advice", "stand_in_advice"][k as usize];
                Record::SafQueued(SafQueued {
                    id,
                    txn_id: t.map(|t| choose(&txns, Some(t))),
                    kind,
                    issuer: "issuer-b".into(),
                    message: Zeroizing::new(format!("0420 entry {id}").into_bytes()),
                    queued_at_ms: 11,
                })
            }
            Op::Attempt(s, attempts) => Record::SafAttempted {
                id: choose(&safs, s),
                attempts,
            },
            Op::Done(s, delivered, attempts) => Record::SafDone {
                id: choose(&safs, s),
                delivered,
                attempts,
                at_ms: 13,
            },
        });
    }
    out
}

/// The log's entries of `records`, from sequence 1, sealed in memory.
pub(super) fn entries(keys: &Keyring, records: &[Record]) -> Vec<Entry> {
    let mut sealer = Sealer::new(keys);
    (1..)
        .zip(records)
        .map(|(seq, r)| Entry {
            seq,
            record: sealer.seal(r.clone()),
        })
        .collect()
}

type SafView = (u64, Option<u64>, String, String, Vec<u8>, u32);
type OpenView = (u64, String, Vec<u8>);

/// A recovery as comparable values.
fn view(r: &Recovery) -> (u64, u64, Vec<SafView>, Vec<OpenView>) {
    let saf = r.pending_saf.iter().map(|p| {
        let m = p.message.to_vec();
        (
            p.id,
            p.txn_id,
            p.kind.clone(),
            p.issuer.clone(),
            m,
            p.attempts,
        )
    });
    let open = r
        .unfinished
        .iter()
        .map(|u| (u.txn_id, u.issuer.clone(), u.message.to_vec()));
    (r.next_txn_id, r.next_saf_id, saf.collect(), open.collect())
}

/// Every row of the main tables, sealed columns opened (so stores whose
/// nonces differ compare equal when their contents do).
pub(super) fn dump(path: &Path, keys: &Keyring) -> Vec<String> {
    let conn = open_connection(path).unwrap();
    let mut out = Vec::new();
    for table in ["transactions", "events", "saf"] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY id"))
            .unwrap();
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let get = |name: &str| -> Value {
                let i = names.iter().position(|n| n == name).unwrap();
                row.get(i).unwrap()
            };
            let mut line = vec![table.to_string()];
            for name in &names {
                let shown = match (name.as_str(), get(name)) {
                    ("pan_sealed" | "forwarded_sealed" | "message_sealed", Value::Blob(b)) => {
                        let key = match get(if table == "saf" {
                            "key_id"
                        } else {
                            "pan_key_id"
                        }) {
                            Value::Text(k) => k,
                            other => panic!("no key for a sealed column: {other:?}"),
                        };
                        let purpose: &[u8] = if name == "pan_sealed" {
                            b"pan"
                        } else {
                            b"message"
                        };
                        format!(
                            "opened {:?}",
                            keys.open(purpose, &key, &b).unwrap().to_vec()
                        )
                    }
                    (_, v) => format!("{v:?}"),
                };
                line.push(format!("{name}={shown}"));
            }
            out.push(line.join(" "));
        }
    }
    out
}

/// Writes `records` to a real log in groups, then reads it back.
fn through_the_log(dir: &Path, keys: &Arc<Keyring>, records: &[Record]) -> Vec<Entry> {
    let limits = Limits {
        segment_bytes: SEGMENT_BYTES_MIN,
        ..Limits::default()
    };
    let (w, _) = LogWriter::open(dir, limits, keys.clone()).unwrap();
    let all_ok = Arc::new(AtomicBool::new(true));
    for group in records.chunks(5) {
        let ok = all_ok.clone();
        w.append(
            group.to_vec(),
            Box::new(move |durable| {
                if !durable {
                    ok.store(false, Ordering::Relaxed);
                }
            }),
        );
    }
    assert!(w.flush());
    w.close();
    assert!(
        all_ok.load(Ordering::Relaxed),
        "a group was not made durable"
    );
    let mut got = Vec::new();
    let (w, _) = LogWriter::open_with(dir, limits, keys.clone(), &mut |e| got.push(e)).unwrap();
    w.close();
    got
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The log's fold and SQLite's recovery agree, and so does SQLite
    /// fed from the log, row for row.
    #[test]
    fn the_log_and_sqlite_recover_the_same(ops in prop::collection::vec(any_op(), 0..60)) {
        let keys = Arc::new(keys());
        let records = history(&ops);
        let dir = TempDir::new("same");
        let old_path = dir.join("old.db");
        let mut old = SqliteJournal::open(&old_path, keys.clone()).unwrap();
        for group in records.chunks(7) {
            old.append(group).unwrap();
        }
        let expected = old.recover().unwrap();

        let entries = through_the_log(&dir.join("log"), &keys, &records);
        prop_assert_eq!(entries.len(), records.len());
        let mut fold = LogRecovery::new();
        for e in &entries {
            fold.apply(e).unwrap();
        }
        let got = fold.finish(&keys).unwrap();
        prop_assert_eq!(view(&got), view(&expected));

        let fed_path = dir.join("fed.db");
        let mut fed = SqliteJournal::open(&fed_path, keys.clone()).unwrap();
        let mut feed = LogFeed::with_batch(&mut fed, 4).unwrap();
        for e in entries {
            feed.push(e).unwrap();
        }
        feed.flush().unwrap();
        prop_assert_eq!(fed.log_watermark().unwrap(), records.len() as u64);
        let fed_recovery = fed.recover().unwrap();
        prop_assert_eq!(view(&fed_recovery), view(&expected));
        drop((old, fed));
        prop_assert_eq!(dump(&fed_path, &keys), dump(&old_path, &keys));
    }
}

fn fold_all(limits: RecoverLimits, entries: &[Entry]) -> Result<LogRecovery, RecoverError> {
    let mut fold = LogRecovery::with_limits(limits);
    for e in entries {
        fold.apply(e)?;
    }
    Ok(fold)
}

#[test]
fn the_fold_holds_only_open_requests_and_refuses_more_than_its_limit() {
    let keys = keys();
    let limits = RecoverLimits {
        open_txns: 2,
        ..RecoverLimits::default()
    };
    // Three forwarded, one answered in between: two open at most.
    let ops = [
        Op::Accept(true, true),
        Op::Accept(false, true),
        Op::Answer(Some(0)),
    ];
    let mut records = history(&ops);
    records.push(accepted(3, true, true));
    let fold = fold_all(limits, &entries(&keys, &records)).unwrap();
    assert_eq!(fold.held(), (2, 0));
    records.push(accepted(4, false, true));
    let err = fold_all(limits, &entries(&keys, &records)).unwrap_err();
    assert!(
        matches!(
            err,
            RecoverError::OverLimit {
                what: "open transactions",
                limit: 2
            }
        ),
        "{err}"
    );
}

#[test]
fn pending_entries_and_bytes_have_limits_too() {
    let keys = keys();
    let records = history(&[Op::Queue(1, None), Op::Queue(2, None)]);
    let few = RecoverLimits {
        pending_saf: 1,
        ..RecoverLimits::default()
    };
    let err = fold_all(few, &entries(&keys, &records)).unwrap_err();
    assert!(
        matches!(err, RecoverError::OverLimit { limit: 1, .. }),
        "{err}"
    );
    let small = RecoverLimits {
        kept_bytes: 64,
        ..RecoverLimits::default()
    };
    let err = fold_all(small, &entries(&keys, &records[..1])).unwrap_err();
    assert!(
        matches!(
            err,
            RecoverError::OverLimit {
                what: "bytes",
                limit: 64
            }
        ),
        "{err}"
    );
    // Done entries give their bytes back.
    let mut records = history(&[Op::Queue(1, None), Op::Done(Some(0), true, 1)]);
    records.extend(history(&[Op::Queue(1, None)]).into_iter().map(|r| match r {
        Record::SafQueued(q) => Record::SafQueued(SafQueued { id: 2, ..q }),
        other => other,
    }));
    let fits = RecoverLimits {
        kept_bytes: 200,
        ..RecoverLimits::default()
    };
    assert_eq!(
        fold_all(fits, &entries(&keys, &records)).unwrap().held(),
        (0, 1)
    );
}

#[test]
fn out_of_order_entries_and_reused_open_ids_are_errors() {
    let keys = keys();
    let mut es = entries(&keys, &history(&[Op::Accept(true, true), Op::Event(0)]));
    es[1].seq = 5;
    let err = fold_all(RecoverLimits::default(), &es).unwrap_err();
    assert!(
        matches!(
            err,
            RecoverError::OutOfOrder {
                expected: 2,
                found: 5
            }
        ),
        "{err}"
    );
    let twice = [accepted(7, true, true), accepted(7, false, true)];
    let err = fold_all(RecoverLimits::default(), &entries(&keys, &twice)).unwrap_err();
    assert!(
        matches!(err, RecoverError::Duplicate { seq: 2, id: 7, .. }),
        "{err}"
    );
}

#[test]
fn ids_compare_as_sqlite_integers_and_a_message_that_does_not_open_is_an_error() {
    let keys = keys();
    // Stored as SQLite integers, an id over i64::MAX is negative: SQLite's
    // MAX(id) ignores it and so does the fold.
    let records = [
        accepted(5, false, false),
        accepted(u64::MAX - 1, false, true),
    ];
    let fold = fold_all(RecoverLimits::default(), &entries(&keys, &records)).unwrap();
    let r = fold.finish(&keys).unwrap();
    assert_eq!((r.next_txn_id, r.next_saf_id), (6, 1));
    assert_eq!(r.unfinished[0].txn_id, u64::MAX - 1);
    let mut es = entries(&keys, &[accepted(1, false, true)]);
    if let LogRecord::Accepted(a) = &mut es[0].record {
        a.route.as_mut().unwrap().message.blob[20] ^= 1;
    }
    let fold = fold_all(RecoverLimits::default(), &es).unwrap();
    assert!(matches!(fold.finish(&keys), Err(RecoverError::Crypto(_))));
    // The entries the tests build encode (they are entries a log holds).
    let mut buf = Vec::new();
    encode_entry(1, &entries(&keys, &records)[1].record, &mut buf).unwrap();
}

#[test]
fn a_reversal_closed_after_its_request_closes_it_in_both_stores() {
    // Unusual orders: a reversal queued before its request (SQLite's
    // update finds no row) and closed after it; an advice closes nothing.
    let keys = Arc::new(keys());
    let saf = |id, txn, kind| {
        Record::SafQueued(SafQueued {
            id,
            txn_id: Some(txn),
            kind,
            issuer: "issuer-b".into(),
            message: Zeroizing::new(b"0420".to_vec()),
            queued_at_ms: 1,
        })
    };
    let records = [
        saf(1, 5, "timeout_reversal"),
        accepted(5, true, true),
        accepted(6, false, true),
        saf(2, 6, "acquirer_advice"),
        Record::SafDone {
            id: 1,
            delivered: true,
            attempts: 1,
            at_ms: 2,
        },
    ];
    let dir = TempDir::new("order");
    let mut old = SqliteJournal::open(&dir.join("old.db"), keys.clone()).unwrap();
    old.append(&records).unwrap();
    let expected = old.recover().unwrap();
    let got = fold_all(RecoverLimits::default(), &entries(&keys, &records))
        .unwrap()
        .finish(&keys)
        .unwrap();
    assert_eq!(view(&got), view(&expected));
    let open: Vec<u64> = got.unfinished.iter().map(|u| u.txn_id).collect();
    assert_eq!((open, got.pending_saf.len()), (vec![6], 1));
}
