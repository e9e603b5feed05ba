//! Journal write throughput and added latency (issue 5, point 7): many
//! tasks each waiting for their request to be durable, as the switch does
//! before forwarding, with group commit; against the reference of one
//! commit (one fsync) per record, measured in the same run. The third
//! figure is a transaction's whole journal life as the switch writes it:
//! the request durable, then its answer queued without waiting.
//!
//!   cargo bench --bench journal            # 3 s per measurement
//!   JOURNAL_BENCH_SECONDS=10 cargo bench --bench journal
//!   JOURNAL_BENCH_REQUESTS=20000 valgrind --tool=callgrind \
//!     --toggle-collect='*write_loop*' target/release/deps/journal-* --bench
//!                                          # a fixed count per measurement

use std::sync::Arc;
use std::time::{Duration, Instant};

use cardswitch::journal::crypto::Keyring;
use cardswitch::journal::record::{Accepted, Answered, Forwarded, Record, now_ms};
use cardswitch::journal::sqlite::SqliteJournal;
use cardswitch::journal::{Journal, JournalStore, TxnOutcome};
use hdrhistogram::Histogram;
use zeroize::Zeroizing;

/// Tasks waiting for durability at once (JOURNAL_BENCH_WRITERS), like requests in flight.
fn writers() -> u64 {
    std::env::var("JOURNAL_BENCH_WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// Terminals the requests come from, as the load generator's connections.
const TERMINALS: u64 = 64;

/// A request as the switch journals it under `cardswitch load`: one of 64
/// terminals, each with its own STAN and RRN sequences, and a random PAN
/// (so the PAN look-up hash lands anywhere in its index).
fn accepted(id: u64) -> Record {
    let terminal = id % TERMINALS;
    let sequence = id / TERMINALS;
    let mut pan = b"476173".to_vec();
    pan.extend((0..10).map(|_| b'0' + fastrand::u8(0..10)));
    Record::Accepted(Box::new(Accepted {
        id,
        received_at_ms: now_ms(),
        acquirer: "pos".into(),
        request_mti: "0100".into(),
        processing_code: Some("000000".into()),
        amount_minor: Some(1500),
        transmission_at: Some("1123143005".into()),
        stan: Some(format!("{:06}", sequence % 1_000_000)),
        local_time: Some("143005".into()),
        local_date: Some("1123".into()),
        mcc: Some("5411".into()),
        pos_entry_mode: Some("051".into()),
        acquirer_inst: Some("1234567".into()),
        rrn: Some(format!("{terminal:04}{:08}", sequence % 100_000_000)),
        terminal_id: Some(format!("LT{terminal:06}")),
        merchant_id: Some("MERCHANT0000001".into()),
        merchant_name_loc: None,
        currency: Some("978".into()),
        original_data: None,
        replacement_amount: None,
        pan: Some(Zeroizing::new(pan)),
        route: Some(Forwarded {
            issuer: "issuer-a".into(),
            issuer_stan: format!("{:06}", id % 1_000_000),
            message: Zeroizing::new(vec![b'0'; 180]),
        }),
    }))
}

fn answered(id: u64) -> Record {
    Record::Answered(Answered {
        id,
        response_code: Some("00".into()),
        approval_code: Some(format!("A{:05}", id % 100_000)),
        outcome: TxnOutcome::Approved,
        response_at_ms: Some(now_ms()),
        sent_at_ms: Some(now_ms()),
    })
}

/// A fixed number of requests per measurement (JOURNAL_BENCH_REQUESTS),
/// for instruction counts; otherwise each runs for a time.
fn requests_max() -> Option<u64> {
    std::env::var("JOURNAL_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
}

struct Figures {
    /// Requests (durable records) per second.
    records_per_s: f64,
    seconds: f64,
    commits: u64,
    /// Records committed (requests and answers).
    records: u64,
    p50_us: u64,
    p99_us: u64,
}

fn measure(group_records_max: usize, seconds: f64, with_answers: bool) -> Figures {
    let dir = std::env::temp_dir().join(format!(
        "cardswitch-bench-journal-{}-{group_records_max}-{with_answers}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let keys = Arc::new(Keyring::from_env_value(&format!("b:{}", "ab".repeat(32))).expect("key"));
    let mut store = SqliteJournal::open(&dir.join("j.db"), keys).expect("open");
    store.recover().expect("recover");
    let (journal, thread) = Journal::start(Box::new(store), group_records_max);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let run_for = Duration::from_secs_f64(seconds);
    let limit = requests_max();
    let (count, hist, elapsed) = rt.block_on(async {
        let start = Instant::now();
        // Ids come from one counter, as in the switch.
        let next_id = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let tasks: Vec<_> = (0..writers())
            .map(|_| {
                let journal = journal.clone();
                let next_id = next_id.clone();
                tokio::spawn(async move {
                    let mut hist = Histogram::<u64>::new(3).expect("histogram");
                    loop {
                        let id = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let more = match limit {
                            Some(n) => id <= n,
                            None => start.elapsed() < run_for,
                        };
                        if !more {
                            break;
                        }
                        let t = Instant::now();
                        journal.durable(accepted(id)).await.expect("durable");
                        hist.record(t.elapsed().as_micros() as u64).expect("record");
                        if with_answers {
                            journal.record(answered(id)).await;
                        }
                    }
                    hist
                })
            })
            .collect();
        let mut all = Histogram::<u64>::new(3).expect("histogram");
        for t in tasks {
            all.add(t.await.expect("task")).expect("add");
        }
        journal.flush().await.expect("flush");
        (all.len(), all, start.elapsed().as_secs_f64())
    });
    let commits = journal
        .stats
        .commits
        .load(std::sync::atomic::Ordering::Relaxed);
    let records = journal
        .stats
        .records
        .load(std::sync::atomic::Ordering::Relaxed);
    drop(journal);
    thread.join().expect("writer");
    let _ = std::fs::remove_dir_all(&dir);
    Figures {
        records_per_s: count as f64 / elapsed,
        seconds: elapsed,
        commits,
        records,
        p50_us: hist.value_at_quantile(0.5),
        p99_us: hist.value_at_quantile(0.99),
    }
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: keep it short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let seconds: f64 = std::env::var("JOURNAL_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 0.3 } else { 3.0 });
    // A fixed count (for instruction counts) measures the switch's pattern only.
    let group = requests_max().is_none().then(|| {
        measure(
            cardswitch::journal::writer::GROUP_RECORDS_MAX,
            seconds,
            false,
        )
    });
    let life = measure(
        cardswitch::journal::writer::GROUP_RECORDS_MAX,
        seconds,
        true,
    );
    // One fsync per record takes long for a fixed count: only timed runs.
    let single = requests_max().is_none().then(|| measure(1, seconds, false));
    let show = |name: &str, f: &Figures| {
        println!(
            "{name:<30} {:>9.0} requests/s  {:>6} commits  {:>6.1} records/commit  durable p50 {:>6} us  p99 {:>6} us  ({:.1} s)",
            f.records_per_s,
            f.commits,
            f.records as f64 / f.commits.max(1) as f64,
            f.p50_us,
            f.p99_us,
            f.seconds
        );
    };
    println!(
        "journal, {} writers waiting for durability, {seconds} s each (WAL, synchronous FULL):",
        writers()
    );
    if let Some(group) = &group {
        show("group commit, requests only", group);
    }
    show("group commit, request+answer", &life);
    if let (Some(group), Some(single)) = (&group, single) {
        show("one commit per record (ref)", &single);
        println!(
            "group commit / one per record: {:.1}x",
            group.records_per_s / single.records_per_s.max(1.0)
        );
    }
}
