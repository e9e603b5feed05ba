//! What the engine tells the journal: events, accepted requests (durable
//! before they are forwarded) and answers (an approval durable before it
//! is written to the acquirer).

use tracing::warn;

use super::{Acquirer, Decided, Switch};
use crate::journal::Record;
use crate::journal::record::{Forwarded, now_ms};
use crate::message::Message;
use crate::message::response_codes::Outcome;
use crate::switch::records;

impl Switch {
    /// Records an event in the journal, if there is one.
    pub(super) async fn note(&self, txn_id: Option<u64>, kind: &'static str, detail: String) {
        if let Some(j) = &self.journal {
            j.record(Record::Event {
                txn_id,
                at_ms: now_ms(),
                kind,
                detail,
            })
            .await;
        }
    }

    /// Records an accepted request; with `durable`, waits until it is on
    /// disk (a request is durable before it is forwarded).
    pub(super) async fn journal_accept(
        &self,
        acq: &Acquirer,
        request: &Message,
        txn_id: u64,
        route: Option<Forwarded>,
        durable: bool,
    ) -> Result<(), crate::journal::JournalError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let record = records::accepted(&acq.name, request, txn_id, route, now_ms());
        if durable {
            journal.durable(record).await
        } else {
            journal.record(record).await;
            Ok(())
        }
    }

    /// Journals the answer before it is written to the acquirer: an
    /// approval durably, so that after a crash the journal knows the
    /// acquirer may hold it. The rule for a response whose delivery is
    /// unknown (docs/journal.md, "Crash recovery"): it is presumed delivered, an
    /// approval stays captured, and the acquirer's own reversal (sent by
    /// any ISO 8583 acquirer that times out) settles what it did not
    /// receive. An approval that cannot be journaled is not handed out:
    /// the acquirer gets 96 and the issuer a reversal.
    pub(super) async fn journal_answer(
        &self,
        request: Message,
        txn_id: u64,
        decided: Decided,
    ) -> Decided {
        let Some(journal) = &self.journal else {
            return decided;
        };
        let record = records::answered(
            txn_id,
            &decided.response,
            decided.outcome,
            decided.response_at_ms,
        );
        if !matches!(decided.outcome, "approved" | "stand_in") {
            journal.record(record).await;
            return decided;
        }
        let Err(e) = journal.durable(record).await else {
            return decided;
        };
        warn!(txn = txn_id, error = %e, "journal unavailable: approval not handed out");
        if let Some((issuer, outgoing)) = &decided.undo {
            self.queue_reversal(*issuer, outgoing, Some(txn_id)).await;
        }
        Decided::local(
            self.reject(&request, Outcome::SystemMalfunction),
            "rejected",
        )
    }
}
