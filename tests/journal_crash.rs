//! The journal's promise under SIGKILL: the switch runs as a child process
//! under load and is killed at random moments (sometimes again during its
//! recovery, with the issuer sometimes stalled), then restarted. At the
//! end, against the issuer simulator's own record and the terminals': no
//! request reached the issuer twice, and the acquirer, the issuer and the
//! journal agree on every request's net outcome (no split: an approval
//! kept by the terminal is kept by the issuer, and the other way round).
//! Then the database files and every log are searched for the PANs: none
//! may be there in the clear. Cycles: 20, or CARDSWITCH_CRASH_CYCLES; the
//! seed is printed and taken from CARDSWITCH_CRASH_SEED.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cardswitch::message::sensitive::luhn_valid;
use serde_json::Value;
use support::certs::temp_dir;
use support::ledger::{AcquirerSide, IssuerSide, JournalSide, Splits, read_lines};
use support::process::{BIN, Running, start_listening, start_logged, wait_until};

const KEY: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const WRONG_KEY: &str = "k1:ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const BIN_PREFIX: &str = "476173";

fn write_config(dir: &Path, issuer: &str, listen: &str) -> String {
    let text = format!(
        r#"
[switch]
institution_id = "99000000001"
[switch.saf]
retry_min_ms = 50
retry_max_ms = 300
expiry_s = 600
max_attempts = 1000

[journal]
path = "journal.db"

[[acquirer]]
name = "pos"
listen = "{listen}"
spec = "iso87-ascii"
framing = {{ length = "ascii4" }}

[[issuer]]
name = "issuer-a"
addresses = ["{issuer}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
connections = 2
timeout_ms = 400

[default_route]
issuer = "issuer-a"
"#
    );
    let path = dir.join("switch.toml");
    std::fs::write(&path, text).expect("config");
    path.display().to_string()
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or("")
}

fn start_switch(dir: &Path, config: &str, cycle: usize) -> Running {
    let log = dir.join(format!("switch-{cycle}.log"));
    start_logged(
        &["run", "--config", config],
        1,
        &log,
        &[("CARDSWITCH_JOURNAL_KEY", KEY), ("RUST_LOG", "debug")],
    )
    .0
}

fn sigkill(proc: &mut Running) {
    let pid = proc.child.id().to_string();
    let _ = Command::new("kill").args(["-KILL", &pid]).status();
    let _ = proc.child.wait();
}

/// Rows of the journal as (rrn, request mti, state, response code, outcome).
fn journal_rows(db: &Path) -> Vec<(String, String, String, String, String)> {
    let conn = rusqlite::Connection::open(db).expect("open journal");
    let mut stmt = conn
        .prepare(
            "SELECT COALESCE(rrn, ''), request_mti, state, COALESCE(response_code, ''),
                    COALESCE(outcome, '') FROM transactions",
        )
        .expect("query");
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .expect("rows")
    .collect::<Result<_, _>>()
    .expect("rows")
}

fn open_work(db: &Path) -> (i64, i64) {
    let conn = rusqlite::Connection::open(db).expect("open journal");
    let open: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM transactions WHERE state IN ('received', 'forwarded', 'reversal_queued')",
            [],
            |r| r.get(0),
        )
        .expect("count");
    let pending: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM saf WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    (open, pending)
}

/// Full PANs of the test's BIN in `bytes`: as ASCII digits or packed BCD.
fn pans_in(bytes: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let bin = BIN_PREFIX.as_bytes();
    for i in 0..bytes.len().saturating_sub(16) {
        let w = &bytes[i..i + 16];
        if w.starts_with(bin) && w.iter().all(u8::is_ascii_digit) && luhn_valid(w) {
            found.push(String::from_utf8_lossy(w).into_owned());
        }
    }
    for i in 0..bytes.len().saturating_sub(8) {
        let w = &bytes[i..i + 8];
        if w[..3] == [0x47, 0x61, 0x73] && w.iter().all(|b| b >> 4 <= 9 && b & 0xF <= 9) {
            let digits: Vec<u8> = w
                .iter()
                .flat_map(|b| [b'0' + (b >> 4), b'0' + (b & 0xF)])
                .collect();
            if luhn_valid(&digits) {
                found.push(String::from_utf8_lossy(&digits).into_owned());
            }
        }
    }
    found
}

