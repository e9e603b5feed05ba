//! Mastercard PDS: parse never panics, and writing the subelements back
//! gives the input byte for byte (tags and lengths have one decimal form);
//! `pds::check` (what the message parser runs) agrees with `parse`.
#![no_main]

use bytes::BytesMut;
use cardswitch::message::pds;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert_eq!(pds::check(data), pds::parse(data).map(|_| ()), "check and parse disagree");
    let items = match pds::parse(data) {
        Ok(items) => items,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let mut out = BytesMut::new();
    for p in &items {
        pds::write(p.tag, p.value, &mut out)
            .unwrap_or_else(|e| panic!("parsed subelement does not write: {e}"));
    }
    assert_eq!(&out[..], data, "PDS did not rewrite to itself");
});
