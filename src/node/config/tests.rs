//! The configuration checks, case by case.

use super::check::{addresses_collide, host_port};
use super::*;

const ACQUIRER: &str = r#"
[[acquirer]]
name = "pos"
listen = "127.0.0.1:8583"
spec = "iso87-ascii"
framing = { length = "ascii4" }
"#;

const ISSUER: &str = r#"
[[issuer]]
name = "issuer-a"
addresses = ["127.0.0.1:9101"]
spec = "iso87-ascii"
framing = { length = "ascii4" }
"#;

fn config(rest: &str) -> String {
    format!("[switch]\ninstitution_id = \"123456\"\n{ACQUIRER}{ISSUER}{rest}")
}

fn load(text: &str) -> Result<SwitchConfig, ConfigError> {
    SwitchConfig::from_toml(text, "switch.toml")
}

/// The error, its line, and its text.
fn refused(text: &str) -> (usize, String) {
    let err = load(text).expect_err("must be refused");
    (err.line().unwrap_or(0), err.to_string())
}

/// The 1-based line of the first occurrence of `needle`.
fn line_with(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .expect("needle")
}

/// The 1-based line of the last line that `pick` accepts.
fn last_line(text: &str, pick: impl Fn(&str) -> bool) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    lines.iter().rposition(|l| pick(l)).expect("line") + 1
}

#[test]
fn minimal_config_gets_the_defaults() {
    let c = load(&config("")).expect("valid");
    assert_eq!(c.switch.institution_id, "123456");
    assert_eq!(c.switch.duplicate_window, Duration::from_secs(300));
    assert_eq!(c.switch.saf.queue_max, 100_000);
    assert_eq!(c.switch.saf.policy.attempts_max, 50);
    let a = &c.acquirers[0];
    assert_eq!(a.connections_max, 1024);
    assert_eq!(a.in_flight_max, 256);
    assert_eq!(a.idle_timeout, Duration::from_secs(300));
    assert!(a.allowed_institutions.is_empty());
    assert_eq!(a.line, line_with(&config(""), "[[acquirer]]"));
    let i = &c.issuers[0];
    assert_eq!(i.connections, 2);
    assert_eq!(i.timeout, Duration::from_millis(10_000));
    assert_eq!(i.echo_interval, Some(Duration::from_secs(30)));
    assert_eq!(i.in_flight_max, 4096);
    assert!(!i.sign_on);
    assert!(i.stand_in.is_none());
    assert_eq!(c.default_route, DefaultRoute::Decline);
    assert!(c.routes.is_empty());
}

#[test]
fn routes_and_default_route_are_read() {
    let text = config(
        r#"
[[route]]
bins = ["476173", "4761739", "476173"]
issuer = "issuer-a"
mti = ["0100", "0400"]
processing_code = ["00", "01"]
currency = ["840"]
timeout_ms = 2500

[[route]]
bin_range = { from = "545400", to = "545499" }
issuer = "issuer-a"

[default_route]
issuer = "issuer-a"
"#,
    );
    let c = load(&text).expect("valid");
    assert_eq!(c.routes.len(), 2);
    let r = &c.routes[0];
    assert_eq!(
        r.bins,
        RouteBins::Prefixes(vec!["476173".into(), "4761739".into()])
    );
    assert_eq!(r.mti.len(), 2);
    assert_eq!(r.processing_code, vec![*b"00", *b"01"]);
    assert_eq!(r.currency, vec![*b"840"]);
    assert_eq!(r.timeout, Some(Duration::from_millis(2500)));
    assert_eq!(r.conditions(), 3);
    assert_eq!(r.line, line_with(&text, "[[route]]"));
    assert_eq!(
        c.routes[1].bins,
        RouteBins::Range {
            from: "545400".into(),
            to: "545499".into()
        }
    );
    assert_eq!(c.default_route, DefaultRoute::Issuer(0));
}

#[test]
fn an_unknown_issuer_is_refused_with_route_number_and_line() {
    let text = config("\n[[route]]\nbins = [\"476173\"]\nissuer = \"x\"\n");
    let (line, shown) = refused(&text);
    assert_eq!(line, line_with(&text, "issuer = \"x\""));
    assert_eq!(
        shown,
        format!("switch.toml:{line}: route 1: issuer 'x' is not defined")
    );
}

#[test]
fn bad_bins_are_refused_on_their_line() {
    for bad in ["47617", "476173123456", "47617x", ""] {
        let text = config(&format!(
            "\n[[route]]\nbins = [\n  \"476173\",\n  \"{bad}\",\n]\nissuer = \"issuer-a\"\n"
        ));
        let (line, shown) = refused(&text);
        assert_eq!(line, line_with(&text, &format!("  \"{bad}\",")), "{shown}");
        assert!(shown.contains("is not a BIN of 6 to 11 digits"), "{shown}");
    }
    let text = config("\n[[route]]\nbins = []\nissuer = \"issuer-a\"\n");
    assert!(refused(&text).1.contains("bins is empty"));
}