/// One kill cycle of the crash run, drawn from the seed.
#[derive(Debug, Clone, Copy)]
struct Cycle {
    /// How long the switch runs before it is killed.
    up_ms: u64,
    /// A SIGSTOP of the issuer after this long, for this long.
    stall: Option<(u64, u64)>,
    /// A second start killed this soon, while it recovers.
    kill_in_recovery_ms: Option<u64>,
}

fn schedule(rng: &mut fastrand::Rng, cycles: usize) -> Vec<Cycle> {
    (0..cycles)
        .map(|_| {
            let up_ms = rng.u64(300..1500);
            Cycle {
                up_ms,
                stall: (rng.u8(..3) == 0).then(|| (rng.u64(0..up_ms), rng.u64(200..1500))),
                kill_in_recovery_ms: (rng.u8(..4) == 0).then(|| rng.u64(5..150)),
            }
        })
        .collect()
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

/// A terminal fleet: `cardswitch load` sending `mti` requests to `target`
/// until `duration_s` has passed, across every kill: it reconnects, and
/// reverses (0420) every request that got no answer in time, including
/// those in flight when the switch died.
fn terminals(target: &str, mti: &str, rrn_start: u64, record: &Path, duration_s: f64) -> Child {
    Command::new(BIN)
        .args([
            "load",
            "--target",
            target,
            "--spec",
            "iso87-ascii",
            "--framing",
            "ascii4",
            "--bins",
            &format!("{BIN_PREFIX}:1"),
            "--mti",
            mti,
            "--connections",
            "4",
            "--in-flight",
            "4",
            "--duration-s",
            &format!("{duration_s:.1}"),
            "--timeout-ms",
            "1000",
            "--rrn-start",
            &rrn_start.to_string(),
            "--record",
            &record.display().to_string(),
            "--reconnect",
            "--reversal-drain-s",
            "30",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("load")
}

/// Starts the switch without waiting for it, and kills it `after` into its
/// start (while it recovers from the journal).
fn kill_during_recovery(dir: &Path, config: &str, cycle: usize, after: Duration) {
    let log = std::fs::File::create(dir.join(format!("switch-{cycle}-recovery.log"))).expect("log");
    let mut child = Command::new(BIN)
        .args(["run", "--config", config])
        .env("CARDSWITCH_JOURNAL_KEY", KEY)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("switch");
    std::thread::sleep(after);
    let _ = child.kill();
    let _ = child.wait();
}

fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    false
}

/// The journal's promise under SIGKILL, issue 19's split check included.
/// A mix of authorizations (0100) and financial requests (0200) runs
/// through the switch, which is killed at random moments (sometimes again
/// while it recovers) while the issuer is sometimes stalled (SIGSTOP). The
/// terminals behave as ISO 8583 acquirers do: they reverse what timed out.
/// At the end the acquirer, the issuer and the journal agree on every
/// request's net outcome (no split), no request reached the issuer twice,
/// and no full PAN is at rest or in a log.
#[test]
fn killed_switch_loses_nothing_applies_nothing_twice_and_never_splits() {
    let cycles: usize = std::env::var("CARDSWITCH_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed = std::env::var("CARDSWITCH_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("crash run: CARDSWITCH_CRASH_SEED={seed} CARDSWITCH_CRASH_CYCLES={cycles}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let plan = schedule(&mut rng, cycles);
    let dir = temp_dir("journal-crash");
    let issuer_record = dir.join("issuer.jsonl");
    let mut issuer = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--spec",
        "iso87-ascii",
        "--record",
        &issuer_record.display().to_string(),
        "--delay-ms",
        "2",
        "--jitter-ms",
        "30",
        "--drop-rate",
        "0.02",
    ]);
    let acquirer_addr = support::process::free_addr();
    let config = write_config(&dir, &issuer.addr, &acquirer_addr);
    let db = dir.join("journal.db");
    let run_s = plan.iter().map(|c| c.up_ms).sum::<u64>() as f64 / 1000.0 + 0.3 * cycles as f64;
    let records = [
        dir.join("acquirer-0100.jsonl"),
        dir.join("acquirer-0200.jsonl"),
    ];
    // The terminals connect once the first switch listens; after that
    // they reconnect by themselves.
    let mut switch = start_switch(&dir, &config, 0);
    let mut fleets = [
        terminals(&acquirer_addr, "0100", 0, &records[0], run_s),
        terminals(&acquirer_addr, "0200", 50_000_000, &records[1], run_s),
    ];
    let (mut stalls, mut recovery_kills) = (0, 0);
    for (n, cycle) in plan.iter().enumerate() {
        if n > 0 {
            switch = start_switch(&dir, &config, n);
        }
        let started = std::time::Instant::now();
        if let Some((at_ms, for_ms)) = cycle.stall {
            std::thread::sleep(Duration::from_millis(at_ms));
            signal(issuer.child.id(), "-STOP");
            std::thread::sleep(Duration::from_millis(for_ms));
            signal(issuer.child.id(), "-CONT");
            stalls += 1;
        }
        let up = Duration::from_millis(cycle.up_ms);
        std::thread::sleep(up.saturating_sub(started.elapsed()));
        sigkill(&mut switch);
        if let Some(ms) = cycle.kill_in_recovery_ms {
            kill_during_recovery(&dir, &config, n, Duration::from_millis(ms));
            recovery_kills += 1;
        }
    }

    // A last start picks up what the kills left; the terminals finish,
    // reversing what they never got an answer for; the queue drains.
    let mut switch = start_switch(&dir, &config, cycles);
    for fleet in &mut fleets {
        assert!(
            wait_exit(fleet, Duration::from_secs_f64(run_s + 60.0)),
            "a load generator did not end"
        );
    }
    wait_until(
        "the journal to close every transaction",
        Duration::from_secs(60),
        || open_work(&db) == (0, 0),
    );
    assert!(
        switch.terminate(Duration::from_secs(10)).is_some(),
        "switch stops on SIGTERM"
    );
    assert!(
        issuer.terminate(Duration::from_secs(10)).is_some(),
        "issuer stops on SIGTERM"
    );

    let iss = IssuerSide::from_record(&issuer_record);
    let mut acq = AcquirerSide::default();
    for record in &records {
        acq.add_record(record);
    }
    let rows = journal_rows(&db);
    let journal = JournalSide::from_rows(&rows);
    assert!(
        iss.approved.len() > 50,
        "the load reached the issuer ({} approvals)",
        iss.approved.len()
    );
    let twice: Vec<_> = iss.received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{} requests forwarded twice: {:?}",
        twice.len(),
        twice.iter().take(10).collect::<Vec<_>>()
    );
    let unsettled = acq.unsettled();
    assert!(
        unsettled.is_empty(),
        "{} timed-out requests whose reversal was never acknowledged: {:?}",
        unsettled.len(),
        unsettled.iter().take(10).collect::<Vec<_>>()
    );
    assert!(
        journal.open.is_empty(),
        "journal rows left open: {:?}",
        journal.open
    );
    let splits = Splits::find(&acq, &iss, &journal);
    eprintln!(
        "{cycles} kills ({recovery_kills} more during recovery, {stalls} issuer stalls): \
         {} issuer approvals, {} kept by terminals, {} reversed at the issuer, \
         {} terminal reversals, {} journal rows; splits: {} kept by the terminal only, \
         {} kept by the issuer only, {} where the journal disagrees",
        iss.approved.len(),
        acq.kept.len(),
        iss.reversed.len(),
        acq.reversal_sent.len(),
        rows.len(),
        splits.acquirer_only.len(),
        splits.issuer_only.len(),
        splits.journal_disagrees.len(),
    );
    assert_eq!(splits.total(), 0, "splits (seed {seed}): {splits:?}");

    no_pan_in_any_file(&dir);
}

/// The files under `dir`, in its subdirectories too.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for path in std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
    {
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// No PAN in the clear at rest (the database, the journal log's
/// segments) or in any log (written at debug level).
fn no_pan_in_any_file(dir: &Path) {
    let files = files_under(dir);
    let mut searched = 0;
    for path in &files {
        let bytes = std::fs::read(path).expect("read");
        searched += bytes.len();
        let pans = pans_in(&bytes);
        assert!(
            pans.is_empty(),
            "{} holds {} full PANs in the clear",
            path.display(),
            pans.len()
        );
    }
    assert!(
        files.iter().any(|p| p.ends_with("journal.db")),
        "journal database searched"
    );
    assert!(
        files
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "log")
                && p.parent().is_some_and(|d| d.ends_with("journal.db-log"))),
        "journal log segments searched"
    );
    assert!(searched > 0);
}

