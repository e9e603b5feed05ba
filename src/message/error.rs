//! Errors of the message layer. Every variant names where the fault is (the
//! MTI, a bitmap or a field number) and the byte offset in the message, and
//! none ever carries field content, so an error can be logged without
//! leaking card data.

use std::fmt;

use super::spec::Class;

/// The part of a message an error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The message type indicator.
    Mti,
    /// The primary (1), secondary (2) or tertiary (3) bitmap.
    Bitmap(u8),
    /// A data element, by number.
    Field(u16),
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Mti => f.write_str("MTI"),
            Part::Bitmap(1) => f.write_str("primary bitmap"),
            Part::Bitmap(2) => f.write_str("secondary bitmap"),
            Part::Bitmap(_) => f.write_str("tertiary bitmap"),
            Part::Field(n) => write!(f, "field {n}"),
        }
    }
}

/// A message that cannot be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The input ends before the part is complete.
    #[error("{part} at offset {offset}: truncated, needs {needed} bytes but {available} remain")]
    Truncated {
        part: Part,
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// A length prefix that is not a number in its encoding.
    #[error("{part} at offset {offset}: malformed length prefix")]
    BadLengthPrefix { part: Part, offset: usize },
    /// A variable field longer than its specification allows.
    #[error("{part} at offset {offset}: length {length} exceeds the maximum of {max}")]
    TooLong {
        part: Part,
        offset: usize,
        length: usize,
        max: usize,
    },
    /// A fixed field whose value is not exactly its size.
    #[error("{part} at offset {offset}: length {length} is not the fixed size {size}")]
    WrongSize {
        part: Part,
        offset: usize,
        length: usize,
        size: usize,
    },
    /// Content outside the field's class (a letter in an `n` field, ...).
    #[error("{part} at offset {offset}: invalid {class} content at position {position}")]
    InvalidContent {
        part: Part,
        offset: usize,
        class: Class,
        position: usize,
    },
    /// A packed BCD byte with a nibble above 9 or a wrong pad nibble.
    #[error("{part} at offset {offset}: invalid packed BCD at position {position}")]
    BadBcd {
        part: Part,
        offset: usize,
        position: usize,
    },
    /// A hexadecimal text field or bitmap with a non-hex character.
    #[error("{part} at offset {offset}: invalid hexadecimal character at position {position}")]
    BadHex {
        part: Part,
        offset: usize,
        position: usize,
    },
    /// The MTI is not four decimal digits.
    #[error("MTI at offset {offset}: not four decimal digits")]
    BadMti { offset: usize },
    /// A bitmap bit names a field the specification does not define.
    #[error("{part} at offset {offset}: not defined by spec {spec}")]
    UndefinedField {
        part: Part,
        offset: usize,
        spec: String,
    },
    /// A secondary or tertiary bitmap flagged present but with no bit set.
    #[error("{part} at offset {offset}: flagged present but empty")]
    EmptyBitmap { part: Part, offset: usize },
    /// A bitmap the spec requires in every message is not flagged present.
    #[error("{part} at offset {offset}: required by the spec but bit 1 is not set")]
    MissingBitmap { part: Part, offset: usize },
    /// Bytes left over after the last field the bitmap announces.
    #[error("{count} trailing bytes at offset {offset} after the last field")]
    TrailingBytes { offset: usize, count: usize },
    /// The message is larger than the parser accepts.
    #[error("message of {length} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge { length: usize, max: usize },
    /// A sub-structure (TLV, PDS) inside a field is malformed; `offset` is
    /// where the field's value starts, `position` where in it the faulty
    /// sub-element starts.
    #[error("{part} at offset {offset}: sub-element at position {position}: {reason}")]
    BadSubElement {
        part: Part,
        offset: usize,
        position: usize,
        reason: &'static str,
    },
    /// A field number outside 2..=192, or a bitmap field set by hand.
    #[error("field {field}: not a settable data element number")]
    BadFieldNumber { field: u16 },
}

impl MessageError {
    /// The byte offset the error refers to, where it has one.
    pub fn offset(&self) -> Option<usize> {
        match self {
            MessageError::Truncated { offset, .. }
            | MessageError::BadLengthPrefix { offset, .. }
            | MessageError::TooLong { offset, .. }
            | MessageError::WrongSize { offset, .. }
            | MessageError::InvalidContent { offset, .. }
            | MessageError::BadBcd { offset, .. }
            | MessageError::BadHex { offset, .. }
            | MessageError::BadMti { offset }
            | MessageError::UndefinedField { offset, .. }
            | MessageError::EmptyBitmap { offset, .. }
            | MessageError::MissingBitmap { offset, .. }
            | MessageError::TrailingBytes { offset, .. }
            | MessageError::BadSubElement { offset, .. } => Some(*offset),
            _ => None,
        }
    }

    /// A short stable name for the kind of error, for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageError::Truncated { .. } => "truncated",
            MessageError::BadLengthPrefix { .. } => "bad_length_prefix",
            MessageError::TooLong { .. } => "too_long",
            MessageError::WrongSize { .. } => "wrong_size",
            MessageError::InvalidContent { .. } => "invalid_content",
            MessageError::BadBcd { .. } => "bad_bcd",
            MessageError::BadHex { .. } => "bad_hex",
            MessageError::BadMti { .. } => "bad_mti",
            MessageError::UndefinedField { .. } => "undefined_field",
            MessageError::EmptyBitmap { .. } => "empty_bitmap",
            MessageError::MissingBitmap { .. } => "missing_bitmap",
            MessageError::TrailingBytes { .. } => "trailing_bytes",
            MessageError::MessageTooLarge { .. } => "message_too_large",
            MessageError::BadSubElement { .. } => "bad_sub_element",
            MessageError::BadFieldNumber { .. } => "bad_field_number",
        }
    }

    /// The field the error is about, if it is about one.
    pub fn field(&self) -> Option<u16> {
        let part = match self {
            MessageError::Truncated { part, .. }
            | MessageError::BadLengthPrefix { part, .. }
            | MessageError::TooLong { part, .. }
            | MessageError::WrongSize { part, .. }
            | MessageError::InvalidContent { part, .. }
            | MessageError::BadBcd { part, .. }
            | MessageError::BadHex { part, .. }
            | MessageError::UndefinedField { part, .. }
            | MessageError::EmptyBitmap { part, .. }
            | MessageError::BadSubElement { part, .. } => *part,
            MessageError::BadFieldNumber { field } => return Some(*field),
            _ => return None,
        };
        match part {
            Part::Field(n) => Some(n),
            _ => None,
        }
    }
}
