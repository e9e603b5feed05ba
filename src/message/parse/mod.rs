//! Bytes -> `Message` for a given spec: the public entry points. Two
//! passes over the same rules: the fast one (`fast.rs`) only says whether
//! a message is valid; the checking one (`checked.rs`) names the fault,
//! its field and offset. Both read the MTI and bitmaps with `reader.rs`, a
//! cursor over the input slice (a checked `get` per part: nom's `take`
//! cost 3% here, so it is kept for the TLV and PDS sub-parsers), driven by
//! the spec's compiled field table; ASCII and binary values stay in the
//! input frame (a span each), transcoded values (BCD, EBCDIC, hex) share
//! one buffer. Everything is bounded by the input's length, and every
//! fault is a typed error.

mod checked;
mod fast;
mod reader;
#[cfg(test)]
mod tests;

use bytes::Bytes;

use super::bitmap::Bitmap;
use super::error::MessageError;
use super::iso_message::{Message, ParsedParts, Slot};
use super::mti::Mti;
use super::spec::Spec;
use checked::parse_fields;
use fast::parse_fast;

pub(super) use checked::read_field;
pub(super) use reader::{Reader, read_bitmaps, read_mti};

/// The largest message the parser accepts (a 2-byte length's range).
pub const MESSAGE_BYTES_MAX: usize = 65_535;

/// Parses one message from `input` (a whole frame: trailing bytes are an error).
///
/// Two passes over the same rules: a fast one that only says whether the
/// message is valid, and, when it is not (or the fast pass cannot tell),
/// the checking parser, which names the fault, its field and offset. Both
/// accept exactly the same messages (a property test compares them).
pub fn parse(spec: &Spec, input: &Bytes) -> Result<Message, MessageError> {
    if let Some(msg) = parse_fast(spec, input) {
        return Ok(msg);
    }
    parse_checked(spec, input)
}

/// The checking parser alone: every fault is a typed error naming its
/// field and offset. `parse` gives the same results, faster for valid
/// messages; this is public so that tests can hold the two to that.
pub fn parse_checked(spec: &Spec, input: &Bytes) -> Result<Message, MessageError> {
    let mut fields = Fields::default();
    let (mti, present) = parse_fields(spec, input, &mut fields)?;
    Ok(fields.into_message(spec, mti, present, input))
}

/// What can be read of a malformed message (see `salvage.rs`).
pub use super::salvage::salvage;

/// The MTI of a frame, if its first bytes read as four digits in the
/// spec's MTI encoding (whatever follows).
pub fn read_mti_only(spec: &Spec, input: &[u8]) -> Option<Mti> {
    read_mti(spec, &mut Reader { input, offset: 0 }).ok()
}

/// The fields read so far: a span per value, and the values that had to
/// be transcoded (BCD, EBCDIC, hex) in one buffer.
#[derive(Default)]
pub(super) struct Fields {
    pub(super) slots: Vec<Slot>,
    pub(super) decoded: Vec<u8>,
}

impl Fields {
    pub(super) fn into_message(
        self,
        spec: &Spec,
        mti: Mti,
        present: Bitmap,
        input: &Bytes,
    ) -> Message {
        Message::parsed(ParsedParts {
            mti,
            present,
            slots: self.slots,
            frame: input.clone(),
            decoded: self.decoded,
            spec_id: spec.id,
        })
    }
}
