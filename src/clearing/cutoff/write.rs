//! Step 2 of the cut-off: write a committed file and its settlement
//! reports (a reader thread steps through the presentments and their
//! journal rows; this one builds and writes), then mark it written.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, params};

use super::{
    BUSY_TIMEOUT_MS, CutoffConfig, CutoffError, FileOutcome, MerchantInfo, SettlementSums,
    brand_index, io_err, progress_bar, stall, terminal_key, terminal_merchants, text,
};
use crate::clearing::ipm_writer::{FileParams, FileTotals, IpmWriter, Presentment};
use crate::clearing::registry::Brand;
use crate::clearing::settlement::{Settlement, transaction_fee};
use crate::journal::capture_rows::PresentmentRow;
use crate::journal::crypto::Keyring;
use crate::journal::{Access, open_queries};
use crate::message::sensitive::mask_pan;
use crate::message::time::civil_from_days;
use crate::private_file::create_private;

/// YYMMDDhhmmss (UTC) of a unix time in milliseconds.
pub(super) fn date_time(ms: i64) -> [u8; 12] {
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
pub(super) fn pos_data_code(entry_mode: Option<&[u8]>) -> &'static str {
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

/// Step 2: writes the file of a committed row and its reports, then marks it written.
pub(super) fn write_file(
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
