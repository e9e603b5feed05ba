//! The payShield error codes a response carries after its response code
//! (2 digits), as a typed enum. Codes this table does not name are kept as
//! [`ErrorCode::Other`], so a response from a newer firmware still decodes.

/// A host command's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 00: no error.
    NoError,
    /// 01: verification failure (MAC, CVV, ARQC), or an advice (A6: key
    /// parity) with the answer's fields still present.
    VerificationFailure,
    /// 04: invalid key type code.
    InvalidKeyTypeCode,
    /// 05: invalid key length flag.
    InvalidKeyLengthFlag,
    /// 10: source key parity error.
    SourceKeyParity,
    /// 11: destination key parity error.
    DestinationKeyParity,
    /// 12: no keys loaded in user storage.
    NoKeysLoaded,
    /// 13: LMK error, report to supervisor.
    LmkError,
    /// 15: error in input data.
    InputData,
    /// 17: HSM not in the authorised state.
    NotAuthorised,
    /// 20: PIN block does not contain valid values.
    PinBlockData,
    /// 21: invalid user storage index.
    InvalidIndex,
    /// 22: invalid account number.
    InvalidAccount,
    /// 23: invalid PIN block format code.
    InvalidPinBlockFormat,
    /// 24: PIN fewer than 4 or more than 12 digits.
    PinLength,
    /// 27: key not of the length the command needs.
    KeyLength,
    /// 40: firmware PROM error.
    FirmwareError,
    /// 41: hardware or software error.
    HardwareError,
    /// 42: DES crypto-processor failure.
    CryptoProcessor,
    /// 67: command not licensed.
    NotLicensed,
    /// 68: command disabled.
    CommandDisabled,
    /// 80: data length error.
    DataLength,
    /// Any other two-digit code.
    Other(u8),
}

/// The named codes and their numbers, the one table both directions use.
const TABLE: &[(ErrorCode, u8)] = &[
    (ErrorCode::NoError, 0),
    (ErrorCode::VerificationFailure, 1),
    (ErrorCode::InvalidKeyTypeCode, 4),
    (ErrorCode::InvalidKeyLengthFlag, 5),
    (ErrorCode::SourceKeyParity, 10),
    (ErrorCode::DestinationKeyParity, 11),
    (ErrorCode::NoKeysLoaded, 12),
    (ErrorCode::LmkError, 13),
    (ErrorCode::InputData, 15),
    (ErrorCode::NotAuthorised, 17),
    (ErrorCode::PinBlockData, 20),
    (ErrorCode::InvalidIndex, 21),
    (ErrorCode::InvalidAccount, 22),
    (ErrorCode::InvalidPinBlockFormat, 23),
    (ErrorCode::PinLength, 24),
    (ErrorCode::KeyLength, 27),
    (ErrorCode::FirmwareError, 40),
    (ErrorCode::HardwareError, 41),
    (ErrorCode::CryptoProcessor, 42),
    (ErrorCode::NotLicensed, 67),
    (ErrorCode::CommandDisabled, 68),
    (ErrorCode::DataLength, 80),
];

impl ErrorCode {
    /// The code for its number (0..=99).
    pub fn from_number(n: u8) -> ErrorCode {
        TABLE
            .iter()
            .find(|(_, v)| *v == n)
            .map_or(ErrorCode::Other(n), |(c, _)| *c)
    }

    /// The code's number.
    pub fn number(self) -> u8 {
        match self {
            ErrorCode::Other(n) => n,
            named => TABLE
                .iter()
                .find(|(c, _)| *c == named)
                .map_or(99, |(_, v)| *v),
        }
    }

    /// True for 00.
    pub fn is_ok(self) -> bool {
        self == ErrorCode::NoError
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_round_trips() {
        for n in 0..=99u8 {
            assert_eq!(ErrorCode::from_number(n).number(), n);
        }
        assert_eq!(ErrorCode::from_number(24), ErrorCode::PinLength);
        assert_eq!(ErrorCode::from_number(99), ErrorCode::Other(99));
    }
}
