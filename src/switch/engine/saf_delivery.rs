//! The store-and-forward worker: delivers queued advices to their
//! issuers, journaling every attempt and its end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

use super::{Stats, Switch, lock};
use crate::journal::Record;
use crate::journal::record::now_ms;
use crate::switch::saf::Retry;

impl Switch {
    /// Delivers store-and-forward entries until `shutdown`: each is sent to
    /// its issuer when a connection is up, as a repeat (xxx1) after the
    /// first attempt, until answered; failures back off.
    pub async fn run_saf(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            let now = Instant::now();
            let due = {
                let mut q = lock(&self.saf);
                metrics::gauge!("cardswitch_saf_depth").set(q.depth() as f64);
                q.take_due(now, 64, |i| self.issuers[i].link.up_connections() > 0)
            };
            if due.is_empty() {
                let next = lock(&self.saf).next_due();
                let wait = next
                    .map_or(Duration::from_millis(250), |t| {
                        t.saturating_duration_since(now)
                    })
                    .min(Duration::from_millis(250));
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.saf_wake.notified() => {}
                    _ = tokio::time::sleep(wait.max(Duration::from_millis(5))) => {}
                }
                continue;
            }
            let sends = due.into_iter().map(|entry| {
                let this = self.clone();
                async move {
                    let link = &this.issuers[entry.issuer].link;
                    let mut msg = entry.message.clone();
                    if entry.attempts > 0 {
                        msg.set_mti(msg.mti().as_repeat());
                    }
                    let result = link.request(&msg, this.saf_response_wait).await;
                    let retry_code = result
                        .as_ref()
                        .ok()
                        .and_then(|r| r.get_str(39))
                        .is_some_and(|c| c == "91" || c == "911");
                    let (id, kind, attempts) = (entry.id, entry.kind, entry.attempts + 1);
                    if result.is_ok() && !retry_code {
                        Stats::add(&this.stats.saf_delivered);
                        metrics::counter!("cardswitch_saf_delivered_total", "kind" => kind.label())
                            .increment(1);
                        this.journal_saf(Record::SafDone {
                            id,
                            delivered: true,
                            attempts,
                            at_ms: now_ms(),
                        })
                        .await;
                        return;
                    }
                    let retry = lock(&this.saf).retry(entry, Instant::now());
                    if retry == Retry::GaveUp {
                        Stats::add(&this.stats.saf_given_up);
                        metrics::counter!("cardswitch_saf_given_up_total", "kind" => kind.label())
                            .increment(1);
                        warn!(
                            id,
                            kind = kind.label(),
                            "store-and-forward gave up: expired or out of attempts"
                        );
                        this.journal_saf(Record::SafDone {
                            id,
                            delivered: false,
                            attempts,
                            at_ms: now_ms(),
                        })
                        .await;
                    } else {
                        this.journal_saf(Record::SafAttempted { id, attempts })
                            .await;
                    }
                }
            });
            futures_util::future::join_all(sends).await;
        }
    }

    async fn journal_saf(&self, record: Record) {
        if let Some(j) = &self.journal {
            j.record(record).await;
        }
    }
}
