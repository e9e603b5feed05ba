//! The log as the journal's durability point: SQLite, fed behind it,
//! ends with exactly the log's records, also when it was behind at a
//! crash; the tail reader follows the log across segments; a log that is
//! not the one SQLite was fed from refuses to open.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use proptest::prelude::*;

use super::feed::{FeedError, LogFeed};
use super::journal::{LogJournal, OpenError};
use super::reader::read_log;
use super::recover_tests::{TempDir, any_op, dump, entries, history};
use super::tail::LogTail;
use super::tests::keys;
use super::writer::{Limits, LogWriter, SEGMENT_BYTES_MIN};
use crate::journal::crypto::Keyring;
use crate::journal::record::Record;
use crate::journal::sqlite::SqliteJournal;
use crate::journal::store::JournalStore;

fn limits() -> Limits {
    Limits {
        segment_bytes: SEGMENT_BYTES_MIN,
        ..Limits::default()
    }
}

/// Appends `records` in groups of `group`, each waited for.
fn append_all(
    append: &dyn Fn(Vec<Record>, super::super::writer::OnDurable),
    records: &[Record],
    group: usize,
) {
    for chunk in records.chunks(group.max(1)) {
        let (tx, rx) = mpsc::channel();
        append(chunk.to_vec(), Box::new(move |ok| tx.send(ok).unwrap()));
        assert!(rx.recv().unwrap(), "a group was not made durable");
    }
}

/// What SQLite holds after feeding it `records` directly, once, and a
/// restart's recovery (which closes requests never forwarded).
fn fed_once(dir: &Path, keys: &Arc<Keyring>, records: &[Record]) -> Vec<String> {
    let path = dir.join("once.db");
    let mut j = SqliteJournal::open(&path, keys.clone()).unwrap();
    let mut feed = LogFeed::new(&mut j).unwrap();
    for e in entries(keys, records) {
        feed.push(e).unwrap();
    }
    feed.flush().unwrap();
    j.recover().unwrap();
    drop(j);
    dump(&path, keys)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Through the journal, or written to the log while SQLite was not
    /// being fed (a crash after the log's sync, before SQLite's commit)
    /// and caught up at the next open: the rows of one direct feed.
    #[test]
    fn sqlite_ends_with_exactly_the_logs_records(
        ops in prop::collection::vec(any_op(), 1..60),
        cut in any::<prop::sample::Index>(),
        group in 1usize..6,
    ) {
        let keys = Arc::new(keys());
        let records = history(&ops);
        let half = cut.index(records.len() + 1);
        let dir = TempDir::new("logjournal");
        let (db, log) = (dir.join("j.db"), dir.join("j.db-log"));
        let expected = fed_once(&dir, &keys, &records);

        let (j, opened) = LogJournal::open(&db, &log, limits(), keys.clone()).unwrap();
        prop_assert_eq!((opened.log_records, opened.caught_up), (0, 0));
        append_all(&|r, a| j.append(r, a), &records[..half], group);
        drop(j);

        // The rest reaches the log only: SQLite is behind by that much.
        let (w, _) = LogWriter::open(&log, limits(), keys.clone()).unwrap();
        append_all(&|r, a| w.append(r, a), &records[half..], group);
        drop(w);

        let (j, opened) = LogJournal::open(&db, &log, limits(), keys.clone()).unwrap();
        prop_assert_eq!(opened.log_records, records.len() as u64);
        prop_assert_eq!(opened.caught_up, (records.len() - half) as u64);
        drop(j);
        prop_assert_eq!(&dump(&db, &keys), &expected);
    }
}

