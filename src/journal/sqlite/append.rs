//! Appending a group of records: one SQLite transaction, the statements
//! prepared once per group, PANs and queued messages sealed here.

use super::coalesce::Folded;
use rusqlite::{Connection, params};

use super::lookup;
use super::{SEAL_MESSAGE, SEAL_PAN, SqliteJournal, WRITER_CHECKPOINT_RECORDS};
use crate::journal::crypto::{Keyring, NoncePool};
use crate::journal::record::{Accepted, Answered, Record, SafQueued};
use crate::journal::store::JournalError;
use crate::message::sensitive::mask_pan;
/// A delivery record: the time the reply was handed over, or the outcome
/// [`crate::journal::TxnOutcome::Undelivered`] (its word, checked by a test).
const RECORD_DELIVERY: &str = "UPDATE transactions SET
       sent_at_ms = CASE WHEN ?3 THEN ?2 ELSE sent_at_ms END,
       outcome = CASE WHEN ?3 THEN outcome ELSE 'undelivered' END
     WHERE id = ?1";

/// The statements of one group, prepared (taken from the cache) once per
/// group rather than once per record.
pub(super) struct Group<'c> {
    pub(super) conn: &'c Connection,
    pub(super) keys: &'c Keyring,
    nonces: &'c mut NoncePool,
    insert: Option<rusqlite::CachedStatement<'c>>,
    answer: Option<rusqlite::CachedStatement<'c>>,
    /// Ids up to here are already in the look-up indexes: a row at or
    /// below it (it arrived after its batch) is indexed on its own.
    indexed_through: i64,
    /// The highest transaction id inserted so far.
    max_id: i64,
}

/// An accepted request's card data, already sealed (by this writer, or
/// by the journal log, whose entries the feeder applies as they are).
pub(super) struct SealedParts<'a> {
    /// The one key that sealed every sealed column of the row.
    pub key_id: Option<&'a str>,
    /// Sealed PAN, its keyed hash, its masked form.
    pub pan: Option<(&'a [u8], &'a [u8; 32], &'a str)>,
    /// Issuer, issuer STAN, the sealed message as forwarded.
    pub route: Option<(&'a str, &'a str, &'a [u8])>,
}

/// An accepted request's own fields by reference (its card data goes in
/// [`SealedParts`]), from the switch's record or the log's: the row is
/// bound from either without copying its texts.
pub(super) struct RequestRow<'a> {
    pub id: u64,
    pub received_at_ms: i64,
    pub acquirer: &'a str,
    pub request_mti: &'a str,
    pub processing_code: Option<&'a str>,
    pub amount_minor: Option<i64>,
    pub transmission_at: Option<&'a str>,
    pub stan: Option<&'a str>,
    pub local_time: Option<&'a str>,
    pub local_date: Option<&'a str>,
    pub mcc: Option<&'a str>,
    pub pos_entry_mode: Option<&'a str>,
    pub acquirer_inst: Option<&'a str>,
    pub rrn: Option<&'a str>,
    pub terminal_id: Option<&'a str>,
    pub merchant_id: Option<&'a str>,
    pub merchant_name_loc: Option<&'a str>,
    pub currency: Option<&'a str>,
    pub original_data: Option<&'a str>,
    pub replacement_amount: Option<i64>,
}

/// The [`RequestRow`] of an `Accepted` or a `LogAccepted` (the two share
/// their field names).
macro_rules! request_row {
    ($a:expr) => {
        $crate::journal::sqlite::append::RequestRow {
            id: $a.id,
            received_at_ms: $a.received_at_ms,
            acquirer: &$a.acquirer,
            request_mti: &$a.request_mti,
            processing_code: $a.processing_code.as_deref(),
            amount_minor: $a.amount_minor,
            transmission_at: $a.transmission_at.as_deref(),
            stan: $a.stan.as_deref(),
            local_time: $a.local_time.as_deref(),
            local_date: $a.local_date.as_deref(),
            mcc: $a.mcc.as_deref(),
            pos_entry_mode: $a.pos_entry_mode.as_deref(),
            acquirer_inst: $a.acquirer_inst.as_deref(),
            rrn: $a.rrn.as_deref(),
            terminal_id: $a.terminal_id.as_deref(),
            merchant_id: $a.merchant_id.as_deref(),
            merchant_name_loc: $a.merchant_name_loc.as_deref(),
            currency: $a.currency.as_deref(),
            original_data: $a.original_data.as_deref(),
            replacement_amount: $a.replacement_amount,
        }
    };
}
pub(super) use request_row;

