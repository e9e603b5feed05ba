//! Wireshark reads what cardswitch writes: an issuer simulator captures a
//! few hundred exchanges to a pcap, tshark's ISO 8583 dissector decodes
//! the file, and every field value it shows equals cardswitch's own decode
//! of the same file. tshark must be installed (scripts/test-all.sh does
//! it): a missing tshark fails this test. Also: a masked capture holds no
//! full PAN in either format, an unmasked one does.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cardswitch::capture::read::{InputFormat, read_file};
use cardswitch::link::framing::{Framing, LengthHeader};
use cardswitch::message::Spec;
use support::certs::temp_dir;
use support::process::{run, start_listening};

const GOLDEN_PAN: &str = "4761739001010119";

fn golden_request() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/golden/iso87-ascii/0100-auth-request.hex"
    ))
    .expect("golden")
    .trim()
    .to_string()
}

/// Runs an issuer simulator capturing to `file` while `traffic` runs.
fn capture_with(file: &Path, extra: &[&str], traffic: impl FnOnce(&str)) {
    let f = file.display().to_string();
    let mut args = vec!["issuer-sim", "--listen", "127.0.0.1:0", "--capture", &f];
    args.extend_from_slice(extra);
    let mut sim = start_listening(&args);
    traffic(&sim.addr.clone());
    let status = sim.terminate(Duration::from_secs(10)).expect("sim stops");
    assert!(status.success(), "issuer-sim exit {status:?}");
}

fn send_golden(addr: &str) {
    let (code, out, err) = run(&["send", "--target", addr, &golden_request()]);
    assert_eq!(code, 0, "send: {out}{err}");
}

fn load(addr: &str, requests: &str) {
    let (code, out, err) = run(&[
        "load",
        "--target",
        addr,
        "--requests",
        requests,
        "--connections",
        "3",
        "--in-flight",
        "4",
        "--bins",
        "476173:1,545400:1",
        "--seed",
        "7",
    ]);
    assert_eq!(code, 0, "load: {out}{err}");
}

fn tshark_fields(pcap: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-r", &pcap.display().to_string()])
        .args(["-d", "tcp.port==8583,iso8583"])
        .args(["-o", "iso8583.len_endian:Big endian"])
        .args([
            "-Y",
            "iso8583",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-E",
            "occurrence=f",
        ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark is not installed: run scripts/test-all.sh (apt-get install tshark)");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

#[test]
fn tshark_decodes_cardswitch_pcaps_with_the_same_field_values() {
    let dir = temp_dir("tshark");
    let pcap = dir.join("sim.pcap");
    capture_with(&pcap, &[], |addr| {
        send_golden(addr);
        load(addr, "300");
    });
    let ours = read_file(
        &pcap,
        Some(InputFormat::Pcap),
        &Framing::new(LengthHeader::Binary2),
        None,
    )
    .expect("read pcap");
    assert!(ours.problems.is_empty(), "{:?}", ours.problems);
    assert_eq!(ours.frames.len(), 602, "301 requests and their responses");
    let numbers = [
        2u16, 3, 4, 7, 11, 12, 13, 14, 22, 32, 37, 38, 39, 41, 42, 49,
    ];
    let mut names = vec!["iso8583.mti".to_string()];
    names.extend(numbers.iter().map(|n| format!("iso8583.bit{n}")));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let theirs = tshark_fields(&pcap, &names);
    assert_eq!(
        theirs.len(),
        ours.frames.len(),
        "one dissected message per frame"
    );
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    let mut compared = 0;
    for (frame, row) in ours.frames.iter().zip(&theirs) {
        let msg = spec.parse(&frame.message).expect("our decode");
        assert_eq!(row[0], msg.mti().to_string());
        for (i, n) in numbers.iter().enumerate() {
            let expected = msg.get_str(*n).unwrap_or("");
            assert_eq!(
                row[i + 1],
                expected,
                "DE{n} of {} at {}",
                msg.mti(),
                frame.position
            );
            if !expected.is_empty() {
                compared += 1;
            }
        }
    }
    assert!(compared > 5000, "only {compared} field values compared");
}

#[test]
fn masked_captures_hold_no_full_pan_and_unmasked_ones_do() {
    let dir = temp_dir("masking");
    for (name, extra) in [
        ("masked.pcap", &[][..]),
        ("masked.jsonl", &[][..]),
        ("clear.jsonl", &["--capture-unmasked"][..]),
    ] {
        let file = dir.join(name);
        capture_with(&file, extra, send_golden);
        let bytes = std::fs::read(&file).expect("capture");
        let text = String::from_utf8_lossy(&bytes).to_string();
        let hex_pan = hex::encode_upper(GOLDEN_PAN);
        let holds_pan = bytes
            .windows(GOLDEN_PAN.len())
            .any(|w| w == GOLDEN_PAN.as_bytes())
            || text.contains(&hex_pan);
        if name.starts_with("clear") {
            assert!(
                holds_pan,
                "{name}: the unmasked capture should hold the PAN"
            );
        } else {
            assert!(!holds_pan, "{name}: a masked capture holds the full PAN");
            // The masked PAN (6 + 4, Luhn kept) is there instead.
            let masked = "4761730000010119";
            assert!(
                bytes.windows(16).any(|w| w == masked.as_bytes())
                    || text.contains(&hex::encode_upper(masked)),
                "{name}"
            );
        }
        // Track 2 (DE35) and the PIN block (DE52) are never stored masked.
        for secret in ["2712201123456789", "A1B2C3D4E5F60718"] {
            let found = text.contains(secret) || text.contains(&hex::encode_upper(secret));
            assert_eq!(found, name.starts_with("clear"), "{name}: {secret}");
        }
    }
    let (code, _out, err) = run(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--capture",
        "x.txt",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("name it .pcap or .jsonl"), "{err}");
}
