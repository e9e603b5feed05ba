//! ISO 9564-1 PIN blocks for TDES keys (8 bytes): format 0 (PIN field
//! XOR PAN field, fill F), format 1 (no PAN, random fill), format 3
//! (format 0 with random fill A-F). Made from a [`Pin`] and read back to
//! one with typed errors; the random fill comes from the caller, so this
//! stays pure. Format 4 (AES, 16 bytes) is in `pin_block4`.

use std::fmt;

use super::error::CryptoError;
use super::secret::Secret;

/// ISO 9564-1 PIN block formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinBlockFormat {
    /// Format 0: PIN field XOR PAN field, fill `F`.
    Iso0,
    /// Format 1: PIN field with random fill, no PAN.
    Iso1,
    /// Format 3: as format 0 with random fill `A`-`F`.
    Iso3,
    /// Format 4: AES, 16 bytes (see `pin_block4`).
    Iso4,
}

impl PinBlockFormat {
    /// The control nibble that starts the block (its PIN field).
    pub fn nibble(self) -> u8 {
        match self {
            PinBlockFormat::Iso0 => 0,
            PinBlockFormat::Iso1 => 1,
            PinBlockFormat::Iso3 => 3,
            PinBlockFormat::Iso4 => 4,
        }
    }

    /// The block's size in bytes: 8 under TDES, 16 for format 4 (AES).
    pub fn block_bytes(self) -> usize {
        if self == PinBlockFormat::Iso4 { 16 } else { 8 }
    }
}

/// A cardholder PIN of 4 to 12 digits, zeroized on drop, never shown.
#[derive(Clone)]
pub struct Pin {
    digits: Secret<12>,
    len: u8,
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(..)")
    }
}

impl Pin {
    /// A PIN from its decimal digits.
    pub fn new(text: &str) -> Result<Pin, CryptoError> {
        let bytes = text.as_bytes();
        if !(4..=12).contains(&bytes.len()) {
            return Err(CryptoError::PinLength { got: bytes.len() });
        }
        let mut digits = Secret::<12>::zeroed();
        for (d, c) in digits.expose_mut().iter_mut().zip(bytes) {
            if !c.is_ascii_digit() {
                return Err(CryptoError::PinDigit);
            }
            *d = c - b'0';
        }
        Ok(Pin {
            digits,
            len: bytes.len() as u8,
        })
    }

    /// The PIN's length in digits (4..=12).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a PIN has at least 4 digits.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The digits (0..=9 each), for building blocks.
    pub fn digits(&self) -> &[u8] {
        &self.digits.expose()[..self.len()]
    }

    /// Constant-time equality (for tests and PIN verification).
    pub fn ct_eq(&self, other: &Pin) -> bool {
        self.len == other.len && self.digits.ct_eq(&other.digits)
    }
}

/// The PAN's decimal digits, checked: 8 to 19 digits.
pub(crate) fn pan_digits(pan: &str) -> Result<&[u8], CryptoError> {
    let b = pan.as_bytes();
    if !(8..=19).contains(&b.len()) || !b.iter().all(u8::is_ascii_digit) {
        return Err(CryptoError::Pan);
    }
    Ok(b)
}

/// The 12 rightmost PAN digits without the check digit, left-padded with
/// zeros when the PAN is shorter: the "account number" field of formats 0
/// and 3 and of the payShield host commands.
pub fn account_number_12(pan: &str) -> Result<[u8; 12], CryptoError> {
    let b = pan_digits(pan)?;
    let body = &b[..b.len() - 1];
    let take = body.len().min(12);
    let mut out = [b'0'; 12];
    out[12 - take..].copy_from_slice(&body[body.len() - take..]);
    Ok(out)
}

/// Formats 0 and 3's PAN field: `0000` then the 12-digit account number.
pub fn pan_field(pan: &str) -> Result<[u8; 8], CryptoError> {
    let acct = account_number_12(pan)?;
    let mut out = [0u8; 8];
    for (i, pair) in acct.chunks_exact(2).enumerate() {
        out[2 + i] = ((pair[0] - b'0') << 4) | (pair[1] - b'0');
    }
    Ok(out)
}

