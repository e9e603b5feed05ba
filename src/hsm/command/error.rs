//! What a malformed frame, request or response is: each variant names the
//! field at fault, never its value (fields carry keys, PIN blocks, PANs).

use thiserror::Error;

/// Why a host-command frame or message did not decode.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The frame's length field says more than a frame may hold.
    #[error("frame of {got} bytes: at most {max}")]
    FrameLength { got: usize, max: usize },
    /// The frame is shorter than its header and command code.
    #[error("frame of {got} bytes is shorter than header ({header} bytes) and code")]
    FrameShort { got: usize, header: usize },
    /// The message ended inside a field.
    #[error("message ends inside field {field}")]
    Truncated { field: &'static str },
    /// Bytes left after the last field.
    #[error("{extra} bytes after the last field")]
    TrailingBytes { extra: usize },
    /// A command code this codec does not know.
    #[error("unknown command code {code:?}")]
    UnknownCommand { code: String },
    /// A response code that answers no command this codec knows.
    #[error("unknown response code {code:?}")]
    UnknownResponse { code: String },
    /// A field that should be hexadecimal was not.
    #[error("field {field} is not hexadecimal")]
    NotHex { field: &'static str },
    /// A field that should be decimal digits was not.
    #[error("field {field} is not decimal")]
    NotDecimal { field: &'static str },
    /// A field with a value outside its allowed set or range.
    #[error("field {field} has a value out of range")]
    Value { field: &'static str },
    /// A key field with a scheme tag this codec does not take.
    #[error("field {field}: unsupported key scheme")]
    KeyScheme { field: &'static str },
    /// A field longer than its limit.
    #[error("field {field} of {got} bytes: at most {max}")]
    FieldLength {
        field: &'static str,
        got: usize,
        max: usize,
    },
    /// A value the encoder was asked to write does not fit its field.
    #[error("cannot encode field {field}: {why}")]
    Encode {
        field: &'static str,
        why: &'static str,
    },
}
