//! Reading the journal: search by RRN, STAN, terminal, PAN (through its
//! keyed hash) or masked PAN, and time range; one transaction's life; CSV
//! and JSON export; online backup. Everything shown is masked: the PAN is
//! only ever read as its stored masked form.

use std::path::Path;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};
use serde::Serialize;

use super::lookup::{self, LookupIndex};
use super::store::JournalError;
use crate::message::time::{civil_from_days, days_from_civil};

/// Rows one search returns at most (a search is for people): a larger
/// `--limit` is refused; `journal export` streams any number of rows.
pub const SEARCH_ROWS_MAX: usize = 100_000;

/// A search or export that cannot be done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The journal could not be read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A search asked for more rows than a search returns.
    #[error(
        "a search returns at most {max} rows (asked for {limit}): narrow it, or use `journal export`, which has no limit"
    )]
    LimitTooLarge { limit: usize, max: usize },
    /// A file (a backup) could not be created.
    #[error("{path}: {source}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// An exported row could not be written.
    #[error("writing a row: {0}")]
    Write(#[source] std::io::Error),
}

/// What to look for; every condition given must hold.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub rrn: Option<String>,
    pub stan: Option<String>,
    pub terminal: Option<String>,
    /// The keyed hash of a whole PAN (computed with the journal's key).
    pub pan_hash: Option<[u8; 32]>,
    /// First 6 / last 4 as shown, e.g. `476173******0010`.
    pub masked_pan: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Rows at most; 0: no limit of its own (a search still stops at
    /// [`SEARCH_ROWS_MAX`]).
    pub limit: usize,
}

/// One transaction as shown (masked).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TxnView {
    pub id: i64,
    pub received_at: String,
    pub acquirer: String,
    pub mti: String,
    pub pan: Option<String>,
    pub processing_code: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub stan: Option<String>,
    pub rrn: Option<String>,
    pub terminal: Option<String>,
    pub merchant: Option<String>,
    pub issuer: Option<String>,
    pub issuer_stan: Option<String>,
    pub response_code: Option<String>,
    pub approval_code: Option<String>,
    pub outcome: Option<String>,
    pub state: String,
}

/// One step in a transaction's life.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LifeEvent {
    pub at: String,
    pub what: String,
    pub detail: String,
}

const COLUMNS: &str = "id, received_at_ms, acquirer, request_mti, pan_masked, processing_code,
    amount_minor, currency, stan, rrn, terminal_id, merchant_id, issuer, issuer_stan,
    response_code, approval_code, outcome, state";

fn view(r: &rusqlite::Row) -> rusqlite::Result<TxnView> {
    Ok(TxnView {
        id: r.get(0)?,
        received_at: utc_text(r.get(1)?),
        acquirer: r.get(2)?,
        mti: r.get(3)?,
        pan: r.get(4)?,
        processing_code: r.get(5)?,
        amount: r.get(6)?,
        currency: r.get(7)?,
        stan: r.get(8)?,
        rrn: r.get(9)?,
        terminal: r.get(10)?,
        merchant: r.get(11)?,
        issuer: r.get(12)?,
        issuer_stan: r.get(13)?,
        response_code: r.get(14)?,
        approval_code: r.get(15)?,
        outcome: r.get(16)?,
        state: r.get(17)?,
    })
}

/// How far `received_at_ms` may run against the id order (the id is
/// taken just before the time is read; a clock set back a little): a
/// time range is widened by this much into an id range, then filtered
/// exactly.
pub const CLOCK_SLACK_MS: i64 = 60_000;