/// A store-and-forward entry's row, its message sealed.
pub(super) struct SafRow<'a> {
    pub id: u64,
    pub txn_id: Option<u64>,
    pub kind: &'a str,
    pub issuer: &'a str,
    pub key_id: &'a str,
    pub sealed: &'a [u8],
    pub queued_at_ms: i64,
}

impl<'c> Group<'c> {
    fn insert_accepted(&mut self, a: &Accepted) -> Result<(), JournalError> {
        let keys = self.keys;
        let (pan_sealed, pan_hmac, pan_masked) = match &a.pan {
            Some(pan) => {
                let sealed = keys.seal_with_nonce(SEAL_PAN, pan, self.nonces.draw());
                (sealed.blob, keys.pan_hash(pan), mask_pan(pan))
            }
            None => (Vec::new(), [0; 32], String::new()),
        };
        let route = a.route.as_ref();
        let forwarded = route.map(|r| {
            keys.seal_with_nonce(SEAL_MESSAGE, &r.message, self.nonces.draw())
                .blob
        });
        // One key seals every sealed column of a row: the current one.
        let sealed_any = a.pan.is_some() || forwarded.is_some();
        let parts = SealedParts {
            key_id: sealed_any.then(|| keys.current_key_id()),
            pan: a
                .pan
                .as_ref()
                .map(|_| (&pan_sealed[..], &pan_hmac, pan_masked.as_str())),
            route: route
                .zip(forwarded.as_ref())
                .map(|(r, f)| (r.issuer.as_str(), r.issuer_stan.as_str(), f.as_slice())),
        };
        self.insert_sealed_accepted(&request_row!(a), &parts, &Folded::default())
    }

