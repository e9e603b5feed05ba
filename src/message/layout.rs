//! Field specs compiled, once at load time, into a compact table indexed by
//! field number: everything the parse and build loops need per field as
//! plain numbers, so the hot loops do table look-ups instead of matching on
//! `FieldSpec`'s length rule, class and encodings for every value.

use std::sync::atomic::{AtomicU64, Ordering};

use super::codec;
use super::error::{MessageError, Part};
use super::spec::{Class, Encoding, FieldSpec, Length, Padding, Structure};

/// A value's inner structure that parsing checks (`parse::check_inner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inner {
    /// None, or fixed subfields (any value of the right size has them).
    Unchecked,
    /// BER-TLV data objects (`tlv::check`).
    Tlv,
    /// Mastercard PDS (`pds::check`).
    Pds,
}

/// The wire rules of one data element, precomputed from its `FieldSpec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldLayout {
    /// Whether the dialect defines the field at all.
    pub defined: bool,
    pub class: Class,
    pub encoding: Encoding,
    pub padding: Padding,
    /// Bytes of the length prefix; 0 for a fixed field.
    pub prefix_bytes: u8,
    /// Digits of the length prefix (2 = LL, ...); 0 for a fixed field.
    pub prefix_digits: u8,
    pub prefix_encoding: Encoding,
    /// Fixed field: its units (characters, digits or hex characters);
    /// variable field: the most units its prefix may announce.
    pub units: u32,
    /// Fixed field: the exact logical value length (sign included);
    /// variable: the maximum the spec states (as `FieldSpec::check_value`).
    pub value_len: u32,
    /// The `x+n` sign byte (0 or 1).
    pub sign_bytes: u8,
    /// Fixed field: its bytes on the wire; variable: 0.
    pub fixed_wire_bytes: u32,
    /// The parser's fast pass must scan the decoded value for its class
    /// (not for binary data, nor for BCD digits: the decoder admits digits only).
    pub scan: bool,
    /// The length prefix is ASCII digits and the class admits digits: the
    /// fast pass scans prefix and value as one run.
    pub prefix_in_run: bool,
    /// The inner structure the value must have.
    pub inner: Inner,
}

impl FieldLayout {
    const UNDEFINED: FieldLayout = FieldLayout {
        defined: false,
        class: Class::B,
        encoding: Encoding::Binary,
        padding: Padding::Left,
        prefix_bytes: 0,
        prefix_digits: 0,
        prefix_encoding: Encoding::Binary,
        units: 0,
        value_len: 0,
        sign_bytes: 0,
        fixed_wire_bytes: 0,
        scan: false,
        prefix_in_run: false,
        inner: Inner::Unchecked,
    };

    pub(crate) fn of(fs: &FieldSpec) -> FieldLayout {
        let (prefix_digits, prefix_bytes) = match fs.length {
            Length::Fixed(_) => (0, 0),
            Length::Variable { digits, .. } => (
                digits,
                codec::prefix_bytes(digits, fs.length_encoding) as u8,
            ),
        };
        let mut layout = FieldLayout {
            defined: true,
            class: fs.class,
            encoding: fs.encoding,
            padding: fs.padding,
            prefix_bytes,
            prefix_digits,
            prefix_encoding: fs.length_encoding,
            units: to_u32(codec::max_units(fs)),
            value_len: to_u32(match fs.length {
                Length::Fixed(size) => size + fs.class.sign_bytes(),
                Length::Variable { max, .. } => max,
            }),
            sign_bytes: fs.class.sign_bytes() as u8,
            fixed_wire_bytes: 0,
            scan: match fs.class {
                Class::B => false,
                Class::N | Class::Z => fs.encoding != Encoding::Bcd,
                _ => true,
            },
            prefix_in_run: matches!(fs.length, Length::Variable { .. })
                && fs.length_encoding == Encoding::Ascii
                && matches!(fs.encoding, Encoding::Ascii | Encoding::Binary)
                && matches!(fs.class, Class::N | Class::An | Class::Ans | Class::Z),
            inner: match fs.structure {
                Structure::Tlv => Inner::Tlv,
                Structure::Pds => Inner::Pds,
                Structure::None | Structure::Subfields(_) => Inner::Unchecked,
            },
        };
        if !layout.is_variable() {
            layout.fixed_wire_bytes = to_u32(layout.wire_bytes(layout.units as usize));
        }
        layout
    }

    /// Whether the field has a length prefix.
    #[inline]
    pub fn is_variable(&self) -> bool {
        self.prefix_digits != 0
    }

    /// Bytes on the wire of a value with `units` counted units (prefix excluded).
    #[inline]
    pub fn wire_bytes(&self, units: usize) -> usize {
        let sign = usize::from(self.sign_bytes);
        match self.encoding {
            Encoding::Ascii | Encoding::Ebcdic => units + sign,
            Encoding::Bcd => sign + units.div_ceil(2),
            Encoding::Binary | Encoding::Hex => units,
        }
    }

    /// What a prefix counts, in wire units, for a logical value length.
    #[inline]
    pub fn units_of_value(&self, value_len: usize) -> usize {
        match self.encoding {
            Encoding::Hex => value_len * 2,
            _ => value_len - usize::from(self.sign_bytes).min(value_len),
        }
    }
}

impl FieldLayout {
    /// Checks a logical value of field `number` against its length rule and
    /// class (`FieldSpec::check_value` comes here too). `offset` is where
    /// the value starts, for the error.
    #[inline]
    pub fn check(&self, number: u16, value: &[u8], offset: usize) -> Result<(), MessageError> {
        let part = Part::Field(number);
        let limit = self.value_len as usize;
        if self.is_variable() {
            if value.len() > limit {
                return Err(MessageError::TooLong {
                    part,
                    offset,
                    length: value.len(),
                    max: limit,
                });
            }
        } else if value.len() != limit {
            return Err(MessageError::WrongSize {
                part,
                offset,
                length: value.len(),
                size: limit,
            });
        }
        self.class
            .check(value)
            .map_err(|position| MessageError::InvalidContent {
                part,
                offset,
                class: self.class,
                position,
            })
    }
}

/// Spec loading bounds every size far below `u32::MAX`; saturate anyway.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The table for fields 0..=192 (0 and 1 are never defined).
pub(crate) fn table(fields: &[Option<FieldSpec>]) -> Box<[FieldLayout]> {
    fields
        .iter()
        .map(|f| f.as_ref().map_or(FieldLayout::UNDEFINED, FieldLayout::of))
        .collect()
}

/// Bytes of transcoded value per byte on the wire, at most, over the
/// defined fields (see `Spec::decoded_per_wire_byte`).
pub(crate) fn decoded_per_wire_byte(layouts: &[FieldLayout]) -> u8 {
    layouts
        .iter()
        .filter(|l| l.defined)
        .map(|l| match l.encoding {
            Encoding::Bcd => 2,
            Encoding::Ebcdic | Encoding::Hex => 1,
            Encoding::Ascii | Encoding::Binary => 0,
        })
        .max()
        .unwrap_or(0)
}

/// A process-unique identity for a loaded spec. A message remembers which
/// spec checked its parsed values, so building it with the same spec need
/// not check them again.
pub(crate) fn next_spec_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
