//! The security module end to end over loopback (issue 21): DUKPT
//! terminals (`cardswitch load --dukpt-bdk`) -> the switch -> `hsm-sim`
//! (keys formed from clear test components, held under the test LMK) ->
//! an issuer simulator that reads PIN blocks with its clear test ZPK and
//! checks MACs. Every PIN reaches the issuer under the issuer's key; a
//! wrong terminal key, a bad MAC, an HSM that is down, slow or answers an
//! error code is declined and never forwarded with a wrong block.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use support::certs::temp_dir;
use support::hsm_keys::{form_key, key_table};
use support::load_codes::{load_codes, only};
use support::process::{Running, http_get, run, start_listening, start_switch_config, wait_until};

const BDK: &str = "0123456789ABCDEFFEDCBA9876543210";
const WRONG_BDK: &str = "FEDCBA98765432100123456789ABCDEF";
const ZPK: &str = "89ABCDEF01234567FEDCBA9876543210";
const TAK: &str = "0123456789ABCDEF0123456789ABCDEF";
const ZAK: &str = "FEDCBA98765432100123456789ABCDEF";
const ZMK: &str = "89ABCDEF0123456789ABCDEF01234567";
/// The ZPK an issuer sends in its own key exchange.
const NEW_ZPK: &str = "1C587F1C4A1C6E2CE61A5D8967A49E20";

/// What a test network is made of.
struct Net {
    hsm: Running,
    _issuer: Running,
    switch: Running,
    pos: String,
    metrics: String,
}

/// The switch between DUKPT terminals and an issuer, with `[hsm]` at
/// `hsm_addr`; `macs`: MACs required on the acquirer and issuer links.
fn switch(dir: &Path, hsm: Running, hsm_addr: &str, macs: bool, issuer_extra: &[&str]) -> Net {
    let mut args = vec![
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--spec",
        "iso93-ascii",
        "--expect-pin",
        "1234",
    ];
    // The issuer's ZPK, unless the test gives it another.
    if !issuer_extra.contains(&"--pin-key") {
        args.extend(["--pin-key", ZPK]);
    }
    if macs {
        args.extend(["--mac-key", ZAK]);
    }
    args.extend_from_slice(issuer_extra);
    let issuer = start_listening(&args);
    let acquirer_mac = if macs {
        format!("mac_key = {}", key_table("tak", "TAK", TAK))
    } else {
        String::new()
    };
    let issuer_mac = if macs {
        format!("mac_key = {}", key_table("zak", "ZAK", ZAK))
    } else {
        String::new()
    };
    let metrics = support::process::free_addr();
    let config = format!(
        r#"
[switch]
institution_id = "99000000001"
metrics = "{metrics}"

[hsm]
address = "{hsm_addr}"
timeout_ms = 300
connections = 2

[[acquirer]]
name = "atm"
listen = "127.0.0.1:0"
spec = "iso93-ascii"
framing = {{ length = "binary2" }}
[acquirer.security]
pin_key = {bdk}
ksn_field = 53
{acquirer_mac}

[[issuer]]
name = "bank"
addresses = ["{issuer}"]
spec = "iso93-ascii"
framing = {{ length = "binary2" }}
timeout_ms = 2000
[issuer.security]
pin_key = {zpk}
zone_master_key = {zmk}
{issuer_mac}

[default_route]
issuer = "bank"
"#,
        bdk = key_table("bdk", "BDK", BDK),
        zpk = key_table("zpk", "ZPK", ZPK),
        zmk = key_table("zmk", "ZMK", ZMK),
        issuer = issuer.addr,
    );
    let (switch, pos) = start_switch_config(dir, &config);
    Net {
        hsm,
        _issuer: issuer,
        switch,
        pos,
        metrics,
    }
}

fn hsm_sim(extra: &[&str]) -> Running {
    let mut args = vec!["hsm-sim", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    start_listening(&args)
}

/// The value of the switch's metric `name`, as Prometheus text gives it.
fn metric(net: &Net, name: &str) -> Option<String> {
    http_get(&net.metrics, "/metrics")
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().last().map(str::to_string))
}

