//! pcap / pcapng reader: the first byte picks the framing applied to the
//! reassembled streams, the rest is the file. Reading never panics, every
//! frame fits the frame limit, and a problem names its position.
#![no_main]

use cardswitch::capture::pcap_read;
use cardswitch::link::framing::{Framing, LengthHeader};
use libfuzzer_sys::fuzz_target;

const FRAME_BYTES_MAX: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, file)) = data.split_first() else {
        return;
    };
    let length = match selector % 3 {
        0 => LengthHeader::Binary2,
        1 => LengthHeader::Binary2Inclusive,
        _ => LengthHeader::Ascii4,
    };
    let mut framing = Framing::new(length).with_frame_bytes_max(FRAME_BYTES_MAX);
    if selector & 0x04 != 0 {
        framing = framing.with_tpdu();
    }
    let capture = pcap_read::read(file, &framing, None);
    for f in &capture.frames {
        assert!(f.message.len() <= FRAME_BYTES_MAX);
    }
    for p in &capture.problems {
        assert!(p.contains("byte") || p.starts_with("stream "), "no position: {p}");
    }
});
