//! The journal log's goals (issue 22): records/s and CPU per record from
//! 8 writer threads with group commit, each keeping requests in flight as
//! the switch does (a request's record, then its answer's); the records
//! per sync, the p99 added latency (append to durable), and one bare
//! `fdatasync` measured in the same run. Exits non-zero when a goal is
//! missed (only under `--bench`: `cargo test --benches` runs it briefly).
//!
//!
//! Then SQLite's feeder over the log just written, alone (the feeder's
//! own CPU per record: tail reads, decoding, SQLite), as `feeder.rs` runs
//! it: `LogTail` reads, `LogFeed` transactions, `synchronous` relaxed.
//!
//!   cargo bench --bench journal_log
//!   JOURNAL_LOG_BENCH_RECORDS=4000000 JOURNAL_LOG_BENCH_IN_FLIGHT=64 cargo bench --bench journal_log
//!   JOURNAL_LOG_BENCH_FEED=0 cargo bench --bench journal_log     # the log only

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cardswitch::journal::crypto::Keyring;
use cardswitch::journal::log::feed::{FEED_BATCH_ENTRIES, LogFeed};
use cardswitch::journal::log::tail::LogTail;
use cardswitch::journal::log::{Limits, LogWriter};
use cardswitch::journal::record::{Accepted, Answered, Forwarded, Record, now_ms};
use cardswitch::journal::sqlite::SqliteJournal;
use hdrhistogram::Histogram;
use zeroize::Zeroizing;

// The switch's allocator (src/main.rs), so allocation costs are its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WRITERS: u64 = 8;
const GOAL_RECORDS_PER_S: f64 = 500_000.0;
const GOAL_CPU_US_PER_RECORD: f64 = 1.5;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A request as the switch journals it: a random PAN, a forwarded message.
fn accepted(id: u64) -> Record {
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
        stan: Some(format!("{:06}", id % 1_000_000)),
        local_time: Some("143005".into()),
        local_date: Some("1123".into()),
        mcc: Some("5411".into()),
        pos_entry_mode: Some("051".into()),
        acquirer_inst: Some("1234567".into()),
        rrn: Some(format!("{:012}", id)),
        terminal_id: Some(format!("LT{:06}", id % 64)),
        merchant_id: Some("MERCHANT0000001".into()),
        currency: Some("978".into()),
        pan: Some(Zeroizing::new(pan)),
        route: Some(Forwarded {
            issuer: "issuer-a".into(),
            issuer_stan: format!("{:06}", id % 1_000_000),
            message: Zeroizing::new(vec![b'0'; 180]),
        }),
        ..Accepted::default()
    }))
}

fn answered(id: u64) -> Record {
    Record::Answered(Answered {
        id,
        response_code: Some("00".into()),
        approval_code: Some(format!("A{:05}", id % 100_000)),
        outcome: cardswitch::journal::TxnOutcome::Approved,
        response_at_ms: Some(now_ms()),
        sent_at_ms: Some(now_ms()),
    })
}

/// User + system CPU of the whole process so far.
fn process_cpu() -> Duration {
    #[cfg(target_os = "linux")]
    {
        let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the struct it is given.
        let u = unsafe {
            libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr());
            u.assume_init()
        };
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        tv(u.ru_utime) + tv(u.ru_stime)
    }
    #[cfg(not(target_os = "linux"))]
    Duration::ZERO
}

/// CPU time of the log's own threads (appender, syncer, the spare
/// segment's maker), from /proc/self/task/*/schedstat, in that order.
fn log_threads_cpu() -> [Duration; 3] {
    let mut total = [0u64; 3];
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return [Duration::ZERO; 3];
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let Some(slot) = ["journal-log-app", "journal-log-syn", "journal-log-spa"]
            .iter()
            .position(|name| comm.starts_with(name))
        else {
            continue;
        };
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total[slot] += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total.map(Duration::from_nanos)
}

