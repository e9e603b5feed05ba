//! Command-line options shared by every command that opens a link.

use std::path::PathBuf;

use bytes::Bytes;
use clap::{Args, ValueEnum};

use super::CliError;
use crate::link::framing::{FRAME_BYTES_MAX_DEFAULT, FrameCodec, Framing, LengthHeader};
use crate::link::tls::{TlsClient, TlsServer};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FramingName {
    /// 2-byte big-endian length (NAC style).
    Binary2,
    /// 2-byte big-endian length that counts itself.
    Binary2Inclusive,
    /// 4 ASCII decimal digits (jPOS ASCIIChannel).
    Ascii4,
}

/// Framing and TLS options of a link.
#[derive(Debug, Clone, Args)]
pub struct LinkArgs {
    /// Length header in front of each message.
    #[arg(long, value_enum, default_value = "binary2")]
    pub framing: FramingName,
    /// A 5-byte TPDU follows the length (answered with addresses swapped).
    #[arg(long)]
    pub tpdu: bool,
    /// Fixed header bytes (hex) between the length and the MTI.
    #[arg(long, value_name = "HEX")]
    pub static_header: Option<String>,
    /// Largest frame accepted, in bytes (at most what a 2-byte length
    /// announces).
    #[arg(long, default_value_t = FRAME_BYTES_MAX_DEFAULT,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=0xFFFF))]
    pub frame_bytes_max: usize,
    /// TLS certificate chain (PEM): enables TLS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that peers' certificates must chain to: mutual TLS on a
    /// listener, server verification on a client.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Server name to verify when connecting with TLS.
    #[arg(long, default_value = "localhost")]
    pub tls_server_name: String,
}

impl LinkArgs {
    pub fn codec(&self) -> Result<FrameCodec, CliError> {
        let length = match self.framing {
            FramingName::Binary2 => LengthHeader::Binary2,
            FramingName::Binary2Inclusive => LengthHeader::Binary2Inclusive,
            FramingName::Ascii4 => LengthHeader::Ascii4,
        };
        let mut framing = Framing::new(length).with_frame_bytes_max(self.frame_bytes_max);
        if self.tpdu {
            framing = framing.with_tpdu();
        }
        if let Some(h) = &self.static_header {
            let bytes =
                hex::decode(h).map_err(|e| CliError::Input(format!("--static-header: {e}")))?;
            framing = framing.with_static_header(Bytes::from(bytes));
        }
        Ok(FrameCodec::new(framing))
    }

    /// The TLS server setting, when a certificate is given.
    pub fn tls_server(&self) -> Result<Option<TlsServer>, CliError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => TlsServer::from_files(cert, key, self.tls_ca.as_deref())
                .map(Some)
                .map_err(|e| CliError::Input(e.to_string())),
            _ => Ok(None),
        }
    }

    /// The TLS client setting, when a CA is given.
    pub fn tls_client(&self) -> Result<Option<TlsClient>, CliError> {
        let Some(ca) = &self.tls_ca else {
            return Ok(None);
        };
        let identity = match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            _ => None,
        };
        TlsClient::from_files(ca, &self.tls_server_name, identity)
            .map(Some)
            .map_err(|e| CliError::Input(e.to_string()))
    }
}
