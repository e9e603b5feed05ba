//! Store-and-forward entries made by the engine: reversal advices for
//! outcomes it does not know, stand-in advices and acquirers' advices,
//! each on disk before it can be sent.

use std::time::{Instant, SystemTime};

use tracing::warn;

use super::{Acquirer, Stats, Switch, lock, without_sad};
use crate::journal::Record;
use crate::journal::record::{SafQueued, now_ms};
use crate::message::Message;
use crate::message::sensitive::NEVER_ECHOED;
use crate::switch::reversal::reversal_advice;
use crate::switch::saf::SafKind;
use crate::switch::translate::translate;

impl Switch {
    /// Queues a message for its issuer: on disk before it enters the
    /// in-memory queue, so that nothing is sent that a restart would not
    /// know of (a lost record would let a restart send a second original
    /// where a repeat is due). Track data, PIN block and ICC data are
    /// dropped: an advice never needs them.
    pub(super) async fn queue(
        &self,
        kind: SafKind,
        issuer: usize,
        mut msg: Message,
        txn_id: Option<u64>,
    ) -> Result<(), &'static str> {
        for &f in NEVER_ECHOED {
            msg.remove(f);
        }
        let id = {
            let mut q = lock(&self.saf);
            if !q.has_room(0) {
                warn!(kind = kind.label(), "store-and-forward overflow");
                metrics::counter!("cardswitch_saf_overflow_total").increment(1);
                return Err("store-and-forward queue full");
            }
            q.allocate_id()
        };
        if let Some(journal) = &self.journal {
            let target = &self.issuers[issuer];
            let record = Record::SafQueued(SafQueued {
                id,
                txn_id,
                kind: kind.label(),
                issuer: target.name.clone(),
                message: without_sad(&target.spec, &msg),
                queued_at_ms: now_ms(),
            });
            journal
                .durable(record)
                .await
                .map_err(|_| "journal unavailable")?;
        }
        let pushed = lock(&self.saf).insert(id, txn_id, kind, issuer, msg, 0, Instant::now());
        match pushed {
            Ok(()) => {
                Stats::add(&self.stats.saf_queued);
                metrics::counter!("cardswitch_saf_queued_total", "kind" => kind.label())
                    .increment(1);
                self.saf_wake.notify_one();
                Ok(())
            }
            Err(e) => {
                // Cannot happen while `has_room(SAF_RESERVE)` gates forwarding.
                warn!(kind = kind.label(), error = %e, "store-and-forward overflow");
                metrics::counter!("cardswitch_saf_overflow_total").increment(1);
                Err("store-and-forward queue full")
            }
        }
    }

    /// A 0420 reversal advice (issuer dialect) for a request whose outcome
    /// is unknown, referring to it by DE90 (1987) or DE56 (1993).
    pub(super) async fn queue_reversal(
        &self,
        issuer: usize,
        original: &Message,
        txn_id: Option<u64>,
    ) {
        let target = &self.issuers[issuer];
        let version = target.spec.version.digit();
        let stan = target.link.next_stan();
        let rev = reversal_advice(version, original, stan, SystemTime::now());
        let _ = self
            .queue(SafKind::TimeoutReversal, issuer, rev, txn_id)
            .await;
    }

    /// An 0120 advice (issuer dialect) of a stand-in approval.
    pub(super) async fn queue_stand_in_advice(
        &self,
        acq: &Acquirer,
        issuer: usize,
        request: &Message,
        response: &Message,
        txn_id: u64,
    ) {
        let target = &self.issuers[issuer];
        let mut advice = request.clone();
        advice.set_mti("0120".parse().expect("constant MTI"));
        for &f in NEVER_ECHOED {
            advice.remove(f);
        }
        for n in [38, 39] {
            if let Some(v) = response.value_bytes(n) {
                let _ = advice.set(n, v);
            }
        }
        let mut out = translate(&acq.spec, &target.spec, &advice, SystemTime::now()).message;
        let _ = out.set(33, self.institution_id.clone());
        let _ = out.set_num(11, u64::from(target.link.next_stan()), 6);
        let _ = self
            .queue(SafKind::StandInAdvice, issuer, out, Some(txn_id))
            .await;
    }
}
