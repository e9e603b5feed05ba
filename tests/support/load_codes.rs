//! A `cardswitch load` run counted by response code, for the tests that
//! check what terminals got (every request answered, and with what).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::process::run;

/// A load run of `requests` over 2 x 2 connections to `target`
/// (iso93-ascii): the count of each response code the terminals got
/// (`timed_out` for none).
pub fn load_codes(target: &str, dir: &Path, requests: u32, extra: &[&str]) -> HashMap<String, u64> {
    let record = dir.join(format!("load-{}.jsonl", fastrand::u32(..)));
    let rec = record.display().to_string();
    let n = requests.to_string();
    let mut args = vec![
        "load",
        "--target",
        target,
        "--spec",
        "iso93-ascii",
        "--connections",
        "2",
        "--in-flight",
        "2",
        "--requests",
        &n,
        "--record",
        &rec,
        "--timeout-ms",
        "3000",
        "--amount-max",
        "5000",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args);
    assert!(code == 0 || code == 1, "load: {out}{err}");
    let mut codes = HashMap::new();
    for line in std::fs::read_to_string(&record).expect("record").lines() {
        let v: Value = serde_json::from_str(line).expect("json");
        let key = match v["kind"].as_str() {
            Some("response") => v["response_code"].as_str().unwrap_or("?").to_string(),
            Some("timed_out") => "timed_out".to_string(),
            _ => continue,
        };
        *codes.entry(key).or_insert(0) += 1;
    }
    codes
}

/// Asserts that all `n` requests got `code`.
pub fn only(codes: &HashMap<String, u64>, code: &str, n: u64) {
    assert_eq!(codes.get(code).copied(), Some(n), "{codes:?}");
    assert_eq!(codes.values().sum::<u64>(), n, "{codes:?}");
}
