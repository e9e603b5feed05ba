//! The `cardswitch` command line: one binary, one subcommand per job.

mod capture_args;
mod clearing;
mod decode;
mod demo;
mod demo_security;
mod encode;
mod hsm_sim;
mod issuer_sim;
mod issuer_sim_key;
mod journal;
mod link_args;
pub mod load;
mod observe;
pub mod pin_pad_args;
mod relay;
mod replay;
mod run;
mod send;
mod simulate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ISO 8583 card switch and acquirer processor.
#[derive(Debug, Parser)]
#[command(name = "cardswitch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode ISO 8583 messages and print them masked (or as JSON).
    Decode(decode::DecodeArgs),
    /// Encode messages given as JSON and print them as hex.
    Encode(encode::EncodeArgs),
    /// The switch, two simulated issuers and simulated terminals, live.
    Demo(demo::DemoArgs),
    /// Run the switch.
    Run(run::RunArgs),
    /// A bare TCP relay: the reference for the switch's load figures.
    Relay(relay::RelayArgs),
    /// Run a simulated issuer host that answers by rules.
    IssuerSim(issuer_sim::IssuerSimArgs),
    /// Run a software HSM speaking the payShield host commands (test LMK);
    /// form-key / generate-key print keys under its LMK.
    HsmSim(hsm_sim::HsmSimArgs),
    /// Load generator: many simulated terminals, every response checked.
    Load(Box<load::LoadArgs>),
    /// Search and show the transaction journal, export it, back it up.
    Journal(journal::JournalArgs),
    /// Send messages to a host and print the responses.
    Send(send::SendArgs),
    /// Replay a capture against a switch or issuer and diff the responses.
    Replay(replay::ReplayArgs),
    /// Acquirer processing: merchants, cut-off into IPM clearing files, reading them.
    Clearing(clearing::ClearingArgs),
    /// The deterministic network simulator: seeds of traffic, faults and crashes, invariants checked.
    Simulate(simulate::SimulateArgs),
    /// List the shipped message specifications.
    Specs,
}

/// Runs the command line; the exit code is non-zero on any failure.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => decode::run(&args),
        Command::Encode(args) => encode::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Relay(args) => relay::run(&args),
        Command::IssuerSim(args) => issuer_sim::run(&args),
        Command::HsmSim(args) => hsm_sim::run(&args),
        Command::Send(args) => send::run(&args),
        Command::Journal(args) => journal::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Load(args) => load::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Clearing(args) => clearing::run(&args),
        Command::Specs => list_specs(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn list_specs() -> Result<(), CliError> {
    for name in crate::message::spec_file::builtin_names() {
        let spec = crate::message::Spec::resolve(name)?;
        println!("{name:<16} {}", spec.description);
    }
    Ok(())
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Spec(#[from] crate::message::SpecError),
    #[error("{0}")]
    Input(String),
    #[error("{failed} of {total} messages failed")]
    Failed { failed: usize, total: usize },
}
