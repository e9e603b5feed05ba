//! Start-up after a crash: what the journal says is still open becomes
//! work again.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use tracing::{info, warn};

use super::{Switch, lock};
use crate::journal::Recovery;
use crate::switch::saf::SafKind;

impl Switch {
    /// Picks up after a restart: continues the journal's numbering, queues
    /// again every store-and-forward entry not yet acknowledged, and
    /// reverses every request forwarded whose answer never reached its
    /// acquirer (its outcome at the issuer is unknown).
    pub async fn recover(&self, recovery: Recovery) {
        self.next_txn_id
            .fetch_max(recovery.next_txn_id, Ordering::Relaxed);
        lock(&self.saf).resume_ids_from(recovery.next_saf_id);
        let issuer_of = |name: &str| self.issuers.iter().position(|i| i.name == name);
        let (mut requeued, mut reversed) = (0usize, 0usize);
        for p in recovery.pending_saf {
            let (Some(issuer), Some(kind)) = (issuer_of(&p.issuer), SafKind::from_label(&p.kind))
            else {
                warn!(id = p.id, issuer = %p.issuer, "queued entry for an unknown issuer or kind left in the journal");
                continue;
            };
            match crate::message::parse::parse(
                &self.issuers[issuer].spec,
                &Bytes::copy_from_slice(&p.message),
            ) {
                Ok(msg) => {
                    // A pending entry may have gone out before the crash
                    // (attempts are journaled after they fail): it counts
                    // as attempted, so it goes out as a repeat (0421).
                    let inserted = lock(&self.saf).insert(
                        p.id,
                        p.txn_id,
                        kind,
                        issuer,
                        msg,
                        p.attempts.max(1),
                        Instant::now(),
                    );
                    match inserted {
                        Ok(()) => requeued += 1,
                        Err(e) => warn!(id = p.id, error = %e, "queued entry not restored"),
                    }
                }
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
            match crate::message::parse::parse(
                &self.issuers[issuer].spec,
                &Bytes::copy_from_slice(&u.message),
            ) {
                Ok(original) => {
                    self.queue_reversal(issuer, &original, Some(u.txn_id)).await;
                    self.note(Some(u.txn_id), "reversed_after_restart", String::new())
                        .await;
                    reversed += 1;
                }
                Err(e) => warn!(txn = u.txn_id, error = %e, "open request does not parse"),
            }
        }
        info!(requeued, reversed, "recovered from the journal");
        self.saf_wake.notify_one();
    }
}