#[test]
fn bad_bin_ranges_are_refused() {
    let cases = [
        (r#"{ from = "545400", to = "5454999" }"#, "differ in length"),
        (r#"{ from = "545499", to = "545400" }"#, "is above to"),
        (r#"{ from = "5454", to = "5455" }"#, "is not a BIN"),
    ];
    for (range, want) in cases {
        let text = config(&format!(
            "\n[[route]]\nbin_range = {range}\nissuer = \"issuer-a\"\n"
        ));
        let (line, shown) = refused(&text);
        assert_eq!(line, line_with(&text, "bin_range"), "{shown}");
        assert!(shown.contains(want), "{shown}");
    }
    let both = config(
        "\n[[route]]\nbins = [\"476173\"]\nbin_range = { from = \"545400\", to = \"545499\" }\nissuer = \"issuer-a\"\n",
    );
    let (line, shown) = refused(&both);
    assert_eq!(line, line_with(&both, "[[route]]"));
    assert!(shown.contains("not both"), "{shown}");
    let neither = config("\n[[route]]\nissuer = \"issuer-a\"\n");
    assert!(refused(&neither).1.contains("needs bins or bin_range"));
}

#[test]
fn bad_conditions_are_refused() {
    let cases = [
        ("mti = [\"0110\"]", "is not the MTI of a request"),
        ("mti = [\"010\"]", "is not the MTI of a request"),
        ("mti = []", "leave it out"),
        ("processing_code = [\"000000\"]", "is not two digits"),
        ("currency = [\"USD\"]", "three-digit ISO 4217"),
        (
            "timeout_ms = 0",
            "timeout_ms = 0 is out of range 1..=600000",
        ),
    ];
    for (condition, want) in cases {
        let text = config(&format!(
            "\n[[route]]\nbins = [\"476173\"]\nissuer = \"issuer-a\"\n{condition}\n"
        ));
        let (line, shown) = refused(&text);
        assert_eq!(line, line_with(&text, condition), "{shown}");
        assert!(shown.contains(want), "{shown}");
    }
}

#[test]
fn ambiguous_routes_are_refused() {
    let text = config(
        r#"
[[route]]
bins = ["476173"]
issuer = "issuer-a"
mti = ["0100"]

[[route]]
bins = ["476173"]
issuer = "issuer-a"
processing_code = ["00"]
"#,
    );
    let (line, shown) = refused(&text);
    assert_eq!(line, last_line(&text, |l| l == "[[route]]"));
    assert!(
        shown.contains("route 2: matches the same cards (BIN 476173)"),
        "{shown}"
    );
    assert!(shown.contains("as route 1"), "{shown}");
    // Disjoint conditions are not ambiguous.
    let fine = config(
        r#"
[[route]]
bins = ["476173"]
issuer = "issuer-a"
mti = ["0100"]

[[route]]
bins = ["476173"]
issuer = "issuer-a"
mti = ["0200"]
"#,
    );
    load(&fine).expect("disjoint conditions");
}

#[test]
fn duplicate_names_are_refused() {
    let text = config(&ISSUER.replace("issuer-a", "pos"));
    let (line, shown) = refused(&text);
    assert_eq!(line, last_line(&text, |l| l == "name = \"pos\""));
    assert!(
        shown.contains("issuer 'pos': name already used by acquirer 'pos'"),
        "{shown}"
    );
    let text = config(&ACQUIRER.replace("8583", "8584"));
    assert!(refused(&text).1.contains("name already used by acquirer"));
}

#[test]
fn two_acquirers_on_one_address_are_refused() {
    let text = config(&ACQUIRER.replace("\"pos\"", "\"atm\""));
    let (line, shown) = refused(&text);
    assert_eq!(line, last_line(&text, |l| l.starts_with("listen")));
    assert!(shown.contains("already used by acquirer 'pos'"), "{shown}");
    let wildcard = config(
        &ACQUIRER
            .replace("\"pos\"", "\"atm\"")
            .replace("127.0.0.1", "0.0.0.0"),
    );
    assert!(refused(&wildcard).1.contains("already used"));
    let ephemeral = format!(
        "[switch]\ninstitution_id = \"1\"\n{}{}{ISSUER}",
        ACQUIRER.replace("8583", "0"),
        ACQUIRER.replace("8583", "0").replace("\"pos\"", "\"atm\"")
    );
    load(&ephemeral).expect("port 0 twice is fine");
}

#[test]
fn bad_addresses_are_refused() {
    for bad in [
        "127.0.0.1",
        "localhost:http",
        ":8583",
        "1.2.3.4.5:80",
        "::1:80",
        "a b:1",
    ] {
        let text = config("").replace("127.0.0.1:8583", bad);
        let (line, shown) = refused(&text);
        assert_eq!(line, line_with(&text, "listen ="), "{shown}");
        assert!(shown.contains("is not host:port"), "{shown}");
    }
    for good in ["localhost:8583", "[::1]:8583", "switch.example.com:8583"] {
        load(&config("").replace("127.0.0.1:8583", good)).expect(good);
    }
    let text = config("").replace("127.0.0.1:9101", "127.0.0.1:0");
    assert!(refused(&text).1.contains("port 0"));
    let text = config("").replace("[\"127.0.0.1:9101\"]", "[]");
    assert!(refused(&text).1.contains("at least one host:port"));
}

#[test]
fn institution_ids_must_be_digits() {
    for bad in ["", "12a", "123456789012"] {
        let text = config("").replace("\"123456\"", &format!("\"{bad}\""));
        let (line, shown) = refused(&text);
        assert_eq!(line, 2, "{shown}");
        assert!(shown.contains("institution_id"), "{shown}");
    }
    let text = config("").replacen(
        "framing = { length = \"ascii4\" }\n",
        "framing = { length = \"ascii4\" }\nallowed_institutions = [\"123\", \"x\"]\n",
        1,
    );
    let (line, shown) = refused(&text);
    assert_eq!(line, line_with(&text, "allowed_institutions"));
    assert!(shown.contains("allowed_institutions: 'x'"), "{shown}");
}

#[test]
fn unknown_specs_are_refused() {
    let text = config("").replacen("spec = \"iso87-ascii\"", "spec = \"no-such-spec\"", 1);
    let (line, shown) = refused(&text);
    assert_eq!(line, line_with(&text, "no-such-spec"));
    assert!(
        shown.contains("acquirer 'pos': spec: unknown spec"),
        "{shown}"
    );
    // A spec file that exists but is malformed: its own error, on the
    // configuration's line.
    let bad_spec = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/specs-bad/bcd-on-ans.toml"
    );
    let text = config("").replacen(
        "spec = \"iso87-ascii\"",
        &format!("spec = \"{bad_spec}\""),
        1,
    );
    let (line, shown) = refused(&text);
    assert_eq!(line, line_with(&text, "bcd-on-ans"));
    assert!(shown.contains("field 43"), "{shown}");
    // A spec file by path.
    let good = concat!(env!("CARGO_MANIFEST_DIR"), "/specs/iso93-ascii.toml");
    let text = config("").replacen("spec = \"iso87-ascii\"", &format!("spec = \"{good}\""), 1);
    assert_eq!(
        load(&text).expect("spec by path").acquirers[0].spec_name,
        good
    );
}

#[test]
fn missing_tls_files_are_refused() {
    let text = config("").replacen(
        "framing = { length = \"ascii4\" }\n",
        "framing = { length = \"ascii4\" }\ntls = { cert = \"/nonexistent/cert.pem\", key = \"/nonexistent/key.pem\" }\n",
        1,
    );
    let (line, shown) = refused(&text);
    assert_eq!(line, line_with(&text, "tls ="));
    assert!(
        shown.contains("tls.cert: file '/nonexistent/cert.pem' not found"),
        "{shown}"
    );
}

#[test]
fn zero_counts_are_refused() {
    for (key, section) in [
        ("connections_max = 0", "acquirer 'pos'"),
        ("in_flight_max = 0", "acquirer 'pos'"),
        ("idle_timeout_s = 0", "acquirer 'pos'"),
    ] {
        let text = config("").replacen(
            "framing = { length = \"ascii4\" }\n",
            &format!("framing = {{ length = \"ascii4\" }}\n{key}\n"),
            1,
        );
        let (line, shown) = refused(&text);
        assert_eq!(line, line_with(&text, key), "{shown}");
        assert!(shown.contains(&format!("{section}: ")), "{shown}");
        assert!(shown.contains("= 0 is out of range 1..="), "{shown}");
    }
    let text = format!("{}\nconnections = 0\n", config(""));
    assert!(
        refused(&text)
            .1
            .contains("issuer 'issuer-a': connections = 0 is out of range 1..=256")
    );
    let text = config("").replace(
        "institution_id = \"123456\"",
        "institution_id = \"123456\"\nsaf = { queue_max = 0 }",
    );
    let (line, shown) = refused(&text);
    assert_eq!(line, 3);
    assert!(shown.contains("switch.saf: queue_max"), "{shown}");
    let text = config("").replace(
        "framing = { length = \"ascii4\" }",
        "framing = { length = \"ascii4\", frame_bytes_max = 0 }",
    );
    assert!(refused(&text).1.contains("frame_bytes_max"));
}

#[test]
fn stand_in_and_echo_settings() {
    let text = format!(
        "{}\necho_interval_s = 0\nsign_on = true\nstand_in = {{ per_transaction_max = 5000, per_card_daily_count = 3, per_card_daily_amount = 10000 }}\n",
        config("")
    );
    let c = load(&text).expect("valid");
    let i = &c.issuers[0];
    assert_eq!(i.echo_interval, None);
    assert!(i.sign_on);
    assert_eq!(i.stand_in.map(|s| s.per_card_daily_count), Some(3));
    let text = text.replace("per_card_daily_count = 3", "per_card_daily_count = 0");
    assert!(refused(&text).1.contains("stand_in.per_card_daily_count"));
    let text = text
        .replace("per_card_daily_count = 0", "per_card_daily_count = 3")
        .replace("10000", "100");
    assert!(refused(&text).1.contains("above per_card_daily_amount"));
}

#[test]
fn default_route_forms() {
    let both = config("\n[default_route]\nissuer = \"issuer-a\"\ndecline = true\n");
    let (line, shown) = refused(&both);
    assert_eq!(line, line_with(&both, "[default_route]"));
    assert!(
        shown.contains("default_route: give issuer or decline"),
        "{shown}"
    );
    let neither = config("\n[default_route]\ndecline = false\n");
    assert!(refused(&neither).1.contains("needs issuer"));
    let unknown = config("\n[default_route]\nissuer = \"nobody\"\n");
    assert!(
        refused(&unknown)
            .1
            .contains("issuer 'nobody' is not defined")
    );
    let decline = config("\n[default_route]\ndecline = true\n");
    assert_eq!(load(&decline).unwrap().default_route, DefaultRoute::Decline);
}

#[test]
fn syntax_errors_and_unknown_keys_name_the_line() {
    let text = config("").replace("institution_id", "sensitive_log = true\ninstitution_id");
    let err = load(&text).expect_err("unknown key");
    assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
    assert!(
        err.to_string().contains("unknown field `sensitive_log`"),
        "{err}"
    );
    let text = config("").replace("\"ascii4\" }", "\"ascii5\" }");
    let (line, shown) = refused(&text);
    assert_eq!(line, line_with(&text, "ascii5"));
    assert!(shown.contains("ascii5"), "{shown}");
    let err = load("[[acquirer]]\nname = \"a\"\n").expect_err("no switch");
    assert!(err.to_string().contains("switch"), "{err}");
}

#[test]
fn acquirers_and_issuers_are_required() {
    let err = load("[switch]\ninstitution_id = \"1\"\n").expect_err("empty");
    assert!(matches!(err, ConfigError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("no [[acquirer]]"), "{err}");
}

#[test]
fn load_reports_unreadable_files_and_resolves_relative_paths() {
    let err = SwitchConfig::load("/nonexistent/switch.toml").expect_err("missing");
    assert!(matches!(err, ConfigError::Io { .. }), "{err}");
    let dir = crate::test_dir::TempDir::new("config");
    std::fs::write(dir.join("cert.pem"), "x").unwrap();
    std::fs::write(dir.join("key.pem"), "x").unwrap();
    let text = config("").replacen(
        "framing = { length = \"ascii4\" }\n",
        "framing = { length = \"ascii4\" }\ntls = { cert = \"cert.pem\", key = \"key.pem\" }\n",
        1,
    );
    std::fs::write(dir.join("switch.toml"), &text).unwrap();
    let c = SwitchConfig::load(dir.join("switch.toml")).expect("valid");
    let tls = c.acquirers[0].tls.clone().expect("tls");
    assert_eq!(tls.cert, dir.join("cert.pem"));
    assert_eq!(tls.client_ca, None);
}

#[test]
fn host_port_forms() {
    assert_eq!(host_port("127.0.0.1:8583"), Ok(("127.0.0.1".into(), 8583)));
    assert_eq!(
        host_port("Switch.Example:1"),
        Ok(("switch.example".into(), 1))
    );
    assert!(host_port("host:65536").is_err());
    assert!(host_port("host:+80").is_err());
    assert!(addresses_collide("0.0.0.0:1", "127.0.0.1:1"));
    assert!(!addresses_collide("127.0.0.1:1", "127.0.0.2:1"));
    assert!(!addresses_collide("127.0.0.1:0", "127.0.0.1:0"));
}
