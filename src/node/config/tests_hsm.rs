//! `[hsm]`: the values that are not numbers (address, header, TLS) are
//! checked at load with the file and line, like every other section.

use super::*;

const BASE: &str = r#"[switch]
institution_id = "123456"

[[acquirer]]
name = "pos"
listen = "127.0.0.1:8583"
spec = "iso87-ascii"
framing = { length = "ascii4" }

[[issuer]]
name = "issuer-a"
addresses = ["127.0.0.1:9101"]
spec = "iso87-ascii"
framing = { length = "ascii4" }

[hsm]
"#;

/// The base with `lines` in `[hsm]`; the first of them is on line 17.
fn load(lines: &str) -> Result<SwitchConfig, ConfigError> {
    SwitchConfig::from_toml(&format!("{BASE}{lines}\n"), "x.toml")
}

#[test]
fn a_minimal_section_takes_the_defaults() {
    let h = load("address = \"hsm.local:1500\"")
        .expect("loads")
        .hsm
        .expect("hsm");
    assert_eq!(h.address, "hsm.local:1500");
    assert_eq!(h.header, b"0000");
    assert_eq!((h.connections, h.pipeline_depth), (2, 16));
    assert_eq!(h.timeout, std::time::Duration::from_millis(1_000));
    assert_eq!(h.line, 16);
    assert!(h.tls.is_none());
    let none = SwitchConfig::from_toml(&BASE.replace("[hsm]\n", ""), "x.toml").expect("loads");
    assert!(none.hsm.is_none());
}

#[test]
fn bad_values_name_their_line() {
    for (lines, want) in [
        (
            "address = \"nowhere\"",
            "x.toml:17: hsm: address: 'nowhere' is not host:port",
        ),
        (
            "address = \"127.0.0.1:0\"",
            "x.toml:17: hsm: address: port 0",
        ),
        (
            "address = \"127.0.0.1:1500\"\nheader = \"\"",
            "x.toml:18: hsm: header: 1 to 255 printable ASCII characters, no spaces",
        ),
        (
            "address = \"127.0.0.1:1500\"\nheader = \"a b\"",
            "x.toml:18: hsm: header: 1 to 255 printable ASCII characters, no spaces",
        ),
        (
            "address = \"127.0.0.1:1500\"\ntls = { ca = \"missing.pem\" }",
            "x.toml:18: hsm: tls.ca: file 'missing.pem' not found",
        ),
    ] {
        assert_eq!(load(lines).expect_err(lines).to_string(), want);
    }
    let long = format!(
        "address = \"127.0.0.1:1500\"\nheader = \"{}\"",
        "H".repeat(256)
    );
    assert!(load(&long).is_err());
    let max = format!(
        "address = \"127.0.0.1:1500\"\nheader = \"{}\"",
        "H".repeat(255)
    );
    assert_eq!(load(&max).expect("255").hsm.expect("hsm").header.len(), 255);
    let unknown = load("address = \"127.0.0.1:1500\"\nkey = \"x\"").expect_err("unknown key");
    assert!(unknown.to_string().starts_with("x.toml:18:"), "{unknown}");
    let missing = load("header = \"0000\"").expect_err("no address");
    assert!(missing.to_string().contains("address"), "{missing}");
}

#[test]
fn tls_takes_the_hosts_name_unless_given() {
    let dir = crate::test_dir::TempDir::new("hsm-tls");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, "not checked at load").expect("ca");
    let tls = |extra: &str| {
        let lines = format!(
            "address = \"hsm.local:1500\"\ntls = {{ ca = \"{}\"{extra} }}",
            ca.display()
        );
        load(&lines)
            .expect("loads")
            .hsm
            .expect("hsm")
            .tls
            .expect("tls")
    };
    assert_eq!(tls("").server_name, "hsm.local");
    assert_eq!(tls(", server_name = \"hsm-1\"").server_name, "hsm-1");
}
