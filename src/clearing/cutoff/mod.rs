//! The business-day cut-off: every captured, not-yet-cleared transaction
//! received before the end of the business date goes into exactly one
//! clearing file, once.
//!
//! Two steps, each safe to interrupt:
//! 1. Choose: derive capture from a read snapshot of the journal rows not
//!    yet in `clearing_items`; then, in one SQLite write transaction, give
//!    each presentment its ARN and insert the `clearing_files` row (state
//!    `committed`) together with one `clearing_items` row per journal row
//!    consumed. `txn_id` is the primary
//!    key, so no row is ever chosen twice; a crash before the commit leaves
//!    nothing behind.
//! 2. Write: the file and its settlement reports are a deterministic
//!    function of the committed rows. They are written under temporary
//!    names, synced, renamed into place, then the file row becomes
//!    `written`. A crash here leaves a `committed` row, and the next run
//!    writes that file again before choosing anything new.

mod choose;
mod write;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use super::arn::ArnError;
use super::ipm_writer::IpmWriteError;
use super::registry::{self, Brand, Fee, RegistryError};
use super::schema::migrate_all;
use crate::journal::crypto::{CryptoError, Keyring};
use crate::journal::schema::SchemaError;
use crate::journal::{Access, JournalError, open_queries};
use crate::message::time::days_from_civil;
use choose::choose;
use write::write_file;

/// Fault injection for the crash tests: `before_commit` or `before_rename`
/// makes the cut-off stop there (it prints `cutoff: stalled at POINT` on
/// stderr and sleeps) so a test can SIGKILL it at a known point.
pub const STALL_ENV: &str = "CARDSWITCH_CUTOFF_STALL";
const STALL_SECONDS_MAX: u64 = 600;
/// How long to wait for the switch's journal writer to release the database.
const BUSY_TIMEOUT_MS: u64 = 10_000;

/// Why a cut-off failed; nothing is half-done (see the module notes).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CutoffError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The journal could not be read (a sealed PAN that does not open is
    /// one: the file is not written).
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Arn(#[from] ArnError),
    #[error(transparent)]
    Write(#[from] IpmWriteError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("business date '{0}' is not YYYY-MM-DD")]
    Date(String),
    #[error("member id must be 1-11 digits, acquirer BIN 6 digits")]
    Ids,
    /// A captured transaction whose terminal the registry does not know:
    /// load the registry, then run the cut-off again (nothing was cleared).
    #[error(
        "journal row {txn_id}: terminal '{terminal}' is not in the merchant registry; nothing was cleared"
    )]
    Unregistered { txn_id: i64, terminal: String },
    #[error("merchant {merchant}: fee plan '{plan}' has no fee for {brand} nor for other")]
    NoFee {
        merchant: String,
        plan: String,
        brand: &'static str,
    },
    #[error("journal row {txn_id}: {what} missing or malformed")]
    Row { txn_id: i64, what: &'static str },
    /// The settlement does not add up to the file (a bug: nothing is renamed into place).
    #[error(
        "{file}: settlement (count, gross) {settled:?} does not match the file's (messages, PDS 0301) {file_totals:?}"
    )]
    Unbalanced {
        file: String,
        settled: (u64, u64),
        file_totals: (u64, u64),
    },
}

/// What a cut-off needs to know.
#[derive(Debug, Clone)]
pub struct CutoffConfig {
    pub db: PathBuf,
    pub out_dir: PathBuf,
    /// YYYY-MM-DD: rows received before the next day 00:00 UTC are in.
    pub business_date: String,
    /// Our Mastercard member id (PDS 0105, DE94), up to 11 digits.
    pub member_id: String,
    /// The acquirer BIN of the ARN.
    pub acquirer_bin: String,
    pub arn_indicator: u8,
    pub production: bool,
    pub blocked: bool,
    /// Show a progress bar (only when stderr is a terminal).
    pub progress: bool,
}

