//! The routing table's precedence, range and default-route rules, on
//! tables built from configuration text as an operator writes it.

use super::*;
use crate::node::config::SwitchConfig;

fn mti(s: &str) -> Mti {
    s.parse().expect("mti")
}

/// A configuration with issuers `a`, `b`, `c` (timeouts 1, 2, 3 s) and
/// the given routes and default route.
fn table(routes: &str) -> RouteTable {
    let mut text = String::from(
        "[switch]\ninstitution_id = \"1\"\n\n[[acquirer]]\nname = \"pos\"\nlisten = \"127.0.0.1:0\"\nspec = \"iso87-ascii\"\nframing = { length = \"ascii4\" }\n",
    );
    for (n, name) in ["a", "b", "c"].iter().enumerate() {
        text.push_str(&format!(
            "\n[[issuer]]\nname = \"{name}\"\naddresses = [\"127.0.0.1:{}\"]\nspec = \"iso87-ascii\"\nframing = {{ length = \"ascii4\" }}\ntimeout_ms = {}\n",
            9101 + n,
            (n + 1) * 1000
        ));
    }
    text.push_str(routes);
    let config = SwitchConfig::from_toml(&text, "test.toml").expect("valid config");
    config.route_table()
}

fn to(issuer: usize, ms: u64) -> RouteDecision {
    RouteDecision::Issuer {
        issuer,
        timeout: Duration::from_millis(ms),
    }
}

const DECLINE: RouteDecision = RouteDecision::Decline {
    response_code: NO_SUCH_ISSUER,
};

fn auth(t: &RouteTable, pan: &str) -> RouteDecision {
    t.route(pan.as_bytes(), mti("0100"), Some(b"000000"), Some(b"840"))
}

#[test]
fn longest_prefix_wins() {
    let t = table(
        r#"
[[route]]
bins = ["476173"]
issuer = "a"

[[route]]
bins = ["4761739"]
issuer = "b"

[[route]]
bins = ["47617391234"]
issuer = "c"
"#,
    );
    assert_eq!(auth(&t, "4761731234567890"), to(0, 1000));
    assert_eq!(auth(&t, "4761739000000000"), to(1, 2000));
    assert_eq!(auth(&t, "4761739123456789"), to(2, 3000));
    assert_eq!(auth(&t, "4761749123456789"), DECLINE);
}

#[test]
fn ranges_count_as_their_length() {
    let t = table(
        r#"
[[route]]
bin_range = { from = "545400", to = "545499" }
issuer = "a"

[[route]]
bin_range = { from = "54545000", to = "54545099" }
issuer = "b"

[[route]]
bins = ["545410"]
issuer = "c"
timeout_ms = 500
"#,
    );
    assert_eq!(auth(&t, "5454000000000000"), to(0, 1000));
    assert_eq!(auth(&t, "5454991234567890"), to(0, 1000));
    assert_eq!(auth(&t, "5455001234567890"), DECLINE);
    assert_eq!(auth(&t, "5453991234567890"), DECLINE);
    // The 8-digit range beats the 6-digit one.
    assert_eq!(auth(&t, "5454505012345678"), to(1, 2000));
    assert_eq!(auth(&t, "5454510012345678"), to(0, 1000));
    // Same length: the listed BIN is narrower than the range.
    assert_eq!(auth(&t, "5454101234567890"), to(2, 500));
}

#[test]
fn more_matching_conditions_win_and_failing_conditions_exclude() {
    let t = table(
        r#"
[[route]]
bins = ["476173"]
issuer = "a"

[[route]]
bins = ["476173"]
issuer = "b"
mti = ["0100", "0101"]

[[route]]
bins = ["476173"]
issuer = "c"
mti = ["0100"]
processing_code = ["01"]
currency = ["840", "978"]

[[route]]
bins = ["4761731"]
issuer = "c"
currency = ["826"]
"#,
    );
    let pan = b"4761731234567890".as_slice();
    // All three match: the one with three conditions wins.
    assert_eq!(
        t.route(pan, mti("0100"), Some(b"010000"), Some(b"978")),
        to(2, 3000)
    );
    // Processing code 00: route 3 is excluded, route 2 has more
    // conditions than route 1.
    assert_eq!(
        t.route(pan, mti("0100"), Some(b"000000"), Some(b"978")),
        to(1, 2000)
    );
    // A 0200: only route 1.
    assert_eq!(
        t.route(pan, mti("0200"), Some(b"010000"), Some(b"840")),
        to(0, 1000)
    );
    // Missing DE3 excludes a route that asks for a processing code.
    assert_eq!(t.route(pan, mti("0100"), None, Some(b"840")), to(1, 2000));
    // The 7-digit route matches only in pounds; otherwise the 6-digit
    // routes are tried.
    assert_eq!(
        t.route(pan, mti("0200"), Some(b"00"), Some(b"826")),
        to(2, 3000)
    );
    assert_eq!(t.route(pan, mti("0200"), Some(b"00"), None), to(0, 1000));
}

#[test]
fn default_route_declines_or_forwards() {
    let t = table("\n[[route]]\nbins = [\"476173\"]\nissuer = \"a\"\n");
    assert_eq!(auth(&t, "5454001234567890"), DECLINE);
    let t = table(
        "\n[[route]]\nbins = [\"476173\"]\nissuer = \"a\"\n\n[default_route]\nissuer = \"c\"\n",
    );
    assert_eq!(auth(&t, "5454001234567890"), to(2, 3000));
    let t = table("\n[default_route]\ndecline = true\n");
    assert_eq!(auth(&t, "4761731234567890"), DECLINE);
}

