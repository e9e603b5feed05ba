//! What clearing reads from the journal, in SQL: capture's requests (by
//! business day, or by terminal through the look-up table) and the rows
//! of a clearing file's presentments, their PANs opened.

use std::ops::ControlFlow;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SEAL_PAN, lookup};
use crate::journal::capture_rows::{CAPTURE_MTIS, CaptureRow, CaptureRows, PresentmentRow};
use crate::journal::crypto::Keyring;
use crate::journal::store::JournalError;

/// The SELECT list [`capture_row`] reads, in order.
const CAPTURE_COLUMNS: &str = "id, request_mti, processing_code, amount_minor, stan, rrn, \
     terminal_id, original_data, replacement_amount, outcome, response_code";

/// `('0100', '0101', ...)`.
fn capture_mtis_sql() -> String {
    let quoted: Vec<String> = CAPTURE_MTIS.iter().map(|m| format!("'{m}'")).collect();
    format!("({})", quoted.join(","))
}

fn bytes(v: ValueRef<'_>) -> Option<&[u8]> {
    match v {
        ValueRef::Text(t) => Some(t),
        _ => None,
    }
}

/// Text as an owned string (non-UTF-8 bytes replaced).
fn string(v: ValueRef<'_>) -> Option<String> {
    bytes(v).map(|t| String::from_utf8_lossy(t).into_owned())
}

fn capture_row<'r>(r: &'r Row<'_>) -> rusqlite::Result<CaptureRow<'r>> {
    Ok(CaptureRow {
        id: r.get(0)?,
        request_mti: bytes(r.get_ref(1)?).unwrap_or_default(),
        processing_code: bytes(r.get_ref(2)?),
        amount_minor: r.get(3)?,
        stan: bytes(r.get_ref(4)?),
        rrn: bytes(r.get_ref(5)?),
        terminal_id: bytes(r.get_ref(6)?),
        original_data: bytes(r.get_ref(7)?),
        replacement_amount: r.get(8)?,
        outcome: bytes(r.get_ref(9)?),
        response_code: bytes(r.get_ref(10)?),
    })
}

/// A terminal's rows, as given or trimmed (`?1`, `?2`).
fn of_terminal(conn: &Connection) -> Result<String, JournalError> {
    let watermark = lookup::watermark(conn).map_err(JournalError::sql("reading a terminal"))?;
    Ok(lookup::matching(
        lookup::BY_TERMINAL,
        "IN (?1, ?2)",
        watermark,
    ))
}

pub(super) fn for_each_capture_row(
    conn: &Connection,
    rows: CaptureRows<'_>,
    each: &mut dyn FnMut(&CaptureRow<'_>) -> ControlFlow<()>,
) -> Result<u64, JournalError> {
    let fail = JournalError::sql("reading captured requests");
    let mtis = capture_mtis_sql();
    let (sql, args): (String, Vec<rusqlite::types::Value>) = match rows {
        CaptureRows::ReceivedBefore { before_ms } => (
            format!(
                "SELECT {CAPTURE_COLUMNS} FROM transactions
                 WHERE received_at_ms < ?1 AND request_mti IN {mtis} ORDER BY id"
            ),
            vec![before_ms.into()],
        ),
        CaptureRows::OfTerminal {
            terminal,
            after_id,
            through_id,
        } => (
            format!(
                "SELECT {CAPTURE_COLUMNS} FROM transactions
                 WHERE {} AND id > ?3 AND id <= ?4 AND request_mti IN {mtis} ORDER BY id",
                of_terminal(conn)?
            ),
            vec![
                terminal.to_string().into(),
                terminal.trim_end().to_string().into(),
                after_id.into(),
                through_id.into(),
            ],
        ),
    };
    let mut stmt = conn.prepare(&sql).map_err(fail)?;
    let mut cursor = stmt
        .query(rusqlite::params_from_iter(args))
        .map_err(JournalError::sql("reading captured requests"))?;
    let mut count = 0;
    while let Some(r) = cursor
        .next()
        .map_err(JournalError::sql("reading captured requests"))?
    {
        let row = capture_row(r).map_err(JournalError::sql("reading a captured request"))?;
        count += 1;
        if each(&row).is_break() {
            break;
        }
    }
    Ok(count)
}

pub(super) fn last_of_terminal(
    conn: &Connection,
    terminal: &str,
    after_id: i64,
) -> Result<i64, JournalError> {
    let sql = format!(
        "SELECT COALESCE(MAX(id), ?3) FROM transactions
         WHERE {} AND id > ?3 AND request_mti NOT LIKE '05%'",
        of_terminal(conn)?
    );
    conn.query_row(
        &sql,
        params![terminal, terminal.trim_end(), after_id],
        |r| r.get(0),
    )
    .map_err(JournalError::sql("reading a terminal's last request"))
}

pub(super) fn presentment_rows(
    conn: &Connection,
    ids: &[i64],
    keys: &Keyring,
) -> Result<Vec<PresentmentRow>, JournalError> {
    let fail = JournalError::sql("reading presentments");
    let mut stmt = conn
        .prepare_cached(
            "SELECT processing_code, received_at_ms, pos_entry_mode, approval_code, terminal_id,
                    currency, pan_key_id, pan_sealed, pan_masked
             FROM transactions WHERE id = ?1",
        )
        .map_err(fail)?;
    let mut out = Vec::with_capacity(ids.len());
    for &txn_id in ids {
        let row = stmt
            .query_row([txn_id], |r| {
                let sealed = match (bytes(r.get_ref(6)?), r.get_ref(7)?) {
                    (Some(key_id), ValueRef::Blob(blob)) => Some((key_id.to_vec(), blob.to_vec())),
                    _ => None,
                };
                let row = PresentmentRow {
                    txn_id,
                    processing_code: string(r.get_ref(0)?),
                    received_at_ms: r.get(1)?,
                    pos_entry_mode: string(r.get_ref(2)?),
                    approval_code: string(r.get_ref(3)?),
                    terminal_id: string(r.get_ref(4)?),
                    currency: string(r.get_ref(5)?),
                    pan_masked: string(r.get_ref(8)?),
                    pan: None,
                };
                Ok((row, sealed))
            })
            .optional()
            .map_err(JournalError::sql("reading presentments"))?;
        let Some((mut row, sealed)) = row else {
            return Err(JournalError::NoTransaction(txn_id));
        };
        if let Some((key_id, blob)) = sealed {
            let key_id = String::from_utf8_lossy(&key_id);
            let pan = keys
                .open(SEAL_PAN, &key_id, &blob)
                .map_err(|source| JournalError::SealedPan { txn_id, source })?;
            row.pan = Some(pan);
        }
        out.push(row);
    }
    Ok(out)
}
