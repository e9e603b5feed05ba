//! The message layer: ISO 8583 specs as data, the `Message` value, parsing
//! and building, sub-structures (EMV TLV, Mastercard PDS, fixed subfields),
//! masking and JSON. Pure: no I/O, no clock.

pub mod bitmap;
pub mod build;
pub mod codec;
pub mod describe;
pub mod ebcdic;
pub mod error;
pub mod iso_message;
pub mod json;
pub mod key_bytes;
mod layout;
pub mod mac_field;
pub mod mti;
pub mod netmgmt;
pub mod parse;
pub mod path;
pub mod pds;
mod plan;
pub mod response_codes;
mod salvage;
pub mod sensitive;
pub mod spec;
pub mod spec_file;
mod swar;
pub mod time;
pub mod tlv;

pub use bitmap::Bitmap;
pub use error::{MessageError, Part};
pub use iso_message::Message;
pub use mti::Mti;
pub use spec::{Class, Encoding, FieldSpec, Spec};
pub use spec_file::SpecError;

impl Spec {
    /// Parses one message (see [`parse::parse`]).
    pub fn parse(&self, input: &bytes::Bytes) -> Result<Message, MessageError> {
        parse::parse(self, input)
    }

    /// Parses one message from a slice, copying it once.
    pub fn parse_slice(&self, input: &[u8]) -> Result<Message, MessageError> {
        parse::parse(self, &bytes::Bytes::copy_from_slice(input))
    }

    /// Builds one message (see [`build::build`]).
    pub fn build(&self, msg: &Message) -> Result<bytes::Bytes, MessageError> {
        build::build(self, msg)
    }
}
