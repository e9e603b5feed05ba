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
        // ASCII checked above, so the bytes are UTF-8.
        Ok(ascii_text(b.to_ascii_uppercase()))
    }

    /// `n` decimal digits as text.
    pub(crate) fn digits(&mut self, n: usize, field: &'static str) -> Result<String, CodecError> {
        let b = self.take(n, field)?;
        if !b.iter().all(u8::is_ascii_digit) {
            return Err(CodecError::NotDecimal { field });
        }
        Ok(ascii_text(b.to_vec()))
    }

    /// `n` decimal digits as a number (n <= 4).
    pub(crate) fn number(&mut self, n: usize, field: &'static str) -> Result<u16, CodecError> {
        let b = self.take(n, field)?;
        if !b.iter().all(u8::is_ascii_digit) {
            return Err(CodecError::NotDecimal { field });
        }
        fold_digits(b, 10).ok_or(CodecError::Value { field })
    }

    /// `n` hex digits as a number (n <= 4).
    pub(crate) fn hex_number(&mut self, n: usize, field: &'static str) -> Result<u16, CodecError> {
        let b = self.take(n, field)?;
        if !b.iter().all(u8::is_ascii_hexdigit) {
            return Err(CodecError::NotHex { field });
        }
        fold_digits(b, 16).ok_or(CodecError::Value { field })
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

/// Checked ASCII bytes as text (never lossy: the callers checked them).
fn ascii_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_default()
}

/// Checked digits of base `radix` as a number; `None` past `u16`.
fn fold_digits(digits: &[u8], radix: u32) -> Option<u16> {
    digits.iter().try_fold(0u16, |v, &c| {
        let d = char::from(c).to_digit(radix)?;
        v.checked_mul(radix as u16)?.checked_add(d as u16)
    })
}

/// `bytes` as upper-case hex text (the host commands' hex fields).
pub fn upper_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 15)]);
    }
    ascii_text(out)
}

/// Writes `v` as `n` decimal digits, refusing values that do not fit.
pub(crate) fn put_number(
    out: &mut Vec<u8>,
    v: u16,
    n: usize,
    field: &'static str,
) -> Result<(), CodecError> {
    put_digits(out, u32::from(v), n, 10, field)
}

/// Writes `v` as `n` upper-case hex digits (a 4H or 2H length), refusing
/// values that do not fit.
pub(crate) fn put_hex_number(
    out: &mut Vec<u8>,
    v: usize,
    n: usize,
    field: &'static str,
) -> Result<(), CodecError> {
    let v = u32::try_from(v).map_err(|_| too_large(field))?;
    put_digits(out, v, n, 16, field)
}

/// `v` in `n` digits of base `radix` (10 or 16), zero-padded: written by
/// hand, since `format!` cost a tenth of the switch's work per command.
fn put_digits(
    out: &mut Vec<u8>,
    mut v: u32,
    n: usize,
    radix: u32,
    field: &'static str,
) -> Result<(), CodecError> {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let start = out.len();
    out.resize(start + n, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = DIGITS[(v % radix) as usize];
        v /= radix;
    }
    if v != 0 {
        out.truncate(start);
        return Err(too_large(field));
    }
    Ok(())
}

fn too_large(field: &'static str) -> CodecError {
    CodecError::Encode {
        field,
        why: "number too large",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_zero_padded_and_refused_when_too_wide() {
        let mut out = b"x".to_vec();
        put_number(&mut out, 7, 2, "f").unwrap();
        put_hex_number(&mut out, 0x1A3, 4, "f").unwrap();
        assert_eq!(out, b"x0701A3");
        assert!(put_number(&mut out, 100, 2, "f").is_err());
        assert!(put_hex_number(&mut out, 0x1_0000, 4, "f").is_err());
        assert_eq!(out, b"x0701A3", "a refused number writes nothing");
        put_number(&mut out, u16::MAX, 5, "f").unwrap();
        assert!(out.ends_with(b"65535"));
    }

    #[test]
    fn numbers_read_back_and_bad_digits_are_refused() {
        let mut r = Reader::new(b"0042ff0Z99x");
        assert_eq!(r.number(4, "f").unwrap(), 42);
        assert_eq!(r.hex_number(2, "f").unwrap(), 0xFF);
        assert!(r.hex_number(2, "f").is_err());
        assert!(Reader::new(b"99999").number(5, "f").is_err(), "past u16");
        assert!(Reader::new(b"12").number(3, "f").is_err(), "truncated");
    }

    #[test]
    fn hex_text_is_upper_case_both_ways() {
        assert_eq!(upper_hex(&[0x00, 0xAB, 0x9f]), "00AB9F");
        assert_eq!(Reader::new(b"0aBf").hex(4, "f").unwrap(), "0ABF");
        assert!(Reader::new(b"0g").hex(2, "f").is_err());
    }
}