/// A load run of `requests` from DUKPT terminals: the count of each
/// response code the terminals got (`timed_out` for none).
fn load(net: &Net, dir: &Path, requests: u32, extra: &[&str]) -> HashMap<String, u64> {
    load_codes(&net.pos, dir, requests, extra)
}

#[test]
fn dukpt_pins_reach_the_issuer_under_its_zone_key() {
    let dir = temp_dir("hsm-e2e-pins");
    let hsm = hsm_sim(&[]);
    let addr = hsm.addr.clone();
    let net = switch(&dir, hsm, &addr, false, &[]);
    // The issuer approves only PIN blocks that decrypt under its ZPK to
    // the PIN: every one of them was translated by the HSM.
    only(&load(&net, &dir, 200, &["--dukpt-bdk", BDK]), "000", 200);
    // The right key, the wrong PIN: the issuer says so (117, 55 in 1987).
    only(
        &load(&net, &dir, 20, &["--dukpt-bdk", BDK, "--pin", "9999"]),
        "117",
        20,
    );
    // Terminals under another BDK: the HSM's translation yields no PIN
    // block it can read (55) or one the issuer refuses; never approved.
    let wrong = load(&net, &dir, 20, &["--dukpt-bdk", WRONG_BDK]);
    assert_eq!(wrong.get("000"), None, "{wrong:?}");
    assert_eq!(wrong.get("117"), Some(&20), "{wrong:?}");
}

#[test]
fn macs_are_checked_and_made_on_both_links() {
    let dir = temp_dir("hsm-e2e-macs");
    let hsm = hsm_sim(&[]);
    let addr = hsm.addr.clone();
    let net = switch(&dir, hsm, &addr, true, &[]);
    // Terminals sign with the TAK; the switch checks it, signs for the
    // issuer with the ZAK (which the issuer checks), checks the issuer's
    // MAC, and signs the reply.
    only(
        &load(&net, &dir, 100, &["--dukpt-bdk", BDK, "--mac-key", TAK]),
        "000",
        100,
    );
    // Terminals signing with another key: declined as a security
    // violation (916 in 1993), nothing forwarded.
    only(
        &load(&net, &dir, 20, &["--dukpt-bdk", BDK, "--mac-key", ZAK]),
        "916",
        20,
    );
}

#[test]
fn an_hsm_that_fails_declines_and_forwards_nothing() {
    let dir = temp_dir("hsm-e2e-faults");
    // An HSM that answers G0 with error 20 (PIN block data): 55 (117).
    let hsm = hsm_sim(&["--error", "G0=20"]);
    let addr = hsm.addr.clone();
    let net = switch(&dir, hsm, &addr, false, &[]);
    only(&load(&net, &dir, 10, &["--dukpt-bdk", BDK]), "117", 10);
    drop(net);
    // A fault code (HSM hardware error 41): 96 (909).
    let hsm = hsm_sim(&["--error", "G0=41"]);
    let addr = hsm.addr.clone();
    let net = switch(&dir, hsm, &addr, false, &[]);
    only(&load(&net, &dir, 10, &["--dukpt-bdk", BDK]), "909", 10);
    drop(net);
    // Slower than the client's 300 ms time-out: 909, in time.
    let hsm = hsm_sim(&["--delay-ms", "1000"]);
    let addr = hsm.addr.clone();
    let net = switch(&dir, hsm, &addr, false, &[]);
    only(&load(&net, &dir, 4, &["--dukpt-bdk", BDK]), "909", 4);
    // Down after start: 909, the switch stays up.
    let mut net = net;
    net.hsm.terminate(Duration::from_secs(5));
    only(&load(&net, &dir, 4, &["--dukpt-bdk", BDK]), "909", 4);
    assert!(
        net.switch.child.try_wait().expect("status").is_none(),
        "the switch stopped"
    );
}

