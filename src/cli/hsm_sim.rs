//! `cardswitch hsm-sim`: a software HSM speaking the payShield host
//! commands (see `hsm::sim` and docs/security.md), for tests, the demo and
//! benches; and, as a console does, `form-key` (a key from clear
//! components) and `generate-key`, which print the key under the test LMK
//! and its check value, never the clear key.

mod entropy;
mod server;

use std::path::PathBuf;

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;
use clap::{Args, Subcommand};

use super::CliError;
use crate::hsm::command::{ErrorCode, KeyCryptogram, KeyScheme};
use crate::hsm::sim::{KeyType, Lmk, Random};
use crate::hsm::soft::{Secret, TdesKey};

/// Delays stop at ten minutes: an answer later than that is a lost one.
const SIM_MS_MAX: u64 = 600_000;
/// Connections at most: each is a task and its buffers.
const SIM_CONNECTIONS_MAX: u64 = 10_000;
/// Components a key may be formed from (consoles take 2 to 9).
const COMPONENTS_MAX: usize = 9;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HsmSimArgs {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Form a key from clear components (XOR, odd parity): prints the key
    /// under the LMK and its check value.
    FormKey(FormKeyArgs),
    /// Generate a random key: prints it under the LMK and its check value.
    GenerateKey(GenerateKeyArgs),
}

/// The server's options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks one; the address is printed on
    /// the first line of stdout).
    #[arg(long, default_value = "127.0.0.1:1500")]
    pub listen: String,
    /// Header bytes before the command code, echoed back.
    #[arg(long, default_value_t = 4,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=255))]
    pub header_len: usize,
    /// TLS certificate chain (PEM): enables TLS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that clients' certificates must chain to (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,
    /// Fault: every answer this many milliseconds late (order kept).
    #[arg(long, default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=SIM_MS_MAX))]
    pub delay_ms: u64,
    /// Fault: answer command CMD with error code CODE (e.g. CA=24);
    /// repeatable.
    #[arg(long = "error", value_name = "CMD=CODE", value_parser = parse_fault)]
    pub errors: Vec<([u8; 2], ErrorCode)>,
    /// Fault: after this many commands (all connections), answer no more.
    #[arg(long)]
    pub silent_after: Option<u64>,
    /// Most simultaneous connections.
    #[arg(long, default_value_t = 64,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=SIM_CONNECTIONS_MAX))]
    pub connections_max: usize,
    /// Close a connection idle for this many seconds.
    #[arg(long, default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout_s: u64,
    /// Close a connection whose started frame is not complete within this.
    #[arg(long, default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..=SIM_MS_MAX))]
    pub frame_timeout_ms: u64,
}

#[derive(Debug, Args)]
struct FormKeyArgs {
    /// Key type: ZPK, TPK, TAK, ZAK, ZMK, BDK, CVK, MK-AC (or a 3-digit code).
    #[arg(long = "type")]
    key_type: String,
    /// A clear component, 16, 32 or 48 hex digits; repeat for each.
    #[arg(long = "component", required = true)]
    components: Vec<String>,
    /// Key scheme under the LMK (default: Z, U or T by length).
    #[arg(long)]
    scheme: Option<char>,
}

#[derive(Debug, Args)]
struct GenerateKeyArgs {
    /// Key type, as for form-key.
    #[arg(long = "type")]
    key_type: String,
    /// Key scheme under the LMK: Z, U (default) or T.
    #[arg(long, default_value = "U")]
    scheme: char,
}

/// `CMD=CODE`: a 2-letter command and a 2-digit error code.
fn parse_fault(text: &str) -> Result<([u8; 2], ErrorCode), String> {
    let (cmd, code) = text.split_once('=').ok_or("expected CMD=CODE")?;
    let cmd: [u8; 2] = cmd
        .to_ascii_uppercase()
        .as_bytes()
        .try_into()
        .map_err(|_| "CMD is 2 characters (e.g. CA)")?;
    if crate::hsm::command::response::response_code(&cmd).is_none() {
        return Err(format!("{} is not a command hsm-sim answers", text));
    }
    let n: u8 = code
        .parse()
        .ok()
        .filter(|n| *n <= 99)
        .ok_or("CODE is 2 digits")?;
    Ok((cmd, ErrorCode::from_number(n)))
}

