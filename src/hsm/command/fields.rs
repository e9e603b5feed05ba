//! The cursor the decoders read fields with, and the checks they share:
//! fixed-length hex and decimal fields, delimiters, bounded variable
//! fields, and a check that nothing follows the last field. Every read is
//! bounds-checked, so no input can make a decoder panic.

use std::fmt;

use zeroize::Zeroize;

use super::error::CodecError;

/// A field value that must not be shown: a PIN block, a key cryptogram,
/// a PAN, a CVV, card data. `Debug` prints `Sensitive(..)`; the value is
/// zeroized when dropped.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Sensitive<T: Zeroize>(pub T);

impl<T: Zeroize> Drop for Sensitive<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sensitive(..)")
    }
}

impl Sensitive<String> {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A cursor over a message's fields.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next byte, not consumed.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], CodecError> {
        if self.remaining() < n {
            return Err(CodecError::Truncated { field });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// `n` hex digits, upper-cased.
    pub(crate) fn hex(&mut self, n: usize, field: &'static str) -> Result<String, CodecError> {
        let b = self.take(n, field)?;
        if !b.iter().all(u8::is_ascii_hexdigit) {
            return Err(CodecError::NotHex { field });
        }
        Ok(b.iter()
            .map(|c| char::from(c.to_ascii_uppercase()))
            .collect())
    }

    /// `n` decimal digits as text.
    pub(crate) fn digits(&mut self, n: usize, field: &'static str) -> Result<String, CodecError> {
        let b = self.take(n, field)?;
        if !b.iter().all(u8::is_ascii_digit) {
            return Err(CodecError::NotDecimal { field });
        }
        Ok(b.iter().map(|&c| char::from(c)).collect())
    }

    /// `n` decimal digits as a number (n <= 4).
    pub(crate) fn number(&mut self, n: usize, field: &'static str) -> Result<u16, CodecError> {
        let d = self.digits(n, field)?;
        d.parse().map_err(|_| CodecError::Value { field })
    }

    /// `n` hex digits as a number (n <= 4).
    pub(crate) fn hex_number(&mut self, n: usize, field: &'static str) -> Result<u16, CodecError> {
        let h = self.hex(n, field)?;
        u16::from_str_radix(&h, 16).map_err(|_| CodecError::Value { field })
    }

    /// Exactly `n` bytes into an array (binary fields).
    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], CodecError> {
        let b = self.take(N, field)?;
        <[u8; N]>::try_from(b).map_err(|_| CodecError::Truncated { field })
    }

    /// One expected byte (a delimiter).
    pub(crate) fn expect(&mut self, byte: u8, field: &'static str) -> Result<(), CodecError> {
        match self.take(1, field)? {
            [b] if *b == byte => Ok(()),
            _ => Err(CodecError::Value { field }),
        }
    }

    /// Decimal digits up to `delim` (consumed), `min..=max` of them.
    pub(crate) fn digits_until(
        &mut self,
        delim: u8,
        min: usize,
        max: usize,
        field: &'static str,
    ) -> Result<String, CodecError> {
        let rest = &self.buf[self.pos..];
        let Some(n) = rest.iter().take(max + 1).position(|&c| c == delim) else {
            return Err(if rest.len() > max {
                CodecError::FieldLength {
                    field,
                    got: rest.len(),
                    max,
                }
            } else {
                CodecError::Truncated { field }
            });
        };
        if n < min {
            return Err(CodecError::Value { field });
        }
        let d = self.digits(n, field)?;
        self.pos += 1;
        Ok(d)
    }

    /// Fails unless every byte has been read.
    pub(crate) fn finish(&self) -> Result<(), CodecError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(CodecError::TrailingBytes { extra }),
        }
    }
}

/// Checks that `text` is `n` hex digits, for the encoders.
pub(crate) fn check_hex(text: &str, n: usize, field: &'static str) -> Result<(), CodecError> {
    if text.len() == n && text.bytes().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(CodecError::Encode {
            field,
            why: "wrong length or not hex",
        })
    }
}

/// Checks that `text` is `min..=max` decimal digits, for the encoders.
pub(crate) fn check_digits(
    text: &str,
    min: usize,
    max: usize,
    field: &'static str,
) -> Result<(), CodecError> {
    if (min..=max).contains(&text.len()) && text.bytes().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(CodecError::Encode {
            field,
            why: "wrong length or not decimal",
        })
    }
}

/// Writes `v` as `n` decimal digits, refusing values that do not fit.
pub(crate) fn put_number(
    out: &mut Vec<u8>,
    v: u16,
    n: usize,
    field: &'static str,
) -> Result<(), CodecError> {
    let s = format!("{v:0n$}");
    if s.len() != n {
        return Err(CodecError::Encode {
            field,
            why: "number too large",
        });
    }
    out.extend_from_slice(s.as_bytes());
    Ok(())
}