/// Writes nibble `i` of `block`.
pub(crate) fn set_nibble(block: &mut [u8], i: usize, v: u8) {
    let b = &mut block[i / 2];
    if i.is_multiple_of(2) {
        *b = (*b & 0x0F) | (v << 4);
    } else {
        *b = (*b & 0xF0) | (v & 0x0F);
    }
}

/// Reads nibble `i` of `block`.
pub(crate) fn nibble(block: &[u8], i: usize) -> u8 {
    let b = block[i / 2];
    if i.is_multiple_of(2) {
        b >> 4
    } else {
        b & 0x0F
    }
}

/// The 8-byte PIN field: control nibble, length, digits, then fill nibbles
/// from `fill(i)` for positions `2 + len .. 16`.
fn pin_field(control: u8, pin: &Pin, fill: impl Fn(usize) -> u8) -> Secret<8> {
    let mut f = Secret::<8>::zeroed();
    let b = f.expose_mut();
    set_nibble(b, 0, control);
    set_nibble(b, 1, pin.len() as u8);
    for (i, d) in pin.digits().iter().enumerate() {
        set_nibble(b, 2 + i, *d);
    }
    for i in 2 + pin.len()..16 {
        set_nibble(b, i, fill(i));
    }
    f
}

/// Makes a clear TDES PIN block. `fill` is 8 random bytes (formats 1 and
/// 3 use them; format 0 does not); `pan` is ignored by format 1.
pub fn make(
    format: PinBlockFormat,
    pin: &Pin,
    pan: &str,
    fill: &[u8; 8],
) -> Result<Secret<8>, CryptoError> {
    let random = |i: usize| nibble(fill, i);
    let mut block = match format {
        PinBlockFormat::Iso0 => pin_field(0, pin, |_| 0xF),
        PinBlockFormat::Iso1 => pin_field(1, pin, random),
        // Fill A-F: six values, from a random nibble (slightly biased
        // towards A and B, which ISO 9564 does not forbid).
        PinBlockFormat::Iso3 => pin_field(3, pin, |i| 0xA + random(i) % 6),
        PinBlockFormat::Iso4 => return Err(CryptoError::FormatKey { format: 4 }),
    };
    if format != PinBlockFormat::Iso1 {
        let pf = pan_field(pan)?;
        super::keys::xor_into(block.expose_mut(), &pf);
    }
    Ok(block)
}

/// Reads a clear TDES PIN block of `format` back to its PIN, checking the
/// control nibble, the length, the digits and the fill.
pub fn read(format: PinBlockFormat, block: &Secret<8>, pan: &str) -> Result<Pin, CryptoError> {
    let mut field = block.clone();
    match format {
        PinBlockFormat::Iso0 | PinBlockFormat::Iso3 => {
            super::keys::xor_into(field.expose_mut(), &pan_field(pan)?);
        }
        PinBlockFormat::Iso1 => {}
        PinBlockFormat::Iso4 => return Err(CryptoError::FormatKey { format: 4 }),
    }
    let fill_ok = |v: u8| match format {
        PinBlockFormat::Iso0 => v == 0xF,
        PinBlockFormat::Iso3 => v >= 0xA,
        _ => true,
    };
    read_pin_field(field.expose(), format.nibble(), 16, fill_ok)
}

