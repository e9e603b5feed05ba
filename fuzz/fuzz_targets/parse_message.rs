//! Any bytes, parsed with the shipped spec the first byte selects: the
//! parser returns a typed error or a message, and never panics; neither does
//! salvaging what can be read of a malformed message. A parsed
//! message must also survive the read-only tools that follow a parse
//! (describe, JSON export, the TLV / PDS readers of structured fields), and
//! the clear JSON export must import back to the same message.
#![no_main]

use bytes::Bytes;
use cardswitch::message::json::{self, Reveal};
use cardswitch::message::spec::Structure;
use cardswitch::message::{describe, parse, pds, tlv};
use cardswitch_fuzz::select;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((spec, wire)) = select(data) else {
        return;
    };
    let input = Bytes::copy_from_slice(wire);
    let msg = match spec.parse(&input) {
        Ok(msg) => msg,
        Err(e) => {
            // Error accessors and Display must not panic either.
            let _ = (e.offset(), e.kind(), e.field(), e.to_string());
            if let Some(partial) = parse::salvage(spec, &input) {
                let _ = describe::describe(spec, &partial);
            }
            return;
        }
    };
    let _ = describe::describe(spec, &msg);
    for (n, value) in msg.fields() {
        match spec.field(n).map(|f| &f.structure) {
            Some(Structure::Tlv) => {
                let _ = tlv::parse(value);
            }
            Some(Structure::Pds) => {
                let _ = pds::parse(value);
            }
            _ => {}
        }
    }
    let _ = json::to_json(spec, &msg, Reveal::Masked);
    let clear = json::to_json(spec, &msg, Reveal::Clear);
    let back = json::from_json(spec, &clear).expect("a parsed message's JSON imports");
    assert_eq!(back, msg, "JSON export and import changed the message");
});
