//! What the engine tells the journal: events, accepted requests (durable
//! before they are forwarded) and answers (an approval durable before it
//! is written to the acquirer).

use tracing::warn;

use super::{Acquirer, Decided, Switch, pan_of};
use crate::journal::Record;
use crate::journal::record::{Accepted, Answered, Forwarded, now_ms};
use crate::message::response_codes::Outcome;
use crate::message::sensitive::NEVER_ECHOED;
use crate::message::{Message, Spec};

/// A field as text, for the journal.
pub(super) fn text(msg: &Message, n: u16) -> Option<String> {
    msg.get_str(n).map(str::to_string)
}

/// A message without sensitive authentication data, as bytes in `spec`
/// (what the journal may keep, sealed).
pub(super) fn without_sad(spec: &Spec, msg: &Message) -> zeroize::Zeroizing<Vec<u8>> {
    let mut copy = msg.clone();
    for &f in NEVER_ECHOED {
        copy.remove(f);
    }
    match spec.build(&copy) {
        Ok(bytes) => zeroize::Zeroizing::new(bytes.to_vec()),
        Err(e) => {
            warn!(error = %e, "message cannot be built for the journal");
            zeroize::Zeroizing::new(Vec::new())
        }
    }
}

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
        let original_data = text(request, 90).or_else(|| text(request, 56));
        let replacement_amount = request
            .get_str(95)
            .and_then(|v| v.get(..12))
            .and_then(|v| v.parse().ok());
        let record = Record::Accepted(Box::new(Accepted {
            id: txn_id,
            received_at_ms: now_ms(),
            acquirer: acq.name.clone(),
            request_mti: request.mti().to_string(),
            processing_code: text(request, 3),
            amount_minor: request.get_u64(4).and_then(|a| i64::try_from(a).ok()),
            transmission_at: text(request, 7),
            stan: text(request, 11),
            local_time: text(request, 12),
            local_date: text(request, 13),
            mcc: text(request, 18),
            pos_entry_mode: text(request, 22),
            acquirer_inst: text(request, 32),
            rrn: text(request, 37),
            terminal_id: text(request, 41),
            merchant_id: text(request, 42),
            merchant_name_loc: text(request, 43),
            currency: text(request, 49),
            original_data,
            replacement_amount,
            pan: pan_of(request).map(|p| zeroize::Zeroizing::new(p.to_vec())),
            route,
        }));
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
    /// unknown (README, "Crash recovery"): it is presumed delivered, an
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
        let record = Record::Answered(Answered {
            id: txn_id,
            response_code: text(&decided.response, 39),
            approval_code: text(&decided.response, 38),
            outcome: decided.outcome,
            response_at_ms: decided.response_at_ms,
            sent_at_ms: None,
        });
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
