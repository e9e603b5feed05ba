//! Journal log entries written into SQLite as they are: their card data
//! is sealed already (by the log's writer), so it is stored, not sealed
//! again. The rows are those [`super::append`] writes for the same
//! records (the same statements), and the log's watermark, the last
//! sequence number applied, is written in the same commit: a crash
//! leaves the rows and the watermark in step.

use rusqlite::{OptionalExtension, params};

use super::SqliteJournal;
use super::append::{Group, SafRow, SealedParts, request_row};
use super::coalesce::{self, Folded, Step};
use crate::journal::crypto::CryptoError;
use crate::journal::log::record::{Entry, LogAccepted, LogRecord};
use crate::journal::store::JournalError;

/// The name of the watermark's row in `journal_meta`.
pub const LOG_WATERMARK: &str = "log_applied_seq";

impl SqliteJournal {
    /// The last log sequence number applied (0: none).
    pub fn log_watermark(&self) -> Result<u64, JournalError> {
        let v: Option<i64> = self
            .conn
            .query_row(
                "SELECT value FROM journal_meta WHERE name = ?1",
                params![LOG_WATERMARK],
                |r| r.get(0),
            )
            .optional()
            .map_err(JournalError::sql("reading the log watermark"))?;
        Ok(v.unwrap_or(0).max(0) as u64)
    }

    /// Writes `entries` (in sequence order, none at or below the
    /// watermark: the caller, [`crate::journal::log::feed`], checks) and
    /// moves the watermark to the last one, in one commit. An entry seals
    /// its PAN and message under one key (the caller checks that too),
    /// one the keyring holds (checked here).
    pub fn apply_log_entries(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        let Some(last) = entries.last() else {
            return Ok(());
        };
        let last = i64::try_from(last.seq).map_err(|_| JournalError::Sqlite {
            what: "a log sequence number over SQLite's integers",
            source: rusqlite::Error::IntegralValueOutOfRange(0, i64::MAX),
        })?;
        self.in_group(entries.len(), |group| {
            for step in coalesce::plan(entries) {
                match step {
                    Step::Write(record) => apply(group, record)?,
                    Step::Request(LogRecord::Accepted(a), folded) => accepted(group, a, &folded)?,
                    Step::Request(record, _) => apply(group, record)?,
                    Step::Skip => {}
                }
            }
            group
                .conn
                .prepare_cached(
                    "INSERT INTO journal_meta (name, value) VALUES (?1, ?2)
                     ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                )
                .and_then(|mut s| s.execute(params![LOG_WATERMARK, last]))
                .map(|_| ())
                .map_err(JournalError::sql("moving the log watermark"))
        })
    }
}

fn apply(group: &mut Group<'_>, record: &LogRecord) -> Result<(), JournalError> {
    match record {
        LogRecord::Accepted(a) => accepted(group, a, &Folded::default()),
        LogRecord::Answered(a) => group.answered_row(
            a.id,
            &a.response_code,
            &a.approval_code,
            &a.outcome,
            a.response_at_ms,
            a.sent_at_ms,
        ),
        LogRecord::Delivery {
            id,
            at_ms,
            delivered,
        } => group.delivery(*id, *at_ms, *delivered),
        LogRecord::Event {
            txn_id,
            at_ms,
            kind,
            detail,
        } => group.event(*txn_id, *at_ms, kind, detail),
        LogRecord::SafQueued(q) => {
            known(group, &q.message.key_id)?;
            group.insert_sealed_saf(&SafRow {
                id: q.id,
                txn_id: q.txn_id,
                kind: &q.kind,
                issuer: &q.issuer,
                key_id: &q.message.key_id,
                sealed: &q.message.blob,
                queued_at_ms: q.queued_at_ms,
            })
        }
        LogRecord::SafAttempted { id, attempts } => group.saf_attempted(*id, *attempts),
        LogRecord::SafDone {
            id,
            delivered,
            attempts,
            at_ms,
        } => group.saf_done(*id, *delivered, *attempts, *at_ms),
    }
}

/// Refuses data sealed under a key the keyring does not hold: stored,
/// it could never be opened.
fn known(group: &Group<'_>, key_id: &str) -> Result<(), JournalError> {
    match group.keys.check_value(key_id) {
        Some(_) => Ok(()),
        None => Err(CryptoError::UnknownKey(key_id.to_string()).into()),
    }
}

fn accepted(
    group: &mut Group<'_>,
    a: &LogAccepted,
    folded: &Folded<'_>,
) -> Result<(), JournalError> {
    let pan = a.pan.as_ref();
    let route = a.route.as_ref();
    let key_id = pan
        .map(|p| p.sealed.key_id.as_str())
        .or(route.map(|r| r.message.key_id.as_str()));
    if let Some(k) = key_id {
        known(group, k)?;
    }
    let parts = SealedParts {
        key_id,
        pan: pan.map(|p| (&p.sealed.blob[..], &p.hash, p.masked.as_str())),
        route: route.map(|r| {
            (
                r.issuer.as_str(),
                r.issuer_stan.as_str(),
                &r.message.blob[..],
            )
        }),
    };
    group.insert_sealed_accepted(&request_row!(a), &parts, folded)
}