pub fn run(args: &HsmSimArgs) -> Result<(), CliError> {
    match &args.action {
        Some(Action::FormKey(a)) => form_key(a),
        Some(Action::GenerateKey(a)) => generate_key(a),
        None => server::run(&args.serve),
    }
}

/// Random bytes from the operating system (getrandom, through the
/// `rand_core` OsRng that aes-gcm re-exports).
pub(crate) fn os_random() -> Random {
    let mut r = Secret::<32>::zeroed();
    OsRng.fill_bytes(r.expose_mut());
    r
}

fn key_type(name: &str) -> Result<KeyType, CliError> {
    KeyType::from_name(name)
        .or_else(|| KeyType::from_code(name).ok())
        .ok_or_else(|| CliError::Input(format!("--type {name}: not a key type")))
}

/// The scheme for a letter, or the default for a key of `bytes`.
fn scheme(letter: Option<char>, bytes: usize) -> Result<KeyScheme, CliError> {
    let s = match letter {
        Some(c) => u8::try_from(c)
            .ok()
            .and_then(|c| KeyScheme::from_tag(c.to_ascii_uppercase()))
            .ok_or_else(|| CliError::Input("--scheme: Z, U, T, X or Y".into()))?,
        None => match bytes {
            8 => KeyScheme::Z,
            16 => KeyScheme::U,
            _ => KeyScheme::T,
        },
    };
    Ok(s)
}

/// The key under the LMK and its check value, the one line both print.
fn print_key(t: KeyType, key: &TdesKey, s: KeyScheme) -> Result<(), CliError> {
    let c: KeyCryptogram = Lmk::test()
        .encrypt(t, key, s)
        .map_err(|e| CliError::Input(format!("--scheme: {e}")))?;
    println!("{} {}", c.to_field(), key.kcv_hex());
    Ok(())
}

/// A clear test key of type `type_name` (32 hex digits) as the
/// configuration holds it: its cryptogram under the test LMK and its
/// check value (what `form-key` prints, for the demo).
pub(crate) fn test_key_under_lmk(
    type_name: &str,
    clear: &str,
) -> Result<(String, String), CliError> {
    let t = key_type(type_name)?;
    let key = TdesKey::from_hex(clear)
        .map_err(|e| CliError::Input(e.to_string()))?
        .with_odd_parity();
    let c: KeyCryptogram = Lmk::test()
        .encrypt(t, &key, scheme(None, key.as_bytes().len())?)
        .map_err(|e| CliError::Input(e.to_string()))?;
    Ok((c.to_field(), key.kcv_hex()))
}

fn form_key(a: &FormKeyArgs) -> Result<(), CliError> {
    let t = key_type(&a.key_type)?;
    if a.components.len() > COMPONENTS_MAX {
        return Err(CliError::Input(format!(
            "at most {COMPONENTS_MAX} components"
        )));
    }
    let Some(first) = a.components.first() else {
        return Err(CliError::Input("at least one --component".into()));
    };
    let n = first.len() / 2;
    let mut sum = Secret::<24>::zeroed();
    let mut part = Secret::<24>::zeroed();
    for (i, c) in a.components.iter().enumerate() {
        // The message names the component by number, never its digits.
        let bad = || {
            CliError::Input(format!(
                "component {}: not 16, 32 or 48 hex digits like the first",
                i + 1
            ))
        };
        if ![16, 32, 48].contains(&c.len()) || c.len() != n * 2 {
            return Err(bad());
        }
        hex::decode_to_slice(c, &mut part.expose_mut()[..n]).map_err(|_| bad())?;
        for (s, p) in sum.expose_mut().iter_mut().zip(part.expose()) {
            *s ^= p;
        }
    }
    let key = TdesKey::from_bytes(&sum.expose()[..n])
        .map_err(|e| CliError::Input(e.to_string()))?
        .with_odd_parity();
    print_key(t, &key, scheme(a.scheme, n)?)
}

fn generate_key(a: &GenerateKeyArgs) -> Result<(), CliError> {
    let t = key_type(&a.key_type)?;
    let s = scheme(Some(a.scheme), 16)?;
    let bytes = match s {
        KeyScheme::Z | KeyScheme::Untagged => 8,
        KeyScheme::U | KeyScheme::X => 16,
        KeyScheme::T | KeyScheme::Y => 24,
    };
    let random = os_random();
    let key = TdesKey::from_bytes(&random.expose()[..bytes])
        .map_err(|e| CliError::Input(e.to_string()))?
        .with_odd_parity();
    print_key(t, &key, s)
}
