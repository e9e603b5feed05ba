//! The one place that decides what is sensitive and how it is shown.
//! PCI DSS 3.4.1: a PAN is displayed at most as its first six and last four
//! digits; track data, PIN blocks and card verification values are never
//! displayed at all (3.3.1). Card data held in these newtypes is zeroized
//! on drop, masked in `Debug` and `Display`, and implements no `Serialize`.

use std::fmt;

use zeroize::Zeroize;

use super::spec::{Class, FieldSpec, Sensitivity, Structure};
use super::tlv;

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

/// EMV tags (in DE55 and any `structure = "tlv"` field) that are card
/// data or secrets, and how each is shown when card data is masked:
/// - `5A` application PAN: like a PAN, first 6 / last 4 of its digits;
/// - `57` track 2 equivalent, `56` track 1 equivalent, `9F6B` track 2
///   (contactless), `9F1F` track 1 and `9F20` track 2 discretionary data:
///   track data, never shown (PCI DSS 3.3.1);
/// - `99` transaction PIN data: a PIN block, never shown;
/// - `9F26` application cryptogram, `9F4B` signed dynamic application
///   data, `5F20` cardholder name and `9F0B` its extension: never shown.
///
/// `9F27` (cryptogram information data, one byte saying whether the
/// cryptogram is an ARQC, TC or AAC) is not card data and stays visible,
/// as do the amounts, dates, counters and terminal data around them. No
/// PDS tag of the shipped specs (DE48, DE62, DE123-125) carries card
/// data, so PDS fields are shown as they are.
pub fn emv_tag_sensitivity(tag: u32) -> Option<Sensitivity> {
    match tag {
        0x5A => Some(Sensitivity::Pan),
        0x57 | 0x56 | 0x9F6B | 0x9F1F | 0x9F20 => Some(Sensitivity::Track),
        0x99 => Some(Sensitivity::Pin),
        0x9F26 | 0x9F4B | 0x5F20 | 0x9F0B => Some(Sensitivity::Secret),
        _ => None,
    }
}

/// One EMV data object's value as shown when card data is masked: the
/// PAN (`5A`, packed BCD padded with `F`) as first 6 / last 4 of its
/// digits, other card data by [`mask`], the rest as uppercase hex.
pub fn show_emv_value(tag: u32, value: &[u8]) -> String {
    match emv_tag_sensitivity(tag) {
        Some(Sensitivity::Pan) => match bcd_digits(value) {
            Some(digits) => mask_pan(&digits),
            None => format!("[PAN, {} bytes]", value.len()),
        },
        Some(kind) => mask(kind, value),
        None => hex::encode_upper(value),
    }
}

/// The digits of a packed BCD number, right-padded with `F` nibbles;
/// `None` when a nibble is not a digit (or a digit follows the padding).
fn bcd_digits(value: &[u8]) -> Option<Vec<u8>> {
    let nibbles = value.iter().flat_map(|b| [b >> 4, b & 0x0F]);
    let mut digits = Vec::with_capacity(value.len() * 2);
    let mut padded = false;
    for n in nibbles {
        match n {
            0..=9 if !padded => digits.push(b'0' + n),
            0x0F => padded = true,
            _ => return None,
        }
    }
    Some(digits)
}

/// How deep constructed templates (`70`, `77`, ...) are walked; deeper
/// data cannot be shown safely and is withheld.
pub const TLV_DEPTH_MAX: usize = 4;

/// One data object met while walking a TLV field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownObject {
    /// 0 for the field's own objects, 1 inside a template, ...
    pub depth: usize,
    pub tag: u32,
    /// The value as shown; `None` for a template, whose objects follow.
    pub shown: Option<String>,
}

/// A TLV field that cannot be walked: it is then withheld whole, since
/// what is card data in it cannot be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlvWalkError {
    /// The field or a template inside it is not valid BER-TLV.
    #[error("{0}")]
    Tlv(#[from] tlv::TlvError),
    /// Templates nested deeper than [`TLV_DEPTH_MAX`].
    #[error("templates nested deeper than {TLV_DEPTH_MAX}")]
    TooDeep,
}

/// Every data object of a TLV field, templates walked into, values
/// masked by [`show_emv_value`].
pub fn walk_tlv(value: &[u8]) -> Result<Vec<ShownObject>, TlvWalkError> {
    let mut out = Vec::new();
    walk_level(value, 0, &mut out)?;
    Ok(out)
}

fn walk_level(value: &[u8], depth: usize, out: &mut Vec<ShownObject>) -> Result<(), TlvWalkError> {
    if depth > TLV_DEPTH_MAX {
        return Err(TlvWalkError::TooDeep);
    }
    for object in tlv::parse(value)? {
        if object.is_constructed() {
            out.push(ShownObject {
                depth,
                tag: object.tag,
                shown: None,
            });
            walk_level(object.value, depth + 1, out)?;
        } else {
            out.push(ShownObject {
                depth,
                tag: object.tag,
                shown: Some(show_emv_value(object.tag, object.value)),
            });
        }
    }
    Ok(())
}

/// Whether a TLV field holds card data (see [`emv_tag_sensitivity`]), or
/// cannot be walked and so might.
pub fn tlv_holds_card_data(value: &[u8]) -> bool {
    fn level(value: &[u8], depth: usize) -> bool {
        let Ok(objects) = tlv::parse(value) else {
            return true;
        };
        objects.iter().any(|o| {
            emv_tag_sensitivity(o.tag).is_some()
                || (o.is_constructed() && (depth >= TLV_DEPTH_MAX || level(o.value, depth + 1)))
        })
    }
    level(value, 0)
}

