//! The configuration's defaults and limits, named so that the checks,
//! the tests and the documentation share them.

/// How long a duplicate key is remembered, by default.
pub const DUPLICATE_WINDOW_S_DEFAULT: u64 = 300;
/// SAF defaults: entries held, first and longest retry delay, expiry (24 h,
/// as jPOS-EE) and delivery attempts.
pub const SAF_QUEUE_MAX_DEFAULT: u64 = 100_000;
pub const SAF_RETRY_MIN_MS_DEFAULT: u64 = 1_000;
pub const SAF_RETRY_MAX_MS_DEFAULT: u64 = 60_000;
/// jPOS-EE's SAF waits 60 s; 10 s matches a POS time-out.
pub const SAF_RESPONSE_WAIT_MS_DEFAULT: u64 = 10_000;
pub const SAF_EXPIRY_S_DEFAULT: u64 = 86_400;
pub const SAF_MAX_ATTEMPTS_DEFAULT: u64 = 50;
/// Acquirer defaults.
pub const ACQUIRER_CONNECTIONS_MAX_DEFAULT: u64 = 1024;
pub const ACQUIRER_IN_FLIGHT_MAX_DEFAULT: u64 = 256;
pub const ACQUIRER_IDLE_TIMEOUT_S_DEFAULT: u64 = 300;
/// Issuer defaults; `timeout_ms` is the time-out of the routes to it.
pub const ISSUER_CONNECTIONS_DEFAULT: u64 = 2;
pub const ISSUER_TIMEOUT_MS_DEFAULT: u64 = 10_000;
pub const ISSUER_ECHO_INTERVAL_S_DEFAULT: u64 = 30;
pub const ISSUER_IN_FLIGHT_MAX_DEFAULT: u64 = 4096;
/// BIN prefixes are 6 to 11 digits (ISO/IEC 7812 issuer identification
/// numbers are 6 or 8; longer prefixes split an issuer's ranges).
pub const BIN_DIGITS_MIN: usize = 6;
pub const BIN_DIGITS_MAX: usize = 11;
/// Institution ids (DE32, DE33) are n..11.
pub(super) const INSTITUTION_DIGITS_MAX: usize = 11;
/// Names appear in logs and metric labels: short, plain characters.
pub(super) const NAME_BYTES_MAX: usize = 64;
