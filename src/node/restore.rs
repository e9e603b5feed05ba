//! What the journal says a restart must pick up, parsed into the core's
//! terms: each stored message in its issuer's dialect, each issuer by its
//! index. What cannot be read is logged and left in the journal.

use bytes::Bytes;
use tracing::warn;

use crate::journal::Recovery;
use crate::node::config::IssuerConfig;
use crate::switch::core::{Restored, RestoredSaf, RestoredTxn};
use crate::switch::saf::SafKind;

/// The core's view of `recovery`.
pub fn restored(recovery: Recovery, issuers: &[IssuerConfig]) -> Restored {
    let issuer_of = |name: &str| issuers.iter().position(|i| i.name == name);
    let mut out = Restored {
        next_txn_id: recovery.next_txn_id,
        next_saf_id: recovery.next_saf_id,
        ..Restored::default()
    };
    for p in recovery.pending_saf {
        let (Some(issuer), Some(kind)) = (issuer_of(&p.issuer), SafKind::from_label(&p.kind))
        else {
            warn!(id = p.id, issuer = %p.issuer, "queued entry for an unknown issuer or kind left in the journal");
            continue;
        };
        match issuers[issuer]
            .spec
            .parse(&Bytes::copy_from_slice(&p.message))
        {
            Ok(message) => out.pending_saf.push(RestoredSaf {
                id: p.id,
                txn_id: p.txn_id,
                kind,
                issuer,
                message,
                attempts: p.attempts,
            }),
            Err(e) => {
                warn!(id = p.id, error = %e, "queued entry does not parse: left in the journal")
            }
        }
    }
    for u in recovery.unfinished {
        let Some(issuer) = issuer_of(&u.issuer) else {
            warn!(txn = u.txn_id, issuer = %u.issuer, "open request for an unknown issuer");
            continue;
        };
        match issuers[issuer]
            .spec
            .parse(&Bytes::copy_from_slice(&u.message))
        {
            Ok(message) => out.unfinished.push(RestoredTxn {
                txn_id: u.txn_id,
                issuer,
                message,
            }),
            Err(e) => warn!(txn = u.txn_id, error = %e, "open request does not parse"),
        }
    }
    out
}
