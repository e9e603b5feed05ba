//! Card-not-present checks for stand-in. A card keyed in, ordered by mail
//! or used online carries no track or chip data, so the only proof that
//! the card is at hand is the CVV2 printed on it: the HSM verifies it
//! with the issuer's CVK over the PAN and expiry date (CY, service code
//! 000). Pure: the core decides with it, the node asks the HSM.

use std::fmt;

use zeroize::Zeroize;

use crate::message::Message;

/// Where a request's CVV2 may be (its digits, 3 or 4).
const CVV2_DIGITS: std::ops::RangeInclusive<usize> = 3..=4;
/// A PAN's digits.
const PAN_DIGITS: std::ops::RangeInclusive<usize> = 12..=19;

/// A card's CVV2 and what it is computed over; `Debug` shows none of it
/// and it is zeroized when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Cvv2Check {
    pub pan: String,
    /// YYMM, as DE14 carries it.
    pub expiry: String,
    pub cvv2: String,
}

impl Drop for Cvv2Check {
    fn drop(&mut self) {
        self.pan.zeroize();
        self.expiry.zeroize();
        self.cvv2.zeroize();
    }
}

impl fmt::Debug for Cvv2Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvv2Check(..)")
    }
}

/// Whether `request` was made without the card read: no track 1 or 2
/// (DE45, DE35), no track 3 (DE36), no chip data (DE55).
pub fn card_not_present(request: &Message) -> bool {
    ![35, 36, 45, 55].iter().any(|&n| request.has(n))
}

/// The CVV2 in field `field` of `request` with its PAN (DE2) and expiry
/// (DE14); `None` when any is missing or not digits of the right count.
pub fn cvv2_of(request: &Message, field: u16) -> Option<Cvv2Check> {
    let digits = |n: u16, count: &std::ops::RangeInclusive<usize>| {
        let v = request.value(n)?;
        let ok = count.contains(&v.len()) && v.iter().all(u8::is_ascii_digit);
        ok.then(|| String::from_utf8_lossy(v).into_owned())
    };
    Some(Cvv2Check {
        pan: digits(2, &PAN_DIGITS)?,
        expiry: digits(14, &(4..=4))?,
        cvv2: digits(field, &CVV2_DIGITS)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::mti::Mti;

    fn keyed(cvv2: &str) -> Message {
        let mut m = Message::new(Mti::from_digits(*b"0100").unwrap());
        m.set_str(2, "4761739001010010").unwrap();
        m.set_str(14, "2812").unwrap();
        m.set_str(48, cvv2).unwrap();
        m
    }

    #[test]
    fn a_keyed_card_with_its_cvv2_is_checked() {
        let m = keyed("123");
        assert!(card_not_present(&m));
        let c = cvv2_of(&m, 48).unwrap();
        assert_eq!(
            (c.pan.as_str(), c.expiry.as_str(), c.cvv2.as_str()),
            ("4761739001010010", "2812", "123")
        );
        assert_eq!(format!("{c:?}"), "Cvv2Check(..)");
    }

    #[test]
    fn a_card_read_is_present_and_bad_or_missing_values_give_nothing() {
        let mut m = keyed("123");
        m.set_str(35, "4761739001010010=28121010000000000000")
            .unwrap();
        assert!(!card_not_present(&m));
        assert!(cvv2_of(&keyed("12"), 48).is_none(), "too short");
        assert!(cvv2_of(&keyed("12a"), 48).is_none(), "not digits");
        assert!(cvv2_of(&keyed("123"), 47).is_none(), "not there");
        let mut no_expiry = keyed("123");
        no_expiry.remove(14);
        assert!(cvv2_of(&no_expiry, 48).is_none());
    }
}
