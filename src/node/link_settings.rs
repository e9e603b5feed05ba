//! The links' settings from the configuration: each issuer's connection
//! pool (addresses, TLS, echoes, sign-on) and each acquirer listener's
//! limits.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::start_error::{StartError, TlsFile, tls_error};
use crate::link::connection::ReadLimits;
use crate::link::connector::{EndpointSettings, Inbound, IssuerLink};
use crate::link::framing::FrameCodec;
use crate::link::listener::{ConnectionLimits, ListenerSettings};
use crate::link::tls::{TlsClient, TlsServer};
use crate::node::config::{AcquirerConfig, IssuerConfig, IssuerTls};

pub(super) fn issuer_link(
    file: &str,
    cfg: &IssuerConfig,
    inbound: Inbound,
    shutdown: &CancellationToken,
) -> Result<Arc<IssuerLink>, StartError> {
    let mut settings = EndpointSettings::new(
        &cfg.name,
        &cfg.addresses[0],
        FrameCodec::new(cfg.framing.clone()),
        cfg.spec.clone(),
    );
    settings.addresses = cfg.addresses.clone();
    settings.connections = cfg.connections;
    settings.echo_interval = cfg.echo_interval;
    settings.sign_on = cfg.sign_on;
    settings.in_flight_max = cfg.in_flight_max;
    settings.inbound = Some(inbound);
    settings.tls = cfg
        .tls
        .as_ref()
        .map(|t| tls_client(file, format!("issuer '{}'", cfg.name), t))
        .transpose()?
        .map(|client| client.with_handshake_timeout(cfg.handshake_timeout));
    Ok(IssuerLink::start(settings, shutdown.clone()))
}

/// The TLS client of an issuer link or the HSM (`section` names it in
/// errors).
pub(super) fn tls_client(
    file: &str,
    section: String,
    t: &IssuerTls,
) -> Result<TlsClient, StartError> {
    let identity = match (&t.cert, &t.key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        _ => None,
    };
    TlsClient::from_files(&t.ca, &t.server_name, identity).map_err(|e| {
        let mut files = vec![TlsFile {
            label: "server CA",
            key: "tls.ca",
            path: &t.ca,
            line: t.ca_line,
        }];
        let client = [
            ("client certificate", "tls.cert", &t.cert, t.cert_line),
            ("client key", "tls.key", &t.key, t.key_line),
        ];
        for (label, key, path, line) in client {
            if let (Some(path), Some(line)) = (path, line) {
                files.push(TlsFile {
                    label,
                    key,
                    path,
                    line,
                });
            }
        }
        tls_error(file, section, &files, e)
    })
}

pub(super) fn acquirer_settings(
    file: &str,
    cfg: &AcquirerConfig,
) -> Result<ListenerSettings, StartError> {
    let tls = match &cfg.tls {
        Some(t) => Some(
            TlsServer::from_files(&t.cert, &t.key, t.client_ca.as_deref()).map_err(|e| {
                let mut files = vec![
                    TlsFile {
                        label: "certificate",
                        key: "tls.cert",
                        path: &t.cert,
                        line: t.cert_line,
                    },
                    TlsFile {
                        label: "key",
                        key: "tls.key",
                        path: &t.key,
                        line: t.key_line,
                    },
                ];
                if let (Some(path), Some(line)) = (&t.client_ca, t.client_ca_line) {
                    files.push(TlsFile {
                        label: "client CA",
                        key: "tls.client_ca",
                        path,
                        line,
                    });
                }
                tls_error(file, format!("acquirer '{}'", cfg.name), &files, e)
            })?,
        ),
        None => None,
    };
    Ok(ListenerSettings {
        name: cfg.name.clone(),
        codec: FrameCodec::new(cfg.framing.clone()),
        tls,
        connections_max: cfg.connections_max,
        read_limits: ReadLimits {
            idle: Some(cfg.idle_timeout),
            frame: Some(Duration::from_secs(5)),
        },
        drain_deadline: Duration::from_secs(15),
        limits: ConnectionLimits {
            handshake_timeout: cfg.link.handshake_timeout,
            first_frame_timeout: Some(cfg.link.first_frame_timeout),
            per_peer_max: cfg.link.connections_per_peer_max,
            ..ConnectionLimits::default()
        },
    })
}
