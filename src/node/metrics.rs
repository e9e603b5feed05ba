//! The core's counters as metrics, registered once and set after every
//! turn of the loop (a store each, no label lookups on the hot path).

use metrics::{Counter, Gauge};

use crate::switch::core::{Core, PerKind};
use crate::switch::saf::SafKind;

/// One counter per store-and-forward kind.
struct ByKind([Counter; 3]);

impl ByKind {
    fn new(name: &'static str) -> ByKind {
        ByKind(SafKind::ALL.map(|k| metrics::counter!(name, "kind" => k.label())))
    }

    fn set(&self, counts: PerKind) {
        for (counter, value) in self.0.iter().zip(counts.0) {
            counter.absolute(value);
        }
    }
}

pub struct NodeMetrics {
    saf_depth: Gauge,
    open: Gauge,
    requests: Counter,
    approved: Counter,
    declined: Counter,
    timed_out: Counter,
    stood_in: Counter,
    duplicates: Counter,
    saf_overflow: Counter,
    /// Replies sent as 96, or messages for issuers not sent, because the
    /// peer's dialect could not carry them.
    unbuildable: Counter,
    key_exchanges: Counter,
    key_exchanges_failed: Counter,
    key_exchange_failing: Gauge,
    saf_queued: ByKind,
    saf_delivered: ByKind,
    saf_given_up: ByKind,
}

impl NodeMetrics {
    pub fn new() -> NodeMetrics {
        NodeMetrics {
            saf_depth: metrics::gauge!("cardswitch_saf_depth"),
            open: metrics::gauge!("cardswitch_transactions_open"),
            requests: metrics::counter!("cardswitch_requests_total"),
            approved: metrics::counter!("cardswitch_approved_total"),
            declined: metrics::counter!("cardswitch_declined_total"),
            timed_out: metrics::counter!("cardswitch_timed_out_total"),
            stood_in: metrics::counter!("cardswitch_stood_in_total"),
            duplicates: metrics::counter!("cardswitch_duplicates_total"),
            saf_overflow: metrics::counter!("cardswitch_saf_overflow_total"),
            unbuildable: metrics::counter!("cardswitch_unbuildable_total"),
            key_exchanges: metrics::counter!("cardswitch_key_exchanges_total"),
            key_exchanges_failed: metrics::counter!("cardswitch_key_exchanges_failed_total"),
            key_exchange_failing: metrics::gauge!("cardswitch_key_exchange_failing_issuers"),
            saf_queued: ByKind::new("cardswitch_saf_queued_total"),
            saf_delivered: ByKind::new("cardswitch_saf_delivered_total"),
            saf_given_up: ByKind::new("cardswitch_saf_given_up_total"),
        }
    }

    pub fn publish(&self, core: &Core) {
        let c = core.counters();
        self.saf_depth.set(core.saf_depth() as f64);
        self.open.set(core.open_transactions() as f64);
        // The alarm: issuers still on their old key after a failed exchange.
        self.key_exchange_failing
            .set(core.key_exchange_failing() as f64);
        for (counter, value) in [
            (&self.requests, c.requests),
            (&self.approved, c.approved),
            (&self.declined, c.declined),
            (&self.timed_out, c.timed_out),
            (&self.stood_in, c.stood_in),
            (&self.duplicates, c.duplicates),
            (&self.saf_overflow, c.saf_overflow),
            (&self.unbuildable, c.unbuildable),
            (&self.key_exchanges, c.key_exchanges),
            (&self.key_exchanges_failed, c.key_exchanges_failed),
        ] {
            counter.absolute(value);
        }
        self.saf_queued.set(c.saf_queued);
        self.saf_delivered.set(c.saf_delivered);
        self.saf_given_up.set(c.saf_given_up);
    }
}
