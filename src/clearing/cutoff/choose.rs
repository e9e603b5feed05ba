//! Step 1 of the cut-off: choose what the new file holds, in one
//! transaction of clearing's own tables, from the journal's requests read
//! through its queries.

use std::ops::ControlFlow;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, TransactionBehavior, params};

use super::{CutoffConfig, CutoffError, CutoffReport, progress_bar, stall, terminal_merchants};
use crate::clearing::arn;
use crate::clearing::capture::{self, Skipped};
use crate::clearing::ipm_writer::FILE_TYPE_OUTGOING;
use crate::journal::JournalQueries;
use crate::journal::capture_rows::CaptureRows;

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
    let mut skipped = Skipped::default();
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
            rows.extend(skipped.admit(r));
        }
        ControlFlow::Continue(())
    })?;
    skipped.warn("cut-off");
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(capture::derive(rows)),
    }
}

/// Step 1: chooses what the new file holds, in one transaction. Returns
/// the new file's row, or `None` when there is nothing to clear.
pub(super) fn choose(
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
