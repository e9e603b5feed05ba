//! TLS for links, with rustls: server and client, optional mutual TLS
//! (client certificates checked against a configured CA), TLS 1.2 and 1.3
//! only (PCI DSS 4.2.1), certificates and keys from PEM.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use zeroize::Zeroizing;

use crate::private_file::read_to_limit;

/// A TLS setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
    #[error("{what}: no PEM {kind} found")]
    NoPem { what: String, kind: &'static str },
    #[error("TLS configuration: {0}")]
    Config(String),
    #[error("server name '{0}' is not a valid DNS name or IP address")]
    ServerName(String),
}

/// How long a handshake may take unless told otherwise: a peer that
/// accepts TCP and never answers the TLS hello would otherwise hold the
/// caller for ever. On loopback or a LAN a handshake takes milliseconds;
/// 10 s leaves room for a slow WAN and a loaded peer.
pub const HANDSHAKE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

fn timed_out(what: &str, limit: Duration) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("TLS handshake ({what}) not done within {limit:?}"),
    )
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Config(format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::NoPem {
            what: what.to_string(),
            kind: "certificate",
        });
    }
    Ok(certs)
}

fn key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| TlsError::NoPem {
        what: what.to_string(),
        kind: "private key",
    })
}

fn roots(pem: &[u8], what: &str) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for c in certs(pem, what)? {
        store
            .add(c)
            .map_err(|e| TlsError::Config(format!("{what}: {e}")))?;
    }
    Ok(store)
}

/// A PEM file is a key or a few certificates (a CA bundle some hundred
/// KiB): a larger one, or a path such as `/dev/zero`, is refused at load
/// rather than read without end.
pub const PEM_FILE_BYTES_MAX: u64 = 1 << 20;

/// Reads a PEM file of at most [`PEM_FILE_BYTES_MAX`] bytes; the buffer is
/// wiped when dropped (it may hold a private key).
fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    let fail = |reason: String| TlsError::File {
        file: path.display().to_string(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    read_to_limit(file, PEM_FILE_BYTES_MAX)
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| {
            fail(format!(
                "more than {PEM_FILE_BYTES_MAX} bytes: not a PEM file"
            ))
        })
}

/// The server side of TLS on a listener.
#[derive(Clone)]
pub struct TlsServer {
    acceptor: TlsAcceptor,
}

impl TlsServer {
    /// From PEM text: certificate chain, private key, and the CA that client
    /// certificates must chain to (mutual TLS) when given.
    pub fn from_pem(
        cert_chain: &[u8],
        private_key: &[u8],
        client_ca: Option<&[u8]>,
    ) -> Result<TlsServer, TlsError> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match client_ca {
            Some(ca) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots(ca, "client CA")?),
                    provider(),
                )
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(certs(cert_chain, "certificate")?, key(private_key, "key")?)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(TlsServer {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// From PEM files.
    pub fn from_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<TlsServer, TlsError> {
        let ca = client_ca.map(read).transpose()?;
        TlsServer::from_pem(&read(cert)?, &read(key)?, ca.as_ref().map(|c| c.as_slice()))
    }

    /// Runs the handshake on an accepted connection, giving up (TimedOut)
    /// after `limit`: a client that connects and never sends its hello
    /// must not hold a connection slot.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        limit: Duration,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
        tokio::time::timeout(limit, self.acceptor.accept(tcp))
            .await
            .map_err(|_| timed_out("server", limit))?
    }
}

/// The client side of TLS on an issuer link.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    handshake_timeout: Duration,
}

impl TlsClient {
    /// From PEM text: the CA the server must chain to, the name to verify,
    /// and a client certificate and key for mutual TLS when given.
    pub fn from_pem(
        server_ca: &[u8],
        server_name: &str,
        client_identity: Option<(&[u8], &[u8])>,
    ) -> Result<TlsClient, TlsError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots(server_ca, "server CA")?);
        let config = match client_identity {
            Some((cert, k)) => builder
                .with_client_auth_cert(certs(cert, "client certificate")?, key(k, "client key")?)
                .map_err(|e| TlsError::Config(e.to_string()))?,
            None => builder.with_no_client_auth(),
        };
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|_| TlsError::ServerName(server_name.to_string()))?;
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            handshake_timeout: HANDSHAKE_TIMEOUT_DEFAULT,
        })
    }

    /// From PEM files.
    pub fn from_files(
        server_ca: &Path,
        server_name: &str,
        client_identity: Option<(&Path, &Path)>,
    ) -> Result<TlsClient, TlsError> {
        let identity = match client_identity {
            Some((c, k)) => Some((read(c)?, read(k)?)),
            None => None,
        };
        TlsClient::from_pem(
            &read(server_ca)?,
            server_name,
            identity.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
        )
    }

    /// The same client with another handshake time-out.
    pub fn with_handshake_timeout(mut self, limit: Duration) -> TlsClient {
        self.handshake_timeout = limit;
        self
    }

    /// Runs the handshake on a connected socket, giving up (TimedOut)
    /// after the handshake time-out ([`HANDSHAKE_TIMEOUT_DEFAULT`] unless
    /// set): a server that accepts TCP and never speaks TLS does not hang
    /// the caller.
    pub async fn connect(
        &self,
        tcp: TcpStream,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let limit = self.handshake_timeout;
        tokio::time::timeout(limit, self.connector.connect(self.server_name.clone(), tcp))
            .await
            .map_err(|_| timed_out("client", limit))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pem_path_without_end_is_refused_not_read_forever() {
        let err = read(Path::new("/dev/zero")).expect_err("/dev/zero is no PEM file");
        let text = err.to_string();
        assert!(text.contains("/dev/zero"), "{text}");
        assert!(text.contains("not a PEM file"), "{text}");
    }

    #[test]
    fn a_pem_file_at_the_limit_is_read_and_one_byte_more_is_not() {
        let dir = crate::test_dir::TempDir::new("tls");
        let path = dir.join("big.pem");
        let limit = PEM_FILE_BYTES_MAX as usize;
        std::fs::write(&path, vec![b'A'; limit]).expect("write");
        assert_eq!(read(&path).expect("at the limit").len(), limit);
        std::fs::write(&path, vec![b'A'; limit + 1]).expect("write");
        let refused = read(&path).expect_err("over the limit");
        assert!(refused.to_string().contains("big.pem"), "{refused}");
    }
}
