//! The `security` tables: keys read with their lines, refused on the
//! line of what is wrong, and a key's value never in an error.

use super::*;

const TPK: &str = "U0123456789ABCDEFFEDCBA9876543210";
const ZPK: &str = "UFEDCBA98765432100123456789ABCDEF";
const ZMK: &str = "U00112233445566778899AABBCCDDEEFF";

fn text(acquirer: &str, issuer: &str) -> String {
    format!(
        r#"[switch]
institution_id = "123456"

[hsm]
address = "127.0.0.1:1500"

[[acquirer]]
name = "pos"
listen = "127.0.0.1:8583"
spec = "iso87-ascii"
framing = {{ length = "ascii4" }}
[acquirer.security]
{acquirer}

[[issuer]]
name = "issuer-a"
addresses = ["127.0.0.1:9101"]
spec = "iso87-ascii"
framing = {{ length = "ascii4" }}
stand_in = {{ per_transaction_max = 5000, per_card_daily_count = 3, per_card_daily_amount = 10000 }}
[issuer.security]
{issuer}
"#
    )
}

fn key(role: &str, key: &str, kcv: &str) -> String {
    format!("{{ role = \"{role}\", key = \"{key}\", check_value = \"{kcv}\" }}")
}

fn load(text: &str) -> Result<SwitchConfig, ConfigError> {
    SwitchConfig::from_toml(text, "switch.toml")
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle")
        + 1
}

#[test]
fn keys_are_read_with_their_roles_formats_and_lines() {
    let t = text(
        &format!(
            "pin_key = {}\npin_block_format = 3\nmac_key = {}",
            key("tpk", TPK, "08d7b4"),
            key("tak", "Z0123456789ABCDEF", "ABCDEF")
        ),
        &format!(
            "pin_key = {}\nzone_master_key = {}\nkey_exchange_interval_s = 86400\narqc_key = {}\narqc_scheme = \"vsdc\"\ncvv_key = {}",
            key("zpk", ZPK, "111111"),
            key("zmk", ZMK, "222222"),
            key("mk-ac", ZMK, "333333"),
            key("cvk", ZPK, "444444"),
        ),
    );
    let c = load(&t).expect("valid");
    let a = &c.acquirers[0].security;
    let pin = a.pin.as_ref().expect("pin zone");
    assert_eq!(pin.key.role, KeyRole::Tpk);
    assert_eq!(pin.key.key.to_field(), TPK);
    assert_eq!(pin.key.check_value, "08D7B4");
    assert_eq!(pin.key.line, line_of(&t, TPK));
    assert_eq!(pin.format, PinBlockFormat::Iso3);
    assert_eq!(a.mac_key.as_ref().map(|k| k.role), Some(KeyRole::Tak));
    let i = &c.issuers[0].security;
    assert_eq!(i.pin.as_ref().map(|p| p.format), Some(PinBlockFormat::Iso0));
    assert_eq!(
        i.zone_master_key.as_ref().map(|k| k.line),
        Some(line_of(&t, "zone_master_key"))
    );
    assert_eq!(
        i.key_exchange_interval,
        Some(std::time::Duration::from_secs(86_400))
    );
    assert_eq!(
        i.arqc.as_ref().map(|(k, s)| (k.role, *s)),
        Some((KeyRole::MkAc, ArqcScheme::Vsdc))
    );
    assert_eq!(
        i.cvv_key.as_ref().map(|k| k.check_value.as_str()),
        Some("444444")
    );
}

#[test]
fn links_without_security_have_no_keys() {
    let t = text("", "")
        .replace("[acquirer.security]\n", "")
        .replace("[issuer.security]\n", "");
    let c = load(&t).expect("valid");
    assert_eq!(c.acquirers[0].security, AcquirerSecurity::default());
    assert_eq!(c.issuers[0].security, IssuerSecurity::default());
}

