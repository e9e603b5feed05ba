//! The writer on real files: acknowledged appends survive a crash (a copy
//! of the log taken while it is written) and a reopen, segments rotate,
//! a torn tail is cut and the log goes on after it.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;

use super::record::{DETAIL_BYTES_MAX, Entry, LogRecord};
use super::tests::{any_record, keys};
use super::writer::{Limits, LogWriter, SEGMENT_BYTES_MIN};
use super::{LogError, segment};
use crate::journal::record::Record;

use crate::test_dir::TempDir;

fn event(txn: u64, detail: String) -> Record {
    Record::Event {
        txn_id: Some(txn),
        at_ms: 0,
        kind: "test",
        detail,
    }
}

fn txn_of(e: &Entry) -> Option<u64> {
    match &e.record {
        LogRecord::Event { txn_id, .. } => *txn_id,
        _ => None,
    }
}

fn open(dir: &Path, limits: Limits) -> Result<(LogWriter, super::Recovered, Vec<Entry>), LogError> {
    let mut got = Vec::new();
    let (w, r) = LogWriter::open_with(dir, limits, Arc::new(keys()), &mut |e| got.push(e))?;
    Ok((w, r, got))
}

fn copy_log(from: &Path, to: &Path) {
    for (_, path) in segment::list(from).unwrap() {
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

#[test]
fn acknowledged_appends_survive_a_crash_copy_and_a_reopen() {
    let dir = TempDir::new("ack");
    let snapshot = TempDir::new("ack-copy");
    let (w, r, _) = open(&dir, Limits::default()).unwrap();
    assert_eq!((r.records, r.next_seq, r.tail), (0, 1, None));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let before_copy = std::thread::scope(|s| {
        for t in 0..4u64 {
            let (w, acked) = (&w, acked.clone());
            s.spawn(move || {
                for i in 0..400u64 {
                    let txn = t * 1_000_000 + i;
                    let acked = acked.clone();
                    let group = (0..1 + i % 3)
                        .map(|k| event(txn, format!("{txn}/{k}")))
                        .collect();
                    w.append(
                        group,
                        Box::new(move |ok| {
                            assert!(ok);
                            acked.lock().unwrap().insert(txn);
                        }),
                    );
                }
            });
        }
        // A crash mid-run: the log as it is on disk now, torn tail and all.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while acked.lock().unwrap().len() < 50 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let before = acked.lock().unwrap().clone();
        copy_log(&dir, &snapshot);
        before
    });
    assert!(w.flush());
    w.close();
    assert!(
        !before_copy.is_empty(),
        "no group was durable before the copy"
    );
    let (_, r, got) = open(&snapshot, Limits::default()).unwrap();
    let kept: BTreeSet<u64> = got.iter().filter_map(txn_of).collect();
    assert!(before_copy.is_subset(&kept), "an acknowledged group lost");
    assert_eq!(r.records as usize, got.len());
    let (_, r, got) = open(&dir, Limits::default()).unwrap();
    assert_eq!(r.tail, None);
    assert_eq!(got.len(), 4 * (134 + 133 * 2 + 133 * 3));
    assert!(got.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));
    let all: BTreeSet<u64> = got.iter().filter_map(txn_of).collect();
    assert_eq!(all, *acked.lock().unwrap());
}

#[test]
fn segments_rotate_at_their_size_and_read_back_in_order() {
    let dir = TempDir::new("rotate");
    let limits = Limits {
        segment_bytes: SEGMENT_BYTES_MIN,
        ..Limits::default()
    };
    let (w, _, _) = open(&dir, limits).unwrap();
    let detail = "r".repeat(DETAIL_BYTES_MAX);
    let n = 2 * SEGMENT_BYTES_MIN as usize / DETAIL_BYTES_MAX + 100;
    for chunk in (0..n as u64).collect::<Vec<_>>().chunks(50) {
        let group = chunk.iter().map(|&i| event(i, detail.clone())).collect();
        w.append(group, Box::new(|ok| assert!(ok)));
    }
    assert!(w.flush());
    w.close();
    let segments = segment::list(&dir).unwrap();
    assert!(segments.len() >= 3, "{segments:?}");
    for (_, path) in &segments {
        let meta = std::fs::metadata(path).unwrap();
        assert_eq!(meta.len(), SEGMENT_BYTES_MIN);
        #[cfg(unix)]
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o600
        );
    }
    let (w, r, got) = open(&dir, limits).unwrap();
    assert_eq!(
        (r.records as usize, r.next_seq, r.tail),
        (n, n as u64 + 1, None)
    );
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, e)| txn_of(e) == Some(i as u64))
    );
    // Each segment is named by the sequence number of its first entry.
    for (first, _) in &segments[1..] {
        assert_eq!(got[*first as usize - 1].seq, *first);
    }
    w.append(vec![event(0, "after".into())], Box::new(|ok| assert!(ok)));
    w.close();
    assert_eq!(open(&dir, limits).unwrap().1.records as usize, n + 1);
}

