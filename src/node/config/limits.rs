//! The configuration's defaults and limits, named so that the checks,
//! the tests and the documentation share them.
//!
//! Every count, size and duration has a range next to its default: the
//! largest value this switch can honour on a small machine (2 cores, tens
//! of GiB), with what one unit costs said beside it. A value outside its
//! range is refused at load with the file, the line and the range, rather
//! than accepted and failing later in a task (a semaphore too large, an
//! allocation that cannot be made, an `Instant` that overflows).

use std::ops::RangeInclusive;

/// Durations in seconds stop at a day: long enough for any idle or
/// replay window, far inside tokio's timers and `Instant` arithmetic.
const DAY_S: u64 = 86_400;
/// Request time-outs stop at ten minutes: an acquirer waits seconds (10 s
/// POS, 25 s ATM), and every waiting request holds an in-flight slot.
const TIMEOUT_MS_MAX: u64 = 600_000;

/// How long a duplicate key is remembered, by default.
pub const DUPLICATE_WINDOW_S_DEFAULT: u64 = 300;
/// The key cache is bounded in keys, so the window only ages them.
pub const DUPLICATE_WINDOW_S_RANGE: RangeInclusive<u64> = 1..=DAY_S;
/// SAF defaults: entries held, first and longest retry delay, expiry (24 h,
/// as jPOS-EE) and delivery attempts.
pub const SAF_QUEUE_MAX_DEFAULT: u64 = 100_000;
/// An entry holds an advice (about 1 KiB): a million is about 1 GiB.
pub const SAF_QUEUE_MAX_RANGE: RangeInclusive<u64> = 1..=1_000_000;
pub const SAF_RETRY_MIN_MS_DEFAULT: u64 = 1_000;
/// The first retry comes within an hour.
pub const SAF_RETRY_MIN_MS_RANGE: RangeInclusive<u64> = 1..=3_600_000;
pub const SAF_RETRY_MAX_MS_DEFAULT: u64 = 60_000;
pub const SAF_RETRY_MAX_MS_RANGE: RangeInclusive<u64> = 1..=DAY_S * 1_000;
/// jPOS-EE's SAF waits 60 s; 10 s matches a POS time-out.
pub const SAF_RESPONSE_WAIT_MS_DEFAULT: u64 = 10_000;
pub const SAF_RESPONSE_WAIT_MS_RANGE: RangeInclusive<u64> = 1..=TIMEOUT_MS_MAX;
pub const SAF_EXPIRY_S_DEFAULT: u64 = 86_400;
/// A week: an advice older than that is settled by other means.
pub const SAF_EXPIRY_S_RANGE: RangeInclusive<u64> = 1..=7 * DAY_S;
pub const SAF_MAX_ATTEMPTS_DEFAULT: u64 = 50;
pub const SAF_MAX_ATTEMPTS_RANGE: RangeInclusive<u64> = 1..=100_000;
/// Acquirer defaults.
pub const ACQUIRER_CONNECTIONS_MAX_DEFAULT: u64 = 1024;
/// A connection is a task, its buffers (tens of KiB) and a descriptor:
/// 100k is a few GiB at most.
pub const ACQUIRER_CONNECTIONS_MAX_RANGE: RangeInclusive<u64> = 1..=100_000;
pub const ACQUIRER_IN_FLIGHT_MAX_DEFAULT: u64 = 256;
/// A slot is a task holding a request across the issuer's round trip.
pub const ACQUIRER_IN_FLIGHT_MAX_RANGE: RangeInclusive<u64> = 1..=10_000;
pub const ACQUIRER_IDLE_TIMEOUT_S_DEFAULT: u64 = 300;
pub const ACQUIRER_IDLE_TIMEOUT_S_RANGE: RangeInclusive<u64> = 1..=DAY_S;
/// Link limits against silent and greedy peers (default, then the allowed
/// range): a TLS handshake's time, a first frame's wait after connecting,
/// connections from one peer address, and the kernel's accept backlog
/// (a reconnect storm of thousands of terminals; Linux caps it at
/// net.core.somaxconn).
pub const HANDSHAKE_TIMEOUT_MS_DEFAULT: u64 = 10_000;
pub const HANDSHAKE_TIMEOUT_MS_RANGE: RangeInclusive<u64> = 100..=60_000;
pub const ACQUIRER_FIRST_FRAME_TIMEOUT_MS_DEFAULT: u64 = 30_000;
pub const ACQUIRER_FIRST_FRAME_TIMEOUT_MS_RANGE: RangeInclusive<u64> = 100..=600_000;
pub const ACQUIRER_CONNECTIONS_PER_PEER_MAX_DEFAULT: u64 = 256;
/// At most the listener's own limit can ever be in use.
pub const ACQUIRER_CONNECTIONS_PER_PEER_MAX_RANGE: RangeInclusive<u64> =
    1..=*ACQUIRER_CONNECTIONS_MAX_RANGE.end();
