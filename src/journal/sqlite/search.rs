//! Searches and one transaction's life, in SQL: the look-up tables below
//! their watermark, id ranges above it, time ranges bisected over ids.

use rusqlite::types::{Type, Value as SqlValue, ValueRef};
use rusqlite::{Connection, params_from_iter};

use super::lookup::{self, LookupIndex};
use crate::journal::outcome::TxnOutcome;
use crate::journal::query::{Filter, LifeEvent, QueryError, TxnView, utc_text};
use crate::journal::store::JournalError;

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
        outcome: outcome_at(r, 16)?,
        state: r.get(17)?,
    })
}

/// A stored outcome, typed: text this build does not know fails the
/// read (a conversion error naming it) rather than be shown as something
/// else.
fn outcome_at(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Option<TxnOutcome>> {
    match r.get_ref(i)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => TxnOutcome::from_stored(t)
            .map(Some)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e))),
        other => Err(rusqlite::Error::InvalidColumnType(
            i,
            "outcome".into(),
            other.data_type(),
        )),
    }
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
pub(super) fn for_each(
    conn: &Connection,
    f: &Filter,
    each: &mut dyn FnMut(TxnView) -> std::io::Result<()>,
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

/// One transaction and its life: received, forwarded, answered, events,
/// store-and-forward entries, in time order.
pub(super) fn life(
    conn: &Connection,
    id: i64,
) -> Result<Option<(TxnView, Vec<LifeEvent>)>, JournalError> {
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
    let mut steps = Steps::default();
    own_steps(conn, &txn, &mut steps)?;
    event_steps(conn, id, &mut steps)?;
    queue_steps(conn, id, &mut steps)?;
    let mut steps = steps.0;
    steps.sort_by_key(|(at, rank, _)| (*at, *rank));
    Ok(Some((txn, steps.into_iter().map(|(_, _, e)| e).collect())))
}

/// (time, rank, event): the rank orders steps within one millisecond the
/// way they happen.
#[derive(Default)]
struct Steps(Vec<(i64, u8, LifeEvent)>);

impl Steps {
    fn add(&mut self, at: Option<i64>, rank: u8, what: String, detail: String) {
        if let Some(at) = at {
            let event = LifeEvent {
                at: utc_text(at),
                what,
                detail,
            };
            self.0.push((at, rank, event));
        }
    }
}

/// Received, forwarded, answered, sent: the transaction's own times.
fn own_steps(conn: &Connection, txn: &TxnView, steps: &mut Steps) -> Result<(), JournalError> {
    let times: (i64, Option<i64>, Option<i64>, Option<i64>) = conn
        .query_row(
            "SELECT received_at_ms, forwarded_at_ms, response_at_ms, sent_at_ms FROM transactions WHERE id = ?1",
            [txn.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map_err(JournalError::sql("reading a transaction"))?;
    steps.add(
        Some(times.0),
        0,
        "request received".into(),
        format!("{} from {}", txn.mti, txn.acquirer),
    );
    steps.add(
        times.1,
        1,
        "forwarded".into(),
        format!(
            "to {} as STAN {}",
            txn.issuer.as_deref().unwrap_or("-"),
            txn.issuer_stan.as_deref().unwrap_or("-")
        ),
    );
    steps.add(times.2, 2, "response received".into(), String::new());
    steps.add(
        times.3,
        5,
        "response sent".into(),
        format!(
            "DE39 {} ({})",
            txn.response_code.as_deref().unwrap_or("-"),
            txn.outcome.map_or("-", TxnOutcome::as_str)
        ),
    );
    Ok(())
}

fn event_steps(conn: &Connection, id: i64, steps: &mut Steps) -> Result<(), JournalError> {
    let mut stmt = conn
        .prepare("SELECT at_ms, kind, COALESCE(detail, '') FROM events WHERE txn_id = ?1")
        .map_err(JournalError::sql("reading events"))?;
    let events: Vec<(i64, String, String)> = stmt
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .map_err(JournalError::sql("reading events"))?;
    for (at, kind, detail) in events {
        steps.add(Some(at), 3, kind.replace('_', " "), detail);
    }
    Ok(())
}

/// Each store-and-forward entry: queued, then acknowledged or given up.
fn queue_steps(conn: &Connection, id: i64, steps: &mut Steps) -> Result<(), JournalError> {
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
        steps.add(
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
        steps.add(
            done_at,
            6,
            format!("{what} {ended}"),
            format!("after {attempts} attempts"),
        );
    }
    Ok(())
}
