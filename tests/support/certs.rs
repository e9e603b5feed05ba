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

pub use cardswitch::test_dir::TempDir;

/// A fresh temporary directory for one test, removed when the guard drops:
/// bind it (`let dir = temp_dir(..)`) for the whole test.
pub fn temp_dir(name: &str) -> TempDir {
    TempDir::new(name)
}
