//! `cardswitch decode`: bytes -> masked description or JSON.

use std::io::{BufRead, Write};

use bytes::Bytes;
use clap::Args;

use super::CliError;
use crate::message::json::{Reveal, to_json};
use crate::message::{Spec, describe::describe};

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Spec name (see `cardswitch specs`) or path to a spec TOML file.
    #[arg(long)]
    spec: String,
    /// The message as hex; `-` reads hex messages from stdin, one per line.
    hex: Option<String>,
    /// Read one raw (binary) message from this file instead.
    #[arg(long, conflicts_with = "hex")]
    file: Option<std::path::PathBuf>,
    /// Print JSON (one object per line) instead of the description.
    #[arg(long)]
    json: bool,
    /// Show card data in clear. The output then holds card data.
    #[arg(long)]
    reveal: bool,
}

pub fn run(args: &DecodeArgs) -> Result<(), CliError> {
    let spec = Spec::resolve(&args.spec)?;
    if args.reveal {
        eprintln!("warning: --reveal prints card data in clear; do not keep or share the output");
    }
    let inputs: Vec<Result<Bytes, String>> = match (&args.hex, &args.file) {
        (_, Some(path)) => vec![
            std::fs::read(path)
                .map(Bytes::from)
                .map_err(|e| format!("{}: {e}", path.display())),
        ],
        (Some(h), None) if h == "-" => std::io::stdin()
            .lock()
            .lines()
            .map(|l| l.map_err(|e| e.to_string()))
            .filter(|l| l.as_ref().map_or(true, |s| !s.trim().is_empty()))
            .map(|l| l.and_then(|s| hex_message(&s)))
            .collect(),
        (Some(h), None) => vec![hex_message(h)],
        (None, None) => {
            return Err(CliError::Input(
                "give the message as hex, `-` for stdin, or --file".into(),
            ));
        }
    };
    let reveal = if args.reveal {
        Reveal::Clear
    } else {
        Reveal::Masked
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let total = inputs.len();
    let mut failed = 0;
    for (i, input) in inputs.into_iter().enumerate() {
        let parsed = input.and_then(|b| spec.parse(&b).map_err(|e| e.to_string()));
        let line = match parsed {
            Ok(msg) if args.json => to_json(&spec, &msg, reveal).to_string() + "\n",
            Ok(msg) => describe(&spec, &msg),
            Err(reason) => {
                failed += 1;
                eprintln!("message {}: {reason}", i + 1);
                if args.json {
                    serde_json::json!({ "error": reason }).to_string() + "\n"
                } else {
                    continue;
                }
            }
        };
        out.write_all(line.as_bytes())
            .map_err(|e| CliError::Input(e.to_string()))?;
    }
    if failed > 0 {
        return Err(CliError::Failed { failed, total });
    }
    Ok(())
}

fn hex_message(text: &str) -> Result<Bytes, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&compact)
        .map(Bytes::from)
        .map_err(|e| format!("not hex: {e}"))
}
