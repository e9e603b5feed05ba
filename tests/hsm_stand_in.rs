//! Stand-in with the HSM over loopback (issue 21): card-not-present
//! terminals key in a CVV2 made with the issuer's CVK; with the issuer
//! down, the switch asks `hsm-sim` (CY) and approves only the cards whose
//! CVV2 verifies: the right CVV2 000, a wrong one 100 (05), none 911 (91).

mod support;

use std::path::Path;

use support::certs::temp_dir;
use support::hsm_keys::key_table;
use support::load_codes::{load_codes, only};
use support::process::{Running, free_addr, start_listening, start_switch_config};

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
    start_switch_config(dir, &config)
}

#[test]
fn stand_in_approves_a_card_not_present_only_when_its_cvv2_verifies() {
    let dir = temp_dir("hsm-stand-in");
    let hsm = start_listening(&["hsm-sim", "--listen", "127.0.0.1:0"]);
    let (_switch, pos) = switch(&dir, &hsm);
    only(&load_codes(&pos, &dir, 40, &["--cvv2-key", CVK]), "000", 40);
    only(
        &load_codes(&pos, &dir, 20, &["--cvv2-key", OTHER_CVK]),
        "100",
        20,
    );
    only(&load_codes(&pos, &dir, 10, &[]), "911", 10);
}
