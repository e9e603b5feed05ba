//! What an HSM call can fail with, and the one mapping from a failure to
//! the ISO 8583 response code the switch answers with. No variant holds a
//! field's value, so a logged error never shows a key, PIN block or PAN.

use crate::hsm::command::{CodecError, ErrorCode};
use crate::message::response_codes::Outcome;

/// Why an HSM command did not give its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// The HSM answered with an error code (01 included: a MAC, CVV or
    /// cryptogram that did not verify).
    #[error("HSM refused the command: error code {:02}", .0.number())]
    Refused(ErrorCode),
    /// No answer within the command's time-out; its connection is closed
    /// (a late answer could no longer be matched).
    #[error("HSM did not answer in time")]
    Timeout,
    /// No connection to the HSM is up, or the one used was lost.
    #[error("HSM unavailable")]
    Unavailable,
    /// The HSM's answer, or the request, broke the host protocol.
    #[error("HSM protocol error: {0}")]
    Protocol(ProtocolError),
}

/// How the exchange broke the protocol. The connection an answer came on
/// is replaced: after one wrong answer the rest cannot be trusted to line
/// up with their commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The answer's header is not the one sent.
    #[error("the answer's header is not the configured one")]
    Header,
    /// The answer does not decode.
    #[error("the answer does not decode: {0}")]
    Decode(CodecError),
    /// The answer is for another command (the connection is out of step).
    #[error("answer {got} to command {sent}")]
    WrongAnswer { sent: String, got: String },
    /// The answer decodes but lacks what the command returns.
    #[error("answer to {0} lacks its fields")]
    Body(&'static str),
    /// The request could not be encoded (a value does not fit its field).
    #[error("the request does not encode: {0}")]
    Request(CodecError),
}

impl From<ProtocolError> for HsmError {
    fn from(e: ProtocolError) -> HsmError {
        HsmError::Protocol(e)
    }
}

/// The commands whose refusals say something about the PIN itself.
const PIN_TRANSLATIONS: &[&[u8; 2]] = &[b"CA", b"CC", b"G0"];

impl HsmError {
    /// What the switch answers when `command` failed so. 55 only where
    /// the HSM found the PIN block holds no valid PIN (20) or a PIN of a
    /// wrong length (24); a MAC that does not verify is a security
    /// violation (63); a CVV or ARQC that does not verify declines the
    /// card (05). Everything else, a fault of ours or of the HSM, is 96.
    pub fn outcome(&self, command: &[u8; 2]) -> Outcome {
        let HsmError::Refused(code) = self else {
            return Outcome::SystemMalfunction;
        };
        match (command, code) {
            (c, ErrorCode::PinBlockData | ErrorCode::PinLength)
                if PIN_TRANSLATIONS.contains(&c) =>
            {
                Outcome::IncorrectPin
            }
            (b"M8", ErrorCode::VerificationFailure) => Outcome::SecurityViolation,
            (b"CY" | b"KQ", ErrorCode::VerificationFailure) => Outcome::DoNotHonour,
            _ => Outcome::SystemMalfunction,
        }
    }

    /// DE39 (1987 form) for [`HsmError::outcome`].
    pub fn response_code(&self, command: &[u8; 2]) -> &'static str {
        self.outcome(command).code()
    }

    /// A metric label: the error number, or the kind.
    pub(super) fn label(&self) -> String {
        match self {
            HsmError::Refused(c) => format!("{:02}", c.number()),
            HsmError::Timeout => "timeout".into(),
            HsmError::Unavailable => "unavailable".into(),
            HsmError::Protocol(_) => "protocol".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_their_response_codes() {
        let refused = |n| HsmError::Refused(ErrorCode::from_number(n));
        for cmd in [b"CA", b"CC", b"G0"] {
            assert_eq!(refused(20).response_code(cmd), "55");
            assert_eq!(refused(24).response_code(cmd), "55");
            for other in [1, 10, 11, 12, 13, 15, 22, 23, 27, 41, 68] {
                assert_eq!(refused(other).response_code(cmd), "96", "{other}");
            }
        }
        assert_eq!(refused(1).response_code(b"M8"), "63");
        assert_eq!(refused(1).response_code(b"CY"), "05");
        assert_eq!(refused(1).response_code(b"KQ"), "05");
        assert_eq!(refused(20).response_code(b"M8"), "96");
        for e in [
            HsmError::Timeout,
            HsmError::Unavailable,
            HsmError::Protocol(ProtocolError::Header),
        ] {
            assert_eq!(e.response_code(b"CA"), "96");
        }
    }

    #[test]
    fn labels_are_numbers_or_kinds() {
        assert_eq!(HsmError::Refused(ErrorCode::PinBlockData).label(), "20");
        assert_eq!(HsmError::Timeout.label(), "timeout");
    }
}