/// Reads a PIN field (8 bytes, or format 4's first 16 nibbles): control
/// nibble, length 4..=12, digits, then `fill_ok` on each nibble up to
/// `fill_end`.
pub(crate) fn read_pin_field(
    field: &[u8],
    control: u8,
    fill_end: usize,
    fill_ok: impl Fn(u8) -> bool,
) -> Result<Pin, CryptoError> {
    let got = nibble(field, 0);
    if got != control {
        return Err(CryptoError::FormatNibble {
            got,
            expected: control,
        });
    }
    let len = usize::from(nibble(field, 1));
    if !(4..=12).contains(&len) {
        return Err(CryptoError::PinLength { got: len });
    }
    let mut digits = Secret::<12>::zeroed();
    for i in 0..len {
        let d = nibble(field, 2 + i);
        if d > 9 {
            return Err(CryptoError::PinDigit);
        }
        digits.expose_mut()[i] = d;
    }
    if !(2 + len..fill_end).all(|i| fill_ok(nibble(field, i))) {
        return Err(CryptoError::Fill);
    }
    Ok(Pin {
        digits,
        len: len as u8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAN: &str = "4111111111111111";

    fn hexed(b: &Secret<8>) -> String {
        b.to_hex()
    }

    #[test]
    fn format_0_known_answer() {
        // PIN 1234, PAN 4111111111111111: PIN field 041234FFFFFFFFFF XOR
        // PAN field 0000111111111111.
        let pin = Pin::new("1234").unwrap();
        let b = make(PinBlockFormat::Iso0, &pin, PAN, &[0; 8]).unwrap();
        assert_eq!(hexed(&b), "041225EEEEEEEEEE");
        assert!(read(PinBlockFormat::Iso0, &b, PAN).unwrap().ct_eq(&pin));
    }

    #[test]
    fn format_0_x924_pan() {
        // The PIN block of the X9.24 DUKPT examples: PIN 1234, PAN
        // 4012345678909.
        let pin = Pin::new("1234").unwrap();
        let b = make(PinBlockFormat::Iso0, &pin, "4012345678909", &[0; 8]).unwrap();
        assert_eq!(hexed(&b), "041274EDCBA9876F");
    }

    #[test]
    fn format_1_and_3_use_the_fill() {
        let pin = Pin::new("123456").unwrap();
        let fill = [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF];
        let b1 = make(PinBlockFormat::Iso1, &pin, PAN, &fill).unwrap();
        assert_eq!(hexed(&b1), "16123456".to_string() + "89ABCDEF");
        assert!(read(PinBlockFormat::Iso1, &b1, "").unwrap().ct_eq(&pin));
        let b3 = make(PinBlockFormat::Iso3, &pin, PAN, &fill).unwrap();
        assert!(read(PinBlockFormat::Iso3, &b3, PAN).unwrap().ct_eq(&pin));
        let mut field = b3.clone();
        super::super::keys::xor_into(field.expose_mut(), &pan_field(PAN).unwrap());
        assert!((8..16).all(|i| nibble(field.expose(), i) >= 0xA));
    }

    #[test]
    fn typed_errors() {
        assert_eq!(
            Pin::new("123").unwrap_err(),
            CryptoError::PinLength { got: 3 }
        );
        assert_eq!(
            Pin::new("1234567890123").unwrap_err(),
            CryptoError::PinLength { got: 13 }
        );
        assert_eq!(Pin::new("12a4").unwrap_err(), CryptoError::PinDigit);
        let pin = Pin::new("1234").unwrap();
        let b = make(PinBlockFormat::Iso0, &pin, PAN, &[0; 8]).unwrap();
        assert_eq!(
            read(PinBlockFormat::Iso3, &b, PAN).unwrap_err(),
            CryptoError::FormatNibble {
                got: 0,
                expected: 3
            }
        );
        // Another PAN turns the fill into something other than F.
        assert!(read(PinBlockFormat::Iso0, &b, "4111111111111129").is_err());
        let long = Secret::new([0x0D, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        let pan0 = "0000000000000"; // PAN field all zeros
        assert_eq!(
            read(PinBlockFormat::Iso0, &long, pan0).unwrap_err(),
            CryptoError::PinLength { got: 13 }
        );
        let badfill = Secret::new([0x04, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE]);
        assert_eq!(
            read(PinBlockFormat::Iso0, &badfill, pan0).unwrap_err(),
            CryptoError::Fill
        );
        assert_eq!(
            make(PinBlockFormat::Iso0, &pin, "12", &[0; 8]).unwrap_err(),
            CryptoError::Pan
        );
    }

    #[test]
    fn account_number_pads_short_pans() {
        assert_eq!(
            &account_number_12("4012345678909").unwrap(),
            b"401234567890"
        );
        assert_eq!(&account_number_12("123456789").unwrap(), b"000012345678");
    }

    #[test]
    fn pin_debug_is_redacted() {
        assert_eq!(format!("{:?}", Pin::new("1234").unwrap()), "Pin(..)");
    }
}
