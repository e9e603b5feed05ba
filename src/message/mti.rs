//! The message type indicator: four digits for version, class, function and
//! origin (ISO 8583-1 §5.3.1). Kept as ASCII digits so it costs nothing to
//! parse, build or print.

use std::fmt;
use std::str::FromStr;

/// Four decimal digits: version, class, function, origin.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mti([u8; 4]);

/// The second MTI digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageClass {
    Authorization,
    Financial,
    FileAction,
    Reversal,
    Reconciliation,
    Administrative,
    FeeCollection,
    NetworkManagement,
    Other(u8),
}

/// The third MTI digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Request,
    RequestResponse,
    Advice,
    AdviceResponse,
    Notification,
    Other(u8),
}

impl Mti {
    /// An MTI from four ASCII digits; `None` if any byte is not a digit.
    pub fn from_digits(digits: [u8; 4]) -> Option<Mti> {
        digits.iter().all(u8::is_ascii_digit).then_some(Mti(digits))
    }

    /// The four ASCII digits.
    pub fn digits(&self) -> [u8; 4] {
        self.0
    }

    /// The MTI as a `&str` of four digits.
    pub fn as_str(&self) -> &str {
        // Invariant: the constructor admits ASCII digits only.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }

    fn digit(&self, i: usize) -> u8 {
        self.0[i] - b'0'
    }

    /// Version digit: 0 = 1987, 1 = 1993, 2 = 2003.
    pub fn version(&self) -> u8 {
        self.digit(0)
    }

    /// Message class (second digit).
    pub fn class(&self) -> MessageClass {
        match self.digit(1) {
            1 => MessageClass::Authorization,
            2 => MessageClass::Financial,
            3 => MessageClass::FileAction,
            4 => MessageClass::Reversal,
            5 => MessageClass::Reconciliation,
            6 => MessageClass::Administrative,
            7 => MessageClass::FeeCollection,
            8 => MessageClass::NetworkManagement,
            d => MessageClass::Other(d),
        }
    }

    /// Message function (third digit).
    pub fn function(&self) -> Function {
        match self.digit(2) {
            0 => Function::Request,
            1 => Function::RequestResponse,
            2 => Function::Advice,
            3 => Function::AdviceResponse,
            4 => Function::Notification,
            d => Function::Other(d),
        }
    }

    /// Origin digit: 0 acquirer, 1 acquirer repeat, 2 issuer, 3 issuer repeat.
    pub fn origin(&self) -> u8 {
        self.digit(3)
    }

    /// Whether this is a repeat (origin 1 or 3), such as 0101 or 0421.
    pub fn is_repeat(&self) -> bool {
        matches!(self.origin(), 1 | 3)
    }

    /// Whether a response is expected (a request or an advice).
    pub fn expects_response(&self) -> bool {
        matches!(self.function(), Function::Request | Function::Advice)
    }

    /// Whether this is a response (to a request or an advice).
    pub fn is_response(&self) -> bool {
        matches!(
            self.function(),
            Function::RequestResponse | Function::AdviceResponse
        )
    }

    /// Whether every digit has a meaning in ISO 8583-1: version 0-2 (1987,
    /// 1993, 2003: the versions with a published field layout; 3-7 are
    /// reserved, 8 and 9 national and private use, which no dialect here
    /// defines), class 1-8 (0 and 9 reserved), function 0-7 (8 and 9
    /// reserved) and origin 0-5 (6-9 reserved). The parser reads any four
    /// digits (a dialect is free to use them); a switch answers or routes
    /// only what this admits (`9999` is four digits and means nothing).
    pub fn is_known(&self) -> bool {
        self.version() <= 2
            && (1..=8).contains(&self.digit(1))
            && self.digit(2) <= 7
            && self.origin() <= 5
    }

    /// Whether the message answers another (an odd function digit: a
    /// response, an advice response, a notification or instruction
    /// acknowledgement), so that nothing may answer it in turn.
    pub fn is_answer(&self) -> bool {
        self.digit(2) % 2 == 1
    }

    /// The response MTI: 0100 -> 0110, 0101 -> 0110, 0420 -> 0430, 0421 -> 0430.
    /// `None` for messages that get no response.
    pub fn response(&self) -> Option<Mti> {
        if !self.expects_response() {
            return None;
        }
        let [v, c, f, o] = self.0;
        let origin = if o == b'1' || o == b'3' { o - 1 } else { o };
        Some(Mti([v, c, f + 1, origin]))
    }

    /// The same message with another version digit (1987 <-> 1993 mapping).
    pub fn with_version(&self, version: u8) -> Mti {
        assert!(version <= 9, "version digit out of range");
        let [_, c, f, o] = self.0;
        Mti([b'0' + version, c, f, o])
    }

    /// The same message marked as a repeat (0100 -> 0101, 0420 -> 0421).
    pub fn as_repeat(&self) -> Mti {
        let [v, c, f, o] = self.0;
        let origin = if o == b'0' || o == b'2' { o + 1 } else { o };
        Mti([v, c, f, origin])
    }
}

impl FromStr for Mti {
    type Err = InvalidMti;
    fn from_str(s: &str) -> Result<Mti, InvalidMti> {
        let bytes: [u8; 4] = s.as_bytes().try_into().map_err(|_| InvalidMti)?;
        Mti::from_digits(bytes).ok_or(InvalidMti)
    }
}

/// A string that is not four decimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an MTI is four decimal digits")]
pub struct InvalidMti;

impl fmt::Display for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mti({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mti(s: &str) -> Mti {
        s.parse().expect("valid MTI")
    }

    #[test]
    fn response_mtis() {
        assert_eq!(mti("0100").response(), Some(mti("0110")));
        assert_eq!(mti("0101").response(), Some(mti("0110")));
        assert_eq!(mti("0420").response(), Some(mti("0430")));
        assert_eq!(mti("0421").response(), Some(mti("0430")));
        assert_eq!(mti("1804").response(), Some(mti("1814")));
        assert_eq!(mti("0130").response(), None);
        assert_eq!(mti("0800").response(), Some(mti("0810")));
        assert_eq!(mti("0110").response(), None);
    }

    #[test]
    fn digits_decompose() {
        let m = mti("1420");
        assert_eq!(m.version(), 1);
        assert_eq!(m.class(), MessageClass::Reversal);
        assert_eq!(m.function(), Function::Advice);
        assert_eq!(m.origin(), 0);
        assert!(mti("0401").is_repeat());
        assert_eq!(mti("0420").as_repeat(), mti("0421"));
        assert_eq!(mti("0100").with_version(1), mti("1100"));
        assert!("01a0".parse::<Mti>().is_err());
        assert!("010".parse::<Mti>().is_err());
    }

    #[test]
    fn reserved_digits_are_not_known() {
        for ok in [
            "0100", "0110", "0420", "0800", "1804", "1240", "1644", "2100", "0155",
        ] {
            assert!(mti(ok).is_known(), "{ok}");
        }
        // Version 3-9, class 0 or 9, function 8 or 9, origin 6-9.
        for bad in [
            "9999", "3100", "9100", "0000", "0900", "0180", "0190", "0106", "0109",
        ] {
            assert!(!mti(bad).is_known(), "{bad}");
        }
        for answer in ["0110", "0130", "0810", "1814", "0150", "0170"] {
            assert!(mti(answer).is_answer(), "{answer}");
        }
        for not in ["0100", "0120", "0800", "0140", "0421"] {
            assert!(!mti(not).is_answer(), "{not}");
        }
    }
}
