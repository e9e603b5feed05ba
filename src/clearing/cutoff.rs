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

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::ops::ControlFlow;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, TransactionBehavior, params};

use super::arn::{self, ArnError};
use super::capture::{self, JournalRow};
use super::ipm_writer::{
    FILE_TYPE_OUTGOING, FileParams, FileTotals, IpmWriteError, IpmWriter, Presentment,
};
use super::registry::{self, Brand, Fee, RegistryError};
use super::schema::migrate_all;
use super::settlement::{Settlement, transaction_fee};
use crate::journal::capture_rows::{CaptureRows, PresentmentRow};
use crate::journal::crypto::{CryptoError, Keyring};
use crate::journal::schema::SchemaError;
use crate::journal::{Access, JournalError, JournalQueries, open_queries};
use crate::message::sensitive::mask_pan;
use crate::message::time::{civil_from_days, days_from_civil};
use crate::private_file::create_private;

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

/// Capture derived from the journal's requests received before
/// `day_end_ms` that no clearing file consumed yet. What was consumed is
/// clearing's own `clearing_items`; both come in id order, so they are
/// merged as they are read (memory holds the rows chosen, not the history).
fn derive_unconsumed(
    conn: &Connection,
    journal: &dyn JournalQueries,
    day_end_ms: i64,
) -> Result<capture::Derived, CutoffError> {
    let mut stmt = conn.prepare("SELECT txn_id FROM clearing_items ORDER BY txn_id")?;
    let mut consumed = stmt.query([])?;
    let next = |rows: &mut rusqlite::Rows<'_>| -> rusqlite::Result<Option<i64>> {
        rows.next()?.map(|r| r.get(0)).transpose()
    };
    let mut next_consumed = next(&mut consumed)?;
    let mut failed = None;
    let mut rows = Vec::new();
    let before = CaptureRows::ReceivedBefore {
        before_ms: day_end_ms,
    };
    journal.for_each_capture_row(before, &mut |r| {
        while let Some(c) = next_consumed
            && c < r.id
        {
            match next(&mut consumed) {
                Ok(n) => next_consumed = n,
                Err(e) => {
                    failed = Some(e);
                    return ControlFlow::Break(());
                }
            }
        }
        if next_consumed != Some(r.id) {
            rows.push(JournalRow::from_journal(r));
        }
        ControlFlow::Continue(())
    })?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(capture::derive(rows)),
    }
}

