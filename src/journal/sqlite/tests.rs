//! The SQLite store: look-up batches, the WAL's bound, recovery and keys.

use super::*;
use zeroize::Zeroizing;

use crate::journal::TxnOutcome;
use crate::journal::crypto::CryptoError;
use crate::journal::query::JournalQueries;
use crate::journal::record::{Accepted, Answered, Forwarded, SafQueued};
use crate::test_dir::TempDir;

fn keys(id: &str, byte: u8) -> Arc<Keyring> {
    Arc::new(Keyring::from_env_value(&format!("{id}:{}", hex::encode([byte; 32]))).unwrap())
}

fn accepted(id: u64, forwarded: bool) -> Record {
    Record::Accepted(Box::new(Accepted {
        id,
        received_at_ms: 1,
        acquirer: "pos".into(),
        request_mti: "0100".into(),
        rrn: Some(format!("{id:012}")),
        pan: Some(Zeroizing::new(b"4761739001010119".to_vec())),
        route: forwarded.then(|| Forwarded {
            issuer: "a".into(),
            issuer_stan: "000001".into(),
            message: Zeroizing::new(b"0100 as forwarded".to_vec()),
        }),
        ..Accepted::default()
    }))
}

fn answered(id: u64) -> Record {
    Record::Answered(Answered {
        id,
        response_code: Some("00".into()),
        approval_code: None,
        outcome: TxnOutcome::Approved,
        response_at_ms: None,
        sent_at_ms: Some(2),
    })
}

