//! Why a switch cannot start, naming the configuration file, line and key
//! at fault, like a refusal at load; and the mapping of TLS errors to the
//! key of the file at fault.

use std::path::Path;

use crate::link::tls::TlsError;

/// Why the switch cannot start. Each names the configuration file, the
/// line and the key at fault, like a refusal at load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// An acquirer's `listen` address cannot be bound (in use, not local).
    #[error("{file}:{line}: acquirer '{name}': listen = \"{address}\": {reason}")]
    Listen {
        file: String,
        line: usize,
        name: String,
        address: String,
        reason: String,
    },
    /// The journal's database (`path`) or keys (`key_file`) cannot be used.
    #[error("{file}:{line}: journal: {key}: {reason}")]
    Journal {
        file: String,
        line: usize,
        key: &'static str,
        reason: String,
    },
    /// The HSM (`[hsm]`) cannot be reached or does not answer NC.
    #[error("{file}:{line}: hsm: address = \"{address}\": {reason}")]
    Hsm {
        file: String,
        line: usize,
        address: String,
        reason: String,
    },
    /// A configured key is not the one the HSM holds (its check value
    /// differs) or the HSM cannot check it. Never shows the key.
    #[error("{file}:{line}: {link}: {reason}")]
    Key {
        file: String,
        line: usize,
        link: String,
        reason: String,
    },
    /// A link's TLS certificate, key or CA file cannot be used; `key` is
    /// the configuration key (`tls.cert`), `link` the section.
    #[error("{file}:{line}: {link}: {key}: {reason}")]
    Tls {
        file: String,
        line: usize,
        link: String,
        key: &'static str,
        reason: String,
    },
}

/// One TLS file of a link as configured: the label `link::tls` gives it
/// in its errors, its configuration key and line.
pub(super) struct TlsFile<'a> {
    pub label: &'static str,
    pub key: &'static str,
    pub path: &'a Path,
    pub line: usize,
}

/// A TLS error named by the configuration key of the file at fault (the
/// first file's line, under `tls`, when no one file is).
pub(super) fn tls_error(file: &str, link: String, files: &[TlsFile], e: TlsError) -> StartError {
    let (at, reason) = match &e {
        TlsError::File { file, reason } => (
            files.iter().find(|f| f.path.display().to_string() == *file),
            format!("cannot read {file}: {reason}"),
        ),
        TlsError::NoPem { what, kind } => (
            files.iter().find(|f| f.label == what),
            format!("file holds no PEM {kind}"),
        ),
        TlsError::Config(msg) => (
            files
                .iter()
                .find(|f| msg.starts_with(&format!("{}: ", f.label))),
            msg.clone(),
        ),
        other => (None, other.to_string()),
    };
    let (key, line) = match (at, files.first()) {
        (Some(f), _) => (f.key, f.line),
        (None, Some(f)) => ("tls", f.line),
        (None, None) => ("tls", 0),
    };
    StartError::Tls {
        file: file.to_string(),
        line,
        link,
        key,
        reason,
    }
}
