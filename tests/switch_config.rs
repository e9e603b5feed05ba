//! The shipped example configuration loads and routes as its comments say;
//! every broken configuration in fixtures/switch/bad is refused with the
//! file, the line and the reason named in its `# expected-error:` header.

use std::path::Path;
use std::time::Duration;

use cardswitch::link::framing::LengthHeader;
use cardswitch::message::Mti;
use cardswitch::switch::config::{ConfigError, DefaultRoute, SwitchConfig};
use cardswitch::switch::routing::{RouteDecision, RouteTable};

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/switch")
}

#[test]
fn the_example_loads() {
    let config = SwitchConfig::load(fixtures().join("example.toml")).expect("example.toml");
    assert_eq!(config.switch.institution_id, "99000000001");
    assert_eq!(config.switch.metrics.as_deref(), Some("127.0.0.1:9180"));
    assert_eq!(config.switch.duplicate_window, Duration::from_secs(300));
    assert_eq!(config.switch.saf.policy.attempts_max, 50);

    let names: Vec<&str> = config.acquirers.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["pos-binary", "host-ascii"]);
    let pos = &config.acquirers[0];
    assert_eq!(pos.listen, "127.0.0.1:8583");
    assert_eq!(pos.spec_name, "iso87-binary");
    assert_eq!(pos.framing.length, LengthHeader::Binary2);
    assert!(pos.framing.tpdu);
    let host = &config.acquirers[1];
    assert_eq!(host.listen, "127.0.0.1:8584");
    assert_eq!(host.framing.length, LengthHeader::Ascii4);
    assert!(!host.framing.tpdu);
    assert_eq!(host.allowed_institutions.len(), 2);

    let a = &config.issuers[0];
    assert_eq!(
        (a.name.as_str(), a.spec_name.as_str()),
        ("issuer-a", "iso87-ascii")
    );
    assert_eq!(a.addresses, ["127.0.0.1:9101"]);
    let stand_in = a.stand_in.expect("stand-in on issuer-a");
    assert_eq!(stand_in.per_transaction_max, 10_000);
    let b = &config.issuers[1];
    assert_eq!(
        (b.name.as_str(), b.spec_name.as_str()),
        ("issuer-b", "iso93-ascii")
    );
    assert_eq!(b.addresses, ["127.0.0.1:9102"]);
    assert!(b.stand_in.is_none());
    assert_eq!(config.default_route, DefaultRoute::Decline);
}

#[test]
fn the_example_routes() {
    let config = SwitchConfig::load(fixtures().join("example.toml")).expect("example.toml");
    let table = RouteTable::build(&config);
    let auth: Mti = "0100".parse().expect("mti");
    let route = |pan: &str| table.route(pan.as_bytes(), auth, Some(b"000000"), Some(b"840"));
    assert_eq!(
        route("4761739001010010"),
        RouteDecision::Issuer {
            issuer: 0,
            timeout: Duration::from_millis(8000)
        }
    );
    assert_eq!(
        route("4761731234567890"),
        RouteDecision::Issuer {
            issuer: 0,
            timeout: Duration::from_millis(8000)
        }
    );
    assert_eq!(
        route("5454001234567890"),
        RouteDecision::Issuer {
            issuer: 1,
            timeout: Duration::from_millis(10_000)
        }
    );
    assert_eq!(
        route("4000001234567899"),
        RouteDecision::Decline {
            response_code: "15"
        }
    );
    let described = table.describe();
    assert_eq!(described.len(), 3, "{described:?}");
    assert!(described[2].contains("decline with 15"), "{described:?}");
}

/// `# expected-error: LINE: TEXT` on the first line.
fn expectation(text: &str) -> Option<(usize, String)> {
    let header = text.lines().next()?.strip_prefix("# expected-error: ")?;
    let (line, reason) = header.split_once(": ")?;
    Some((line.trim().parse().ok()?, reason.to_string()))
}

#[test]
fn every_bad_config_is_refused_naming_file_line_and_reason() {
    let dir = fixtures().join("bad");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/switch/bad")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("read");
        let (line, reason) = expectation(&text)
            .unwrap_or_else(|| panic!("{}: no '# expected-error: LINE: TEXT'", path.display()));
        let err = SwitchConfig::load(path).expect_err("a bad configuration must be refused");
        let shown = err.to_string();
        assert!(
            matches!(
                err,
                ConfigError::Invalid { .. } | ConfigError::Syntax { .. }
            ),
            "{shown}"
        );
        assert_eq!(err.line(), Some(line), "{shown}");
        let prefix = format!("{}:{line}:", path.display());
        assert!(
            shown.starts_with(&prefix),
            "{shown}: does not start with {prefix}"
        );
        assert!(
            shown.contains(&reason),
            "{shown}: does not contain {reason}"
        );
    }
    assert!(paths.len() >= 5, "only {} bad configurations", paths.len());
}