fn count(path: &Path, sql: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// Appends the acceptances of `ids`, forwarded, in groups of 100.
fn append_accepted(j: &mut SqliteJournal, ids: impl IntoIterator<Item = u64>) {
    for chunk in ids.into_iter().collect::<Vec<_>>().chunks(100) {
        let group: Vec<Record> = chunk.iter().map(|&id| accepted(id, true)).collect();
        j.append(&group).unwrap();
    }
}

/// The look-up indexes' watermark of the journal at `path`.
fn indexed_through(path: &Path) -> i64 {
    lookup::watermark(&Connection::open(path).unwrap()).unwrap()
}

/// The look-up tables fill in batches as the writer goes, a request
/// that arrives after its id range was indexed is indexed on arrival,
/// and rows left above the watermark by a crash are indexed at start.
#[test]
fn lookups_are_indexed_in_batches_late_rows_at_once_and_the_rest_at_start() {
    let dir = TempDir::new("lookup");
    let path = dir.join("j.db");
    let by_pan = "SELECT COUNT(*) FROM txn_by_pan";
    let batch = lookup::BATCH_ROWS as u64;
    let mut j = SqliteJournal::open(&path, keys("k1", 1)).unwrap();
    // Ids 1..=last except 5, which arrives after the batch.
    let last = batch + 150;
    append_accepted(&mut j, (1..=last).filter(|&id| id != 5));
    let through = indexed_through(&path);
    assert!(
        through >= lookup::BATCH_ROWS,
        "a batch was indexed: {through}"
    );
    assert_eq!(count(&path, by_pan), through - 1, "all but id 5");
    j.append(&[accepted(5, true)]).unwrap();
    assert_eq!(count(&path, by_pan), through, "id 5 on arrival");
    let tail = last as i64 - through;
    assert!(tail > 0, "some rows wait for the next batch");
    // A search finds the whole card's history, indexed or not.
    let reader = SqliteReader::open(&path, false).unwrap();
    let found = crate::journal::query::search(
        &reader,
        &crate::journal::query::Filter {
            pan_hash: Some(keys("k1", 1).pan_hash(b"4761739001010119")),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(found.len() as u64, last);
    drop(reader);
    drop(j);
    // Restarted: the tail is indexed before the writer takes records.
    let _j = SqliteJournal::open(&path, keys("k1", 1)).unwrap();
    assert_eq!(count(&path, by_pan), last as i64);
    assert_eq!(indexed_through(&path), last as i64);
}

/// A group that fails after others were written above the watermark
/// (its rows rolled back): the next batch indexes exactly the rows
/// committed, once each, and nothing of the rolled-back row.
#[test]
fn a_failed_group_leaves_the_next_batch_indexing_exactly_the_rows_committed() {
    let dir = TempDir::new("lookup-failed");
    let path = dir.join("j.db");
    let batch = lookup::BATCH_ROWS as u64;
    let mut j = SqliteJournal::open(&path, keys("k1", 1)).unwrap();
    j.append(&[accepted(1, true), accepted(2, true)]).unwrap();
    // Id 1,000,000 is new, id 2 is taken: the whole group is refused.
    assert!(
        j.append(&[accepted(1_000_000, true), accepted(2, true)])
            .is_err()
    );
    append_accepted(&mut j, 3..=batch + 10);
    let through = indexed_through(&path);
    assert!(
        through >= lookup::BATCH_ROWS,
        "a batch was indexed: {through}"
    );
    for table in ["txn_by_pan", "txn_by_rrn"] {
        let indexed = count(&path, &format!("SELECT COUNT(*) FROM {table}"));
        assert_eq!(
            indexed, through,
            "{table}: every row through the watermark, once"
        );
        let strays = count(
            &path,
            &format!("SELECT COUNT(*) FROM {table} WHERE id NOT IN (SELECT id FROM transactions)"),
        );
        assert_eq!(strays, 0, "{table}: no key of a rolled-back row");
    }
}

/// Under sustained appends the background checkpointer never copies
/// the whole WAL between two commits; the writer's own checkpoint must
/// keep the WAL file from growing with every record written.
#[test]
fn the_wal_stays_bounded_under_sustained_appends() {
    let dir = TempDir::new("wal");
    let path = dir.join("j.db");
    let wal = dir.join("j.db-wal");
    let mut j = SqliteJournal::open(&path, keys("k1", 1)).unwrap();
    let mut id = 0;
    // One writer-checkpoint period of groups of 32 requests, each
    // accepted and answered in the same group.
    let mut period = |j: &mut SqliteJournal| {
        for _ in 0..WRITER_CHECKPOINT_RECORDS / 64 {
            let group: Vec<Record> = (0..32)
                .flat_map(|_| {
                    id += 1;
                    [accepted(id, true), answered(id)]
                })
                .collect();
            j.append(&group).unwrap();
        }
    };
    period(&mut j);
    let one_period = std::fs::metadata(&wal).unwrap().len();
    for _ in 0..5 {
        period(&mut j);
    }
    let after = std::fs::metadata(&wal).unwrap().len();
    assert!(
        after < 3 * one_period,
        "WAL of {after} bytes after six periods, {one_period} after one: it keeps growing"
    );
    drop(j);
}

#[test]
fn recovery_finds_open_requests_and_pending_entries_across_key_rotation() {
    let dir = TempDir::new("sqlite");
    let path = dir.join("j.db");
    {
        let mut j = SqliteJournal::open(&path, keys("k1", 1)).unwrap();
        j.append(&[
            accepted(1, true),
            accepted(2, true),
            answered(2),
            accepted(3, false),
        ])
        .unwrap();
        j.append(&[
            Record::SafQueued(SafQueued {
                id: 7,
                txn_id: Some(1),
                kind: "timeout_reversal",
                issuer: "a".into(),
                message: Zeroizing::new(b"0420".to_vec()),
                queued_at_ms: 3,
            }),
            Record::SafQueued(SafQueued {
                id: 8,
                txn_id: None,
                kind: "acquirer_advice",
                issuer: "a".into(),
                message: Zeroizing::new(b"0220".to_vec()),
                queued_at_ms: 3,
            }),
            accepted(4, true),
        ])
        .unwrap();
        let r = j.recover().unwrap();
        assert_eq!((r.next_txn_id, r.next_saf_id), (5, 9));
        // 1 has its reversal queued, 2 was answered, 3 never forwarded.
        let open: Vec<u64> = r.unfinished.iter().map(|u| u.txn_id).collect();
        assert_eq!(open, [4]);
        assert_eq!(&r.unfinished[0].message[..], b"0100 as forwarded");
        let pending: Vec<u64> = r.pending_saf.iter().map(|p| p.id).collect();
        assert_eq!(pending, [7, 8]);
        j.append(&[Record::SafDone {
            id: 7,
            delivered: true,
            attempts: 2,
            at_ms: 4,
        }])
        .unwrap();
        let state: String = j
            .conn
            .query_row("SELECT state FROM transactions WHERE id = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(state, "reversed");
    }
    // A rotated key file opens the old rows; a wrong key is refused.
    let rotated = Arc::new(
        Keyring::new(
            [
                ("k1".to_string(), Zeroizing::new([1u8; 32])),
                ("k2".to_string(), Zeroizing::new([2u8; 32])),
            ]
            .into_iter()
            .collect(),
            "k2",
            "k1",
        )
        .unwrap(),
    );
    let mut j = SqliteJournal::open(&path, rotated).unwrap();
    let r = j.recover().unwrap();
    assert_eq!(r.pending_saf.len(), 1);
    assert_eq!(&r.pending_saf[0].message[..], b"0220");
    drop(j);
    assert!(matches!(
        SqliteJournal::open(&path, keys("k1", 9)).err(),
        Some(JournalError::Crypto(CryptoError::WrongKey(id))) if id == "k1"
    ));
    assert!(matches!(
        SqliteJournal::open(&path, keys("k3", 1)).err(),
        Some(JournalError::Crypto(CryptoError::UnknownKey(_)))
    ));
    // Nothing in the files holds the PAN in the clear.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(16).any(|w| w == b"4761739001010119"));
    }
}

/// Clearing's reads: capture's requests in id order until the callback
/// stops, presentment rows in the order asked with the PAN opened, and
/// typed refusals for a missing row, a wrong key and a missing journal.
#[test]
fn the_reader_hands_clearing_its_rows_and_refuses_what_it_cannot() {
    use crate::journal::capture_rows::CaptureRows;
    use std::ops::ControlFlow;
    let dir = TempDir::new("reader");
    let path = dir.join("j.db");
    let mut j = SqliteJournal::open(&path, keys("k1", 1)).unwrap();
    j.append(&[accepted(1, true), answered(1), accepted(2, false)])
        .unwrap();
    let r = SqliteReader::open(&path, false).unwrap();
    let rows = r.presentment_rows(&[2, 1], &keys("k1", 1)).unwrap();
    let ids: Vec<i64> = rows.iter().map(|p| p.txn_id).collect();
    assert_eq!(ids, [2, 1]);
    assert_eq!(
        rows[1].pan.as_ref().map(|p| p.to_vec()),
        Some(b"4761739001010119".to_vec())
    );
    assert_eq!(rows[1].pan_masked.as_deref(), Some("476173******0119"));
    assert!(matches!(
        r.presentment_rows(&[1, 3], &keys("k1", 1)),
        Err(JournalError::NoTransaction(3))
    ));
    assert!(matches!(
        r.presentment_rows(&[1], &keys("k1", 9)),
        Err(JournalError::SealedPan { txn_id: 1, .. })
    ));
    let mut seen = Vec::new();
    let before = CaptureRows::ReceivedBefore { before_ms: 2 };
    let count = r
        .for_each_capture_row(before, &mut |c| {
            seen.push((c.id, c.request_mti.to_vec(), c.outcome.map(<[u8]>::to_vec)));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(count, 2);
    assert_eq!(seen[0], (1, b"0100".to_vec(), Some(b"approved".to_vec())));
    assert_eq!(seen[1], (2, b"0100".to_vec(), None));
    let first_only = r
        .for_each_capture_row(before, &mut |_| ControlFlow::Break(()))
        .unwrap();
    assert_eq!(first_only, 1);
    let none = CaptureRows::ReceivedBefore { before_ms: 1 };
    assert_eq!(
        r.for_each_capture_row(none, &mut |_| ControlFlow::Continue(()))
            .unwrap(),
        0
    );
    assert!(matches!(
        SqliteReader::open(&dir.join("none.db"), false),
        Err(JournalError::NotFound { .. })
    ));
    drop((r, j));
}

/// Stored outcomes are read back typed: the journal's own words
/// (`undelivered` included), and a word this build does not know is an
/// error naming it, for a search and for one transaction's life.
#[test]
fn stored_outcomes_are_read_typed_and_unknown_ones_refused() {
    let dir = TempDir::new("outcomes");
    let path = dir.join("j.db");
    let mut j = SqliteJournal::open(&path, keys("k1", 1)).unwrap();
    let undelivered = Record::Delivery {
        id: 1,
        at_ms: 3,
        delivered: false,
    };
    j.append(&[accepted(1, true), answered(1), undelivered])
        .unwrap();
    let r = SqliteReader::open(&path, false).unwrap();
    let (view, _) = r.life(1).unwrap().expect("row 1");
    assert_eq!(view.outcome, Some(TxnOutcome::Undelivered));
    j.conn
        .execute(
            "UPDATE transactions SET outcome = 'reversed?' WHERE id = 1",
            [],
        )
        .unwrap();
    let err = r.life(1).expect_err("an unknown outcome");
    assert!(err.to_string().contains("reversed?"), "{err}");
    let searched = r.for_each(&crate::journal::query::Filter::default(), &mut |_| Ok(()));
    let err = searched.expect_err("an unknown outcome");
    assert!(err.to_string().contains("unknown journal outcome"), "{err}");
    drop((r, j));
}
