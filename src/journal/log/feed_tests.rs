//! The feeder is idempotent: fed twice, fed after a crash before a
//! commit, after a batch that failed half way, or after a restart half
//! way, SQLite holds exactly the rows of one feed. And its limits.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;

use super::feed::{FEED_BATCH_ENTRIES, FeedError, LogFeed};
use super::record::{Entry, LogRecord};
use super::recover_tests::{TempDir, any_op, dump, entries, history};
use super::tests::{accepted, keys};
use crate::journal::crypto::{CryptoError, Keyring};
use crate::journal::sqlite::SqliteJournal;
use crate::journal::store::JournalError;

fn open(path: &Path, keys: &Arc<Keyring>) -> SqliteJournal {
    SqliteJournal::open(path, keys.clone()).unwrap()
}

/// Feeds `entries` in a new feeder with batches of `batch`.
fn feed(journal: &mut SqliteJournal, entries: &[Entry], batch: usize) -> u64 {
    let mut feed = LogFeed::with_batch(journal, batch).unwrap();
    for e in entries {
        feed.push(e.clone()).unwrap();
    }
    feed.flush().unwrap();
    feed.skipped()
}

fn counts(path: &Path) -> Vec<i64> {
    let conn = crate::journal::sqlite::open_connection(path).unwrap();
    ["transactions", "events", "saf"]
        .iter()
        .map(|t| {
            conn.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
                .unwrap()
        })
        .collect()
}

/// An entry SQLite refuses (its message sealed under a key it lacks).
fn poisoned(seq: u64) -> Entry {
    let mut e = entries(
        &keys(),
        &history(&[super::recover_tests::Op::Queue(1, None)]),
    )
    .remove(0);
    e.seq = seq;
    if let LogRecord::SafQueued(q) = &mut e.record {
        q.message.key_id = "gone".into();
    }
    e
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn feeding_again_or_after_a_crash_gives_the_rows_of_one_feed(
        ops in prop::collection::vec(any_op(), 1..50),
        cut in any::<prop::sample::Index>(),
        batch in 1usize..8,
    ) {
        let keys = Arc::new(keys());
        let es = entries(&keys, &history(&ops));
        let half = cut.index(es.len() + 1);
        let dir = TempDir::new("feed");
        let path = |name: &str| dir.join(name);

        let mut once = open(&path("once.db"), &keys);
        prop_assert_eq!(feed(&mut once, &es, batch), 0);
        drop(once);
        let expected = dump(&path("once.db"), &keys);

        // Twice: the second feed skips everything.
        let mut twice = open(&path("twice.db"), &keys);
        feed(&mut twice, &es, batch);
        prop_assert_eq!(feed(&mut twice, &es, batch), es.len() as u64);
        drop(twice);

        // Half, a restart, then all: the first half is skipped.
        let mut restarted = open(&path("restarted.db"), &keys);
        feed(&mut restarted, &es[..half], batch);
        drop(restarted);
        let mut restarted = open(&path("restarted.db"), &keys);
        prop_assert_eq!(feed(&mut restarted, &es, batch), half as u64);
        drop(restarted);

        // A crash before a commit: entries taken, the batch never committed.
        let mut crashed = open(&path("crashed.db"), &keys);
        let mut f = LogFeed::with_batch(&mut crashed, FEED_BATCH_ENTRIES).unwrap();
        for e in &es[..half] {
            f.push(e.clone()).unwrap();
        }
        drop(f);
        prop_assert_eq!(crashed.log_watermark().unwrap(), 0);
        drop(crashed);
        let mut crashed = open(&path("crashed.db"), &keys);
        prop_assert_eq!(feed(&mut crashed, &es, batch), 0);
        drop(crashed);

        // A batch that fails half way: none of it is kept.
        let mut failed = open(&path("failed.db"), &keys);
        let mut f = LogFeed::with_batch(&mut failed, FEED_BATCH_ENTRIES).unwrap();
        for e in &es[..half] {
            f.push(e.clone()).unwrap();
        }
        f.push(poisoned(half as u64 + 1)).unwrap();
        let err = f.flush().unwrap_err();
        prop_assert!(matches!(err, FeedError::Journal(JournalError::Crypto(CryptoError::UnknownKey(_)))), "{}", err);
        prop_assert_eq!(failed.log_watermark().unwrap(), 0);
        feed(&mut failed, &es, batch);
        drop(failed);

        for name in ["twice.db", "restarted.db", "crashed.db", "failed.db"] {
            prop_assert_eq!(counts(&path(name)), counts(&path("once.db")), "{}", name);
            prop_assert_eq!(&dump(&path(name), &keys), &expected, "{}", name);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A batch folds answers and deliveries into their requests' rows
    /// (sqlite/coalesce.rs): the rows are those of one entry per batch,
    /// where nothing can be folded.
    #[test]
    fn folded_batches_give_the_rows_of_unfolded_ones(
        ops in prop::collection::vec(any_op(), 1..80),
        batch in 2usize..40,
    ) {
        let keys = Arc::new(keys());
        let es = entries(&keys, &history(&ops));
        let dir = TempDir::new("fold");
        let path = |name: &str| dir.join(name);
        let mut one = open(&path("one.db"), &keys);
        feed(&mut one, &es, 1);
        drop(one);
        let mut many = open(&path("many.db"), &keys);
        feed(&mut many, &es, batch);
        drop(many);
        prop_assert_eq!(dump(&path("many.db"), &keys), dump(&path("one.db"), &keys));
    }
}

#[test]
fn the_feeder_refuses_gaps_mixed_keys_and_bad_batch_sizes() {
    let keys = Arc::new(keys());
    let dir = TempDir::new("feed-limits");
    let mut j = open(&dir.join("j.db"), &keys);
    for bad in [0, FEED_BATCH_ENTRIES + 1] {
        let err = LogFeed::with_batch(&mut j, bad).err().unwrap();
        assert!(matches!(err, FeedError::BatchSize(n) if n == bad), "{err}");
    }
    let es = entries(&keys, &[accepted(1, true, true), accepted(2, true, true)]);
    let mut f = LogFeed::new(&mut j).unwrap();
    let err = f.push(es[1].clone()).unwrap_err();
    assert!(
        matches!(err, FeedError::Gap { after: 0, found: 2 }),
        "{err}"
    );
    let mut mixed = es[0].clone();
    if let LogRecord::Accepted(a) = &mut mixed.record {
        a.route.as_mut().unwrap().message.key_id = "t2".into();
    }
    let err = f.push(mixed).unwrap_err();
    assert!(matches!(err, FeedError::MixedKeys { seq: 1 }), "{err}");
    f.push(es[0].clone()).unwrap();
    f.flush().unwrap();
    assert_eq!((f.last_seq(), j.log_watermark().unwrap()), (1, 1));
}
