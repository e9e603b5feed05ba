//! The switch's PIN translation and MACs against peers whose cryptography
//! nobody here wrote (issue 21): an acquirer that makes ISO format 0 PIN
//! blocks under its TPK and retail MACs with psec, an issuer that decrypts
//! them under its ZPK and checks MACs with psec (both in
//! `tests/interop/zone_peers.py`, messages by pyiso8583), and the switch
//! between them translating with `hsm-sim`; and chip cards whose ARQC
//! pyemv made (`tests/interop/chip_acquirer.py`) stood in only when it
//! verifies, with an ARPC pyemv accepts. Needs the `.venv` that
//! `scripts/test-all.sh` makes (or `CARDSWITCH_PYTHON`); without it the
//! test fails, it never skips.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use support::certs::temp_dir;
use support::hsm_keys::key_table;
use support::process::{Running, free_addr, start_listening, start_switch_config};

const TPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const ZPK: &str = "89ABCDEF01234567FEDCBA9876543210";
const TAK: &str = "0123456789ABCDEF0123456789ABCDEF";
const ZAK: &str = "FEDCBA98765432100123456789ABCDEF";
/// The issuer's MK-AC for its chip cards.
const IMK: &str = "0123456789ABCDEFFEDCBA9876543210";

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("CARDSWITCH_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// A Python peer script of `tests/interop/`.
fn peer_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// The Python issuer, killed with the test; its address.
struct PyIssuer(Child, String);

impl Drop for PyIssuer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn py_issuer() -> PyIssuer {
    let py = python();
    assert!(
        py.exists(),
        "{} missing: run scripts/test-all.sh (it makes the .venv)",
        py.display()
    );
    let mut child = Command::new(&py)
        .arg(peer_script("zone_peers.py"))
        .args(["issuer", "--zpk", ZPK, "--zak", ZAK, "--pin", "1234"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python issuer");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("its address");
    let addr = line.trim().rsplit(' ').next().expect("address").to_string();
    assert!(addr.contains(':'), "python issuer did not start: {line}");
    PyIssuer(child, addr)
}

/// Runs a Python peer script with `args` to its end: its JSON report
/// (the last line it prints).
fn py_report(script: &str, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(peer_script(script))
        .args(args)
        .output()
        .expect("python peer");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim().lines().last().expect("report")).expect("json")
}

fn py_acquirer(target: &str, pin: &str, tak: &str, first: u32) -> Value {
    let first = first.to_string();
    py_report(
        "zone_peers.py",
        &[
            "acquirer", "--target", target, "--tpk", TPK, "--tak", tak, "--pin", pin, "--count",
            "10", "--first", &first,
        ],
    )
}

fn switch(dir: &Path, hsm: &Running, issuer: &str) -> (Running, String) {
    let config = format!(
        r#"
[switch]
institution_id = "99000000001"
[hsm]
address = "{hsm}"
[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
[acquirer.security]
pin_key = {tpk}
mac_key = {tak}
[[issuer]]
name = "bank"
addresses = ["{issuer}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
echo_interval_s = 0
[issuer.security]
pin_key = {zpk}
pin_block_format = 0
mac_key = {zak}
[default_route]
issuer = "bank"
"#,
        hsm = hsm.addr,
        tpk = key_table("tpk", "TPK", TPK),
        tak = key_table("tak", "TAK", TAK),
        zpk = key_table("zpk", "ZPK", ZPK),
        zak = key_table("zak", "ZAK", ZAK),
    );
    start_switch_config(dir, &config)
}

#[test]
fn pins_and_macs_made_by_the_reference_cross_the_switch() {
    let hsm = start_listening(&["hsm-sim", "--listen", "127.0.0.1:0"]);
    let issuer = py_issuer();
    let dir = temp_dir("hsm-switch-interop");
    let (_switch, pos) = switch(&dir, &hsm, &issuer.1);
    // psec's PIN blocks under the TPK reach the issuer under its ZPK and
    // read back to the PIN there; psec's MACs verify in the switch, the
    // switch's verify in psec, both ways.
    let ok = py_acquirer(&pos, "1234", TAK, 0);
    assert_eq!(ok["codes"]["00"], 10, "{ok}");
    assert_eq!(ok["reply_macs_ok"], 10, "{ok}");
    // Another PIN: the issuer reads it and says so.
    let wrong = py_acquirer(&pos, "9999", TAK, 100);
    assert_eq!(wrong["codes"]["55"], 10, "{wrong}");
    // A MAC psec made with another key: refused by the switch.
    let forged = py_acquirer(&pos, "1234", ZAK, 200);
    assert_eq!(forged["codes"]["63"], 10, "{forged}");
}

/// A switch whose issuer is down, standing in for its chip cards with its
/// MK-AC under the LMK of `hsm`.
fn chip_switch(dir: &Path, hsm: &Running) -> (Running, String) {
    let config = format!(
        r#"
[switch]
institution_id = "99000000001"
[hsm]
address = "{hsm}"
[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
[[issuer]]
name = "bank"
addresses = ["{down}"]
spec = "iso87-ascii"
framing = {{ length = "binary2" }}
timeout_ms = 500
stand_in = {{ per_transaction_max = 100000, per_card_daily_count = 1000, per_card_daily_amount = 10000000 }}
[issuer.security]
arqc_key = {imk}
arqc_scheme = "mchip"
[default_route]
issuer = "bank"
"#,
        hsm = hsm.addr,
        down = free_addr(),
        imk = key_table("mk-ac", "MK-AC", IMK),
    );
    start_switch_config(dir, &config)
}

fn py_chip_acquirer(target: &str, first: u32, tamper: bool) -> Value {
    let first = first.to_string();
    let mut args = vec![
        "--target", target, "--imk", IMK, "--count", "10", "--first", &first,
    ];
    if tamper {
        args.push("--tamper");
    }
    py_report("chip_acquirer.py", &args)
}

#[test]
fn an_arqc_made_by_the_reference_verifies_in_stand_in() {
    let hsm = start_listening(&["hsm-sim", "--listen", "127.0.0.1:0"]);
    let dir = temp_dir("hsm-chip-interop");
    let (_switch, pos) = chip_switch(&dir, &hsm);
    // pyemv's ARQCs verify in stand-in; the ARPC the switch returns in
    // DE55 tag 91 verifies in pyemv.
    let ok = py_chip_acquirer(&pos, 0, false);
    assert_eq!(ok["codes"]["00"], 10, "{ok}");
    assert_eq!(ok["arpcs_ok"], 10, "{ok}");
    // A flipped bit: not honoured.
    let forged = py_chip_acquirer(&pos, 100, true);
    assert_eq!(forged["codes"]["05"], 10, "{forged}");
}