/// Each bad table is refused on its own line, naming the key.
#[test]
fn bad_keys_are_refused_on_their_line_without_their_value() {
    let secretish = "U0123456789ABCDEFFEDCBA987654321";
    let cases = [
        (
            text(&format!("pin_key = {}", key("zak", TPK, "ABCDEF")), ""),
            "pin_key.role",
            TPK,
        ),
        (
            text(
                &format!("pin_key = {}", key("tpk", secretish, "ABCDEF")),
                "",
            ),
            "pin_key.key",
            secretish,
        ),
        (
            text(
                &format!("pin_key = {}", key("bdk", "0123456789ABCDEF", "ABCDEF")),
                "",
            ),
            "double or triple",
            "0123456789ABCDEF",
        ),
        (
            text(&format!("pin_key = {}", key("tpk", TPK, "ABCDE")), ""),
            "pin_key.check_value",
            TPK,
        ),
        (
            text(
                &format!(
                    "pin_key = {}\npin_block_format = 4",
                    key("tpk", TPK, "ABCDEF")
                ),
                "",
            ),
            "pin_block_format",
            "pin_block_format = 4",
        ),
        (
            text("pin_block_format = 1", ""),
            "without a pin_key",
            "pin_block_format = 1",
        ),
        (
            text("", &format!("pin_key = {}", key("tpk", TPK, "ABCDEF"))),
            "pin_key.role",
            TPK,
        ),
        (
            text(
                "",
                &format!(
                    "pin_key = {}\nkey_exchange_interval_s = 86400",
                    key("zpk", ZPK, "ABCDEF")
                ),
            ),
            "needs a zone_master_key",
            "key_exchange_interval_s",
        ),
        (
            text(
                "",
                &format!(
                    "zone_master_key = {}\nmac_key = {}\nkey_exchange_interval_s = 60",
                    key("zmk", ZMK, "ABCDEF"),
                    key("zak", ZPK, "ABCDEF")
                ),
            ),
            "out of range",
            "key_exchange_interval_s",
        ),
        (
            text("", "arqc_scheme = \"mchip\""),
            "without an arqc_key",
            "arqc_scheme",
        ),
        (
            text(
                "",
                &format!(
                    "arqc_key = {}\narqc_scheme = \"cvn99\"",
                    key("mk-ac", ZMK, "ABCDEF")
                ),
            ),
            "arqc_scheme:",
            "arqc_scheme",
        ),
        (
            text("cvv2_field = 52", ""),
            "cvv2_field: not the",
            "cvv2_field",
        ),
        (text("cvv2_field = 1", ""), "out of range", "cvv2_field"),
    ];
    for (t, reason, on_line) in cases {
        let err = load(&t).expect_err(reason);
        let shown = err.to_string();
        assert!(shown.contains(reason), "{reason}: {shown}");
        assert_eq!(err.line(), Some(line_of(&t, on_line)), "{reason}: {shown}");
        for k in [TPK, ZPK, ZMK, secretish] {
            assert!(!shown.contains(&k[1..]), "a key in the error: {shown}");
        }
    }
}

#[test]
fn an_acquirer_says_where_its_cvv2_is() {
    let c = load(&text("cvv2_field = 48", "")).expect("valid");
    assert_eq!(c.acquirers[0].security.cvv2_field, Some(48));
}

#[test]
fn stand_in_keys_need_stand_in() {
    let t = text("", &format!("cvv_key = {}", key("cvk", ZPK, "ABCDEF")))
        .replace("stand_in = {", "# stand_in = {");
    let err = load(&t).expect_err("no stand-in");
    assert!(err.to_string().contains("no stand_in"), "{err}");
}

#[test]
fn keys_without_an_hsm_are_refused_on_the_first_key() {
    let t = text(&format!("pin_key = {}", key("tpk", TPK, "ABCDEF")), "")
        .replace("[hsm]\naddress = \"127.0.0.1:1500\"\n", "");
    let err = load(&t).expect_err("no HSM");
    assert!(err.to_string().contains("no [hsm] section"), "{err}");
    assert_eq!(err.line(), Some(line_of(&t, "pin_key")));
}
