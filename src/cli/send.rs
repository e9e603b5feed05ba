//! `cardswitch send`: a one-shot client. Connects to a host (plain or TLS),
//! sends hex messages one at a time and prints each response (masked, or
//! as JSON), for checking a host by hand or from scripts.

use std::io::BufRead;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;

use super::CliError;
use super::link_args::LinkArgs;
use crate::link::connection;
use crate::link::framing::Frame;
use crate::link::listener::BoxedStream;
use crate::message::Spec;
use crate::message::describe::describe;
use crate::message::json::{Reveal, to_json};

#[derive(Debug, Args)]
pub struct SendArgs {
    /// host:port to connect to.
    #[arg(long)]
    target: String,
    /// Spec name or file.
    #[arg(long, default_value = "iso87-ascii")]
    spec: String,
    #[command(flatten)]
    link: LinkArgs,
    /// Messages as hex; `-` reads them from stdin, one per line.
    #[arg(required = true)]
    messages: Vec<String>,
    /// Seconds to wait for each response.
    #[arg(long, default_value_t = 10)]
    timeout_s: u64,
    /// Print responses as JSON lines (masked).
    #[arg(long)]
    json: bool,
}

pub fn run(args: &SendArgs) -> Result<(), CliError> {
    let spec = Spec::resolve(&args.spec)?;
    let codec = args.link.codec()?;
    let tls = args.link.tls_client()?;
    let mut inputs = Vec::new();
    for m in &args.messages {
        if m == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line.map_err(|e| CliError::Input(e.to_string()))?;
                if !line.trim().is_empty() {
                    inputs.push(line.trim().to_string());
                }
            }
        } else {
            inputs.push(m.clone());
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Input(e.to_string()))?;
    runtime.block_on(async {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            CliError::Input(format!("{}: {what}: {e}", args.target))
        };
        let tcp = tokio::net::TcpStream::connect(&args.target)
            .await
            .map_err(|e| fail("connect", &e))?;
        let stream: BoxedStream = match &tls {
            Some(t) => Box::new(
                t.connect(tcp)
                    .await
                    .map_err(|e| fail("TLS handshake", &e))?,
            ),
            None => Box::new(tcp),
        };
        let (mut reader, sender, _writer) = connection::open(stream, codec);
        for (i, hex_text) in inputs.iter().enumerate() {
            let bytes = hex::decode(hex_text)
                .map_err(|e| CliError::Input(format!("message {}: not hex: {e}", i + 1)))?;
            sender
                .send(Frame::new(Bytes::from(bytes)))
                .await
                .map_err(|e| fail("send", &e))?;
            let frame = tokio::time::timeout(Duration::from_secs(args.timeout_s), reader.next())
                .await
                .map_err(|_| CliError::Input(format!("message {}: no response", i + 1)))?
                .map_err(|e| fail("read", &e))?
                .ok_or_else(|| CliError::Input(format!("message {}: connection closed", i + 1)))?;
            let msg = spec
                .parse(&frame.message)
                .map_err(|e| CliError::Input(format!("response {}: {e}", i + 1)))?;
            if args.json {
                println!("{}", to_json(&spec, &msg, Reveal::Masked));
            } else {
                print!("{}", describe(&spec, &msg));
            }
        }
        Ok(())
    })
}
