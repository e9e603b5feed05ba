//! EMV BER-TLV: parse never panics; writing the objects back gives data that
//! parses to the same objects, never longer than the input; and when the
//! input used minimal length forms (then and only then the lengths match),
//! the very same bytes. Constructed objects are parsed one level down too.
//! `tlv::check` (what the message parser runs) finds exactly the faults
//! `parse` finds.
#![no_main]

use bytes::BytesMut;
use cardswitch::message::tlv::{self, Tlv};
use libfuzzer_sys::fuzz_target;

/// How deep constructed objects are followed.
const DEPTH_MAX: usize = 4;

fn check(data: &[u8], depth: usize) {
    assert_eq!(tlv::check(data), tlv::parse(data).map(|_| ()), "check and parse disagree");
    let objects = match tlv::parse(data) {
        Ok(objects) => objects,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(objects.len() <= tlv::TLV_OBJECTS_MAX);
    let mut out = BytesMut::new();
    for t in &objects {
        tlv::write(t.tag, t.value, &mut out);
        let hex = tlv::tag_hex(t.tag);
        assert_eq!(tlv::parse_tag_hex(&hex), Some(t.tag), "tag {hex}");
        if t.is_constructed() && depth < DEPTH_MAX {
            check(t.value, depth + 1);
        }
    }
    // Each object's tag bytes come back as read and the writer uses the
    // shortest length form, so the output can only be shorter than the input,
    // and is the same length only if every length was already minimal.
    assert!(out.len() <= data.len(), "rewrite grew the data");
    if out.len() == data.len() {
        assert_eq!(&out[..], data, "minimal-form TLV did not rewrite to itself");
    }
    let again: Vec<Tlv<'_>> = tlv::parse(&out).expect("rewritten TLV parses");
    assert_eq!(again, objects, "rewritten TLV parses to other objects");
}

fuzz_target!(|data: &[u8]| {
    check(data, 0);
});
