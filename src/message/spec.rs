//! A dialect of ISO 8583 as data: how the MTI, bitmaps, length prefixes and
//! each data element are laid out on the wire. Specs are loaded from TOML
//! files (see `spec_file`); this module holds the validated, ready-to-use form.

use std::fmt;

use serde::Deserialize;

use super::layout::{self, FieldLayout};
use super::swar;

/// Highest data element number with a tertiary bitmap.
pub const FIELD_NUMBER_MAX: u16 = 192;

const CLASS_N: u8 = 1;
const CLASS_A: u8 = 2;
const CLASS_AN: u8 = 4;
const CLASS_ANS: u8 = 8;
const CLASS_Z: u8 = 16;

/// For each byte, the classes it belongs to (bit per class): one table
/// lookup per byte on the hot path of parse and build.
const CLASS_OF_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let mut bits = 0;
        if c.is_ascii_digit() {
            bits |= CLASS_N | CLASS_AN | CLASS_Z;
        }
        if c.is_ascii_alphabetic() || c == b' ' {
            bits |= CLASS_A | CLASS_AN;
        }
        if (c >= 0x20 && c <= 0x7E) || c >= 0xA0 {
            bits |= CLASS_ANS;
        }
        if c == b'=' || c == b'D' {
            bits |= CLASS_Z;
        }
        table[b] = bits;
        b += 1;
    }
    table
};

/// The position of the first byte outside the class (the rare, invalid
/// case: the scans in `Class::check` only say whether there is one).
#[cold]
fn first_outside(value: &[u8], mask: u8) -> usize {
    value
        .iter()
        .position(|&b| CLASS_OF_BYTE[usize::from(b)] & mask == 0)
        .unwrap_or(0)
}

/// Content class of a data element (ISO 8583 attribute notation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Numeric digits.
    N,
    /// Alphabetic characters and spaces.
    A,
    /// Alphanumeric characters and spaces.
    An,
    /// Alphanumeric and special (printable) characters.
    Ans,
    /// Binary data.
    B,
    /// Track 2 / 3 code set: digits and the separator `=` (or `D`).
    Z,
    /// A `C` (credit) or `D` (debit) sign followed by digits.
    Xn,
}

impl Class {
    /// Checks `value` against the class; `Err(position)` names the first bad
    /// byte. The scans go eight bytes at a time (see `swar`).
    #[inline]
    pub fn check(self, value: &[u8]) -> Result<(), usize> {
        if self.admits(value) {
            return Ok(());
        }
        Err(match self {
            Class::B => 0,
            Class::Xn => match value.split_first() {
                Some((sign, digits)) if *sign == b'C' || *sign == b'D' => {
                    first_outside(digits, CLASS_N) + 1
                }
                _ => 0,
            },
            Class::N => first_outside(value, CLASS_N),
            Class::A => first_outside(value, CLASS_A),
            Class::An => first_outside(value, CLASS_AN),
            Class::Ans => first_outside(value, CLASS_ANS),
            Class::Z => first_outside(value, CLASS_Z),
        })
    }

    /// Whether every byte of `value` belongs to the class: `check` without
    /// the position (what the parser's vector run checks fall back to).
    #[inline]
    pub(crate) fn admits(self, value: &[u8]) -> bool {
        match self {
            Class::B => true,
            Class::Xn => match value.split_first() {
                Some((sign, digits)) => {
                    (*sign == b'C' || *sign == b'D') && swar::all_digits(digits)
                }
                None => false,
            },
            Class::N => swar::all_digits(value),
            Class::A => swar::all_alpha(value),
            Class::An => swar::all_alphanumeric(value),
            Class::Ans => swar::all_printable(value),
            Class::Z => swar::all_track(value),
        }
    }

    /// Extra value bytes beyond the counted size (the sign of `xn`).
    pub fn sign_bytes(self) -> usize {
        usize::from(self == Class::Xn)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Class::N => "n",
            Class::A => "a",
            Class::An => "an",
            Class::Ans => "ans",
            Class::B => "b",
            Class::Z => "z",
            Class::Xn => "x+n",
        })
    }
}

/// How characters, digits or bytes are represented on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// One ASCII (Latin-1) byte per character.
    Ascii,
    /// One EBCDIC (code page 500) byte per character.
    Ebcdic,
    /// Packed BCD, two digits per byte.
    Bcd,
    /// Raw bytes (binary fields only).
    Binary,
    /// Binary data as uppercase hexadecimal ASCII text, two characters per byte.
    Hex,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Ascii => "ascii",
            Encoding::Ebcdic => "ebcdic",
            Encoding::Bcd => "bcd",
            Encoding::Binary => "binary",
            Encoding::Hex => "hex",
        })
    }
}

/// How a bitmap is represented on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BitmapEncoding {
    /// 8 raw bytes per bitmap.
    Binary,
    /// 16 ASCII hexadecimal characters per bitmap.
    Hex,
}

/// Where the pad nibble of an odd number of BCD digits goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// A leading `0` nibble.
    #[default]
    Left,
    /// A trailing `0` nibble.
    Right,
    /// A trailing `F` nibble.
    RightF,
}

/// What kind of secret a field carries; decides how it is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    /// A primary account number: shown as first 6 / last 4.
    Pan,
    /// Magnetic stripe track data: never shown.
    Track,
    /// A PIN block: never shown.
    Pin,
    /// A card verification value or a field that carries one: never shown.
    Cvv,
    /// Any other secret (keys, cryptograms): never shown.
    Secret,
}

/// The length rule of a data element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// Always exactly `size` characters, digits or bytes.
    Fixed(usize),
    /// A length prefix of `digits` digits (2 = LL, 3 = LLL, 4 = LLLL), then up to `max`.
    Variable { digits: u8, max: usize },
}