/// One clearing file and its reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutcome {
    pub file_row: i64,
    pub ipm_file_id: String,
    pub path: PathBuf,
    pub csv: PathBuf,
    pub summary: PathBuf,
    pub presentments: u64,
    pub amount_sum: u64,
    /// The file was chosen by an earlier, interrupted run.
    pub recovered: bool,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct CutoffReport {
    pub files: Vec<FileOutcome>,
    /// Journal rows consumed without a presentment (voided, folded).
    pub consumed_only: u64,
    /// Pre-authorizations still waiting for their completion.
    pub awaiting_completion: u64,
    pub choose_ms: u128,
    pub write_ms: u128,
}

fn parse_date(text: &str) -> Option<(i64, u32, u32)> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = text[..4].parse().ok()?;
    let m: u32 = text[5..7].parse().ok()?;
    let d: u32 = text[8..].parse().ok()?;
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

/// Unix milliseconds of 00:00 UTC of a YYYY-MM-DD date.
pub fn day_start_ms(date: &str) -> Option<i64> {
    let (y, m, d) = parse_date(date)?;
    Some(days_from_civil(y, m, d) * 86_400_000)
}

fn stall(point: &str) {
    if std::env::var(STALL_ENV).is_ok_and(|v| v == point) {
        eprintln!("cutoff: stalled at {point}");
        std::thread::sleep(Duration::from_secs(STALL_SECONDS_MAX));
    }
}

/// Opens the journal's database for clearing and brings the schema up.
pub fn open_db(path: &Path) -> Result<Connection, CutoffError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    migrate_all(&mut conn)?;
    Ok(conn)
}

/// One clearing file as `clearing files` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileListing {
    pub id: i64,
    pub business_date: String,
    pub file_seq: i64,
    pub ipm_file_id: String,
    pub name: String,
    pub presentments: i64,
    pub amount_total: i64,
    /// `committed` (items chosen) or `written` (file in place).
    pub state: String,
}

