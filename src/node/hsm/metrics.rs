//! The client's metrics. Labels are command codes and error numbers or
//! kinds, never a field's value.

use std::time::Duration;

use super::errors::HsmError;

/// Prometheus names, shared with the docs and tests.
pub const COMMANDS_TOTAL: &str = "cardswitch_hsm_commands_total";
pub const ERRORS_TOTAL: &str = "cardswitch_hsm_errors_total";
pub const LATENCY_SECONDS: &str = "cardswitch_hsm_latency_seconds";
pub const CONNECTIONS_UP: &str = "cardswitch_hsm_connections_up";
pub const CONNECTIONS_CLOSED_TOTAL: &str = "cardswitch_hsm_connections_closed_total";

/// The code as a label (`CA`); codes are ASCII letters and digits.
pub(super) fn code_label(code: &[u8; 2]) -> String {
    String::from_utf8_lossy(code).into_owned()
}

/// One command's outcome and round trip.
pub(super) fn record(code: &[u8; 2], took: Duration, result: Result<(), &HsmError>) {
    let command = code_label(code);
    metrics::counter!(COMMANDS_TOTAL, "command" => command.clone()).increment(1);
    metrics::histogram!(LATENCY_SECONDS, "command" => command.clone()).record(took.as_secs_f64());
    if let Err(e) = result {
        metrics::counter!(ERRORS_TOTAL, "command" => command, "error" => e.label()).increment(1);
    }
}

pub(super) fn connections_up(n: usize) {
    metrics::gauge!(CONNECTIONS_UP).set(n as f64);
}

/// A connection closed (a time-out, a protocol error, a failed health
/// check, the HSM closing it, shutdown), by reason.
pub(super) fn closed(reason: &'static str) {
    metrics::counter!(CONNECTIONS_CLOSED_TOTAL, "reason" => reason).increment(1);
}