#[test]
fn a_wrong_check_value_refuses_start_up_without_showing_the_key() {
    let dir = temp_dir("hsm-e2e-kcv");
    let hsm = hsm_sim(&[]);
    let (key, _) = form_key("ZPK", ZPK);
    let config = format!(
        r#"
[switch]
institution_id = "99000000001"
[hsm]
address = "{}"
[[acquirer]]
name = "atm"
listen = "127.0.0.1:0"
spec = "iso93-ascii"
framing = {{ length = "binary2" }}
[[issuer]]
name = "bank"
addresses = ["127.0.0.1:9"]
spec = "iso93-ascii"
framing = {{ length = "binary2" }}
[issuer.security]
pin_key = {{ role = "zpk", key = "{key}", check_value = "000000" }}
[default_route]
issuer = "bank"
"#,
        hsm.addr
    );
    let path = dir.join("switch.toml");
    std::fs::write(&path, config).expect("config");
    let (code, out, err) = run(&["run", "--config", &path.display().to_string()]);
    assert_ne!(code, 0, "started with a wrong check value: {out}");
    assert!(err.contains("switch.toml:17"), "{err}");
    assert!(err.contains("check value 000000"), "{err}");
    assert!(!err.contains(&key[1..]), "the key shown: {err}");
}

#[test]
fn a_key_exchange_the_issuer_refuses_keeps_the_old_key_and_raises_the_alarm() {
    let dir = temp_dir("hsm-e2e-exchange");
    let hsm = hsm_sim(&[]);
    let addr = hsm.addr.clone();
    let net = switch(&dir, hsm, &addr, false, &["--refuse-key-exchange"]);
    let pid = net.switch.child.id().to_string();
    let alarm = || metric(&net, "cardswitch_key_exchange_failing_issuers");
    std::process::Command::new("kill")
        .args(["-USR1", &pid])
        .status()
        .expect("kill");
    wait_until("the alarm", Duration::from_secs(10), || {
        alarm().as_deref() == Some("1")
    });
    // The old key still works.
    only(&load(&net, &dir, 20, &["--dukpt-bdk", BDK]), "000", 20);
}

#[test]
fn a_key_the_issuer_sends_is_imported_and_pins_reach_it_under_that_key() {
    let dir = temp_dir("hsm-e2e-issuer-key");
    let hsm = hsm_sim(&[]);
    let addr = hsm.addr.clone();
    // The issuer sends its new ZPK under the ZMK as the switch connects,
    // and reads PIN blocks under that key only: an approval means the
    // switch imported it (A6), checked its check value and translates to
    // it; with the old key every PIN would be refused.
    let issuer = [
        "--send-new-key",
        NEW_ZPK,
        "--zone-master-key",
        ZMK,
        "--pin-key",
        NEW_ZPK,
    ];
    let net = switch(&dir, hsm, &addr, false, &issuer);
    let exchanges = || metric(&net, "cardswitch_key_exchanges_total");
    // One exchange a connection of the link (it opens two).
    wait_until("the issuer's key imported", Duration::from_secs(10), || {
        exchanges().and_then(|n| n.parse::<u64>().ok()) == Some(2)
    });
    only(&load(&net, &dir, 50, &["--dukpt-bdk", BDK]), "000", 50);
}

#[test]
fn a_key_the_issuer_sends_under_another_zmk_is_refused_and_the_old_key_kept() {
    let dir = temp_dir("hsm-e2e-issuer-bad-key");
    let hsm = hsm_sim(&[]);
    let addr = hsm.addr.clone();
    // Wrapped under another ZMK: the HSM's check value differs, the
    // switch answers 909 (96) and keeps translating to the old ZPK.
    let issuer = ["--send-new-key", NEW_ZPK, "--zone-master-key", ZAK];
    let net = switch(&dir, hsm, &addr, false, &issuer);
    let failing = || metric(&net, "cardswitch_key_exchange_failing_issuers");
    wait_until("the alarm", Duration::from_secs(10), || {
        failing().as_deref() == Some("1")
    });
    only(&load(&net, &dir, 20, &["--dukpt-bdk", BDK]), "000", 20);
}
