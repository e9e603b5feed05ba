//! The shipped example configuration loads and routes as its comments say;
//! every broken configuration in fixtures/switch/bad is refused with the
//! file, the line and the reason named in its `# expected-error:` header.

use std::path::Path;
use std::time::Duration;

use cardswitch::link::framing::LengthHeader;
use cardswitch::message::Mti;
use cardswitch::node::config::{ConfigError, DefaultRoute, SwitchConfig};
use cardswitch::switch::routing::RouteDecision;

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
    let table = config.route_table();
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

// ---------------------------------------------------------------------------
// Refusals at start (the file is valid, the world is not): each names the
// configuration file, the line and the key, like a refusal at load.

mod support;

/// A configuration with one plain acquirer on `listen`, one issuer that
/// nobody answers, and `extra` lines at the end; written in a fresh
/// directory (relative paths in it are taken from there): its guard, to
/// hold for the test, and the file.
fn start_config(
    name: &str,
    listen: &str,
    acquirer_extra: &str,
    extra: &str,
) -> (support::certs::TempDir, std::path::PathBuf) {
    let dir = support::certs::temp_dir(name);
    let issuer = support::process::free_addr();
    let text = format!(
        r#"[switch]
institution_id = "123456"

[[acquirer]]
name = "pos"
listen = "{listen}"
spec = "iso87-ascii"
framing = {{ length = "ascii4" }}
{acquirer_extra}
[[issuer]]
name = "issuer-a"
addresses = ["{issuer}"]
spec = "iso87-ascii"
framing = {{ length = "ascii4" }}
{extra}"#
    );
    let path = dir.join("switch.toml");
    std::fs::write(&path, text).expect("write config");
    (dir, path)
}

/// The 1-based line of `path` that starts with `start`.
fn line_starting(path: &Path, start: &str) -> usize {
    let text = std::fs::read_to_string(path).expect("read config");
    text.lines()
        .position(|l| l.starts_with(start))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line starting with {start}"))
}

/// A key file must be its owner's only, or the switch refuses it.
fn owner_only(file: &Path) {
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o600);
    std::fs::set_permissions(file, mode).expect("chmod");
}

/// Runs `cardswitch run` on `path`; it must fail: its stderr.
fn refused_at_start(path: &Path) -> String {
    let (code, _, stderr) =
        support::process::run(&["run", "--config", path.to_str().expect("utf-8")]);
    assert_ne!(code, 0, "the switch started:\n{stderr}");
    stderr
}

#[test]
fn a_listen_address_in_use_is_refused_naming_file_line_and_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("addr").to_string();
    let (_dir, path) = start_config("listen-in-use", &address, "", "");
    let stderr = refused_at_start(&path);
    let want = format!(
        "{}:{}: acquirer 'pos': listen = \"{address}\": ",
        path.display(),
        line_starting(&path, "listen =")
    );
    assert!(stderr.contains(&want), "{stderr}\nwanted: {want}");
    assert!(stderr.to_lowercase().contains("in use"), "{stderr}");
}

#[test]
fn a_pem_without_a_certificate_is_refused_naming_file_line_and_key() {
    let (_dir, path) = start_config(
        "tls-no-cert",
        "127.0.0.1:0",
        "[acquirer.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
        "",
    );
    let dir = path.parent().expect("dir");
    let pki = support::certs::make_pki(dir, "t");
    // A PEM file, but of a key: no certificate in it.
    std::fs::copy(&pki.server_key, dir.join("cert.pem")).expect("copy");
    std::fs::copy(&pki.server_key, dir.join("key.pem")).expect("copy");
    let stderr = refused_at_start(&path);
    let want = format!(
        "{}:{}: acquirer 'pos': tls.cert: file holds no PEM certificate",
        path.display(),
        line_starting(&path, "cert =")
    );
    assert!(stderr.contains(&want), "{stderr}\nwanted: {want}");
}

#[test]
fn an_issuer_ca_without_a_certificate_is_refused_naming_its_key() {
    let (_dir, path) = start_config(
        "tls-no-ca",
        "127.0.0.1:0",
        "",
        "\n[issuer.tls]\nserver_name = \"localhost\"\nca = \"ca.pem\"\n",
    );
    std::fs::write(path.with_file_name("ca.pem"), "no PEM here\n").expect("write");
    let stderr = refused_at_start(&path);
    let want = format!(
        "{}:{}: issuer 'issuer-a': tls.ca: file holds no PEM certificate",
        path.display(),
        line_starting(&path, "ca =")
    );
    assert!(stderr.contains(&want), "{stderr}\nwanted: {want}");
}

#[test]
fn a_bad_journal_key_file_is_refused_naming_file_line_and_key() {
    let (_dir, path) = start_config(
        "bad-key-file",
        "127.0.0.1:0",
        "",
        "\n[journal]\npath = \"journal.db\"\nkey_file = \"keys.toml\"\n",
    );
    let keys = path.with_file_name("keys.toml");
    std::fs::write(&keys, "current = \"k1\"\n[keys]\nk1 = \"not hex\"\n").expect("write");
    owner_only(&keys);
    let stderr = refused_at_start(&path);
    let want = format!(
        "{}:{}: journal: key_file: {}: key 'k1': ",
        path.display(),
        line_starting(&path, "key_file ="),
        keys.display()
    );
    assert!(stderr.contains(&want), "{stderr}\nwanted: {want}");
    assert!(!stderr.contains("not hex"), "key material echoed: {stderr}");
}

/// A good key file that every account can read is refused (the key would
/// protect nothing), naming the file, the line, the mode and the fix.
#[test]
fn a_journal_key_file_others_can_read_is_refused() {
    let (_dir, path) = start_config(
        "open-key-file",
        "127.0.0.1:0",
        "",
        "\n[journal]\npath = \"journal.db\"\nkey_file = \"keys.toml\"\n",
    );
    let keys = path.with_file_name("keys.toml");
    let key = "ab".repeat(32);
    std::fs::write(&keys, format!("current = \"k1\"\n[keys]\nk1 = \"{key}\"\n")).expect("write");
    let open = std::os::unix::fs::PermissionsExt::from_mode(0o644);
    std::fs::set_permissions(&keys, open).expect("chmod");
    let stderr = refused_at_start(&path);
    let want = format!(
        "{}:{}: journal: key_file: {}: mode 0644",
        path.display(),
        line_starting(&path, "key_file ="),
        keys.display()
    );
    assert!(
        stderr.contains(&want) && stderr.contains("chmod 600"),
        "{stderr}\nwanted: {want}"
    );
    assert!(!stderr.contains(&key), "key material echoed: {stderr}");
    assert!(
        !path.with_file_name("journal.db").exists(),
        "a journal was opened"
    );
}
