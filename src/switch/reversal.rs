//! The reversal advice (0420) the switch sends an issuer for a request
//! whose outcome is unknown (a time-out, an answer without a usable DE39,
//! an approval that never reached its acquirer). Pure: the time and the
//! STAN are passed in.

use std::time::SystemTime;

use crate::message::time::transmission_time;
use crate::message::{Message, Mti};

/// Fields a reversal carries over from the request it reverses. DE7 and
/// DE11 are not among them: the advice is a message of its own, with its
/// own transmission time and STAN; the original's are in DE90 / DE56.
const CARRIED: &[u16] = &[2, 3, 4, 12, 13, 14, 32, 33, 37, 41, 42, 49];

/// A 0420 in the issuer's MTI `version` reversing `original` (as it was
/// forwarded), sent at `now` with STAN `stan`.
pub fn reversal_advice(version: u8, original: &Message, stan: u32, now: SystemTime) -> Message {
    let mti: Mti = "0420".parse().expect("constant MTI");
    reversal(
        mti.with_version(version),
        original,
        stan,
        &transmission_time(now),
    )
}

/// A reversal (`mti`: 0400 or 0420, in the original's version) of
/// `original` with STAN `stan` and DE7 `transmission` (MMDDhhmmss). It
/// refers to the original by DE90 (1987: original MTI, STAN, DE7,
/// acquirer and forwarding institutions, each padded to 11 digits) or DE56
/// (1993 and later: MTI, STAN, DE12, acquirer), with DE39 68 (1987) or
/// DE24 400 and DE25 4021 (1993). The switch and the load generator's
/// terminals both build theirs here.
pub fn reversal(mti: Mti, original: &Message, stan: u32, transmission: &str) -> Message {
    let version = mti.version();
    let mut rev = Message::new(mti);
    for &n in CARRIED {
        if let Some(v) = original.value_bytes(n) {
            let _ = rev.set(n, v);
        }
    }
    let _ = rev.set_str(7, transmission);
    let _ = rev.set_num(11, u64::from(stan % 1_000_000), 6);
    let omti = original.mti().to_string();
    let ostan = original.get_str(11).unwrap_or("000000");
    let acq = original.get_str(32).unwrap_or("");
    if version == 0 {
        let _ = rev.set_str(39, "68");
        let fwd = original.get_str(33).unwrap_or("");
        let odt = original.get_str(7).unwrap_or("0000000000");
        let _ = rev.set_str(90, &format!("{omti}{ostan}{odt}{acq:0>11}{fwd:0>11}"));
    } else {
        let _ = rev.set_str(24, "400");
        let _ = rev.set_str(25, "4021");
        let odt = original.get_str(12).unwrap_or("000000000000");
        let _ = rev.set_str(56, &format!("{omti}{ostan}{odt}{:02}{acq}", acq.len()));
    }
    rev
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn original() -> Message {
        let mut m = Message::new("0100".parse().expect("mti"));
        for (n, v) in [
            (2, "4761739001010119"),
            (3, "000000"),
            (4, "000000001000"),
            (7, "1123143005"),
            (11, "000042"),
            (32, "1234567"),
            (33, "99000000001"),
            (37, "RRN000000042"),
            (41, "TERM0001"),
            (49, "978"),
        ] {
            m.set_str(n, v).expect("set");
        }
        m
    }

    /// Regression (issue 19, point 5): the advice had the original's DE7;
    /// it carries its own, and the original's in DE90.
    #[test]
    fn a_reversal_has_its_own_time_and_stan_and_names_the_original() {
        // 2026-12-01 10:20:30 UTC.
        let now = UNIX_EPOCH + Duration::from_secs(1_796_120_430);
        let rev = reversal_advice(0, &original(), 1_000_007, now);
        assert_eq!(rev.mti().to_string(), "0420");
        assert_eq!(rev.get_str(7), Some("1201102030"));
        assert_eq!(rev.get_str(11), Some("000007"));
        assert_eq!(
            rev.get_str(90),
            Some("010000004211231430050000123456799000000001")
        );
        for n in [2, 3, 4, 37, 41, 49] {
            assert_eq!(rev.get(n), original().get(n), "DE{n}");
        }
        let rev93 = reversal_advice(1, &original(), 8, now);
        assert_eq!(rev93.mti().to_string(), "1420");
        assert_eq!(rev93.get_str(7), Some("1201102030"));
        assert!(
            rev93
                .get_str(56)
                .is_some_and(|v| v.starts_with("0100000042"))
        );
    }
}
