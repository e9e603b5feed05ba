//! The journal log's entry decoder and segment reader over arbitrary
//! bytes: never a panic; every entry decoded re-encodes to exactly the
//! bytes it came from; the reader yields entries in sequence from the
//! first, and its end and damage lie within the input.
#![no_main]

use cardswitch::journal::log::reader::{SliceError, scan_slice};
use cardswitch::journal::log::record::{decode_entry, encode_entry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((entry, n)) = decode_entry(data) {
        let mut again = Vec::new();
        encode_entry(entry.seq, &entry.record, &mut again).expect("a decoded entry re-encodes");
        assert_eq!(&again[..], &data[..n], "re-encoding differs");
    }
    let first = data
        .get(9..17)
        .map_or(1, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let mut next = first;
    let result = scan_slice(data, first, &mut |e| {
        assert_eq!(e.seq, next, "out of sequence");
        next = next.wrapping_add(1);
    });
    match result {
        Ok(end) => {
            assert!(end.end <= data.len());
            assert_eq!(end.next_seq, next);
            if let Some(d) = end.damage {
                assert_eq!(d.offset, end.end);
                assert!(d.offset + d.dropped_bytes <= data.len());
            }
        }
        Err(SliceError::Corrupt { offset, later, .. }) => assert!(offset < later && later < data.len()),
        Err(SliceError::Malformed { offset, .. }) => assert!(offset < data.len()),
    }
});