/// Step 1: chooses what the new file holds, in one transaction. Returns
/// the new file's row, or `None` when there is nothing to clear.
fn choose(
    conn: &mut Connection,
    journal: &dyn JournalQueries,
    cfg: &CutoffConfig,
    (y, m, d): (i64, u32, u32),
    day_end_ms: i64,
    report: &mut CutoffReport,
) -> Result<Option<i64>, CutoffError> {
    // Read and derive without the write lock, so the switch's journal
    // writer is held up only while the choice is inserted. Rows that
    // arrive meanwhile wait for the next cut-off; a concurrent cut-off
    // makes the inserts fail on the primary key.
    let spinner = progress_bar(cfg.progress, None, "choosing");
    let derived = derive_unconsumed(conn, journal, day_end_ms)?;
    let terminals = terminal_merchants(conn)?;
    for c in derived.presentable() {
        if !terminals.contains_key(&c.terminal) {
            return Err(CutoffError::Unregistered {
                txn_id: c.txn_id,
                terminal: String::from_utf8_lossy(&c.terminal).trim_end().to_string(),
            });
        }
    }
    let awaiting = derived
        .items
        .iter()
        .filter(|c| c.awaiting_completion && !c.voided)
        .count() as u64;
    report.awaiting_completion = awaiting;
    let consumed: usize = derived
        .items
        .iter()
        .filter(|c| !c.awaiting_completion || c.voided)
        .map(|c| 1 + c.folded.len())
        .sum::<usize>()
        + derived.unmatched.len();
    if consumed == 0 {
        return Ok(None);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let file_seq: i64 = tx.query_row(
        "SELECT COALESCE(MAX(file_seq), 0) + 1 FROM clearing_files WHERE business_date = ?1",
        params![cfg.business_date],
        |r| r.get(0),
    )?;
    let yymmdd = format!("{:02}{m:02}{d:02}", y.rem_euclid(100));
    let ipm_file_id = format!(
        "{FILE_TYPE_OUTGOING}{yymmdd}{:0>11}{file_seq:05}",
        cfg.member_id
    );
    let name = format!("IPM-{y:04}{m:02}{d:02}-{file_seq:05}.ipm");
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let (count, total) = derived
        .presentable()
        .filter(|c| !c.credit)
        .fold((0i64, 0i64), |(n, s), c| (n + 1, s + c.amount_minor as i64));
    tx.execute(
        "INSERT INTO clearing_files (business_date, file_seq, ipm_file_id, name, created_at_ms, item_count, amount_total, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'committed')",
        params![cfg.business_date, file_seq, ipm_file_id, name, now_ms, count, total],
    )?;
    let file_row = tx.last_insert_rowid();
    let mut arn_seq: u64 = tx.query_row(
        "SELECT COALESCE(MAX(arn_seq), 0) FROM clearing_items",
        [],
        |r| r.get::<_, i64>(0),
    )? as u64;
    let doy = arn::day_of_year(y, m, d);
    {
        let mut items = ItemInserter::new(&tx, file_row);
        for c in &derived.items {
            if c.awaiting_completion && !c.voided {
                continue;
            }
            if c.voided || c.amount_minor == 0 {
                items.push(c.txn_id, "voided", None)?;
            } else if c.credit {
                // Refunds are counted in batch totals but not presented: see docs/clearing.md.
                items.push(c.txn_id, "credit_not_cleared", None)?;
            } else {
                arn_seq += 1;
                let arn = arn::arn(cfg.arn_indicator, &cfg.acquirer_bin, y, doy, arn_seq)?;
                items.push(
                    c.txn_id,
                    "presented",
                    Some((arn_seq as i64, c.amount_minor as i64, arn)),
                )?;
            }
            for f in &c.folded {
                items.push(*f, "folded", None)?;
            }
        }
        for u in &derived.unmatched {
            items.push(*u, "unmatched", None)?;
        }
        items.flush()?;
    }
    report.consumed_only = (consumed as u64).saturating_sub(count as u64);
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    stall("before_commit");
    tx.commit()?;
    Ok(Some(file_row))
}

/// Rows per multi-row INSERT: one statement per row was a quarter of a
/// 1,000,000-row cut-off.
const ITEMS_PER_INSERT: usize = 128;

/// A presentment's (ARN sequence, amount, ARN).
type Presented = (i64, i64, String);

/// Buffers `clearing_items` rows and inserts them in multi-row statements.
struct ItemInserter<'t> {
    tx: &'t rusqlite::Transaction<'t>,
    file_row: i64,
    /// (txn_id, role, presented: (arn_seq, amount, arn)).
    pending: Vec<(i64, &'static str, Option<Presented>)>,
}

impl<'t> ItemInserter<'t> {
    fn new(tx: &'t rusqlite::Transaction<'t>, file_row: i64) -> Self {
        ItemInserter {
            tx,
            file_row,
            pending: Vec::with_capacity(ITEMS_PER_INSERT),
        }
    }

    fn push(
        &mut self,
        txn_id: i64,
        role: &'static str,
        presented: Option<Presented>,
    ) -> rusqlite::Result<()> {
        self.pending.push((txn_id, role, presented));
        if self.pending.len() == ITEMS_PER_INSERT {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> rusqlite::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = vec!["(?, ?, ?, ?, ?, ?)"; self.pending.len()].join(", ");
        let sql = format!(
            "INSERT INTO clearing_items (txn_id, file_id, role, arn_seq, amount_minor, arn) VALUES {rows}"
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let mut at = 1;
        for (txn_id, role, presented) in self.pending.drain(..) {
            stmt.raw_bind_parameter(at, txn_id)?;
            stmt.raw_bind_parameter(at + 1, self.file_row)?;
            stmt.raw_bind_parameter(at + 2, role)?;
            let (seq, amount, arn) = match presented {
                Some((s, a, arn)) => (Some(s), Some(a), Some(arn)),
                None => (None, None, None),
            };
            stmt.raw_bind_parameter(at + 3, seq)?;
            stmt.raw_bind_parameter(at + 4, amount)?;
            stmt.raw_bind_parameter(at + 5, arn)?;
            at += 6;
        }
        stmt.raw_execute()?;
        Ok(())
    }
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

/// YYMMDDhhmmss (UTC) of a unix time in milliseconds.
fn date_time(ms: i64) -> [u8; 12] {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let parts = [
        y.rem_euclid(100),
        i64::from(mo),
        i64::from(d),
        s / 3600,
        s / 60 % 60,
        s % 60,
    ];
    let mut out = [b'0'; 12];
    for (i, v) in parts.iter().enumerate() {
        out[2 * i] = b'0' + (v / 10) as u8;
        out[2 * i + 1] = b'0' + (v % 10) as u8;
    }
    out
}

/// DE22 (12 positions) from the 1987 POS entry mode: position 7, the card
/// data input mode, carries how the card was read; the rest describe an
/// attended, card-present, chip-and-PIN capable terminal.
fn pos_data_code(entry_mode: Option<&[u8]>) -> &'static str {
    match entry_mode.and_then(|m| m.get(..2)) {
        Some(b"01") => "510101600141",
        Some(b"02") | Some(b"90") => "510101B00141",
        Some(b"05") => "510101C00141",
        Some(b"07") => "510101M00141",
        Some(b"81") => "510101S00141",
        _ => "510101000141",
    }
}

/// Rows handed from the reader thread to the writer at a time.
const FILE_ROWS_PER_BATCH: usize = 1024;

/// One presentment's journal data, PAN opened (zeroized when dropped).
struct FileRow {
    txn_id: i64,
    amount: u64,
    arn: String,
    processing_code: String,
    received_at_ms: i64,
    pos_data_code: &'static str,
    approval: String,
    terminal: [u8; 8],
    currency: [u8; 3],
    brand: Brand,
    pan: zeroize::Zeroizing<Vec<u8>>,
}

/// Reads the presentments of a committed file in ARN order (clearing's
/// items, then their journal rows, PANs opened, a batch at a time) and
/// sends them in batches; stops when the receiver is gone.
fn read_rows(
    db: &Path,
    file_row: i64,
    keyring: &Keyring,
    out: &std::sync::mpsc::SyncSender<Result<Vec<FileRow>, CutoffError>>,
) -> Result<(), CutoffError> {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    let journal = open_queries(db, Access::ReadOnly)?;
    let mut stmt = conn.prepare(
        "SELECT txn_id, amount_minor, arn FROM clearing_items
         WHERE file_id = ?1 AND role = 'presented' ORDER BY arn_seq",
    )?;
    let mut items = stmt.query(params![file_row])?;
    loop {
        let mut chosen = Vec::with_capacity(FILE_ROWS_PER_BATCH);
        while chosen.len() < FILE_ROWS_PER_BATCH
            && let Some(r) = items.next()?
        {
            let txn_id: i64 = r.get(0)?;
            let bad = |what| CutoffError::Row { txn_id, what };
            let amount = u64::try_from(r.get::<_, i64>(1)?).map_err(|_| bad("amount"))?;
            let arn = text(r.get_ref(2)?).ok_or(bad("ARN"))?.to_string();
            chosen.push((txn_id, amount, arn));
        }
        if chosen.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = chosen.iter().map(|c| c.0).collect();
        let rows = journal.presentment_rows(&ids, keyring)?;
        if rows.len() != ids.len() {
            // The journal answers every id or fails; a short answer would
            // leave presentments out of a file whose totals still add up.
            return Err(CutoffError::Row {
                txn_id: ids[rows.len().min(ids.len() - 1)],
                what: "journal row",
            });
        }
        let batch = chosen
            .into_iter()
            .zip(rows)
            .map(|((_, amount, arn), row)| file_row_of(row, amount, arn))
            .collect::<Result<Vec<_>, _>>()?;
        if out.send(Ok(batch)).is_err() {
            return Ok(());
        }
    }
}

/// A presentment's journal data, checked, with the item's amount and ARN.
fn file_row_of(row: PresentmentRow, amount: u64, arn: String) -> Result<FileRow, CutoffError> {
    let txn_id = row.txn_id;
    let bad = |what| CutoffError::Row { txn_id, what };
    let currency = row
        .currency
        .as_deref()
        .filter(|c| c.len() == 3)
        .ok_or(bad("currency (DE49)"))?;
    let mut cur = [0u8; 3];
    cur.copy_from_slice(currency.as_bytes());
    let pan = row.pan.ok_or(bad("sealed PAN"))?;
    let brand = Brand::of_pan(row.pan_masked.as_deref().map_or(&pan[..], str::as_bytes));
    Ok(FileRow {
        txn_id,
        amount,
        arn,
        processing_code: row
            .processing_code
            .filter(|p| p.len() == 6)
            .unwrap_or_else(|| "000000".to_string()),
        received_at_ms: row.received_at_ms,
        pos_data_code: pos_data_code(row.pos_entry_mode.as_deref().map(str::as_bytes)),
        approval: row.approval_code.unwrap_or_default(),
        terminal: terminal_key(row.terminal_id.as_deref().unwrap_or("").as_bytes()),
        currency: cur,
        brand,
        pan,
    })
}

fn pad_right(text: &str, width: usize) -> String {
    format!("{text:<width$}")
}

/// Step 2: writes the file of a committed row and its reports, then marks it written.
fn write_file(
    conn: &Connection,
    cfg: &CutoffConfig,
    keyring: &Keyring,
    file_row: i64,
) -> Result<FileOutcome, CutoffError> {
    let (ipm_file_id, name, item_count): (String, String, i64) = conn.query_row(
        "SELECT ipm_file_id, name, item_count FROM clearing_files WHERE id = ?1",
        params![file_row],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let path = cfg.out_dir.join(&name);
    let stem = name.trim_end_matches(".ipm");
    let csv_path = cfg.out_dir.join(format!("{stem}-settlement.csv"));
    let txt_path = cfg.out_dir.join(format!("{stem}-settlement.txt"));
    let tmp = |p: &Path| {
        p.with_extension(format!(
            "{}.tmp",
            p.extension().and_then(|e| e.to_str()).unwrap_or("")
        ))
    };
    let ipm_tmp = tmp(&path);
    let file = create_private(&ipm_tmp).map_err(io_err(&ipm_tmp))?;
    let params = FileParams {
        ipm_file_id: ipm_file_id.clone(),
        production: cfg.production,
        blocked: cfg.blocked,
        originator_id: cfg.member_id.clone(),
    };
    let mut writer = IpmWriter::start(BufWriter::with_capacity(1 << 20, file), params)?;
    let terminals = terminal_merchants(conn)?;
    // (merchant index, currency) -> count, gross, fee; a Settlement at the end.
    let mut lines: SettlementSums = HashMap::default();
    let bar = progress_bar(cfg.progress, Some(item_count.max(0) as u64), "writing");
    // Two threads, so a second core is used when there is one: a reader
    // (its own connection) steps through the rows and opens the PANs; this
    // thread builds and writes the records. A bounded channel of batches
    // keeps memory flat.
    let mut written = 0u64;
    std::thread::scope(|scope| -> Result<(), CutoffError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<FileRow>, CutoffError>>(4);
        let db = cfg.db.clone();
        scope.spawn(move || {
            if let Err(e) = read_rows(&db, file_row, keyring, &tx) {
                let _ = tx.send(Err(e));
            }
        });
        for batch in rx {
            for row in batch? {
                let info =
                    terminals
                        .get(&row.terminal)
                        .ok_or_else(|| CutoffError::Unregistered {
                            txn_id: row.txn_id,
                            terminal: String::from_utf8_lossy(&row.terminal)
                                .trim_end()
                                .to_string(),
                        })?;
                let fee = info.fees[brand_index(row.brand)].ok_or_else(|| CutoffError::NoFee {
                    merchant: info.merchant_id.clone(),
                    plan: info.fee_plan.clone(),
                    brand: row.brand.as_str(),
                })?;
                let local = date_time(row.received_at_ms);
                let approval = format!("{:<6}", row.approval);
                writer
                    .presentment(&Presentment {
                        pan: &row.pan,
                        processing_code: &row.processing_code,
                        amount_minor: row.amount,
                        local_date_time: std::str::from_utf8(&local).unwrap_or("000000000000"),
                        pos_data_code: row.pos_data_code,
                        mcc: &info.mcc,
                        arn: &row.arn,
                        approval_code: &approval,
                        merchant_id: &info.merchant_id_padded,
                        name_location: &info.name_location,
                        currency: std::str::from_utf8(&row.currency).unwrap_or(""),
                    })
                    .map_err(|e| {
                        tracing::error!(txn_id = row.txn_id, pan = %mask_pan(&row.pan), "presentment refused: {e}");
                        e
                    })?;
                let line = lines
                    .entry((info.merchant_index, row.currency))
                    .or_default();
                line.0 += 1;
                line.1 += row.amount;
                line.2 += transaction_fee(row.amount, fee);
                written += 1;
                if let Some(b) = &bar
                    && written.is_multiple_of(4096)
                {
                    b.set_position(written);
                }
            }
        }
        Ok(())
    })?;
    let mut settlement = Settlement::default();
    let by_index: HashMap<usize, &MerchantInfo> =
        terminals.values().map(|m| (m.merchant_index, m)).collect();
    for ((index, currency), (count, gross, fee)) in lines {
        let m = by_index[&index];
        let currency = String::from_utf8_lossy(&currency);
        settlement.add_line(&m.merchant_id, &m.account, &currency, count, gross, fee);
    }
    let (totals, out): (FileTotals, BufWriter<File>) = writer.finish()?;
    let file = out
        .into_inner()
        .map_err(|e| io_err(&ipm_tmp)(e.into_error()))?;
    file.sync_all().map_err(io_err(&ipm_tmp))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    // Money invariant: the reports add up to the file's trailer.
    let (count, gross) = settlement.totals();
    if count + 2 != totals.message_count || gross != totals.amount_sum {
        return Err(CutoffError::Unbalanced {
            file: name,
            settled: (count, gross),
            file_totals: (totals.message_count, totals.amount_sum),
        });
    }
    let title = format!(
        "Settlement of clearing file {name} (file id {ipm_file_id}), business date {}",
        cfg.business_date
    );
    let reports = [
        (&csv_path, settlement.csv()),
        (&txt_path, settlement.summary(&title)),
    ];
    for (p, text) in &reports {
        let t = tmp(p);
        let mut f = create_private(&t).map_err(io_err(&t))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io_err(&t))?;
    }
    stall("before_rename");
    for (p, _) in &reports {
        std::fs::rename(tmp(p), p).map_err(io_err(p))?;
    }
    std::fs::rename(&ipm_tmp, &path).map_err(io_err(&path))?;
    if let Ok(dir) = File::open(&cfg.out_dir) {
        let _ = dir.sync_all();
    }
    conn.execute(
        "UPDATE clearing_files SET state = 'written' WHERE id = ?1",
        params![file_row],
    )?;
    Ok(FileOutcome {
        file_row,
        ipm_file_id,
        path,
        csv: csv_path,
        summary: txt_path,
        presentments: count,
        amount_sum: gross,
        recovered: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