pub const ACQUIRER_LISTEN_BACKLOG_DEFAULT: u64 = 8192;
pub const ACQUIRER_LISTEN_BACKLOG_RANGE: RangeInclusive<u64> = 1..=65_535;
/// Issuer defaults; `timeout_ms` is the time-out of the routes to it.
pub const ISSUER_CONNECTIONS_DEFAULT: u64 = 2;
/// Connections per address, each a task kept up (and re-dialled) for
/// good: issuers take a handful, not thousands.
pub const ISSUER_CONNECTIONS_RANGE: RangeInclusive<u64> = 1..=256;
/// Endpoints of one issuer at most: each gets `connections` connections.
pub const ISSUER_ADDRESSES_MAX: usize = 64;
pub const ISSUER_TIMEOUT_MS_DEFAULT: u64 = 10_000;
pub const ISSUER_TIMEOUT_MS_RANGE: RangeInclusive<u64> = 1..=TIMEOUT_MS_MAX;
pub const ISSUER_ECHO_INTERVAL_S_DEFAULT: u64 = 30;
/// 0 turns echoes off.
pub const ISSUER_ECHO_INTERVAL_S_RANGE: RangeInclusive<u64> = 0..=DAY_S;
pub const ISSUER_IN_FLIGHT_MAX_DEFAULT: u64 = 4096;
/// A slot is an entry in the link's matching table (a request's key and
/// its waiter); far below the 999,999 STANs that tell requests apart.
pub const ISSUER_IN_FLIGHT_MAX_RANGE: RangeInclusive<u64> = 1..=100_000;
/// A route's own time-out, like its issuer's.
pub const ROUTE_TIMEOUT_MS_RANGE: RangeInclusive<u64> = ISSUER_TIMEOUT_MS_RANGE;
/// Records in one journal commit: each is held in memory until the commit,
/// and the writer's queue holds no more than this anyway.
pub const JOURNAL_GROUP_RECORDS_MAX_RANGE: RangeInclusive<u64> =
    1..=crate::journal::writer::QUEUE_RECORDS_MAX as u64;
/// A journal log segment, MiB (room for a group at least; a reader's
/// segment file at most).
pub const JOURNAL_LOG_SEGMENT_MIB_RANGE: RangeInclusive<u64> =
    (crate::journal::log::writer::SEGMENT_BYTES_MIN >> 20)
        ..=(crate::journal::log::writer::SEGMENT_BYTES_MAX >> 20);
/// Records waiting for the journal log's writer (memory until written).
pub const JOURNAL_LOG_QUEUE_RECORDS_RANGE: RangeInclusive<u64> =
    1..=crate::journal::log::writer::QUEUE_RECORDS_MAX as u64;
/// Journal log segments kept once SQLite holds them.
pub const JOURNAL_LOG_KEEP_FED_SEGMENTS_RANGE: RangeInclusive<u64> =
    0..=crate::journal::log::writer::KEEP_FED_SEGMENTS_MAX as u64;
/// A frame's body: the largest a 2-byte length can announce.
pub const FRAME_BYTES_MAX_RANGE: RangeInclusive<u64> = 1..=0xFFFF;
/// Stand-in amounts, in minor units: DE4 has 12 digits.
pub const STAND_IN_AMOUNT_RANGE: RangeInclusive<u64> = 1..=999_999_999_999;
/// Stand-in approvals per card and day.
pub const STAND_IN_DAILY_COUNT_RANGE: RangeInclusive<u64> = 1..=10_000;
/// Institution ids (DE32, DE33) are n..11.
pub(super) const INSTITUTION_DIGITS_MAX: usize = 11;
/// Names appear in logs and metric labels: short, plain characters.
pub(super) const NAME_BYTES_MAX: usize = 64;

/// Key exchange by 0800 at most hourly and at least weekly: schemes
/// exchange daily; more often only loads the HSM.
pub const KEY_EXCHANGE_INTERVAL_S_RANGE: RangeInclusive<u64> = 3_600..=7 * DAY_S;
/// The field a DUKPT request's KSN comes in: DE53 (security related
/// control information) unless the acquirer's dialect uses another.
pub const KSN_FIELD_DEFAULT: u64 = 53;
pub const KSN_FIELD_RANGE: RangeInclusive<u64> = 2..=128;
