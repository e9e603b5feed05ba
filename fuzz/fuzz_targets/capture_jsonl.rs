//! cardswitch JSON-lines reader: any text reads without panicking, every
//! problem names its line, and every frame read writes back to a line that
//! reads to the same frame.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use cardswitch::capture::jsonl::{self, LineDirection, LineSide};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let capture = jsonl::read(&text);
    for p in &capture.problems {
        assert!(p.starts_with("line "), "no position: {p}");
    }
    for f in &capture.frames {
        let line = jsonl::line(
            UNIX_EPOCH + Duration::from_micros(f.time_us),
            &f.link,
            f.connection,
            LineSide::Accepted,
            if f.from_client { LineDirection::In } else { LineDirection::Out },
            None,
            f.tpdu.as_ref(),
            Some(&f.message),
            true,
        );
        let again = jsonl::parse_line(&line, 1).expect("a written line reads").expect("a frame");
        assert_eq!(again.message, f.message);
        assert_eq!(again.tpdu, f.tpdu);
        assert_eq!(again.from_client, f.from_client);
        assert_eq!(again.time_us, f.time_us);
    }
});
