//! Keys in host-command fields: a cryptogram under the HSM's LMK (or under
//! a ZMK), tagged by a key-scheme letter that fixes its length: `Z` (16H,
//! X9.17 single), `U` / `X` (32H, double length, variant / X9.17), `T` /
//! `Y` (48H, triple length); untagged, 16H (single) in "16H or 1A+32H or
//! 1A+48H" fields, and 32H in "32H or 1A+32H" fields (CVK pairs, BDKs, MK).
//! Key blocks (`S`, `R`) are not taken: no command here needs them yet.

use super::error::CodecError;
use super::fields::{Reader, Sensitive, check_hex};

/// A key scheme tag, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScheme {
    /// No tag: 16H, or 32H where the field says "32H or 1A+32H".
    Untagged,
    Z,
    U,
    T,
    X,
    Y,
}

impl KeyScheme {
    /// The scheme for its tag letter.
    pub fn from_tag(c: u8) -> Option<KeyScheme> {
        Some(match c {
            b'Z' => KeyScheme::Z,
            b'U' => KeyScheme::U,
            b'T' => KeyScheme::T,
            b'X' => KeyScheme::X,
            b'Y' => KeyScheme::Y,
            _ => return None,
        })
    }

    /// The tag letter (none for untagged).
    pub fn tag(self) -> Option<u8> {
        match self {
            KeyScheme::Untagged => None,
            KeyScheme::Z => Some(b'Z'),
            KeyScheme::U => Some(b'U'),
            KeyScheme::T => Some(b'T'),
            KeyScheme::X => Some(b'X'),
            KeyScheme::Y => Some(b'Y'),
        }
    }

    /// Hex digits of a key with this tag (untagged: the field decides).
    pub(crate) fn hex_len(self) -> Option<usize> {
        match self {
            KeyScheme::Untagged => None,
            KeyScheme::Z => Some(16),
            KeyScheme::U | KeyScheme::X => Some(32),
            KeyScheme::T | KeyScheme::Y => Some(48),
        }
    }

    /// The one-letter "key scheme" fields of A0 and A6 (`0` = untagged).
    pub(crate) fn from_field(c: u8) -> Option<KeyScheme> {
        if c == b'0' {
            Some(KeyScheme::Untagged)
        } else {
            Self::from_tag(c)
        }
    }

    pub(crate) fn field_letter(self) -> u8 {
        self.tag().unwrap_or(b'0')
    }
}

/// A key as it travels: encrypted, with its scheme. `Debug` hides the hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCryptogram {
    pub scheme: KeyScheme,
    pub hex: Sensitive<String>,
}

/// How long an untagged key is in a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Untagged {
    /// "16H or 1A+32H or 1A+48H".
    Single,
    /// "32H or 1A+32H (or 1A+48H)".
    Double,
}

impl KeyCryptogram {
    /// A cryptogram from its scheme and hex (checked when encoded).
    pub fn new(scheme: KeyScheme, hex: &str) -> KeyCryptogram {
        KeyCryptogram {
            scheme,
            hex: Sensitive(hex.to_ascii_uppercase()),
        }
    }

    /// The wire form: tag then hex.
    pub fn to_field(&self) -> String {
        let mut s = String::new();
        if let Some(t) = self.scheme.tag() {
            s.push(char::from(t));
        }
        s.push_str(self.hex.as_str());
        s
    }

    pub(crate) fn read(
        r: &mut Reader<'_>,
        untagged: Untagged,
        field: &'static str,
    ) -> Result<KeyCryptogram, CodecError> {
        let first = r.peek().ok_or(CodecError::Truncated { field })?;
        let (scheme, len) = if first.is_ascii_hexdigit() {
            let len = if untagged == Untagged::Single { 16 } else { 32 };
            (KeyScheme::Untagged, len)
        } else {
            let s = KeyScheme::from_tag(first).ok_or(CodecError::KeyScheme { field })?;
            r.take(1, field)?;
            (s, s.hex_len().unwrap_or(16))
        };
        Ok(KeyCryptogram {
            scheme,
            hex: Sensitive(r.hex(len, field)?),
        })
    }

    pub(crate) fn write(
        &self,
        out: &mut Vec<u8>,
        untagged: Untagged,
        field: &'static str,
    ) -> Result<(), CodecError> {
        let len = self.scheme.hex_len().unwrap_or(match untagged {
            Untagged::Single => 16,
            Untagged::Double => 32,
        });
        check_hex(self.hex.as_str(), len, field)?;
        if let Some(t) = self.scheme.tag() {
            out.push(t);
        }
        out.extend_from_slice(self.hex.0.as_bytes());
        Ok(())
    }
}
