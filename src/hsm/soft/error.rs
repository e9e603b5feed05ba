//! The one error type of the software cryptography: each variant names
//! what was wrong with the input, never the input's secret value.

use thiserror::Error;

/// Why a software cryptographic operation refused its input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A key of a length the algorithm does not take.
    #[error("key of {got} bytes: this operation takes {expected}")]
    KeyLength { got: usize, expected: &'static str },
    /// Text that should be hexadecimal was not (or had an odd length).
    #[error("not hexadecimal: {what}")]
    Hex { what: &'static str },
    /// A PIN outside 4..=12 digits (ISO 9564-1).
    #[error("PIN of {got} digits: ISO 9564 takes 4 to 12")]
    PinLength { got: usize },
    /// A PIN character that is not a decimal digit.
    #[error("PIN has a character that is not a digit")]
    PinDigit,
    /// A PAN that is not 8 to 19 decimal digits.
    #[error("account number is not 8 to 19 digits")]
    Pan,
    /// A PIN block whose control nibble is not the expected format's.
    #[error("PIN block format nibble {got:X}, expected {expected:X}")]
    FormatNibble { got: u8, expected: u8 },
    /// A PIN block whose fill digits are not those its format requires.
    #[error("PIN block fill is not valid for its format")]
    Fill,
    /// A PIN block of the wrong size for its format (8 bytes TDES, 16 AES).
    #[error("PIN block of {got} bytes: format takes {expected}")]
    BlockLength { got: usize, expected: usize },
    /// A PIN block format used with the wrong kind of key (format 4 is AES).
    #[error("PIN block format {format} cannot be used with this key type")]
    FormatKey { format: u8 },
    /// A key serial number that is not 10 bytes.
    #[error("KSN of {got} bytes: DUKPT takes 10")]
    KsnLength { got: usize },
    /// A DUKPT counter with more than 10 one bits: no terminal uses it.
    #[error("DUKPT counter has {ones} one bits (at most 10)")]
    KsnCounter { ones: u32 },
    /// A DUKPT terminal that has used all its keys.
    #[error("DUKPT terminal has no keys left")]
    Exhausted,
    /// Data whose length the operation cannot take (e.g. no padding and
    /// not a whole number of blocks).
    #[error("data of {got} bytes: {why}")]
    DataLength { got: usize, why: &'static str },
    /// Card data (expiry, service code, PAN sequence number) malformed.
    #[error("card data malformed: {what}")]
    CardData { what: &'static str },
}
