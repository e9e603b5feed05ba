//! Test certificates, generated per run with rcgen (no key is checked in).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// PEM files of one certificate authority and what it signed.
pub struct TestPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write pem");
    p
}

/// A CA, a server certificate for localhost / 127.0.0.1 and a client
/// certificate, written under `dir` with `prefix`.
pub fn make_pki(dir: &Path, prefix: &str) -> TestPki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{prefix} test CA"));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().expect("server key");
    let mut sp = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = sp.signed_by(&server_key, &issuer).expect("server cert");

    let client_key = KeyPair::generate().expect("client key");
    let mut cp = CertificateParams::new(Vec::<String>::new()).expect("client params");
    cp.distinguished_name
        .push(DnType::CommonName, format!("{prefix} acquirer"));
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = cp.signed_by(&client_key, &issuer).expect("client cert");

    TestPki {
        ca: write(dir, &format!("{prefix}-ca.pem"), &ca_cert.pem()),
        server_cert: write(dir, &format!("{prefix}-server.pem"), &server_cert.pem()),
        server_key: write(
            dir,
            &format!("{prefix}-server.key"),
            &server_key.serialize_pem(),
        ),
        client_cert: write(dir, &format!("{prefix}-client.pem"), &client_cert.pem()),
        client_key: write(
            dir,
            &format!("{prefix}-client.key"),
            &client_key.serialize_pem(),
        ),
    }
}

/// A test's private directory (mode 0700: it holds TLS keys and journals
/// with card data), removed with everything in it when dropped. A failing
/// test's directory is kept, and named on stderr, to be looked into.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Takes over a directory a child made under the temporary directory
    /// (the demo makes its own), to be removed the same way.
    pub fn adopt(path: impl Into<PathBuf>) -> TempDir {
        let path = path.into();
        let ours = path.parent() == Some(std::env::temp_dir().as_path())
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("cardswitch-"));
        assert!(
            ours,
            "not a cardswitch temporary directory: {}",
            path.display()
        );
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test failed: its directory is kept: {}",
                self.path.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// A fresh temporary directory for one test, removed when the guard drops:
/// bind it (`let dir = temp_dir(..)`) for the whole test.
pub fn temp_dir(name: &str) -> TempDir {
    use std::os::unix::fs::DirBuilderExt;
    let path = std::env::temp_dir().join(format!(
        "cardswitch-test-{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&path)
        .expect("temp dir");
    TempDir { path }
}
