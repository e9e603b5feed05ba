//! The client's metrics. Labels are command codes and error numbers or
//! kinds, never a field's value.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram};

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

/// The commands the switch sends, whose handles are kept: looking a
/// labelled metric up in the registry cost a thousand instructions a
/// command.
const KEPT: [&[u8; 2]; 12] = [
    b"CA", b"CC", b"G0", b"M6", b"M8", b"KQ", b"CY", b"CW", b"A0", b"BU", b"A6", b"NC",
];

/// A command's counter and latency histogram, made once.
struct Handles {
    commands: Counter,
    latency: Histogram,
}

fn handles(code: &[u8; 2]) -> Handles {
    let command = code_label(code);
    Handles {
        commands: metrics::counter!(COMMANDS_TOTAL, "command" => command.clone()),
        latency: metrics::histogram!(LATENCY_SECONDS, "command" => command),
    }
}

/// One command's outcome and round trip.
pub(super) fn record(code: &[u8; 2], took: Duration, result: Result<(), &HsmError>) {
    static KEPT_HANDLES: [OnceLock<Handles>; KEPT.len()] = [const { OnceLock::new() }; KEPT.len()];
    let made;
    let h = match KEPT.iter().position(|k| *k == code) {
        Some(i) => KEPT_HANDLES[i].get_or_init(|| handles(code)),
        None => {
            made = handles(code);
            &made
        }
    };
    h.commands.increment(1);
    h.latency.record(took.as_secs_f64());
    if let Err(e) = result {
        let command = code_label(code);
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