#[test]
fn limits_and_oversized_groups_are_refused() {
    let dir = TempDir::new("limits");
    for bad in [
        Limits {
            segment_bytes: 1,
            ..Limits::default()
        },
        Limits {
            queue_records: 0,
            ..Limits::default()
        },
    ] {
        assert!(matches!(open(&dir, bad), Err(LogError::Limits(_))));
    }
    let limits = Limits {
        queue_records: 4,
        ..Limits::default()
    };
    let (w, _, _) = open(&dir, limits).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let group = (0..5).map(|i| event(i, String::new())).collect();
    w.append(group, Box::new(move |ok| tx.send(ok).unwrap()));
    assert!(!rx.recv().unwrap());
    assert!(w.flush());
    assert_eq!(
        w.stats().records.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

/// Tears the last segment's written part: cut, garbage or a zeroed page.
fn tear_file(path: &Path, end: usize, how: u8, at: usize) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let at = at % (end + 1);
    match how % 3 {
        0 => bytes[at..end].fill(0),
        1 => bytes[at..end + 100]
            .iter_mut()
            .for_each(|b| *b = fastrand::u8(..)),
        _ => {
            let page = at / 4096 * 4096;
            bytes[page..page + 4096].fill(0);
            return page.min(end);
        }
    }
    std::fs::write(path, &bytes).unwrap();
    at
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Through the files: a torn tail is reported and cut, every entry
    /// before it kept, and the log goes on cleanly after it.
    #[test]
    fn a_torn_file_reopens_keeps_what_came_before_and_goes_on(
        records in prop::collection::vec(any_record(), 1..60),
        how in any::<u8>(),
        at in any::<usize>(),
    ) {
        let dir = TempDir::new("torn");
        let (w, _, _) = open(&dir, Limits::default()).unwrap();
        let n = records.len();
        w.append(records, Box::new(|ok| assert!(ok)));
        prop_assert!(w.flush());
        w.close();
        let (_, path) = segment::list(&dir).unwrap().pop().unwrap();
        let mut ends = Vec::new();
        let bytes = std::fs::read(&path).unwrap();
        let mut p = 0;
        while let Ok((_, len)) = super::record::check_frame(&bytes[p..]) {
            p += len;
            ends.push(p);
        }
        prop_assert_eq!(ends.len(), n);
        let damage = tear_file(&path, p, how, at);
        let whole = ends.iter().filter(|&&e| e <= damage).count();
        let (w, r, got) = open(&dir, Limits::default()).unwrap();
        prop_assert!(got.len() >= whole && got.len() <= n);
        let kept_end = ends.get(got.len().wrapping_sub(1)).copied().unwrap_or(0);
        match &r.tail {
            Some(tail) => prop_assert_eq!(tail.offset as usize, kept_end),
            // Zeros from an entry's start on look like space never written.
            None => prop_assert!(got.len() == n || how % 3 != 1),
        }
        w.append(vec![event(1, "next".into())], Box::new(|ok| assert!(ok)));
        w.close();
        let (_, r2, again) = open(&dir, Limits::default()).unwrap();
        prop_assert_eq!(r2.tail, None);
        prop_assert_eq!(again.len(), got.len() + 1);
        prop_assert_eq!(r2.next_seq, got.len() as u64 + 2);
    }
}
