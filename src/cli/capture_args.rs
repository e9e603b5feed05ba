//! `--capture FILE`, `--capture-format`, `--capture-unmasked`: shared by
//! the commands that run links (issuer-sim, run, demo).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use super::CliError;
use crate::capture::sink::{self, CaptureFormat, CaptureHandle, CaptureOptions};
use crate::link::tap;
use crate::message::Spec;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CaptureFormatName {
    /// pcap with synthetic Ethernet/IPv4/TCP headers (Wireshark, tshark).
    Pcap,
    /// cardswitch JSON lines, one frame per line.
    Jsonl,
}

/// Capture options.
#[derive(Debug, Clone, Default, Args)]
pub struct CaptureArgs {
    /// Write every frame sent and received to FILE (.pcap or .jsonl), card data masked.
    #[arg(long, value_name = "FILE")]
    pub capture: Option<PathBuf>,
    /// The capture format, when the file name does not say it.
    #[arg(long, value_enum, requires = "capture")]
    pub capture_format: Option<CaptureFormatName>,
    /// Write card data (PAN, track data, PIN blocks) in clear: the file then holds card data.
    #[arg(long, requires = "capture")]
    pub capture_unmasked: bool,
}

impl CaptureArgs {
    /// The same options as arguments, to pass on to a child process.
    pub fn to_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(p) = &self.capture {
            v.push("--capture".into());
            v.push(p.display().to_string());
            if let Some(f) = self.capture_format {
                v.push("--capture-format".into());
                v.push(match f {
                    CaptureFormatName::Pcap => "pcap".into(),
                    CaptureFormatName::Jsonl => "jsonl".into(),
                });
            }
            if self.capture_unmasked {
                v.push("--capture-unmasked".into());
            }
        }
        v
    }

    /// Starts capturing (installs the link tap) when `--capture` is given.
    pub fn start(
        &self,
        specs: HashMap<String, Arc<Spec>>,
        default_spec: Option<Arc<Spec>>,
    ) -> Result<Option<CaptureHandle>, CliError> {
        let Some(path) = &self.capture else {
            return Ok(None);
        };
        let format = match self.capture_format {
            Some(CaptureFormatName::Pcap) => CaptureFormat::Pcap,
            Some(CaptureFormatName::Jsonl) => CaptureFormat::JsonLines,
            None => CaptureFormat::from_path(path).ok_or_else(|| {
                CliError::Input(format!(
                    "--capture {}: name it .pcap or .jsonl, or give --capture-format",
                    path.display()
                ))
            })?,
        };
        if self.capture_unmasked {
            eprintln!(
                "WARNING: --capture-unmasked: {} will hold full card numbers, track data and PIN blocks. \
                 Treat it as cardholder data (PCI DSS): keep it off shared disks and delete it after use.",
                path.display()
            );
            tracing::warn!(file = %path.display(), "capture holds card data in clear");
        }
        let (sink, handle) = sink::start(CaptureOptions {
            path: path.clone(),
            format,
            masked: !self.capture_unmasked,
            specs,
            default_spec,
        })
        .map_err(|e| CliError::Input(e.to_string()))?;
        if !tap::install(sink) {
            return Err(CliError::Input("a capture is already running".into()));
        }
        Ok(Some(handle))
    }
}

/// Ends a capture started by [`CaptureArgs::start`], reporting the counts.
pub fn finish(handle: Option<CaptureHandle>) -> Result<(), CliError> {
    if let Some(h) = handle {
        let stats = h.finish().map_err(|e| CliError::Input(e.to_string()))?;
        tracing::info!(
            frames = stats.written,
            withheld = stats.withheld,
            "capture written"
        );
    }
    Ok(())
}
