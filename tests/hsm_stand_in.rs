//! Stand-in with the HSM over loopback (issue 21): card-not-present
//! terminals key in a CVV2 made with the issuer's CVK; with the issuer
//! down, the switch asks `hsm-sim` (CY) and approves only the cards whose
//! CVV2 verifies: the right CVV2 000, a wrong one 100 (05), none 911 (91).

mod support;

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use support::certs::temp_dir;
use support::hsm_keys::key_table;
use support::process::{Running, free_addr, run, start_listening, start_listening_n};

const CVK: &str = "0123456789ABCDEFFEDCBA9876543210";
const OTHER_CVK: &str = "FEDCBA98765432100123456789ABCDEF";

/// The switch in front of an issuer that is down, standing in for it
/// with its CVK under the LMK of `hsm`.
fn switch(dir: &Path, hsm: &Running) -> (Running, String) {
    let config = format!(
        r#"
[switch]
institution_id = "99000000001"

[hsm]
address = "{hsm}"
timeout_ms = 2000

[[acquirer]]
name = "web"
listen = "127.0.0.1:0"
spec = "iso93-ascii"
framing = {{ length = "binary2" }}
[acquirer.security]
cvv2_field = 48

[[issuer]]
name = "bank"
addresses = ["{down}"]
spec = "iso93-ascii"
framing = {{ length = "binary2" }}
timeout_ms = 500
stand_in = {{ per_transaction_max = 100000, per_card_daily_count = 10000, per_card_daily_amount = 100000000 }}
[issuer.security]
cvv_key = {cvk}

[default_route]
issuer = "bank"
"#,
        hsm = hsm.addr,
        down = free_addr(),
        cvk = key_table("cvk", "CVK", CVK),
    );
    let path = dir.join("switch.toml");
    std::fs::write(&path, config).expect("config");
    let p = path.display().to_string();
    let (switch, addrs) = start_listening_n(&["run", "--config", &p], 1);
    (switch, addrs[0].clone())
}

/// A load run of `requests`: the count of each response code.
fn load(pos: &str, dir: &Path, requests: u32, extra: &[&str]) -> HashMap<String, u64> {
    let record = dir.join(format!("load-{}.jsonl", fastrand::u32(..)));
    let rec = record.display().to_string();
    let n = requests.to_string();
    let mut args = vec![
        "load",
        "--target",
        pos,
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
        "5000",
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

fn only(codes: &HashMap<String, u64>, code: &str, n: u64) {
    assert_eq!(codes.get(code).copied(), Some(n), "{codes:?}");
    assert_eq!(codes.values().sum::<u64>(), n, "{codes:?}");
}

#[test]
fn stand_in_approves_a_card_not_present_only_when_its_cvv2_verifies() {
    let dir = temp_dir("hsm-stand-in");
    let hsm = start_listening(&["hsm-sim", "--listen", "127.0.0.1:0"]);
    let (_switch, pos) = switch(&dir, &hsm);
    only(&load(&pos, &dir, 40, &["--cvv2-key", CVK]), "000", 40);
    only(&load(&pos, &dir, 20, &["--cvv2-key", OTHER_CVK]), "100", 20);
    only(&load(&pos, &dir, 10, &[]), "911", 10);
}