#[test]
fn a_missing_or_wrong_key_stops_start_up() {
    let dir = temp_dir("journal-keys");
    let issuer = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--spec",
        "iso87-ascii",
    ]);
    let config = write_config(&dir, &issuer.addr, "127.0.0.1:0");
    let run = |env: &[(&str, &str)]| {
        let out = Command::new(BIN)
            .args(["run", "--config", &config])
            .env_remove("CARDSWITCH_JOURNAL_KEY")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&[]);
    assert!(!ok && err.contains("no journal key"), "{err}");
    // Start once with the right key (the journal records its check value)...
    let mut first = start_logged(
        &["run", "--config", &config],
        1,
        &dir.join("first.log"),
        &[("CARDSWITCH_JOURNAL_KEY", KEY)],
    )
    .0;
    assert!(first.terminate(Duration::from_secs(10)).is_some());
    // ...then a wrong key for the same id is refused.
    let (ok, err) = run(&[("CARDSWITCH_JOURNAL_KEY", WRONG_KEY)]);
    assert!(!ok && err.contains("wrong key for key id 'k1'"), "{err}");
    assert!(
        !err.contains("ff01020304"),
        "the key never shows in an error: {err}"
    );
}

#[test]
fn an_acknowledged_advice_survives_a_kill_and_reaches_its_issuer() {
    let dir = temp_dir("journal-advice");
    // The issuer is down while the advice comes in.
    let issuer_addr = support::process::free_addr();
    let config = write_config(&dir, &issuer_addr, "127.0.0.1:0");
    let mut switch = start_switch(&dir, &config, 0);
    let advice = serde_json::json!({"mti": "0220", "fields": {
        "2": "4761739001010119", "3": "000000", "4": "000000004200", "7": "1123143005",
        "11": "004711", "12": "143005", "13": "1123", "22": "051", "32": "1234567",
        "37": "ADVICE004711", "38": "A1B2C3", "39": "00", "41": "TERM0001",
        "42": "MERCHANT0000001", "49": "978"
    }});
    let (code, answers) = support::process::send_messages(
        &switch.addr,
        "iso87-ascii",
        &["--framing", "ascii4"],
        5,
        &[advice],
    );
    assert_eq!(code, 0);
    let answer = &answers[0];
    assert_eq!(answer["mti"], "0230");
    assert_eq!(answer["fields"]["39"], "00", "acknowledged at once");
    // Killed before it could deliver: the advice is only in the journal.
    sigkill(&mut switch);
    let record = dir.join("issuer.jsonl");
    let mut issuer = start_listening(&[
        "issuer-sim",
        "--listen",
        &issuer_addr,
        "--spec",
        "iso87-ascii",
        "--record",
        &record.display().to_string(),
    ]);
    let mut switch = start_switch(&dir, &config, 1);
    let db = dir.join("journal.db");
    wait_until(
        "the advice to be delivered",
        Duration::from_secs(30),
        || open_work(&db) == (0, 0),
    );
    assert!(switch.terminate(Duration::from_secs(10)).is_some());
    assert!(issuer.terminate(Duration::from_secs(10)).is_some());
    let delivered: Vec<Value> = read_lines(&record)
        .into_iter()
        .filter(|l| field(l, "rrn") == "ADVICE004711")
        .collect();
    assert_eq!(delivered.len(), 1, "delivered once: {delivered:?}");
    assert!(matches!(field(&delivered[0], "mti"), "0220" | "0221"));
    assert_eq!(field(&delivered[0], "amount"), "000000004200");
}
