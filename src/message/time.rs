//! The UTC calendar the message fields need (DE7, DE12, DE13, DE14, DE17,
//! journal and clearing dates). Pure: every function takes the time it
//! works on, so callers read the clock once and tests pass a fixed time.
//! It lives in the message layer because every layer above formats dates
//! and none of them should reach into another for it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds in a UTC day (no leap seconds, as in Unix time).
const DAY_S: u64 = 86_400;

/// `now` as DE7 (MMDDhhmmss, UTC).
pub fn transmission_time(now: SystemTime) -> String {
    let rem = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() % DAY_S);
    let (_, month, day) = utc_date(now);
    format!(
        "{month:02}{day:02}{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Whole days since 1970-01-01 (UTC) at `now`; 0 for a time before it,
/// which no real clock reads.
pub fn days_since_epoch(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / DAY_S) as i64)
}

/// The UTC date (year, month, day) at `now`.
pub fn utc_date(now: SystemTime) -> (i64, u32, u32) {
    civil_from_days(days_since_epoch(now))
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (H. Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian), the
/// inverse of [`civil_from_days`] (H. Hinnant's algorithm). The caller
/// checks the month (1-12) and day ranges.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// UTC calendar time, derived from a `SystemTime` that the caller read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
}

impl Civil {
    /// The calendar fields of `now` (the epoch for a time before it).
    pub fn from_system_time(now: SystemTime) -> Civil {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (days, rem) = (secs / DAY_S, secs % DAY_S);
        let (year, month, day) = civil_from_days(days as i64);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: (rem % 3600) / 60,
            second: rem % 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_and_transmission_time() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
        let t = UNIX_EPOCH + Duration::from_secs(20_415 * 86_400 + 14 * 3600 + 30 * 60 + 5);
        assert_eq!(transmission_time(t), "1123143005");
        assert_eq!(utc_date(t), (2025, 11, 23));
        assert_eq!(days_since_epoch(t), 20_415);
        let c = Civil::from_system_time(t);
        assert_eq!((c.year, c.month, c.day), (2025, 11, 23));
        assert_eq!((c.hour, c.minute, c.second), (14, 30, 5));
    }

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 11, 23), 20_780);
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }
}