/// A TLV field on one line, card data masked:
/// `9F26=[secret, 8 bytes] 9F27=80 70=(5A=476173******0119 57=[track data, 19 bytes])`;
/// a field that cannot be walked is withheld with the reason.
pub fn show_tlv(value: &[u8]) -> String {
    let objects = match walk_tlv(value) {
        Ok(objects) => objects,
        Err(e) => return format!("[{} bytes of TLV, not shown: {e}]", value.len()),
    };
    let mut out = String::new();
    let mut open = 0;
    for o in &objects {
        while open > o.depth {
            out.push(')');
            open -= 1;
        }
        if !out.is_empty() && !out.ends_with('(') {
            out.push(' ');
        }
        out.push_str(&tlv::tag_hex(o.tag));
        out.push('=');
        match &o.shown {
            Some(shown) => out.push_str(shown),
            None => {
                out.push('(');
                open += 1;
            }
        }
    }
    out.extend(std::iter::repeat_n(')', open));
    out
}

/// A field value as stored: Latin-1 characters for text classes,
/// uppercase hex for binary ones (and fields the spec does not know).
pub fn plain(fs: Option<&FieldSpec>, value: &[u8]) -> String {
    match fs.map(|f| f.class) {
        Some(Class::B) | None => hex::encode_upper(value),
        Some(_) => value.iter().map(|&b| char::from(b)).collect(),
    }
}

/// A field value as every masked output shows it (JSON, replay reports,
/// `send`): sensitive fields by [`mask`], TLV fields by [`show_tlv`],
/// the rest by [`plain`].
pub fn show_field(fs: Option<&FieldSpec>, value: &[u8]) -> String {
    match fs.and_then(|f| f.sensitivity) {
        Some(kind) => mask(kind, value),
        None if fs.is_some_and(|f| matches!(f.structure, Structure::Tlv)) => show_tlv(value),
        None => plain(fs, value),
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
    fn tlv_card_data_is_masked_inside_templates_too() {
        // 5A PAN, 9F27, and a 70 template holding
        // 57 track 2 equivalent and 5F20 cardholder name.
        let data = hex::decode(
            "5A0847617390010101199F2701807015570A4761739001010119D2715F200654455354204A",
        )
        .expect("hex");
        assert_eq!(
            show_tlv(&data),
            "5A=476173******0119 9F27=80 70=(57=[track data, 10 bytes] 5F20=[secret, 6 bytes])"
        );
        assert!(tlv_holds_card_data(&data));
        assert!(!tlv_holds_card_data(&hex::decode("9F270180").expect("hex")));
        // Unwalkable TLV is withheld whole, and counts as card data.
        let cut = &data[..data.len() - 2];
        assert!(show_tlv(cut).starts_with("[35 bytes of TLV, not shown: TLV at offset"));
        assert!(tlv_holds_card_data(cut));
        let mut deep = hex::decode("5A0141").expect("hex");
        for _ in 0..=TLV_DEPTH_MAX {
            let mut outer = vec![0x70, deep.len() as u8];
            outer.extend_from_slice(&deep);
            deep = outer;
        }
        assert_eq!(walk_tlv(&deep), Err(TlvWalkError::TooDeep));
        assert!(tlv_holds_card_data(&deep));
        // 13 digits, padded with F.
        let odd = hex::decode("4761739001010F").expect("hex");
        assert_eq!(show_emv_value(0x5A, &odd), "476173***1010");
        assert_eq!(show_emv_value(0x5A, &[0x41, 0x1A]), "[PAN, 2 bytes]");
    }

    proptest::proptest! {
        /// Whatever surrounds them, and however deep in templates, the
        /// values of card data tags never show in clear.
        #[test]
        fn card_data_values_never_show(
            secret in proptest::collection::vec(proptest::prelude::any::<u8>(), 6..20),
            other in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20),
            tag in proptest::sample::select(vec![0x57u32, 0x56, 0x5F20, 0x9F1F, 0x9F20, 0x9F26, 0x9F6B, 0x99]),
            nested in 0usize..=TLV_DEPTH_MAX,
        ) {
            let mut data = bytes::BytesMut::new();
            tlv::write(0x9F36, &other, &mut data);
            tlv::write(tag, &secret, &mut data);
            let mut data = data.to_vec();
            for _ in 0..nested {
                let mut outer = bytes::BytesMut::new();
                tlv::write(0x70, &data, &mut outer);
                data = outer.to_vec();
            }
            let shown = show_tlv(&data);
            let clear = hex::encode_upper(&secret);
            proptest::prop_assert!(!shown.contains(&clear), "{}", shown);
            proptest::prop_assert!(shown.contains(&format!("{} bytes]", secret.len())), "{}", shown);
            proptest::prop_assert!(tlv_holds_card_data(&data));
        }
    }

    #[test]
    fn luhn_digits() {
        assert_eq!(luhn_check_digit(b"7992739871"), b'3');
        assert!(luhn_valid(b"79927398713"));
        assert!(!luhn_valid(b"79927398710"));
        assert!(!luhn_valid(b"7"));
    }
}
