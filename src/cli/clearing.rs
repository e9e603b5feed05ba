//! `cardswitch clearing`: the merchant registry, the business-day cut-off
//! into IPM clearing files with their settlement reports, and reading a
//! clearing file back with every check.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::CliError;
use crate::clearing::cutoff::{self, CutoffConfig};
use crate::clearing::ipm_reader;
use crate::clearing::{registry, seed};
use crate::journal::crypto::Keyring;
use crate::journal::{Access, open_queries};
use crate::message::describe::describe;
use crate::message::json::{Reveal, to_json};

/// Largest clearing file `clearing read` loads.
const READ_FILE_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct ClearingArgs {
    #[command(subcommand)]
    command: ClearingCommand,
}

#[derive(Debug, Subcommand)]
enum ClearingCommand {
    /// The merchant and terminal registry.
    Merchants(MerchantsArgs),
    /// Close a business day: every captured, not yet cleared transaction
    /// into one IPM clearing file, with settlement reports beside it.
    Cutoff(CutoffArgs),
    /// Read and check an IPM clearing file; print it (masked) or as JSON.
    Read(ReadArgs),
    /// List the clearing files of the database.
    Files(DbArg),
    /// Fill a database with synthetic approved purchases and a registry (tests, benches, demos).
    Seed(SeedArgs),
}

#[derive(Debug, Args)]
struct DbArg {
    /// The journal's SQLite database.
    #[arg(long)]
    db: PathBuf,
}

#[derive(Debug, Args)]
struct MerchantsArgs {
    #[command(subcommand)]
    command: MerchantsCommand,
}

#[derive(Debug, Subcommand)]
enum MerchantsCommand {
    /// Insert or update merchants, terminals and fee plans from a TOML file.
    Load {
        file: PathBuf,
        #[command(flatten)]
        db: DbArg,
    },
    /// Print every merchant with its terminals.
    List(DbArg),
    /// Block a terminal or a merchant (its requests are then declined).
    Block(BlockArgs),
    /// Unblock a terminal or a merchant.
    Unblock(BlockArgs),
}

#[derive(Debug, Args)]
struct BlockArgs {
    #[arg(
        long,
        required_unless_present = "merchant",
        conflicts_with = "merchant"
    )]
    terminal: Option<String>,
    #[arg(long)]
    merchant: Option<String>,
    #[command(flatten)]
    db: DbArg,
}

#[derive(Debug, Args)]
struct CutoffArgs {
    /// Business date YYYY-MM-DD: rows received before the next day 00:00 UTC.
    #[arg(long)]
    date: String,
    #[command(flatten)]
    db: DbArg,
    /// Where the clearing file and its reports go.
    #[arg(long, default_value = "clearing-out")]
    out: PathBuf,
    /// The journal's key file (else CARDSWITCH_JOURNAL_KEY).
    #[arg(long)]
    journal_key_file: Option<PathBuf>,
    /// Our Mastercard member id (PDS 0105, DE94).
    #[arg(long, default_value = "00000012345")]
    member_id: String,
    /// The acquirer BIN in the ARN (DE31).
    #[arg(long, default_value = "545400")]
    acquirer_bin: String,
    /// The ARN's first digit.
    #[arg(long, default_value_t = 7)]
    arn_indicator: u8,
    /// Mark the file as production (PDS 0122 'P'); test ('T') otherwise.
    #[arg(long)]
    production: bool,
    /// Write the bare RDW stream instead of 1014-byte blocks.
    #[arg(long)]
    unblocked: bool,
}

#[derive(Debug, Args)]
struct ReadArgs {
    file: PathBuf,
    /// The file is not blocked (bare RDW stream).
    #[arg(long)]
    unblocked: bool,
    /// One JSON object per record, then a summary object.
    #[arg(long)]
    json: bool,
    /// Show card data in clear. The output then holds card data.
    #[arg(long)]
    reveal: bool,
}

