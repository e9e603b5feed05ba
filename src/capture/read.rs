//! Opens a capture file of any supported format: pcap and pcapng by their
//! magic number, JSON lines and hex logs by extension or first line.

use std::path::Path;

use super::record::Capture;
use super::{hexlog, jsonl, pcap_read};
use crate::link::framing::Framing;

/// Largest capture file read, in bytes.
pub const CAPTURE_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// The format of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// pcap or pcapng.
    Pcap,
    HexLog,
    JsonLines,
}

/// A capture file that cannot be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadFileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {bytes} bytes, more than the {max}-byte limit")]
    TooLarge { path: String, bytes: u64, max: u64 },
    #[error("{path}: byte {offset}: not UTF-8 text (a {format} file is text)")]
    NotText {
        path: String,
        offset: usize,
        format: &'static str,
    },
}

/// The format the content (or, failing that, the name) implies.
pub fn detect(path: &Path, data: &[u8]) -> InputFormat {
    if pcap_read::is_pcap(data) {
        return InputFormat::Pcap;
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("pcap" | "pcapng" | "cap") => InputFormat::Pcap,
        Some("jsonl" | "json" | "ndjson") => InputFormat::JsonLines,
        Some("hex" | "log" | "txt") => InputFormat::HexLog,
        _ => {
            let first = data
                .split(|&b| b == b'\n')
                .map(|l| l.trim_ascii())
                .find(|l| !l.is_empty() && !l.starts_with(b"#"));
            if first.is_some_and(|l| l.starts_with(b"{")) {
                InputFormat::JsonLines
            } else {
                InputFormat::HexLog
            }
        }
    }
}

/// Reads bytes of a known format. `framing` cuts pcap streams; `server`
/// keeps only the pcap connections to that `ip:port`.
pub fn read_bytes(
    path: &str,
    data: &[u8],
    format: InputFormat,
    framing: &Framing,
    server: Option<&str>,
) -> Result<Capture, ReadFileError> {
    let text = |format: &'static str| {
        std::str::from_utf8(data).map_err(|e| ReadFileError::NotText {
            path: path.to_string(),
            offset: e.valid_up_to(),
            format,
        })
    };
    Ok(match format {
        InputFormat::Pcap => pcap_read::read(data, framing, server),
        InputFormat::HexLog => hexlog::read(text("hex log")?),
        InputFormat::JsonLines => jsonl::read(text("JSON lines")?),
    })
}

/// Reads a capture file; `format` None detects it.
pub fn read_file(
    path: &Path,
    format: Option<InputFormat>,
    framing: &Framing,
    server: Option<&str>,
) -> Result<Capture, ReadFileError> {
    let name = path.display().to_string();
    let io = |source| ReadFileError::Io {
        path: name.clone(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > CAPTURE_BYTES_MAX {
        return Err(ReadFileError::TooLarge {
            path: name,
            bytes: len,
            max: CAPTURE_BYTES_MAX,
        });
    }
    let data = std::fs::read(path).map_err(io)?;
    let format = format.unwrap_or_else(|| detect(path, &data));
    read_bytes(&name, &data, format, framing, server)
}
