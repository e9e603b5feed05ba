//! Hex-log reader: any text reads without panicking; every frame has at
//! least an MTI's bytes and every problem names its line.
#![no_main]

use cardswitch::capture::hexlog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let capture = hexlog::read(&text);
    for f in &capture.frames {
        assert!(f.message.len() >= 4);
    }
    for p in &capture.problems {
        assert!(p.starts_with("line "), "no position: {p}");
    }
});
