//! The one place that decides what is sensitive and how it is shown.
//! PCI DSS 3.4.1: a PAN is displayed at most as its first six and last four
//! digits; track data, PIN blocks and card verification values are never
//! displayed at all (3.3.1). Card data held in these newtypes is zeroized
//! on drop, masked in `Debug` and `Display`, and implements no `Serialize`.

use std::fmt;

use zeroize::Zeroize;

use super::spec::Sensitivity;

/// Request fields a response never carries back: track data (DE35, DE36,
/// DE45), the PIN block (DE52) and the card's ICC request data (DE55).
pub const NEVER_ECHOED: &[u16] = &[35, 36, 45, 52, 55];

/// A PAN shown as first 6 / last 4 when it is long enough to hide digits in
/// between (13+), else as its last 4 only.
pub fn mask_pan(pan: &[u8]) -> String {
    let len = pan.len();
    let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if len >= 13 {
        format!(
            "{}{}{}",
            shown(&pan[..6]),
            "*".repeat(len - 10),
            shown(&pan[len - 4..])
        )
    } else if len > 4 {
        format!("{}{}", "*".repeat(len - 4), shown(&pan[len - 4..]))
    } else {
        "*".repeat(len)
    }
}

/// How a sensitive value is displayed.
pub fn mask(kind: Sensitivity, value: &[u8]) -> String {
    match kind {
        Sensitivity::Pan => mask_pan(value),
        Sensitivity::Track => format!("[track data, {} bytes]", value.len()),
        Sensitivity::Pin => format!("[PIN block, {} bytes]", value.len()),
        Sensitivity::Cvv => format!("[card verification data, {} bytes]", value.len()),
        Sensitivity::Secret => format!("[secret, {} bytes]", value.len()),
    }
}

/// EMV tags inside DE55 that carry card data or secrets.
pub fn emv_tag_sensitivity(tag: u32) -> Option<Sensitivity> {
    match tag {
        0x5A => Some(Sensitivity::Pan),
        0x57 | 0x56 | 0x9F6B | 0x9F1F | 0x9F20 => Some(Sensitivity::Track),
        0x99 => Some(Sensitivity::Pin),
        0x9F26 | 0x9F4B | 0x5F20 | 0x9F0B => Some(Sensitivity::Secret),
        _ => None,
    }
}

macro_rules! card_secret {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(Vec<u8>);

        impl $name {
            pub fn new(value: impl Into<Vec<u8>>) -> $name {
                $name(value.into())
            }

            /// The clear value: for use at the point it is needed, never for display.
            pub fn expose(&self) -> &[u8] {
                &self.0
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.0.zeroize();
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), mask($kind, &self.0))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&mask($kind, &self.0))
            }
        }
    };
}

card_secret!(
    /// A primary account number.
    Pan,
    Sensitivity::Pan
);
card_secret!(
    /// Track 1, 2 or 3 data.
    Track,
    Sensitivity::Track
);
card_secret!(
    /// A PIN block.
    PinBlock,
    Sensitivity::Pin
);
card_secret!(
    /// A card verification value (CVV2, CVC2, iCVV).
    Cvv,
    Sensitivity::Cvv
);

impl Pan {
    /// Whether the PAN passes the Luhn (mod 10) check.
    pub fn luhn_ok(&self) -> bool {
        luhn_valid(&self.0)
    }
}

/// The Luhn check digit for `digits` (all ASCII digits, without the check digit).
pub fn luhn_check_digit(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(d - b'0');
            if i % 2 == 0 {
                let x = v * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                v
            }
        })
        .sum();
    b'0' + ((10 - sum % 10) % 10) as u8
}

/// Whether `number` (ASCII digits, check digit last) passes the Luhn check.
pub fn luhn_valid(number: &[u8]) -> bool {
    match number.split_last() {
        Some((check, body)) if !body.is_empty() && number.iter().all(u8::is_ascii_digit) => {
            luhn_check_digit(body) == *check
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pans_show_at_most_first_six_and_last_four() {
        assert_eq!(mask_pan(b"4111111111111111"), "411111******1111");
        assert_eq!(mask_pan(b"5500000000000004"), "550000******0004");
        assert_eq!(mask_pan(b"4111111111111"), "411111***1111");
        assert_eq!(mask_pan(b"123456789012"), "********9012");
        assert_eq!(mask_pan(b"123"), "***");
    }

    #[test]
    fn newtypes_never_print_the_clear_value() {
        let pan = Pan::new(*b"4111111111111111");
        assert_eq!(format!("{pan}"), "411111******1111");
        assert_eq!(format!("{pan:?}"), "Pan(411111******1111)");
        let track = Track::new(*b"4111111111111111=2512101");
        assert!(!format!("{track:?}").contains("4111"));
        assert!(pan.luhn_ok());
        assert!(!Pan::new(*b"4111111111111112").luhn_ok());
    }

    #[test]
    fn luhn_digits() {
        assert_eq!(luhn_check_digit(b"7992739871"), b'3');
        assert!(luhn_valid(b"79927398713"));
        assert!(!luhn_valid(b"79927398710"));
        assert!(!luhn_valid(b"7"));
    }
}