#[derive(Debug, Args)]
struct SeedArgs {
    #[command(flatten)]
    db: DbArg,
    /// Approved 0200 purchases to insert.
    #[arg(long)]
    count: usize,
    /// The day they are received on, YYYY-MM-DD.
    #[arg(long)]
    date: String,
    #[arg(long, default_value_t = 100)]
    merchants: usize,
    #[arg(long, default_value_t = 4)]
    terminals_each: usize,
    #[arg(long)]
    journal_key_file: Option<PathBuf>,
}

fn input(e: impl std::fmt::Display) -> CliError {
    CliError::Input(e.to_string())
}

pub fn run(args: &ClearingArgs) -> Result<(), CliError> {
    match &args.command {
        ClearingCommand::Merchants(m) => merchants(m),
        ClearingCommand::Cutoff(c) => run_cutoff(c),
        ClearingCommand::Read(r) => read(r),
        ClearingCommand::Files(db) => files(db),
        ClearingCommand::Seed(s) => run_seed(s),
    }
}

fn merchants(args: &MerchantsArgs) -> Result<(), CliError> {
    match &args.command {
        MerchantsCommand::Load { file, db } => {
            let reg = registry::RegistryFile::load(file).map_err(input)?;
            let mut conn = cutoff::open_db(&db.db).map_err(input)?;
            let (m, t) = reg.store(&mut conn).map_err(input)?;
            println!(
                "loaded {m} merchants, {t} terminals, {} fee plans",
                reg.fee_plans.len()
            );
        }
        MerchantsCommand::List(db) => {
            let conn = cutoff::open_db(&db.db).map_err(input)?;
            for m in registry::merchants(&conn).map_err(input)? {
                let terminals: Vec<String> = m
                    .terminals
                    .iter()
                    .map(|(t, b)| {
                        if *b {
                            format!("{t}(blocked)")
                        } else {
                            t.clone()
                        }
                    })
                    .collect();
                println!(
                    "{:<15} {:<25} {:<20} mcc {} plan {:<10} account {} {}terminals {}",
                    m.id,
                    m.name,
                    m.location,
                    m.mcc,
                    m.fee_plan,
                    m.settlement_account,
                    if m.blocked { "BLOCKED " } else { "" },
                    terminals.join(" ")
                );
            }
        }
        MerchantsCommand::Block(b) => block(b, true)?,
        MerchantsCommand::Unblock(b) => block(b, false)?,
    }
    Ok(())
}

fn block(args: &BlockArgs, blocked: bool) -> Result<(), CliError> {
    let conn = cutoff::open_db(&args.db.db).map_err(input)?;
    match (&args.terminal, &args.merchant) {
        (Some(t), _) => registry::set_terminal_blocked(&conn, t, blocked).map_err(input)?,
        (None, Some(m)) => registry::set_merchant_blocked(&conn, m, blocked).map_err(input)?,
        (None, None) => return Err(input("give --terminal or --merchant")),
    }
    println!("{}", if blocked { "blocked" } else { "unblocked" });
    Ok(())
}

fn run_cutoff(args: &CutoffArgs) -> Result<(), CliError> {
    let keyring = Keyring::load(args.journal_key_file.as_deref()).map_err(input)?;
    let cfg = CutoffConfig {
        db: args.db.db.clone(),
        out_dir: args.out.clone(),
        business_date: args.date.clone(),
        member_id: args.member_id.clone(),
        acquirer_bin: args.acquirer_bin.clone(),
        arn_indicator: args.arn_indicator,
        production: args.production,
        blocked: !args.unblocked,
        progress: true,
    };
    let report = cutoff::run(&cfg, &keyring).map_err(input)?;
    for f in &report.files {
        println!(
            "{} {}: {} presentments, DE4 sum {}, file id {}; settlement {} and {}",
            if f.recovered {
                "finished interrupted file"
            } else {
                "wrote"
            },
            f.path.display(),
            f.presentments,
            f.amount_sum,
            f.ipm_file_id,
            f.csv.display(),
            f.summary.display()
        );
    }
    if report.files.is_empty() {
        println!("nothing to clear for {}", args.date);
    }
    println!(
        "cutoff: {} rows consumed without a presentment, {} authorizations awaiting completion; choose {} ms, write {} ms",
        report.consumed_only, report.awaiting_completion, report.choose_ms, report.write_ms
    );
    Ok(())
}