    /// Inserts `a`'s row with its card data as `sealed` gives it, and
    /// what is `folded` into it.
    pub(super) fn insert_sealed_accepted(
        &mut self,
        a: &RequestRow<'_>,
        sealed: &SealedParts<'_>,
        folded: &Folded<'_>,
    ) -> Result<(), JournalError> {
        let conn = self.conn;
        let stmt = match &mut self.insert {
            Some(s) => s,
            slot => slot.insert(conn.prepare_cached(
                "INSERT INTO transactions (id, received_at_ms, acquirer, request_mti, processing_code,
                  amount_minor, transmission_at, stan, local_time, local_date, mcc, pos_entry_mode,
                  acquirer_inst, rrn, terminal_id, merchant_id, merchant_name_loc, currency,
                  original_data, replacement_amount, pan_key_id, pan_sealed, pan_hmac, pan_masked,
                  issuer, issuer_stan, forwarded_sealed, forwarded_at_ms, state,
                  response_code, approval_code, outcome, response_at_ms, sent_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                  ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34)",
            )
            .map_err(JournalError::sql("preparing insert"))?),
        };
        let route = sealed.route;
        let pan = sealed.pan;
        let forwarded_at = route.map(|_| a.received_at_ms);
        stmt.execute(params![
            a.id as i64,
            a.received_at_ms,
            a.acquirer,
            a.request_mti,
            a.processing_code,
            a.amount_minor,
            a.transmission_at,
            a.stan,
            a.local_time,
            a.local_date,
            a.mcc,
            a.pos_entry_mode,
            a.acquirer_inst,
            a.rrn,
            a.terminal_id,
            a.merchant_id,
            a.merchant_name_loc,
            a.currency,
            a.original_data,
            a.replacement_amount,
            sealed.key_id,
            pan.map(|p| p.0),
            pan.map(|p| &p.1[..]),
            pan.map(|p| p.2),
            route.map(|r| r.0),
            route.map(|r| r.1),
            route.map(|r| r.2),
            forwarded_at,
            match (folded.answered, route.is_some()) {
                (true, _) => "answered",
                (false, true) => "forwarded",
                (false, false) => "received",
            },
            folded.response_code,
            folded.approval_code,
            folded.outcome,
            folded.response_at_ms,
            folded.sent_at_ms,
        ])
        .map_err(JournalError::sql("recording a request"))?;
        let id = a.id as i64;
        self.max_id = self.max_id.max(id);
        if id <= self.indexed_through {
            lookup::add_rows(conn, id - 1, id)
                .map_err(JournalError::sql("indexing a late request"))?;
        }
        Ok(())
    }

    fn update_answered(&mut self, a: &Answered) -> Result<(), JournalError> {
        let outcome = a.outcome.as_str();
        self.answered_row(
            a.id,
            &a.response_code,
            &a.approval_code,
            outcome,
            a.response_at_ms,
            a.sent_at_ms,
        )
    }

    /// An answer, the outcome as its stored word.
    pub(super) fn answered_row(
        &mut self,
        id: u64,
        response_code: &Option<String>,
        approval_code: &Option<String>,
        outcome: &str,
        response_at_ms: Option<i64>,
        sent_at_ms: Option<i64>,
    ) -> Result<(), JournalError> {
        let conn = self.conn;
        let stmt = match &mut self.answer {
            Some(s) => s,
            slot => slot.insert(
                conn.prepare_cached(
                    "UPDATE transactions SET response_code = ?2, approval_code = ?3, outcome = ?4,
                       response_at_ms = ?5, sent_at_ms = ?6,
                       state = CASE WHEN state IN ('received', 'forwarded') THEN 'answered' ELSE state END
                     WHERE id = ?1",
                )
                .map_err(JournalError::sql("recording an answer"))?,
            ),
        };
        stmt.execute(params![
            id as i64,
            response_code,
            approval_code,
            outcome,
            response_at_ms,
            sent_at_ms
        ])
        .map_err(JournalError::sql("recording an answer"))?;
        Ok(())
    }

    fn insert_saf(&mut self, q: &SafQueued) -> Result<(), JournalError> {
        let sealed = self
            .keys
            .seal_with_nonce(SEAL_MESSAGE, &q.message, self.nonces.draw());
        let row = SafRow {
            id: q.id,
            txn_id: q.txn_id,
            kind: q.kind,
            issuer: &q.issuer,
            key_id: sealed.key_id,
            sealed: &sealed.blob,
            queued_at_ms: q.queued_at_ms,
        };
        self.insert_sealed_saf(&row)
    }

    /// Queues a store-and-forward entry whose message is sealed already.
    pub(super) fn insert_sealed_saf(&mut self, q: &SafRow<'_>) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(
                "INSERT INTO saf (id, txn_id, kind, issuer, key_id, message_sealed, queued_at_ms, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending')",
            )
            .and_then(|mut s| {
                s.execute(params![
                    q.id as i64,
                    q.txn_id.map(|t| t as i64),
                    q.kind,
                    q.issuer,
                    q.key_id,
                    q.sealed,
                    q.queued_at_ms
                ])
            })
            .map_err(JournalError::sql("queueing a store-and-forward entry"))?;
        if let (Some(txn), "timeout_reversal") = (q.txn_id, q.kind) {
            self.conn
                .prepare_cached("UPDATE transactions SET state = 'reversal_queued' WHERE id = ?1")
                .and_then(|mut s| s.execute(params![txn as i64]))
                .map_err(JournalError::sql("marking a reversal queued"))?;
        }
        Ok(())
    }

    fn apply(&mut self, record: &Record) -> Result<(), JournalError> {
        match record {
            Record::Accepted(a) => self.insert_accepted(a),
            Record::Answered(a) => self.update_answered(a),
            Record::Delivery {
                id,
                at_ms,
                delivered,
            } => self.delivery(*id, *at_ms, *delivered),
            Record::Event {
                txn_id,
                at_ms,
                kind,
                detail,
            } => self.event(*txn_id, *at_ms, kind, detail),
            Record::SafQueued(q) => self.insert_saf(q),
            Record::SafAttempted { id, attempts } => self.saf_attempted(*id, *attempts),
            Record::SafDone {
                id,
                delivered,
                attempts,
                at_ms,
            } => self.saf_done(*id, *delivered, *attempts, *at_ms),
        }
    }

    pub(super) fn delivery(
        &mut self,
        id: u64,
        at_ms: i64,
        delivered: bool,
    ) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(RECORD_DELIVERY)
            .and_then(|mut s| s.execute(params![id as i64, at_ms, delivered]))
            .map(|_| ())
            .map_err(JournalError::sql("recording a delivery"))
    }

    pub(super) fn event(
        &mut self,
        txn_id: Option<u64>,
        at_ms: i64,
        kind: &str,
        detail: &str,
    ) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(
                "INSERT INTO events (txn_id, at_ms, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![txn_id.map(|t| t as i64), at_ms, kind, detail]))
            .map(|_| ())
            .map_err(JournalError::sql("recording an event"))
    }

    pub(super) fn saf_attempted(&mut self, id: u64, attempts: u32) -> Result<(), JournalError> {
        self.conn
            .prepare_cached("UPDATE saf SET attempts = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id as i64, attempts]))
            .map(|_| ())
            .map_err(JournalError::sql("recording an attempt"))
    }

    pub(super) fn saf_done(
        &mut self,
        id: u64,
        delivered: bool,
        attempts: u32,
        at_ms: i64,
    ) -> Result<(), JournalError> {
        let state = if delivered { "delivered" } else { "given_up" };
        self.conn
            .prepare_cached(
                "UPDATE saf SET state = ?2, attempts = ?3, done_at_ms = ?4 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id as i64, state, attempts, at_ms]))
            .map_err(JournalError::sql("closing a store-and-forward entry"))?;
        // A reversal given up leaves its transaction in a final
        // state of its own (an operator may queue it again).
        let txn_state = if delivered {
            "reversed"
        } else {
            "reversal_given_up"
        };
        self.conn
            .prepare_cached(
                "UPDATE transactions SET state = ?2 WHERE id =
                   (SELECT txn_id FROM saf WHERE id = ?1 AND kind = 'timeout_reversal')",
            )
            .and_then(|mut s| s.execute(params![id as i64, txn_state]))
            .map_err(JournalError::sql("closing a reversal"))?;
        Ok(())
    }
}

impl SqliteJournal {
    /// One group of records in one commit, with a look-up batch when one
    /// is due and the writer's own checkpoint when one is due.
    pub(super) fn append_group(&mut self, records: &[Record]) -> Result<(), JournalError> {
        self.in_group(records.len(), |group| {
            records.iter().try_for_each(|r| group.apply(r))
        })
    }

    /// Runs `body` (which writes `count` records) in one commit, or
    /// rolls everything back if it fails.
    pub(super) fn in_group(
        &mut self,
        count: usize,
        body: impl FnOnce(&mut Group<'_>) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let conn = &self.conn;
        let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
        run("BEGIN IMMEDIATE").map_err(JournalError::sql("beginning a group"))?;
        let mut group = Group {
            conn,
            keys: &self.keys,
            nonces: &mut self.nonces,
            insert: None,
            answer: None,
            indexed_through: self.indexed_through,
            max_id: self.max_id,
        };
        let applied = body(&mut group);
        let max_id = group.max_id;
        drop(group);
        // A batch of look-up entries rides in this group's commit.
        let batch = max_id - self.indexed_through >= lookup::BATCH_ROWS;
        let applied = applied.and_then(|()| {
            if batch {
                lookup::advance(conn, self.indexed_through, max_id)
                    .map_err(JournalError::sql("indexing a batch"))?;
            }
            Ok(())
        });
        match applied {
            Ok(()) => run("COMMIT")
                .map(|_| ())
                .map_err(JournalError::sql("committing a group"))?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        self.max_id = max_id;
        if batch {
            self.indexed_through = max_id;
        }
        self.since_checkpoint += count;
        if self.since_checkpoint >= WRITER_CHECKPOINT_RECORDS {
            // (busy, frames in the WAL, frames copied): all copied means
            // the next commit starts the WAL over. Busy (the background
            // checkpointer was at work) or a reader in the way: try again
            // after the next group. The group is durable already either way.
            let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok(r.get::<_, i64>(0)? == 0 && r.get::<_, i64>(1)? == r.get::<_, i64>(2)?)
            });
            match done {
                Ok(true) => self.since_checkpoint = 0,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "journal checkpoint by the writer failed"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::outcome::TxnOutcome;

    #[test]
    fn the_delivery_sql_writes_the_undelivered_word() {
        let word = format!("ELSE '{}' END", TxnOutcome::Undelivered.as_str());
        assert!(RECORD_DELIVERY.contains(&word), "{RECORD_DELIVERY}");
    }
}