/// One bare fdatasync of a 4 KiB overwrite in the log's directory: median.
fn bare_fdatasync(dir: &std::path::Path) -> (u64, u64) {
    let path = dir.join("fdatasync-probe");
    let mut f = std::fs::File::create(&path).expect("probe file");
    f.write_all(&[1u8; 4096]).expect("write");
    f.sync_all().expect("sync");
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    for i in 0..200u32 {
        use std::os::unix::fs::FileExt;
        f.write_all_at(&i.to_le_bytes(), 0).expect("write");
        let t = Instant::now();
        f.sync_data().expect("fdatasync");
        hist.record(t.elapsed().as_micros() as u64).expect("record");
    }
    let _ = std::fs::remove_file(&path);
    (hist.value_at_quantile(0.5), hist.value_at_quantile(0.99))
}

struct Figures {
    records: u64,
    seconds: f64,
    process_cpu: Duration,
    log_cpu: [Duration; 3],
    syncs: u64,
    hist: Histogram<u64>,
}

/// One writer thread: keeps `in_flight` appends outstanding, each one
/// record, until its records are all appended; the latencies come back
/// on a channel. A request's id is taken from `ids` as it is appended
/// (its answer, the next record, gets the same), so ids reach the log in
/// about their order, as the switch assigns and journals them.
fn writer_thread(
    log: &LogWriter,
    records: Vec<Record>,
    in_flight: usize,
    ids: &AtomicU64,
) -> Histogram<u64> {
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    let (done_tx, done_rx) = mpsc::channel::<u64>();
    let mut outstanding = 0usize;
    let mut id = 0;
    for mut record in records {
        while outstanding >= in_flight {
            hist.record(done_rx.recv().expect("ack")).expect("record");
            outstanding -= 1;
        }
        match &mut record {
            Record::Accepted(a) => {
                id = ids.fetch_add(1, Ordering::Relaxed);
                a.id = id;
            }
            Record::Answered(a) => a.id = id,
            _ => {}
        }
        let tx = done_tx.clone();
        let started = Instant::now();
        log.append(
            vec![record],
            Box::new(move |ok| {
                assert!(ok, "append failed");
                let _ = tx.send(started.elapsed().as_micros() as u64);
            }),
        );
        outstanding += 1;
    }
    for _ in 0..outstanding {
        hist.record(done_rx.recv().expect("ack")).expect("record");
    }
    hist
}

/// Writer `w`'s records, built on its own thread before the clock starts
/// (building them is the switch's work, not the log's; and the switch's
/// records are freed on the thread that made them, as the writer has
/// them dropped): a request's, then its answer's (their ids are set as
/// they are appended).
fn build_records(w: u64, total: u64) -> Vec<Record> {
    (0..total / WRITERS)
        .map(|i| {
            let id = i / 2 * WRITERS + w;
            if i % 2 == 0 {
                accepted(id)
            } else {
                answered(id)
            }
        })
        .collect()
}

fn keys() -> Arc<Keyring> {
    Arc::new(Keyring::from_env_value(&format!("b:{}", "ab".repeat(32))).expect("key"))
}

/// SQLite fed the log in `dir` (`records` entries) from empty, as the
/// feeder does: the entries applied, seconds, and the process's CPU
/// (the feed and SQLite's checkpointer thread).
fn feed(dir: &std::path::Path, records: u64) -> (u64, f64, Duration) {
    let db = dir.join("journal.db");
    let (cpu0, start) = (process_cpu(), Instant::now());
    let mut store = SqliteJournal::open(&db, keys()).expect("open SQLite");
    store.relax_sync().expect("relax");
    let mut applied = 0u64;
    {
        let mut feed = LogFeed::new(&mut store).expect("feed");
        let mut tail = LogTail::new(dir, 1);
        let mut entries = Vec::with_capacity(FEED_BATCH_ENTRIES);
        while applied < records {
            tail.read(records, FEED_BATCH_ENTRIES, &mut entries)
                .expect("read the log");
            applied += entries.len() as u64;
            for entry in entries.drain(..) {
                feed.push(entry).expect("feed");
            }
            feed.flush().expect("commit");
        }
    }
    drop(store);
    (applied, start.elapsed().as_secs_f64(), process_cpu() - cpu0)
}

