//! Broken captures: a pcap cut inside a record, a stream that ends in the
//! middle of a frame, an unknown link type, a broken file header, hex lines
//! that do not parse. Each gives a clear error with its position, and the
//! replay goes on with the rest where that makes sense (and exits non-zero).

mod support;

use std::path::Path;

use cardswitch::capture::pcap_write::PcapFrameWriter;
use serde_json::Value;
use support::certs::temp_dir;
use support::process::{run, start_listening};

fn golden(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(format!(
        "{}/fixtures/golden/iso87-ascii/{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("golden");
    hex::decode(text.trim()).expect("hex")
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut v = (msg.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(msg);
    v
}

/// Three connections each with the golden 0100 and 0110; the third one's
/// response is cut after 40 bytes (its length header says more).
fn pcap_bytes() -> Vec<u8> {
    let (req, resp) = (
        framed(&golden("0100-auth-request")),
        framed(&golden("0110-auth-response")),
    );
    let mut w = PcapFrameWriter::new(Vec::new()).expect("writer");
    for conn in 1..=3u64 {
        w.write_frame(conn * 1000, "issuer", conn, true, &req)
            .expect("request");
        let answer = if conn == 3 { &resp[..40] } else { &resp[..] };
        w.write_frame(conn * 1000 + 10, "issuer", conn, false, answer)
            .expect("response");
    }
    w.into_inner()
}

fn replay(file: &Path, target: &str, extra: &[&str]) -> (i32, String, String, Value) {
    let report = file.with_extension("report.json");
    let f = file.display().to_string();
    let r = report.display().to_string();
    let mut args = vec![
        "replay",
        "--capture",
        &f,
        "--target",
        target,
        "--fast",
        "--report",
        &r,
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args);
    let json = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (code, out, err, json)
}

#[test]
fn broken_pcaps_are_reported_with_positions_and_the_rest_is_replayed() {
    let dir = temp_dir("capture-errors");
    let sim = start_listening(&["issuer-sim", "--listen", "127.0.0.1:0"]);
    let good = pcap_bytes();

    // A stream cut mid-frame: named, and the other two exchanges replay.
    let file = dir.join("cut-stream.pcap");
    std::fs::write(&file, &good).expect("write");
    let (code, out, err, report) = replay(&file, &sim.addr, &[]);
    assert_ne!(code, 0);
    assert!(err.contains("capture: stream 10.0.0.1:8583 -> 10.1.0.3:20000: ends in the middle of a frame (40 bytes after packet 15 (byte"), "{err}");
    assert!(out.contains("sent 3, matched 3"), "{out}");
    assert_eq!(report["summary"]["sent"], 3);
    assert_eq!(report["problems"].as_array().map(Vec::len), Some(1));

    // The file cut inside the last packet record.
    let file = dir.join("cut-file.pcap");
    std::fs::write(&file, &good[..good.len() - 30]).expect("write");
    let (code, _out, err, report) = replay(&file, &sim.addr, &[]);
    assert_ne!(code, 0);
    assert!(err.contains("capture: packet 15 (byte"), "{err}");
    assert!(err.contains("the file ends inside this record"), "{err}");
    assert_eq!(
        report["summary"]["sent"], 3,
        "the requests before the cut are replayed"
    );

    // An unknown link type (147, USER0): nothing can be read.
    let mut user0 = good.clone();
    user0[20..24].copy_from_slice(&147u32.to_le_bytes());
    let file = dir.join("user0.pcap");
    std::fs::write(&file, &user0).expect("write");
    let (code, _out, err, report) = replay(&file, &sim.addr, &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("packet 1 (byte 24): link type 147 is not supported"),
        "{err}"
    );
    assert_eq!(report["summary"]["sent"], 0);

    // A broken file header.
    let file = dir.join("header.pcap");
    std::fs::write(&file, &good[..10]).expect("write");
    let (code, _out, err, _) = replay(&file, &sim.addr, &[]);
    assert_ne!(code, 0);
    assert!(err.contains("byte 0: bad pcap file header"), "{err}");

    // Not a capture at all, by content.
    let file = dir.join("noise.pcap");
    std::fs::write(&file, b"\x00\x01\x02\x03garbage").expect("write");
    let (code, _out, err, _) = replay(&file, &sim.addr, &["--format", "pcap"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("byte 0: not a pcap or pcapng file (starts with 00010203)"),
        "{err}"
    );
}

#[test]
fn bad_hex_lines_are_named_and_the_good_ones_replayed() {
    let dir = temp_dir("hexlog-errors");
    let sim = start_listening(&["issuer-sim", "--listen", "127.0.0.1:0"]);
    let req = hex::encode_upper(golden("0100-auth-request"));
    let echo = hex::encode_upper(golden("0800-echo"));
    let log = format!(
        "# captured by hand\n2025-01-02T03:04:05Z > {req}\n> 30G0\n1735787046.5 > {echo}\nnoon {echo}\n"
    );
    let file = dir.join("log.hex");
    std::fs::write(&file, log).expect("write");
    let (code, out, err, report) = replay(&file, &sim.addr, &[]);
    assert_ne!(code, 0, "bad lines fail the run");
    assert!(
        err.contains("capture: line 3, column 5: 'G' is not a hex digit"),
        "{err}"
    );
    assert!(
        err.contains("capture: line 5, column 1: expected a time, a direction (> or <) or hex"),
        "{err}"
    );
    assert!(out.contains("sent 2, matched 2"), "{out}");
    assert_eq!(report["summary"]["unanswered"], 0);
    assert_eq!(
        report["summary"]["extra"], 2,
        "answers the log did not hold"
    );
}
