//! DE31 acquirer reference number: 23 digits = indicator digit, 6-digit
//! acquirer BIN, YDDD (last digit of the year, day of the year), 11-digit
//! sequence, Luhn check digit over the first 22.

use crate::message::sensitive::{luhn_check_digit, luhn_valid};

/// The largest sequence that fits the 11 digits.
pub const ARN_SEQ_MAX: u64 = 99_999_999_999;

/// Why an ARN could not be formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArnError {
    #[error("ARN indicator must be one digit, got {0}")]
    Indicator(u8),
    #[error("ARN acquirer BIN must be 6 digits, got {0:?}")]
    Bin(String),
    #[error("ARN sequence {0} exceeds 11 digits")]
    Sequence(u64),
    #[error("ARN day of year {0} is not 1..=366")]
    Day(u32),
}

/// Forms the 23-digit ARN.
pub fn arn(
    indicator: u8,
    bin: &str,
    year: i64,
    day_of_year: u32,
    seq: u64,
) -> Result<String, ArnError> {
    if indicator > 9 {
        return Err(ArnError::Indicator(indicator));
    }
    if bin.len() != 6 || !bin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ArnError::Bin(bin.to_string()));
    }
    if seq > ARN_SEQ_MAX {
        return Err(ArnError::Sequence(seq));
    }
    if !(1..=366).contains(&day_of_year) {
        return Err(ArnError::Day(day_of_year));
    }
    let mut out = format!(
        "{indicator}{bin}{}{day_of_year:03}{seq:011}",
        year.rem_euclid(10)
    );
    let check = luhn_check_digit(out.as_bytes());
    out.push(char::from(check));
    debug_assert_eq!(out.len(), 23);
    Ok(out)
}

/// Whether `text` is a well-formed ARN (23 digits, Luhn valid).
pub fn is_valid(text: &[u8]) -> bool {
    text.len() == 23 && luhn_valid(text)
}

/// Day of the year (1-based) of a civil date.
pub fn day_of_year(year: i64, month: u32, day: u32) -> u32 {
    const BEFORE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let m = month.clamp(1, 12) as usize;
    BEFORE[m - 1] + day + u32::from(leap && m > 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms_a_luhn_valid_23_digit_reference() {
        let a = arn(7, "545400", 2026, 327, 42).unwrap();
        assert_eq!(&a[..18], "754540063270000000");
        assert_eq!(&a[18..22], "0042");
        assert!(is_valid(a.as_bytes()));
        assert_eq!(day_of_year(2024, 3, 1), 61);
        assert_eq!(day_of_year(2026, 12, 31), 365);
        assert!(arn(10, "545400", 2026, 1, 1).is_err());
        assert!(arn(7, "5454", 2026, 1, 1).is_err());
        assert!(arn(7, "545400", 2026, 1, ARN_SEQ_MAX + 1).is_err());
    }

    proptest! {
        #[test]
        fn every_arn_passes_luhn_and_one_changed_digit_fails(
            ind in 0u8..10, bin in 100000u32..999999, day in 1u32..366, seq in 0..=ARN_SEQ_MAX, pos in 0usize..23, delta in 1u8..10,
        ) {
            let a = arn(ind, &bin.to_string(), 2026, day, seq).unwrap();
            prop_assert!(is_valid(a.as_bytes()));
            let mut bad = a.into_bytes();
            bad[pos] = b'0' + (bad[pos] - b'0' + delta) % 10;
            prop_assert!(!is_valid(&bad));
        }
    }
}
