//! The journal log under the switch (issue 22): the switch is killed under
//! load, the log's tail is damaged the ways a torn write leaves it (a cut
//! entry, garbage, zeroed pages with data after them), and the next start
//! never fails on it: the damage is cut off and reported, no entry written
//! before it is lost, and SQLite (behind at the kill, fed by then) holds
//! exactly the log's requests.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cardswitch::journal::log::reader::read_log;
use cardswitch::journal::log::record::LogRecord;
use support::certs::temp_dir;
use support::process::{BIN, Running, start_listening, start_logged};

const KEY: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn config(dir: &Path, issuer: &str) -> String {
    let text = format!(
        r#"
[switch]
institution_id = "99000000001"
[journal]
path = "journal.db"
log_segment_mib = 4
[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = {{ length = "ascii4" }}
[[issuer]]
name = "issuer-a"
addresses = ["{issuer}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
[default_route]
issuer = "issuer-a"
"#
    );
    let path = dir.join("switch.toml");
    std::fs::write(&path, text).expect("config");
    path.display().to_string()
}

fn start_switch(config: &str, log: &Path) -> Running {
    start_logged(
        &["run", "--config", config],
        1,
        log,
        &[("CARDSWITCH_JOURNAL_KEY", KEY), ("RUST_LOG", "info")],
    )
    .0
}

/// Runs terminals against `target` for `secs`.
fn load(target: &str, secs: &str) {
    let status = Command::new(BIN)
        .args([
            "load",
            "--target",
            target,
            "--spec",
            "iso87-ascii",
            "--framing",
            "ascii4",
            "--bins",
            "476173:1",
            "--connections",
            "4",
            "--in-flight",
            "8",
            "--duration-s",
            secs,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("load");
    assert!(status.success(), "load failed");
}

/// The log's entries: how many, how many accepted requests, and where
/// its last segment's entries end.
fn log_state(dir: &Path) -> (u64, u64, PathBuf, u64) {
    let mut accepted = 0;
    let end = read_log(dir, &mut |e| {
        accepted += u64::from(matches!(e.record, LogRecord::Accepted(_)));
    })
    .expect("the log reads");
    let (path, _, at) = end.last.expect("a segment");
    (end.records, accepted, path, at)
}

fn sqlite_transactions(db: &Path) -> u64 {
    let conn = rusqlite::Connection::open(db).expect("open journal");
    conn.query_row("SELECT COUNT(*) FROM transactions", [], |r| {
        r.get::<_, i64>(0)
    })
    .expect("count") as u64
}

/// Damages the segment after its last entry, as a torn write would.
fn tear(segment: &Path, at: u64, how: usize) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(segment)
        .expect("segment");
    let mut first = vec![0u8; 64];
    file.read_exact_at(&mut first, 0).expect("first entry");
    let bytes: Vec<u8> = match how {
        // The start of an entry, cut: its header and part of its payload.
        0 => first[..40].to_vec(),
        // Garbage.
        1 => (0..300u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1)
            .collect(),
        // Zeroed pages, then data a torn write left after them.
        _ => {
            file.write_all_at(&first[..40], at + 8192).expect("write");
            vec![0u8; 8192]
        }
    };
    file.write_all_at(&bytes, at).expect("write");
}

#[test]
fn a_torn_log_tail_is_cut_and_reported_and_sqlite_holds_exactly_the_log() {
    let dir = temp_dir("journal-log-torn");
    let issuer = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--spec",
        "iso87-ascii",
    ]);
    let config = config(&dir, &issuer.addr);
    let (db, log_dir) = (dir.join("journal.db"), dir.join("journal.db-log"));
    let mut switch = start_switch(&config, &dir.join("switch-0.log"));
    for round in 0..3 {
        load(&switch.addr, "1.5");
        let _ = switch.child.kill();
        let _ = switch.child.wait();
        let (records, accepted, segment, at) = log_state(&log_dir);
        assert!(
            accepted > 100,
            "round {round}: {accepted} requests in the log"
        );
        tear(&segment, at, round);

        let log = dir.join(format!("switch-{}.log", round + 1));
        switch = start_switch(&config, &log);
        let text = std::fs::read_to_string(&log).expect("switch log");
        assert!(
            text.contains("torn tail cut off"),
            "round {round}: damage not reported:\n{text}"
        );
        let (after, accepted_after, _, _) = log_state(&log_dir);
        assert!(
            after >= records,
            "round {round}: {after} entries kept of {records}"
        );
        assert_eq!(
            accepted_after, accepted,
            "round {round}: accepted requests lost"
        );
        // Fed at start: SQLite holds exactly the log's requests.
        assert_eq!(sqlite_transactions(&db), accepted, "round {round}");
    }
    load(&switch.addr, "1");
    assert!(
        switch
            .terminate(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
    let (_, accepted, _, _) = log_state(&log_dir);
    assert_eq!(sqlite_transactions(&db), accepted, "after a clean stop");
}