fn read(args: &ReadArgs) -> Result<(), CliError> {
    let meta = std::fs::metadata(&args.file)
        .map_err(|e| input(format!("{}: {e}", args.file.display())))?;
    if meta.len() > READ_FILE_BYTES_MAX {
        return Err(input(format!(
            "{}: larger than {READ_FILE_BYTES_MAX} bytes",
            args.file.display()
        )));
    }
    let bytes =
        std::fs::read(&args.file).map_err(|e| input(format!("{}: {e}", args.file.display())))?;
    let spec = ipm_reader::ipm_spec()?;
    if args.reveal {
        eprintln!("warning: --reveal prints card data in clear; do not keep or share the output");
    }
    let reveal = if args.reveal {
        Reveal::Clear
    } else {
        Reveal::Masked
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_err = None;
    let result = ipm_reader::for_each_record(&bytes, !args.unblocked, &spec, |r| {
        let line = if args.json {
            let mut v = to_json(&spec, &r.message, reveal);
            v["offset"] = r.offset.into();
            v.to_string() + "\n"
        } else {
            format!(
                "-- record at offset {}\n{}",
                r.offset,
                describe(&spec, &r.message)
            )
        };
        if let Err(e) = out.write_all(line.as_bytes()) {
            write_err.get_or_insert(e.to_string());
        }
        Ok(())
    });
    let summary = result.map_err(|e| input(format!("{}: {e}", args.file.display())))?;
    let line = if args.json {
        serde_json::json!({
            "summary": {
                "file_id": summary.ipm_file_id,
                "messages": summary.message_count,
                "amount_sum": summary.amount_sum,
                "blocked": !args.unblocked,
            }
        })
        .to_string()
    } else {
        format!(
            "file {}: {} messages, DE4 sum {}, every check passed",
            summary.ipm_file_id, summary.message_count, summary.amount_sum
        )
    };
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(input)?;
    match write_err {
        Some(e) => Err(input(e)),
        None => Ok(()),
    }
}

fn files(args: &DbArg) -> Result<(), CliError> {
    let conn = cutoff::open_db(&args.db).map_err(input)?;
    for f in cutoff::list_files(&conn).map_err(input)? {
        println!(
            "{} {} #{} {} {} presentments {} DE4 sum {} {}",
            f.id,
            f.business_date,
            f.file_seq,
            f.ipm_file_id,
            f.name,
            f.presentments,
            f.amount_total,
            f.state
        );
    }
    Ok(())
}

fn run_seed(args: &SeedArgs) -> Result<(), CliError> {
    let keyring = Keyring::load(args.journal_key_file.as_deref()).map_err(input)?;
    let keyring = std::sync::Arc::new(keyring);
    let day = cutoff::day_start_ms(&args.date)
        .ok_or_else(|| input(format!("date '{}' is not YYYY-MM-DD", args.date)))?;
    let mut conn = cutoff::open_db(&args.db.db).map_err(input)?;
    let reg = seed::registry(args.merchants.max(1), args.terminals_each.max(1));
    reg.store(&mut conn).map_err(input)?;
    let sum =
        seed::approved_purchases(&args.db.db, &keyring, &reg, args.count, day).map_err(input)?;
    println!("seeded {} approved purchases, DE4 sum {sum}", args.count);
    Ok(())
}

/// The clearing layer's `AcquirerRules` on the database of the switch's
/// `[journal]` (for `cardswitch run --merchant-registry`).
pub fn acquirer_rules(
    config: &crate::node::config::SwitchConfig,
) -> Result<std::sync::Arc<dyn crate::switch::hooks::AcquirerRules>, CliError> {
    let journal = config.journal.as_ref().ok_or_else(|| {
        input("--merchant-registry needs a [journal] section: the registry lives in its database")
    })?;
    let conn = cutoff::open_db(&journal.path).map_err(input)?;
    let reader = open_queries(&journal.path, Access::ReadOnly).map_err(input)?;
    let rules = crate::clearing::batch::ClearingRules::new(conn, reader).map_err(input)?;
    let rules = std::sync::Arc::new(rules);
    rules.watch();
    Ok(rules)
}