/// Every clearing file of the database, oldest first.
pub fn list_files(conn: &Connection) -> Result<Vec<FileListing>, CutoffError> {
    let mut stmt = conn.prepare(
        "SELECT id, business_date, file_seq, ipm_file_id, name, item_count, amount_total, state
         FROM clearing_files ORDER BY id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(FileListing {
                id: r.get(0)?,
                business_date: r.get(1)?,
                file_seq: r.get(2)?,
                ipm_file_id: r.get(3)?,
                name: r.get(4)?,
                presentments: r.get(5)?,
                amount_total: r.get(6)?,
                state: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Runs the cut-off: first finishes files an interrupted run chose, then
/// chooses and writes a new file if anything is left to clear.
pub fn run(cfg: &CutoffConfig, keyring: &Keyring) -> Result<CutoffReport, CutoffError> {
    let (y, m, d) = parse_date(&cfg.business_date)
        .ok_or_else(|| CutoffError::Date(cfg.business_date.clone()))?;
    let member_ok = !cfg.member_id.is_empty()
        && cfg.member_id.len() <= 11
        && cfg.member_id.bytes().all(|b| b.is_ascii_digit());
    let bin_ok =
        cfg.acquirer_bin.len() == 6 && cfg.acquirer_bin.bytes().all(|b| b.is_ascii_digit());
    if !member_ok || !bin_ok {
        return Err(CutoffError::Ids);
    }
    std::fs::create_dir_all(&cfg.out_dir).map_err(|source| CutoffError::Io {
        path: cfg.out_dir.display().to_string(),
        source,
    })?;
    let mut conn = open_db(&cfg.db)?;
    let journal = open_queries(&cfg.db, Access::ReadOnly)?;
    let mut report = CutoffReport::default();
    let started = std::time::Instant::now();
    for file_row in pending_files(&conn)? {
        let mut outcome = write_file(&conn, cfg, keyring, file_row)?;
        outcome.recovered = true;
        report.files.push(outcome);
    }
    let day_end_ms = (days_from_civil(y, m, d) + 1) * 86_400_000;
    let chosen = choose(
        &mut conn,
        &*journal,
        cfg,
        (y, m, d),
        day_end_ms,
        &mut report,
    )?;
    report.choose_ms = started.elapsed().as_millis();
    let written = std::time::Instant::now();
    if let Some(file_row) = chosen {
        report
            .files
            .push(write_file(&conn, cfg, keyring, file_row)?);
    }
    report.write_ms = written.elapsed().as_millis();
    Ok(report)
}

fn pending_files(conn: &Connection) -> Result<Vec<i64>, CutoffError> {
    let mut stmt =
        conn.prepare("SELECT id FROM clearing_files WHERE state = 'committed' ORDER BY id")?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Registry data a presentment and its settlement need, per terminal,
/// computed once per cut-off rather than once per transaction.
struct MerchantInfo {
    /// Index of the merchant in registry order (settlement accumulators).
    merchant_index: usize,
    merchant_id: String,
    /// DE42: the id padded to 15.
    merchant_id_padded: String,
    name_location: String,
    mcc: String,
    account: String,
    fee_plan: String,
    /// By [`brand_index`]; a plan without the brand uses its `other` fee.
    fees: [Option<Fee>; 3],
}

fn brand_index(brand: Brand) -> usize {
    match brand {
        Brand::Mastercard => 0,
        Brand::Visa => 1,
        Brand::Other => 2,
    }
}

/// (merchant index, currency) -> (count, gross, fee).
type SettlementSums = HashMap<(usize, [u8; 3]), (u64, u64, u64), foldhash::fast::RandomState>;

type Terminals = HashMap<[u8; 8], MerchantInfo, foldhash::fast::RandomState>;

fn terminal_merchants(conn: &Connection) -> Result<Terminals, CutoffError> {
    let plans = registry::fee_plans(conn)?;
    let mut out = Terminals::default();
    for (merchant_index, m) in registry::merchants(conn)?.into_iter().enumerate() {
        let fee = |brand| {
            plans
                .get(&(m.fee_plan.clone(), brand))
                .or_else(|| plans.get(&(m.fee_plan.clone(), Brand::Other)))
                .copied()
        };
        let fees = [fee(Brand::Mastercard), fee(Brand::Visa), fee(Brand::Other)];
        let mut name_location = format!("{}\\{}", m.name, m.location);
        name_location.truncate(99);
        for (t, _) in &m.terminals {
            out.insert(
                terminal_key(t.as_bytes()),
                MerchantInfo {
                    merchant_index,
                    merchant_id: m.id.clone(),
                    merchant_id_padded: pad_right(&m.id, 15),
                    name_location: name_location.clone(),
                    mcc: m.mcc.clone(),
                    account: m.settlement_account.clone(),
                    fee_plan: m.fee_plan.clone(),
                    fees,
                },
            );
        }
    }
    Ok(out)
}

/// A text column without copying it (non-UTF-8 reads as empty).
fn text(v: ValueRef<'_>) -> Option<&str> {
    match v {
        ValueRef::Text(t) => Some(std::str::from_utf8(t).unwrap_or("")),
        _ => None,
    }
}

/// DE41 as a fixed 8-byte key, space padded.
fn terminal_key(t: &[u8]) -> [u8; 8] {
    let mut key = [b' '; 8];
    let n = t.len().min(8);
    key[..n].copy_from_slice(&t[..n]);
    key
}

fn progress_bar(
    wanted: bool,
    len: Option<u64>,
    what: &'static str,
) -> Option<indicatif::ProgressBar> {
    if !wanted || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match len {
        Some(n) => indicatif::ProgressBar::new(n).with_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        ),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_message(what);
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> CutoffError + '_ {
    move |source| CutoffError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn pad_right(text: &str, width: usize) -> String {
    format!("{text:<width$}")
}

#[cfg(test)]
mod tests {
    use super::write::{date_time, pos_data_code};
    use super::*;
    use crate::message::time::civil_from_days;

    #[test]
    fn dates_and_codes() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 11, 23), 20780);
        assert_eq!(civil_from_days(20780), (2026, 11, 23));
        assert_eq!(&date_time(20780 * 86_400_000 + 3_723_000), b"261123010203");
        assert_eq!(parse_date("2026-11-23"), Some((2026, 11, 23)));
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("20261123"), None);
        assert_eq!(pos_data_code(Some(b"051")), "510101C00141");
        assert_eq!(pos_data_code(None).len(), 12);
    }
}
