//! Reading the journal: search by RRN, STAN, terminal, PAN (through its
//! keyed hash) or masked PAN, and time range; one transaction's life; CSV
//! and JSON export; online backup. Everything shown is masked: the PAN is
//! only ever read as its stored masked form.

use std::ops::ControlFlow;
use std::path::Path;

use serde::Serialize;

use super::capture_rows::{CaptureRow, CaptureRows, PresentmentRow};
use super::crypto::Keyring;
use super::outcome::TxnOutcome;
use super::requeue::Requeue;
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
    pub outcome: Option<TxnOutcome>,
    pub state: String,
}

/// One step in a transaction's life.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LifeEvent {
    pub at: String,
    pub what: String,
    pub detail: String,
}

/// Everything the command line and clearing read from the journal, and
/// an operator's maintenance (backup, requeue), whatever the store: opened
/// by [`super::open::open_queries`]. Results are typed and masked; no
/// store's own types cross it.
pub trait JournalQueries: Send {
    /// Hands every transaction matching `f`, oldest first, to `each` as it
    /// is read (memory stays flat whatever the count), at most `f.limit`
    /// of them when it is not 0; returns how many.
    fn for_each(
        &self,
        f: &Filter,
        each: &mut dyn FnMut(TxnView) -> std::io::Result<()>,
    ) -> Result<u64, QueryError>;
    /// One transaction and its life (received, forwarded, answered,
    /// events, store-and-forward entries) in time order; `None` if no such id.
    fn life(&self, id: i64) -> Result<Option<(TxnView, Vec<LifeEvent>)>, JournalError>;
    /// Checks that `keys` are the keys the journal was sealed with: a
    /// search by PAN with the wrong key would silently find nothing.
    fn check_keys(&self, keys: &Keyring) -> Result<(), JournalError>;
    /// A consistent copy of the live journal at `dest`, which must not
    /// exist; created owner-only (0600) like the journal.
    fn backup(&self, dest: &Path) -> Result<(), QueryError>;
    /// Queues the chosen given-up store-and-forward entries again, in one
    /// transaction, and returns their ids (see [`Requeue`]). Needs a
    /// journal opened for writing.
    fn requeue(&mut self, which: Requeue, at_ms: i64) -> Result<Vec<u64>, JournalError>;
    /// Hands the capture requests `rows` selects to `each`, lowest id
    /// first, until it breaks; returns how many it handed over.
    fn for_each_capture_row(
        &self,
        rows: CaptureRows<'_>,
        each: &mut dyn FnMut(&CaptureRow<'_>) -> ControlFlow<()>,
    ) -> Result<u64, JournalError>;
    /// The highest id of `terminal`'s requests (as given or trimmed)
    /// after `after_id`, batch closes (05xx) aside; `after_id` if none.
    fn last_of_terminal(&self, terminal: &str, after_id: i64) -> Result<i64, JournalError>;
    /// The rows of `ids` for their presentments, in the order of `ids`,
    /// PANs opened with `keys`; an id without a row is an error.
    fn presentment_rows(
        &self,
        ids: &[i64],
        keys: &Keyring,
    ) -> Result<Vec<PresentmentRow>, JournalError>;
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
pub fn search_found(journal: &dyn JournalQueries, f: &Filter) -> Result<Found, QueryError> {
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
    journal.for_each(&probe, &mut |t| {
        rows.push(t);
        Ok(())
    })?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    Ok(Found { rows, more })
}

/// The rows of [`search_found`].
pub fn search(journal: &dyn JournalQueries, f: &Filter) -> Result<Vec<TxnView>, QueryError> {
    search_found(journal, f).map(|found| found.rows)
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
        q(t.outcome.map_or("", TxnOutcome::as_str)),
        q(&t.state),
    ]
    .join(",")
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
            outcome: Some(TxnOutcome::TimedOut),
            state: "answered".into(),
        };
        let row = csv_row(&t);
        assert!(
            row.starts_with("1,t,\"a,b\",0100,476173******0010,,5,"),
            "{row}"
        );
        assert!(row.contains("\"T\"\"1\""), "{row}");
        assert!(row.ends_with(",timed_out,answered"), "{row}");
        assert_eq!(row.split(',').count(), CSV_HEADER.split(',').count() + 1);
    }
}
