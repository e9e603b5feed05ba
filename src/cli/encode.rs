//! `cardswitch encode`: JSON -> hex, one message per JSON value.

use std::io::{Read, Write};

use clap::Args;

use super::CliError;
use crate::message::Spec;
use crate::message::json::from_json;

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// Spec name (see `cardswitch specs`) or path to a spec TOML file.
    #[arg(long)]
    spec: String,
    /// Read JSON from this file instead of stdin (one object, or one per line).
    #[arg(long)]
    file: Option<std::path::PathBuf>,
}

pub fn run(args: &EncodeArgs) -> Result<(), CliError> {
    let spec = Spec::resolve(&args.spec)?;
    let mut text = String::new();
    match &args.file {
        Some(path) => {
            text = std::fs::read_to_string(path)
                .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
        }
        None => {
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| CliError::Input(e.to_string()))?;
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut total = 0;
    let mut failed = 0;
    for value in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
        total += 1;
        let built = value
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|v| from_json(&spec, &v).map_err(|e| e.to_string()))
            .and_then(|m| spec.build(&m).map_err(|e| e.to_string()));
        match built {
            Ok(bytes) => writeln!(out, "{}", hex::encode(&bytes)),
            Err(reason) => {
                failed += 1;
                eprintln!("message {total}: {reason}");
                writeln!(out)
            }
        }
        .map_err(|e| CliError::Input(e.to_string()))?;
    }
    if failed > 0 {
        return Err(CliError::Failed { failed, total });
    }
    Ok(())
}
