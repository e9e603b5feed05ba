//! The journal records of a transaction, made from its messages: pure, so
//! that the core (docs/core.md) and the tools make the same records.
//! Sensitive authentication data never enters a record (PCI DSS 3.3.1);
//! the PAN does, only to be sealed by the journal's writer.

use tracing::warn;
use zeroize::Zeroizing;

use crate::journal::Record;
use crate::journal::TxnOutcome;
use crate::journal::record::{Accepted, Answered, Forwarded};
use crate::message::sensitive::NEVER_ECHOED;
use crate::message::{Message, Spec};

/// A field as text, for the journal.
pub fn text(msg: &Message, n: u16) -> Option<String> {
    msg.get_str(n).map(str::to_string)
}

/// The PAN of a request: DE2, or the part of DE35 before the separator.
/// Borrowed: the switch looks it up twice a request (duplicate key and
/// route), and a shared copy cost a refcount each way.
pub fn pan_of(msg: &Message) -> Option<&[u8]> {
    if let Some(pan) = msg.value(2) {
        return Some(pan);
    }
    let track = msg.value(35)?;
    let end = track.iter().position(|&b| b == b'=' || b == b'D')?;
    track.get(..end)
}

/// A message without sensitive authentication data, as bytes in `spec`
/// (what the journal may keep, sealed).
pub fn without_sad(spec: &Spec, msg: &Message) -> Zeroizing<Vec<u8>> {
    let mut copy = msg.clone();
    for &f in NEVER_ECHOED {
        copy.remove(f);
    }
    match spec.build(&copy) {
        Ok(bytes) => Zeroizing::new(bytes.to_vec()),
        Err(e) => {
            warn!(error = %e, "message cannot be built for the journal");
            Zeroizing::new(Vec::new())
        }
    }
}

/// A request accepted from `acquirer` at `at_ms`, going to `route` if
/// anywhere.
pub fn accepted(
    acquirer: &str,
    request: &Message,
    txn_id: u64,
    route: Option<Forwarded>,
    at_ms: i64,
) -> Record {
    let original_data = text(request, 90).or_else(|| text(request, 56));
    let replacement_amount = request
        .get_str(95)
        .and_then(|v| v.get(..12))
        .and_then(|v| v.parse().ok());
    Record::Accepted(Box::new(Accepted {
        id: txn_id,
        received_at_ms: at_ms,
        acquirer: acquirer.to_string(),
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
        pan: pan_of(request).map(|p| Zeroizing::new(p.to_vec())),
        route,
    }))
}

/// The answer given for transaction `txn_id`, journaled before it is
/// written to the acquirer (`sent_at_ms` follows as a delivery record).
pub fn answered(
    txn_id: u64,
    response: &Message,
    outcome: TxnOutcome,
    response_at_ms: Option<i64>,
) -> Record {
    Record::Answered(Answered {
        id: txn_id,
        response_code: text(response, 39),
        approval_code: text(response, 38),
        outcome,
        response_at_ms,
        sent_at_ms: None,
    })
}
