//! An approval whose acquirer is gone before its response arrives: the
//! switch cannot deliver it, so it reverses it at the issuer (and the
//! journal says so), rather than leave an approval nobody knows about.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::certs::temp_dir;
use support::process::{run, start_listening, start_logged, wait_until};

#[test]
fn an_approval_the_acquirer_never_gets_is_reversed() {
    let dir = temp_dir("switch-undelivered");
    let record = dir.join("issuer.jsonl");
    // Answers after 1.5 s: the acquirer below gives up after 1 s.
    let issuer = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--spec",
        "iso87-ascii",
        "--delay-ms",
        "1500",
        "--record",
        &record.display().to_string(),
    ]);
    let config = dir.join("switch.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[switch]
institution_id = "99000000001"
[switch.saf]
retry_min_ms = 50
response_wait_ms = 3000
[journal]
path = "journal.db"
[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = {{ length = "ascii4" }}
[[issuer]]
name = "slow"
addresses = ["{}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
timeout_ms = 3000
[default_route]
issuer = "slow"
"#,
            issuer.addr
        ),
    )
    .expect("config");
    let mut switch = start_logged(
        &["run", "--config", &config.display().to_string()],
        1,
        &dir.join("switch.log"),
        &[("CARDSWITCH_JOURNAL_KEY", &format!("k1:{}", "5a".repeat(32)))],
    )
    .0;
    let request = json!({"mti": "0100", "fields": {
        "2": "4761739001010119", "3": "000000", "4": "000000001000", "7": "1123143005",
        "11": "000901", "12": "143005", "13": "1123", "14": "2812", "22": "051",
        "32": "1234567", "37": "UNDELIVERED1", "41": "TERM0001", "42": "MERCHANT0000001", "49": "978"
    }});
    let (_, answers) = support::process::send_messages(
        &switch.addr,
        "iso87-ascii",
        &["--framing", "ascii4"],
        1,
        &[request],
    );
    assert!(answers.is_empty(), "no response within 1 s: {answers:?}");
    let lines = || -> Vec<Value> {
        std::fs::read_to_string(&record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    wait_until(
        "the approval to be reversed at the issuer",
        Duration::from_secs(20),
        || {
            lines()
                .iter()
                .any(|l| l["rrn"] == "UNDELIVERED1" && (l["mti"] == "0420" || l["mti"] == "0421"))
        },
    );
    let approvals = lines()
        .iter()
        .filter(|l| l["rrn"] == "UNDELIVERED1" && l["mti"] == "0100" && l["response_code"] == "00")
        .count();
    assert_eq!(approvals, 1, "the issuer approved it once");
    // The answer's record follows the reversal's: wait for it too.
    let db = dir.join("journal.db").display().to_string();
    let row = || -> Value {
        let (code, out, err) = run(&[
            "journal",
            "search",
            "--db",
            &db,
            "--rrn",
            "UNDELIVERED1",
            "--format",
            "json",
        ]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(out.lines().next().expect("row")).expect("json")
    };
    wait_until(
        "the journal to record the answer",
        Duration::from_secs(10),
        || row()["outcome"] == "undelivered",
    );
    let row = row();
    assert!(
        row["state"] == "reversal_queued" || row["state"] == "reversed",
        "{row}"
    );
    assert!(switch.terminate(Duration::from_secs(10)).is_some());
    let _ = std::fs::remove_dir_all(&dir);
}
