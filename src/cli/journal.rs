//! `cardswitch journal`: search the journal, show one transaction's life,
//! export (CSV or JSON), back up a live journal, and make a key file.
//! Everything printed is masked; a PAN given to search by is turned into
//! its keyed hash and never printed.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use super::CliError;
use crate::journal::crypto::Keyring;
use crate::journal::query::{self, Filter, TxnView};
use crate::journal::record::now_ms;
use crate::journal::requeue::Requeue;
use crate::journal::{Access, JournalQueries, TxnOutcome, open_queries};
use crate::node::config::SwitchConfig;
use crate::private_file::create_private;

#[derive(Debug, Args)]
pub struct JournalArgs {
    #[command(subcommand)]
    command: JournalCommand,
}

/// Where the journal is: a database file, or the switch's configuration.
#[derive(Debug, Args)]
struct Location {
    /// The journal database file.
    #[arg(long, conflicts_with = "config")]
    db: Option<PathBuf>,
    /// The switch configuration whose [journal] to use.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Key file (for --pan); defaults to the configuration's, then to
    /// CARDSWITCH_JOURNAL_KEY.
    #[arg(long)]
    key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct FilterArgs {
    #[arg(long)]
    rrn: Option<String>,
    #[arg(long)]
    stan: Option<String>,
    #[arg(long)]
    terminal: Option<String>,
    /// A whole PAN, matched through its keyed hash (needs the key).
    #[arg(long)]
    pan: Option<String>,
    /// A masked PAN as shown (first 6, last 4), e.g. 476173******0010.
    #[arg(long)]
    masked_pan: Option<String>,
    /// From this time (UTC, YYYY-MM-DD[THH:MM[:SS]] or Unix ms), inclusive.
    #[arg(long)]
    from: Option<String>,
    /// Until this time, exclusive.
    #[arg(long)]
    to: Option<String>,
    /// Rows at most: search shows 1000 by default and at most 100000
    /// (a larger limit is refused); export writes every row by default.
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
enum JournalCommand {
    /// Find transactions (masked).
    Search {
        #[command(flatten)]
        at: Location,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One transaction's life: every event, masked.
    Show {
        #[command(flatten)]
        at: Location,
        /// The transaction id (from search).
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Export transactions as CSV or JSON lines.
    Export {
        #[command(flatten)]
        at: Location,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A consistent copy of the journal, while the switch runs.
    Backup {
        #[command(flatten)]
        at: Location,
        /// Where the copy goes (must not exist).
        dest: PathBuf,
    },
    /// Queue again store-and-forward entries the switch gave up on
    /// (expired or out of attempts); the switch delivers them from its
    /// next start.
    Requeue {
        #[command(flatten)]
        at: Location,
        /// One entry, by its id (`journal show` lists a transaction's).
        #[arg(long, conflicts_with_all = ["txn", "all_given_up"])]
        saf_id: Option<u64>,
        /// Every given-up entry of one transaction.
        #[arg(long, conflicts_with = "all_given_up")]
        txn: Option<u64>,
        /// Every given-up entry.
        #[arg(long)]
        all_given_up: bool,
    },
    /// Write a new key file with one random key.
    Keygen {
        file: PathBuf,
        #[arg(long, default_value = "k1")]
        key_id: String,
    },
}

fn input(e: impl std::fmt::Display) -> CliError {
    CliError::Input(e.to_string())
}

/// The database path and key file named by `at`.
fn locate(at: &Location) -> Result<(PathBuf, Option<PathBuf>), CliError> {
    if let Some(db) = &at.db {
        return Ok((db.clone(), at.key_file.clone()));
    }
    let Some(config) = &at.config else {
        return Err(input("give --db FILE or --config FILE"));
    };
    let config = SwitchConfig::load(config).map_err(input)?;
    let journal = config
        .journal
        .ok_or_else(|| input(format!("{} has no [journal] section", config.file)))?;
    Ok((journal.path, at.key_file.clone().or(journal.key_file)))
}

fn open_reader(db: &Path) -> Result<Box<dyn JournalQueries>, CliError> {
    open_queries(db, Access::ReadOnly).map_err(input)
}

/// Rows a search shows when no `--limit` is given.
const SEARCH_ROWS_DEFAULT: usize = 1000;

fn filter(
    args: &FilterArgs,
    key_file: Option<&Path>,
    journal: &dyn JournalQueries,
    default_limit: usize,
) -> Result<Filter, CliError> {
    let time = |t: &Option<String>| t.as_deref().map(query::parse_time_ms).transpose();
    let pan_hash = match &args.pan {
        Some(pan) => {
            let pan = Zeroizing::new(pan.trim().to_string());
            if !(12..=19).contains(&pan.len()) || !pan.bytes().all(|b| b.is_ascii_digit()) {
                return Err(input("--pan: 12 to 19 digits"));
            }
            let keys = Keyring::load(key_file).map_err(input)?;
            // A search with the wrong key would silently find nothing.
            journal.check_keys(&keys).map_err(input)?;
            Some(keys.pan_hash(pan.as_bytes()))
        }
        None => None,
    };
    Ok(Filter {
        rrn: args.rrn.clone(),
        stan: args.stan.clone(),
        terminal: args.terminal.clone(),
        pan_hash,
        masked_pan: args.masked_pan.clone(),
        from_ms: time(&args.from).map_err(|e| input(format!("--from: {e}")))?,
        to_ms: time(&args.to).map_err(|e| input(format!("--to: {e}")))?,
        limit: args.limit.unwrap_or(default_limit),
    })
}

fn print_table(rows: &[TxnView], out: &mut impl Write) -> std::io::Result<()> {
    write_header(Format::Table, out)?;
    rows.iter()
        .try_for_each(|t| write_row(t, Format::Table, out))
}

/// What comes before the rows: the table's or the CSV's header line.
fn write_header(format: Format, out: &mut impl Write) -> std::io::Result<()> {
    match format {
        Format::Table => writeln!(
            out,
            "{:>8} {:<24} {:<4} {:<19} {:>12} {:<6} {:<12} {:<8} {:<3} {:<10} state",
            "id", "received", "mti", "pan", "amount", "stan", "rrn", "terminal", "rc", "outcome"
        ),
        Format::Csv => writeln!(out, "{}", query::CSV_HEADER),
        Format::Json => Ok(()),
    }
}

fn write_row(t: &TxnView, format: Format, out: &mut impl Write) -> std::io::Result<()> {
    match format {
        Format::Table => {
            let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            writeln!(
                out,
                "{:>8} {:<24} {:<4} {:<19} {:>12} {:<6} {:<12} {:<8} {:<3} {:<10} {}",
                t.id,
                t.received_at,
                t.mti,
                o(&t.pan),
                t.amount.map_or("-".into(), |a| a.to_string()),
                o(&t.stan),
                o(&t.rrn),
                o(&t.terminal),
                o(&t.response_code),
                t.outcome.map_or("-", TxnOutcome::as_str),
                t.state
            )
        }
        Format::Csv => writeln!(out, "{}", query::csv_row(t)),
        Format::Json => writeln!(out, "{}", serde_json::to_string(t).unwrap_or_default()),
    }
}

/// Prints a search's rows; says on stderr how many, and whether more
/// matched than the limit let through.
fn search(
    journal: &dyn JournalQueries,
    f: &Filter,
    format: Format,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let found = query::search_found(journal, f).map_err(input)?;
    write_header(format, out).map_err(input)?;
    for t in &found.rows {
        write_row(t, format, out).map_err(input)?;
    }
    if found.more {
        eprintln!(
            "{} transactions shown; more match: raise --limit (at most {}) or use `journal export`",
            found.rows.len(),
            query::SEARCH_ROWS_MAX
        );
    } else {
        eprintln!("{} transactions", found.rows.len());
    }
    Ok(())
}

/// Streams every matching row from the database cursor to `out`.
fn export(
    journal: &dyn JournalQueries,
    f: &Filter,
    format: Format,
    out: &mut impl Write,
) -> Result<u64, CliError> {
    write_header(format, out).map_err(input)?;
    let count = journal
        .for_each(f, &mut |t| write_row(&t, format, out))
        .map_err(input)?;
    out.flush().map_err(input)?;
    Ok(count)
}

/// An export into a file created 0600, like the journal: the rows are
/// masked, but still name cards (first 6 / last 4), amounts and merchants.
fn export_to_file(
    journal: &dyn JournalQueries,
    f: &Filter,
    format: Format,
    path: &Path,
) -> Result<u64, CliError> {
    let file = create_private(path).map_err(|e| input(format!("{}: {e}", path.display())))?;
    export(journal, f, format, &mut std::io::BufWriter::new(file))
}

pub fn run(args: &JournalArgs) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    match &args.command {
        JournalCommand::Search {
            at,
            filter: f,
            format,
        } => {
            let (db, key_file) = locate(at)?;
            let journal = open_reader(&db)?;
            let f = filter(f, key_file.as_deref(), &*journal, SEARCH_ROWS_DEFAULT)?;
            search(&*journal, &f, *format, &mut stdout.lock())?;
        }
        JournalCommand::Show { at, id, json } => {
            let (db, _) = locate(at)?;
            let journal = open_reader(&db)?;
            let (txn, life) = journal
                .life(*id)
                .map_err(input)?
                .ok_or_else(|| input(format!("no transaction {id}")))?;
            let mut out = stdout.lock();
            if *json {
                let v = serde_json::json!({"transaction": txn, "life": life});
                writeln!(out, "{v:#}").map_err(input)?;
            } else {
                print_table(std::slice::from_ref(&txn), &mut out).map_err(input)?;
                writeln!(out).map_err(input)?;
                for e in life {
                    writeln!(out, "{}  {:<28} {}", e.at, e.what, e.detail).map_err(input)?;
                }
            }
        }
        JournalCommand::Export {
            at,
            filter: f,
            format,
            out,
        } => {
            let (db, key_file) = locate(at)?;
            let journal = open_reader(&db)?;
            // No limit unless one is given: an export is every matching row.
            let f = filter(f, key_file.as_deref(), &*journal, 0)?;
            let count = match out {
                Some(path) => export_to_file(&*journal, &f, *format, path)?,
                None => export(
                    &*journal,
                    &f,
                    *format,
                    &mut std::io::BufWriter::new(stdout.lock()),
                )?,
            };
            eprintln!("{count} transactions exported");
        }
        JournalCommand::Backup { at, dest } => {
            let (db, _) = locate(at)?;
            if dest.exists() {
                return Err(input(format!(
                    "{} exists: a backup never overwrites",
                    dest.display()
                )));
            }
            open_reader(&db)?.backup(dest).map_err(input)?;
            println!("journal copied to {}", dest.display());
        }
        JournalCommand::Requeue {
            at,
            saf_id,
            txn,
            all_given_up,
        } => {
            let which = match (saf_id, txn, all_given_up) {
                (Some(id), _, _) => Requeue::Entry(*id),
                (_, Some(txn), _) => Requeue::Transaction(*txn),
                (_, _, true) => Requeue::AllGivenUp,
                _ => return Err(input("give --saf-id N, --txn N or --all-given-up")),
            };
            let (db, _) = locate(at)?;
            let mut journal = open_queries(&db, Access::ReadWrite).map_err(input)?;
            let ids = journal.requeue(which, now_ms()).map_err(input)?;
            if ids.is_empty() {
                return Err(input("no given-up store-and-forward entry matches"));
            }
            println!(
                "{} entries queued again (delivered from the switch's next start): {ids:?}",
                ids.len()
            );
        }
        JournalCommand::Keygen { file, key_id } => {
            if file.exists() {
                return Err(input(format!(
                    "{} exists: a key file is never overwritten",
                    file.display()
                )));
            }
            let text = Keyring::generate_file_text(key_id).map_err(input)?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(file).map_err(input)?;
            f.write_all(text.as_bytes()).map_err(input)?;
            println!("key file written: {} (key id {key_id})", file.display());
        }
    }
    Ok(())
}