/// The first id received at `at_ms` or later (one past the last id when
/// none is), by bisection over the ids: the switch numbers requests in
/// arrival order, so a time range needs no index of its own.
fn first_id_at(conn: &Connection, at_ms: i64) -> Result<i64, JournalError> {
    let (min, max): (Option<i64>, Option<i64>) = conn
        .query_row("SELECT MIN(id), MAX(id) FROM transactions", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(JournalError::sql("bounding a time range"))?;
    let (Some(mut lo), Some(max)) = (min, max) else {
        return Ok(0);
    };
    let mut stmt = conn
        .prepare("SELECT received_at_ms FROM transactions WHERE id >= ?1 ORDER BY id LIMIT 1")
        .map_err(JournalError::sql("bounding a time range"))?;
    // Invariant: every id below `lo` was received before `at_ms`; the
    // answer is in lo..=hi (hi = one past the last id).
    let mut hi = max + 1;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let at: i64 = stmt
            .query_row([mid], |r| r.get(0))
            .map_err(JournalError::sql("bounding a time range"))?;
        if at >= at_ms {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(lo)
}

/// The `SELECT` of the transactions matching `f`, oldest first, with its
/// arguments (no `LIMIT`).
fn select(conn: &Connection, f: &Filter) -> Result<(String, Vec<SqlValue>), JournalError> {
    let watermark = lookup::watermark(conn).map_err(JournalError::sql("searching"))?;
    let mut sql = format!("SELECT {COLUMNS} FROM transactions WHERE 1 = 1");
    let mut args: Vec<SqlValue> = Vec::new();
    let mut cond = |clause: &str, v: SqlValue| {
        sql.push_str(" AND ");
        sql.push_str(&clause.replace('?', &format!("?{}", args.len() + 1)));
        args.push(v);
    };
    let indexed = |index: LookupIndex| lookup::matching(index, "= ?", watermark);
    if let Some(v) = &f.rrn {
        cond(&indexed(lookup::BY_RRN), SqlValue::Text(v.clone()));
    }
    if let Some(v) = &f.stan {
        cond("stan = ?", SqlValue::Text(v.clone()));
    }
    if let Some(v) = &f.terminal {
        cond(&indexed(lookup::BY_TERMINAL), SqlValue::Text(v.clone()));
    }
    if let Some(h) = &f.pan_hash {
        cond(&indexed(lookup::BY_PAN), SqlValue::Blob(h.to_vec()));
    }
    if let Some(v) = &f.masked_pan {
        cond("pan_masked = ?", SqlValue::Text(v.clone()));
    }
    if let Some(v) = f.from_ms {
        cond("received_at_ms >= ?", SqlValue::Integer(v));
        let first = first_id_at(conn, v.saturating_sub(CLOCK_SLACK_MS))?;
        cond("id >= ?", SqlValue::Integer(first));
    }
    if let Some(v) = f.to_ms {
        cond("received_at_ms < ?", SqlValue::Integer(v));
        let end = first_id_at(conn, v.saturating_add(CLOCK_SLACK_MS))?;
        cond("id < ?", SqlValue::Integer(end));
    }
    sql.push_str(" ORDER BY id");
    Ok((sql, args))
}

/// Hands every matching transaction, oldest first, to `each` as it is read
/// from the database cursor (memory stays flat whatever the count), at
/// most `f.limit` of them when it is not 0; returns how many.
pub fn for_each(
    conn: &Connection,
    f: &Filter,
    mut each: impl FnMut(TxnView) -> std::io::Result<()>,
) -> Result<u64, QueryError> {
    let (mut sql, args) = select(conn, f)?;
    if f.limit > 0 {
        sql.push_str(&format!(" LIMIT {}", f.limit));
    }
    let fail = JournalError::sql("searching");
    let mut stmt = conn.prepare(&sql).map_err(fail)?;
    let mut rows = stmt
        .query(params_from_iter(args))
        .map_err(JournalError::sql("searching"))?;
    let mut count = 0;
    while let Some(row) = rows.next().map_err(JournalError::sql("searching"))? {
        let txn = view(row).map_err(JournalError::sql("searching"))?;
        each(txn).map_err(QueryError::Write)?;
        count += 1;
    }
    Ok(count)
}

/// What a search found: the rows, and whether more matched than the
/// limit let through.
#[derive(Debug, Default)]
pub struct Found {
    pub rows: Vec<TxnView>,
    pub more: bool,
}

/// Searches transactions, oldest first: `f.limit` rows at most (0: up to
/// [`SEARCH_ROWS_MAX`]); a limit above [`SEARCH_ROWS_MAX`] is refused.
pub fn search_found(conn: &Connection, f: &Filter) -> Result<Found, QueryError> {
    if f.limit > SEARCH_ROWS_MAX {
        return Err(QueryError::LimitTooLarge {
            limit: f.limit,
            max: SEARCH_ROWS_MAX,
        });
    }
    let limit = if f.limit == 0 {
        SEARCH_ROWS_MAX
    } else {
        f.limit
    };
    // One row past the limit says whether the result was cut.
    let probe = Filter {
        limit: limit + 1,
        ..f.clone()
    };
    let mut rows = Vec::new();
    for_each(conn, &probe, |t| {
        rows.push(t);
        Ok(())
    })?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    Ok(Found { rows, more })
}

/// The rows of [`search_found`].
pub fn search(conn: &Connection, f: &Filter) -> Result<Vec<TxnView>, QueryError> {
    search_found(conn, f).map(|found| found.rows)
}

/// One transaction and its life: received, forwarded, answered, events,
/// store-and-forward entries, in time order.
pub fn life(conn: &Connection, id: i64) -> Result<Option<(TxnView, Vec<LifeEvent>)>, JournalError> {
    let txn = conn.query_row(
        &format!("SELECT {COLUMNS} FROM transactions WHERE id = ?1"),
        [id],
        view,
    );
    let txn = match txn {
        Ok(t) => t,
        Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(None),
        Err(e) => return Err(JournalError::sql("reading a transaction")(e)),
    };
    // (time, rank, event): the rank orders steps within one millisecond
    // the way they happen.
    let mut steps: Vec<(i64, u8, LifeEvent)> = Vec::new();
    let mut step = |at: Option<i64>, rank: u8, what: String, detail: String| {
        if let Some(at) = at {
            let event = LifeEvent {
                at: utc_text(at),
                what,
                detail,
            };
            steps.push((at, rank, event));
        }
    };
    let times: (i64, Option<i64>, Option<i64>, Option<i64>) = conn
        .query_row(
            "SELECT received_at_ms, forwarded_at_ms, response_at_ms, sent_at_ms FROM transactions WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map_err(JournalError::sql("reading a transaction"))?;
    step(
        Some(times.0),
        0,
        "request received".into(),
        format!("{} from {}", txn.mti, txn.acquirer),
    );
    step(
        times.1,
        1,
        "forwarded".into(),
        format!(
            "to {} as STAN {}",
            txn.issuer.as_deref().unwrap_or("-"),
            txn.issuer_stan.as_deref().unwrap_or("-")
        ),
    );
    step(times.2, 2, "response received".into(), String::new());
    step(
        times.3,
        5,
        "response sent".into(),
        format!(
            "DE39 {} ({})",
            txn.response_code.as_deref().unwrap_or("-"),
            txn.outcome.as_deref().unwrap_or("-")
        ),
    );
    let mut stmt = conn
        .prepare("SELECT at_ms, kind, COALESCE(detail, '') FROM events WHERE txn_id = ?1")
        .map_err(JournalError::sql("reading events"))?;
    let events: Vec<(i64, String, String)> = stmt
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .map_err(JournalError::sql("reading events"))?;
    for (at, kind, detail) in events {
        step(Some(at), 3, kind.replace('_', " "), detail);
    }
    let mut stmt = conn
        .prepare("SELECT id, kind, issuer, queued_at_ms, attempts, state, done_at_ms FROM saf WHERE txn_id = ?1")
        .map_err(JournalError::sql("reading the queue"))?;
    /// id, kind, issuer, queued at, attempts, state, done at.
    type SafRow = (i64, String, String, i64, i64, String, Option<i64>);
    let queued: Vec<SafRow> = stmt
        .query_map([id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(JournalError::sql("reading the queue"))?;
    for (saf_id, kind, issuer, queued_at, attempts, state, done_at) in queued {
        let what = kind.replace('_', " ");
        step(
            Some(queued_at),
            4,
            format!("{what} queued"),
            format!("entry {saf_id} for {issuer}"),
        );
        let ended = match state.as_str() {
            "delivered" => "acknowledged",
            "given_up" => "given up",
            _ => continue,
        };
        step(
            done_at,
            6,
            format!("{what} {ended}"),
            format!("after {attempts} attempts"),
        );
    }
    steps.sort_by_key(|(at, rank, _)| (*at, *rank));
    Ok(Some((txn, steps.into_iter().map(|(_, _, e)| e).collect())))
}

/// The CSV header of [`csv_row`].
pub const CSV_HEADER: &str = "id,received_at,acquirer,mti,pan,processing_code,amount,currency,stan,rrn,terminal,merchant,issuer,issuer_stan,response_code,approval_code,outcome,state";

/// One transaction as a CSV line (RFC 4180 quoting).
pub fn csv_row(t: &TxnView) -> String {
    fn q(v: &str) -> String {
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_string()
        }
    }
    let o = |v: &Option<String>| q(v.as_deref().unwrap_or(""));
    let n = |v: Option<i64>| v.map_or(String::new(), |v| v.to_string());
    [
        t.id.to_string(),
        q(&t.received_at),
        q(&t.acquirer),
        q(&t.mti),
        o(&t.pan),
        o(&t.processing_code),
        n(t.amount),
        o(&t.currency),
        o(&t.stan),
        o(&t.rrn),
        o(&t.terminal),
        o(&t.merchant),
        o(&t.issuer),
        o(&t.issuer_stan),
        o(&t.response_code),
        o(&t.approval_code),
        o(&t.outcome),
        q(&t.state),
    ]
    .join(",")
}

/// A consistent copy of a live journal (SQLite online backup: the writer
/// goes on while pages are copied).
/// The copy is made owner-only (0600) like the journal it copies: it is
/// created empty with that mode before SQLite opens it.
pub fn backup(conn: &Connection, dest: &Path) -> Result<(), QueryError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(dest).map_err(|source| QueryError::Create {
        path: dest.display().to_string(),
        source,
    })?;
    let mut out = Connection::open(dest).map_err(|source| JournalError::Open {
        path: dest.display().to_string(),
        source,
    })?;
    let b = rusqlite::backup::Backup::new(conn, &mut out)
        .map_err(JournalError::sql("starting a backup"))?;
    b.run_to_completion(256, std::time::Duration::from_millis(5), None)
        .map_err(JournalError::sql("copying pages"))?;
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of a Unix time in milliseconds.
pub fn utc_text(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS` (UTC)
/// or a plain number of Unix milliseconds.
pub fn parse_time_ms(text: &str) -> Result<i64, String> {
    let text = text.trim().trim_end_matches('Z');
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| format!("'{text}' is too large"));
    }
    let bad = || format!("'{text}' is not YYYY-MM-DD[THH:MM[:SS]] or Unix milliseconds");
    let (date, time) = text.split_once(['T', ' ']).unwrap_or((text, "00:00:00"));
    let num = |s: Option<&str>, max: u32| -> Result<u32, String> {
        s.and_then(|s| s.parse::<u32>().ok())
            .filter(|v| *v <= max)
            .ok_or_else(bad)
    };
    let mut d = date.split('-');
    let y = num(d.next(), 9999)?;
    let m = num(d.next(), 12)?;
    let day = num(d.next(), 31)?;
    if d.next().is_some() || m == 0 || day == 0 {
        return Err(bad());
    }
    let mut t = time.split(':');
    let hh = num(t.next(), 23)?;
    let mm = num(t.next(), 59)?;
    let ss = match t.next() {
        Some(s) => num(Some(s), 59)?,
        None => 0,
    };
    let days = days_from_civil(i64::from(y), m, day);
    Ok(((days * 24 + i64::from(hh)) * 60 + i64::from(mm)) * 60_000 + i64::from(ss) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_bad_times_are_refused() {
        let ms = parse_time_ms("2026-11-23T05:34:26").unwrap();
        assert_eq!(utc_text(ms), "2026-11-23T05:34:26.000Z");
        assert_eq!(parse_time_ms("1970-01-01").unwrap(), 0);
        assert_eq!(parse_time_ms("2000-03-01").unwrap(), 951_868_800_000);
        assert_eq!(parse_time_ms("1234").unwrap(), 1234);
        for bad in ["2026-13-01", "2026-11-23T25:00", "yesterday", "2026-11", ""] {
            assert!(parse_time_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let t = TxnView {
            id: 1,
            received_at: "t".into(),
            acquirer: "a,b".into(),
            mti: "0100".into(),
            pan: Some("476173******0010".into()),
            processing_code: None,
            amount: Some(5),
            currency: None,
            stan: None,
            rrn: None,
            terminal: Some("T\"1".into()),
            merchant: None,
            issuer: None,
            issuer_stan: None,
            response_code: None,
            approval_code: None,
            outcome: None,
            state: "answered".into(),
        };
        let row = csv_row(&t);
        assert!(
            row.starts_with("1,t,\"a,b\",0100,476173******0010,,5,"),
            "{row}"
        );
        assert!(row.contains("\"T\"\"1\""), "{row}");
        assert_eq!(row.split(',').count(), CSV_HEADER.split(',').count() + 1);
    }
}