#[test]
fn short_or_malformed_pans_use_what_digits_there_are() {
    let t = table(
        "\n[[route]]\nbins = [\"476173\"]\nissuer = \"a\"\n\n[[route]]\nbins = [\"47617312\"]\nissuer = \"b\"\n",
    );
    assert_eq!(auth(&t, "476173"), to(0, 1000));
    assert_eq!(auth(&t, "4761731"), to(0, 1000));
    assert_eq!(auth(&t, "47617312"), to(1, 2000));
    assert_eq!(auth(&t, "47617"), DECLINE);
    assert_eq!(auth(&t, ""), DECLINE);
    assert_eq!(auth(&t, "4761=3123"), DECLINE);
    assert_eq!(auth(&t, "476173=123"), to(0, 1000));
}

#[test]
fn adjacent_bins_share_an_interval_and_leading_zeros_count() {
    let t = table(
        "\n[[route]]\nbins = [\"000100\", \"000101\", \"000102\", \"000104\"]\nissuer = \"a\"\n",
    );
    assert_eq!(t.levels.len(), 1);
    assert_eq!(t.levels[0].starts, vec![100, 104]);
    assert_eq!(t.levels[0].ends, vec![102, 104]);
    assert_eq!(auth(&t, "0001011234567890"), to(0, 1000));
    assert_eq!(auth(&t, "0001031234567890"), DECLINE);
    assert_eq!(auth(&t, "0001041234567890"), to(0, 1000));
    // 100 as six digits is not "100000".
    assert_eq!(auth(&t, "1000001234567890"), DECLINE);
}

#[test]
fn overlapping_ranges_split_into_intervals() {
    let t = table(
        r#"
[[route]]
bin_range = { from = "545400", to = "545499" }
issuer = "a"

[[route]]
bin_range = { from = "545420", to = "545429" }
issuer = "b"

[[route]]
bin_range = { from = "545425", to = "545460" }
issuer = "c"
mti = ["0200"]
"#,
    );
    assert_eq!(auth(&t, "5454191234567890"), to(0, 1000));
    assert_eq!(auth(&t, "5454201234567890"), to(1, 2000));
    assert_eq!(auth(&t, "5454291234567890"), to(1, 2000));
    assert_eq!(auth(&t, "5454301234567890"), to(0, 1000));
    let pan = b"5454261234567890".as_slice();
    assert_eq!(t.route(pan, mti("0200"), None, None), to(2, 3000));
    assert_eq!(t.route(pan, mti("0100"), None, None), to(1, 2000));
    let pan = b"5454501234567890".as_slice();
    assert_eq!(t.route(pan, mti("0200"), None, None), to(2, 3000));
}

#[test]
fn ties_are_found_only_when_conditions_can_coincide() {
    let route = |bins: RouteBins, mti: &[&str], currency: &[&[u8; 3]]| RouteConfig {
        line: 1,
        bins,
        issuer: 0,
        mti: mti.iter().map(|m| m.parse().unwrap()).collect(),
        processing_code: Vec::new(),
        currency: currency.iter().map(|c| **c).collect(),
        timeout: None,
    };
    let bin = |b: &str| RouteBins::Prefixes(vec![b.to_string()]);
    let range = |f: &str, t: &str| RouteBins::Range {
        from: f.into(),
        to: t.into(),
    };
    let same = [
        route(bin("476173"), &[], &[]),
        route(bin("476173"), &[], &[]),
    ];
    assert_eq!(
        ambiguity(&same),
        Some(Ambiguity {
            first: 0,
            second: 1,
            cards: "BIN 476173".into()
        })
    );
    let disjoint = [
        route(bin("476173"), &["0100"], &[]),
        route(bin("476173"), &["0200"], &[]),
    ];
    assert_eq!(ambiguity(&disjoint), None);
    let crossing = [
        route(bin("476173"), &["0100"], &[]),
        route(bin("476173"), &[], &[b"840"]),
    ];
    assert!(ambiguity(&crossing).is_some());
    let ranges = [
        route(range("545400", "545449"), &[], &[]),
        route(range("545420", "545469"), &[], &[]),
    ];
    assert_eq!(
        ambiguity(&ranges).map(|a| a.cards),
        Some("BINs 545420-545449".into())
    );
    let nested = [
        route(range("545400", "545499"), &[], &[]),
        route(range("545420", "545429"), &[], &[]),
    ];
    assert_eq!(ambiguity(&nested), None);
}

#[test]
fn describe_lists_routes_and_default() {
    let t = table(
        r#"
[[route]]
bins = ["476173", "4761739"]
issuer = "a"
mti = ["0100"]
processing_code = ["00"]

[[route]]
bin_range = { from = "545400", to = "545499" }
issuer = "b"
timeout_ms = 1500
"#,
    );
    let lines = t.describe();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("route 1 (line ")
            && lines[0].ends_with(
                "BIN 476173, 4761739 -> a, timeout 1000 ms, if mti 0100, processing code 00"
            ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with("BINs 545400-545499 -> b, timeout 1500 ms"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "default route: decline with 15 (no such issuer)");
}