#[test]
fn the_tail_follows_the_log_across_segments_from_any_entry() {
    let keys = Arc::new(keys());
    let dir = TempDir::new("tail");
    let detail = "d".repeat(2_000);
    let records: Vec<Record> = (0..6_000)
        .map(|i| Record::Event {
            txn_id: Some(i),
            at_ms: i as i64,
            kind: "test",
            detail: detail.clone(),
        })
        .collect();
    let (w, _) = LogWriter::open(&dir, limits(), keys.clone()).unwrap();
    let watch = w.watch();
    append_all(&|r, a| w.append(r, a), &records, 500);
    let synced = watch.synced_seq();
    assert_eq!(synced, 6_000);
    drop(w);
    let segments = super::segment::list(&dir).unwrap().len();
    assert!(
        segments >= 3,
        "{segments} segments: the test wants rotation"
    );
    let mut all = Vec::new();
    read_log(&dir, &mut |e| all.push(e)).unwrap();
    for from in [1, 2, 1_999, 2_047, 4_500, 6_000] {
        let mut tail = LogTail::new(&dir, from);
        let mut got = Vec::new();
        // In small steps, and never past what is synced.
        while tail.next_seq() <= synced {
            tail.read(synced.min(tail.next_seq() + 700), 333, &mut got)
                .unwrap();
        }
        assert_eq!(got[..], all[from as usize - 1..], "from {from}");
        tail.read(synced, 10, &mut got).unwrap();
        assert_eq!(
            got.len(),
            all.len() - from as usize + 1,
            "nothing past the end"
        );
    }
    // An entry said to be synced that no segment holds is an error.
    let mut tail = LogTail::new(&dir, 6_001);
    let err = tail.read(6_001, 1, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(err, super::LogError::Missing { seq: 6_001, .. }),
        "{err}"
    );
}

#[test]
fn a_log_that_sqlite_is_ahead_of_refuses_to_open() {
    let keys = Arc::new(keys());
    let dir = TempDir::new("ahead");
    let (db, log) = (dir.join("j.db"), dir.join("j.db-log"));
    let records = history(&[(); 3].map(|_| super::recover_tests::Op::Event(0)));
    let (j, _) = LogJournal::open(&db, &log, limits(), keys.clone()).unwrap();
    append_all(&|r, a| j.append(r, a), &records, 1);
    drop(j);
    std::fs::remove_dir_all(&log).unwrap();
    let err = LogJournal::open(&db, &log, limits(), keys).err().unwrap();
    assert!(
        matches!(
            err,
            OpenError::Feed(FeedError::Ahead {
                watermark: 3,
                log_next: 1
            })
        ),
        "{err}"
    );
}

#[test]
fn segments_sqlite_holds_are_deleted_oldest_first_and_the_log_still_opens() {
    let keys = Arc::new(keys());
    let dir = TempDir::new("retire");
    let (db, log) = (dir.join("j.db"), dir.join("j.db-log"));
    let event = |i: u64| Record::Event {
        txn_id: None,
        at_ms: i as i64,
        kind: "test",
        detail: "e".repeat(2_000),
    };
    let records: Vec<Record> = (0..6_000).map(event).collect();
    let (j, _) = LogJournal::open(&db, &log, limits(), keys.clone()).unwrap();
    append_all(&|r, a| j.append(r, a), &records, 500);
    drop(j);
    let before = super::segment::list(&log).unwrap();
    assert!(before.len() >= 3, "{} segments", before.len());

    // SQLite holds everything: all but the last segment are fed; one kept.
    let watermark = SqliteJournal::open(&db, keys.clone())
        .unwrap()
        .log_watermark()
        .unwrap();
    assert_eq!(watermark, 6_000);
    // Nothing goes while SQLite holds only the first segment's entries.
    let first_end = before[1].0 - 1;
    assert_eq!(super::feeder::retire(&log, first_end - 1, 0).unwrap(), 0);
    let deleted = super::feeder::retire(&log, watermark, 1).unwrap();
    assert_eq!(deleted, before.len() - 2);
    let after = super::segment::list(&log).unwrap();
    assert_eq!(after[..], before[before.len() - 2..]);

    // The log, shorter, opens; new records follow on and reach SQLite.
    let (j, opened) = LogJournal::open(&db, &log, limits(), keys.clone()).unwrap();
    assert_eq!(opened.caught_up, 0);
    append_all(&|r, a| j.append(r, a), &[event(6_000)], 1);
    drop(j);
    let events: i64 = crate::journal::sqlite::open_connection(&db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(events, 6_001);
}
