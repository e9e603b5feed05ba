//! JSON-lines captures name every frame's MTI, decoded with the link's
//! spec: a BCD link (iso87-binary) and an EBCDIC one (mastercard-ipm) as
//! well as ASCII ones, masked or not, and frames whose content is withheld
//! too. Captures written before the key existed still read.

mod support;

use std::collections::HashMap;

use bytes::Bytes;
use cardswitch::capture::jsonl;
use cardswitch::capture::sink::{self, CaptureFormat, CaptureOptions};
use cardswitch::link::framing::{Frame, Framing, LengthHeader};
use cardswitch::link::tap::{Direction, FrameTap, Side, TapFrame};
use cardswitch::message::Spec;
use serde_json::Value;
use support::certs::temp_dir;

fn golden(spec: &str, name: &str) -> Bytes {
    let text = std::fs::read_to_string(format!(
        "{}/fixtures/golden/{spec}/{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("golden");
    Bytes::from(hex::decode(text.trim()).expect("hex"))
}

/// Captures `frames` (link, message) and returns the file's lines as JSON.
fn capture(masked: bool, frames: &[(&str, Bytes)]) -> (Vec<Value>, String) {
    let dir = temp_dir("capture-mti");
    let path = dir.join("capture.jsonl");
    let specs = HashMap::from([
        (
            "bcd".to_string(),
            Spec::resolve("iso87-binary").expect("spec"),
        ),
        (
            "ebcdic".to_string(),
            Spec::resolve("mastercard-ipm").expect("spec"),
        ),
        (
            "ascii".to_string(),
            Spec::resolve("iso87-ascii").expect("spec"),
        ),
    ]);
    let (tap, handle) = sink::start(CaptureOptions {
        path: path.clone(),
        format: CaptureFormat::JsonLines,
        masked,
        specs,
        default_spec: None,
    })
    .expect("capture");
    let framing = Framing::new(LengthHeader::Binary2);
    for (link, message) in frames {
        let link = std::sync::Arc::from(*link);
        tap.frame(&TapFrame {
            link: &link,
            connection: 1,
            side: Side::Connected,
            direction: Direction::Out,
            framing: &framing,
            frame: &Frame::new(message.clone()),
        });
    }
    handle.finish().expect("finish");
    let text = std::fs::read_to_string(&path).expect("read");
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    (lines, text)
}

#[test]
fn every_frame_names_its_mti_in_the_links_encoding() {
    let bcd = golden("iso87-binary", "0100-auth-request");
    let ebcdic = golden("mastercard-ipm", "1240-first-presentment");
    let ascii = golden("iso87-ascii", "0800-echo");
    // A BCD MTI followed by bytes that are no message: withheld when masked.
    let broken = Bytes::from_static(&[0x08, 0x10, 0xFF]);
    let frames = [
        ("bcd", bcd),
        ("ebcdic", ebcdic),
        ("ascii", ascii),
        ("bcd", broken),
    ];
    for masked in [true, false] {
        let (lines, text) = capture(masked, &frames);
        let mtis: Vec<&str> = lines.iter().filter_map(|l| l["mti"].as_str()).collect();
        assert_eq!(mtis, ["0100", "1240", "0800", "0810"], "{text}");
        assert_eq!(lines[3]["hex"].is_null(), masked, "{text}");
        // The reader takes the frames back, whatever their encoding.
        let read = jsonl::read(&text);
        assert!(read.problems.is_empty(), "{:?}", read.problems);
        assert_eq!(read.frames.len(), if masked { 3 } else { 4 });
    }
}

#[test]
fn captures_without_the_mti_key_still_read() {
    let line = r#"{"time":"2025-01-01T00:00:00Z","link":"a","connection":1,"side":"accepted","direction":"in","hex":"0100","masked":true}"#;
    let read = jsonl::read(line);
    assert!(read.problems.is_empty(), "{:?}", read.problems);
    assert_eq!(read.frames.len(), 1);
    assert_eq!(&read.frames[0].message[..], &[0x01, 0x00]);
}