/// A fixed-position subfield.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subfield {
    pub name: String,
    pub offset: usize,
    pub size: usize,
}

/// Optional inner structure of a field's value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Structure {
    #[default]
    None,
    /// BER-TLV data objects (EMV, DE55).
    Tlv,
    /// Mastercard private data subelements: 4-digit tag, 3-digit length, data.
    Pds,
    /// Fixed-position subfields.
    Subfields(Vec<Subfield>),
}

/// One data element of a dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub number: u16,
    pub name: String,
    pub class: Class,
    pub length: Length,
    pub encoding: Encoding,
    pub length_encoding: Encoding,
    pub padding: Padding,
    pub sensitivity: Option<Sensitivity>,
    pub structure: Structure,
}

impl FieldSpec {
    /// The largest value length in bytes of the logical value.
    pub fn value_len_max(&self) -> usize {
        let size = match self.length {
            Length::Fixed(size) => size,
            Length::Variable { max, .. } => max,
        };
        size + self.class.sign_bytes()
    }

    /// Checks a logical value against this field's class and length rule.
    /// `offset` is where the value starts, for the error.
    pub fn check_value(&self, value: &[u8], offset: usize) -> Result<(), super::MessageError> {
        // One rule, kept where the parse and build loops use it.
        super::layout::FieldLayout::of(self).check(self.number, value, offset)
    }
}

/// The MTI version digit a dialect uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Version {
    #[serde(rename = "1987")]
    V1987,
    #[serde(rename = "1993")]
    V1993,
    #[serde(rename = "2003")]
    V2003,
}

impl Version {
    /// The first MTI digit.
    pub fn digit(self) -> u8 {
        match self {
            Version::V1987 => 0,
            Version::V1993 => 1,
            Version::V2003 => 2,
        }
    }
}

/// A validated dialect: everything the parser and builder need.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub description: String,
    pub version: Version,
    pub mti_encoding: Encoding,
    pub bitmap_encoding: BitmapEncoding,
    pub tertiary_bitmap: bool,
    /// The secondary bitmap is sent in every message, even when empty
    /// (Mastercard IPM records always set bit 1).
    pub secondary_bitmap_always: bool,
    /// Indexed by field number; entries 0 and 1 are always `None`.
    pub(crate) fields: Box<[Option<FieldSpec>]>,
    /// `fields` compiled for the parse and build loops, same indexing.
    pub(crate) layouts: Box<[FieldLayout]>,
    /// Bytes of transcoded value per byte on the wire, at most, over the
    /// fields (2 for BCD digits, 1 for EBCDIC and hex text, 0 when every
    /// value stays in the frame): sizes the parser's transcoding buffer.
    pub(crate) decoded_per_wire_byte: u8,
    /// Identity of this spec (shared by its clones, which have the same fields).
    pub(crate) id: u64,
    /// Parse plans of the bitmaps seen (shared by the clones too).
    pub(crate) plans: std::sync::Arc<super::plan::PlanCache>,
}

impl Spec {
    /// Places validated field definitions at their numbers (see
    /// `spec_file`) and compiles them into the table the hot loops use.
    pub(crate) fn index_fields(
        list: Vec<FieldSpec>,
    ) -> (Box<[Option<FieldSpec>]>, Box<[FieldLayout]>) {
        let mut fields: Box<[Option<FieldSpec>]> =
            vec![None; usize::from(FIELD_NUMBER_MAX) + 1].into_boxed_slice();
        for f in list {
            let n = usize::from(f.number);
            fields[n] = Some(f);
        }
        let layouts = layout::table(&fields);
        (fields, layouts)
    }

    /// The compiled layout of field `number` (undefined ones say so).
    #[inline]
    pub(crate) fn layout(&self, number: u16) -> Option<&FieldLayout> {
        self.layouts.get(usize::from(number)).filter(|l| l.defined)
    }

    /// The definition of field `number`, if the dialect has one.
    #[inline]
    pub fn field(&self, number: u16) -> Option<&FieldSpec> {
        self.fields.get(usize::from(number))?.as_ref()
    }

    /// All defined fields in ascending order.
    pub fn fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.fields.iter().flatten()
    }

    /// The highest field number a message of this dialect can carry.
    pub fn field_number_max(&self) -> u16 {
        if self.tertiary_bitmap {
            FIELD_NUMBER_MAX
        } else {
            128
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_checks_name_the_first_bad_position() {
        assert_eq!(Class::N.check(b"0123"), Ok(()));
        assert_eq!(Class::N.check(b"01a3"), Err(2));
        assert_eq!(Class::A.check(b"AB c"), Ok(()));
        assert_eq!(Class::A.check(b"AB1"), Err(2));
        assert_eq!(Class::An.check(b"A1 b"), Ok(()));
        assert_eq!(Class::An.check(b"A1-"), Err(2));
        assert_eq!(Class::Ans.check(b"A1-~ "), Ok(()));
        assert_eq!(Class::Ans.check(b"A\x07"), Err(1));
        assert_eq!(Class::Z.check(b"4111=2512"), Ok(()));
        assert_eq!(Class::Z.check(b"4111?"), Err(4));
        assert_eq!(Class::Xn.check(b"C00000100"), Ok(()));
        assert_eq!(Class::Xn.check(b"X00000100"), Err(0));
        assert_eq!(Class::Xn.check(b"D0000A100"), Err(5));
        assert_eq!(Class::Xn.check(b""), Err(0));
        assert_eq!(Class::B.check(&[0, 255]), Ok(()));
    }
}