/// The log's figures; and the CPU per record the writers took to build
/// their records, before the clock.
fn measure(dir: &std::path::Path, total: u64, in_flight: usize) -> (Figures, f64) {
    let keys = keys();
    let (log, _) = LogWriter::open(dir, Limits::default(), keys).expect("open the log");
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    let ids = AtomicU64::new(1);
    let built = std::sync::Barrier::new(WRITERS as usize + 1);
    let build0 = process_cpu();
    let mut clock = None;
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (log, ids, built) = (&log, &ids, &built);
                s.spawn(move || {
                    let records = build_records(w, total);
                    built.wait();
                    writer_thread(log, records, in_flight, ids)
                })
            })
            .collect();
        built.wait();
        clock = Some((process_cpu(), log_threads_cpu(), Instant::now()));
        for t in threads {
            hist.add(t.join().expect("writer")).expect("add");
        }
    });
    let (cpu0, log0, start) = clock.expect("the writers started");
    let build_us = (cpu0 - build0).as_secs_f64() * 1e6 / total.max(1) as f64;
    let seconds = start.elapsed().as_secs_f64();
    let log1 = log_threads_cpu();
    let process_cpu = process_cpu() - cpu0;
    let log_cpu = [0, 1, 2].map(|i| log1[i].saturating_sub(log0[i]));
    let stats = log.stats();
    let (records, syncs) = (
        stats.records.load(Ordering::Relaxed),
        stats.syncs.load(Ordering::Relaxed),
    );
    log.close();
    let figures = Figures {
        records,
        seconds,
        process_cpu,
        log_cpu,
        syncs,
        hist,
    };
    (figures, build_us)
}

fn main() -> std::process::ExitCode {
    let full = std::env::args().any(|a| a == "--bench");
    let total = env_or(
        "JOURNAL_LOG_BENCH_RECORDS",
        if full { 1_600_000u64 } else { 20_000 },
    );
    let in_flight = env_or("JOURNAL_LOG_BENCH_IN_FLIGHT", 256usize);
    let dir = std::env::temp_dir().join(format!("cardswitch-bench-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let (sync_p50, sync_p99) = bare_fdatasync(&dir);
    let (f, build_us) = measure(&dir, total, in_flight);
    let fed = (env_or("JOURNAL_LOG_BENCH_FEED", 1u8) == 1).then(|| feed(&dir, f.records));
    let _ = std::fs::remove_dir_all(&dir);
    let per_s = f.records as f64 / f.seconds;
    let cpu_us = f.process_cpu.as_secs_f64() * 1e6 / f.records.max(1) as f64;
    let us = |d: Duration| d.as_secs_f64() * 1e6 / f.records.max(1) as f64;
    let [append_us, sync_us, spare_us] = f.log_cpu.map(us);
    println!(
        "journal log: {WRITERS} writers x {in_flight} in flight, one record per append (a request's, then its answer's), {} records in {:.1} s",
        f.records, f.seconds
    );
    println!("  records/s            {per_s:>10.0}   (goal >= {GOAL_RECORDS_PER_S:.0})");
    println!(
        "  CPU per record       {cpu_us:>10.2} us (goal <= {GOAL_CPU_US_PER_RECORD}; getrusage user+sys of the process / records)"
    );
    // The spare segment's maker is a thread per segment, gone before it
    // is read when it finished: its CPU is in the process's, mostly.
    println!(
        "    of which the log   {:>10.2} us (appender {append_us:.2}, syncer {sync_us:.2}, spare segments {spare_us:.2} while running)",
        append_us + sync_us + spare_us
    );
    println!(
        "  building a record    {build_us:>10.2} us (before the clock: the switch's work, not counted)"
    );
    println!(
        "  records per sync     {:>10.1}   ({} syncs)",
        f.records as f64 / f.syncs.max(1) as f64,
        f.syncs
    );
    println!(
        "  added latency        p50 {} us, p99 {} us, max {} us",
        f.hist.value_at_quantile(0.5),
        f.hist.value_at_quantile(0.99),
        f.hist.max()
    );
    println!(
        "  bare fdatasync       p50 {sync_p50} us, p99 {sync_p99} us (same run, same directory)"
    );
    if let Some((applied, seconds, cpu)) = fed {
        println!(
            "  SQLite feeder        {:>10.2} us CPU per record, {:.0} records/s ({applied} records, alone, from empty)",
            cpu.as_secs_f64() * 1e6 / applied.max(1) as f64,
            applied as f64 / seconds
        );
    }
    let missed = per_s < GOAL_RECORDS_PER_S || cpu_us > GOAL_CPU_US_PER_RECORD;
    if full && missed {
        println!("journal log: a goal is missed");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
