//! Card data in every output form: one 0100 with a PAN (DE2), track 2
//! (DE35), track 1 (DE45), a PIN block (DE52) and ICC data (DE55 with the
//! application PAN 5A, track 2 equivalent 57, cardholder name 5F20, track 1
//! discretionary data 9F1F and the cryptogram 9F26) goes through `decode`
//! (text and JSON), `describe`, `send`, the capture writers (JSON lines and
//! pcap), `replay`'s diff (printed and in its report) and the errors of a
//! message that does not parse. None of them may hold a clear value unless
//! `--reveal` is given; with it, `decode --json` shows them and warns.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cardswitch::capture::sink::{self, CaptureFormat, CaptureOptions};
use cardswitch::link::framing::{Frame, Framing, LengthHeader};
use cardswitch::link::tap::{Direction, FrameTap, Side, TapFrame};
use cardswitch::message::describe::describe;
use cardswitch::message::json::{Reveal, to_json};
use cardswitch::message::tlv;
use cardswitch::message::{Message, Spec};
use support::certs::temp_dir;
use support::process::run;

const SPEC: &str = "iso87-ascii";
const PAN: &str = "4761739001010119";
const PAN_REPLAYED: &str = "5500000000000004";
const TRACK2: &str = "4761739001010119=27122011234567890";
const TRACK1: &str = "B4761739001010119^CARDHOLDER/JANE^2712201123400567000000";
const PIN_BLOCK: &str = "A1B2C3D4E5F60718";
const NAME: &str = "JANE CARDHOLDER";
const TRACK1_DISCRETIONARY: &str = "1234500567000000";
const CRYPTOGRAM: &str = "8A1F2C3D4E5F6071";
const CRYPTOGRAM_REPLAYED: &str = "0F0E0D0C0B0A0908";
/// Tag 57: the PAN, separator D, expiry, service code, discretionary data, F pad.
const TRACK2_EQUIVALENT: &str = "4761739001010119D27122011234567F";

/// Text that must not appear (compared without regard to case).
fn text_needles() -> Vec<String> {
    let hex_of = |s: &str| hex::encode_upper(s.as_bytes());
    vec![
        PAN.into(),
        PAN_REPLAYED.into(),
        TRACK2.into(),
        TRACK1.into(),
        PIN_BLOCK.into(),
        NAME.into(),
        TRACK1_DISCRETIONARY.into(),
        CRYPTOGRAM.into(),
        CRYPTOGRAM_REPLAYED.into(),
        TRACK2_EQUIVALENT.into(),
        hex_of(PAN),
        hex_of(PAN_REPLAYED),
        hex_of(TRACK2),
        hex_of(TRACK1),
        hex_of(NAME),
        hex_of(TRACK1_DISCRETIONARY),
        // Binary fields travel as hex text in iso87-ascii: a JSON-lines
        // capture would hold the hex of that text.
        hex_of(PIN_BLOCK),
        hex_of(CRYPTOGRAM),
        hex_of(CRYPTOGRAM_REPLAYED),
        hex_of(TRACK2_EQUIVALENT),
    ]
}

/// The clear values found in `output`, as text or as the raw bytes of a
/// binary value (a pcap holds bytes, not hex).
fn leaks(output: &[u8]) -> Vec<String> {
    let lower = String::from_utf8_lossy(output).to_lowercase();
    let mut found: Vec<String> = text_needles()
        .into_iter()
        .filter(|n| lower.contains(&n.to_lowercase()))
        .collect();
    for raw in [PIN_BLOCK, CRYPTOGRAM, TRACK2_EQUIVALENT, PAN] {
        let bytes = hex::decode(raw).expect("hex");
        if output.windows(bytes.len()).any(|w| w == bytes) {
            found.push(format!("bytes {raw}"));
        }
    }
    found
}

fn assert_clean(what: &str, output: &[u8]) {
    let found = leaks(output);
    assert!(
        found.is_empty(),
        "{what} shows card data in clear: {found:?}\n{}",
        String::from_utf8_lossy(output)
    );
}

fn icc_data(pan: &str, cryptogram: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    tlv::write(0x5A, &hex::decode(pan).expect("hex"), &mut out);
    let track2: String = TRACK2_EQUIVALENT.replacen(PAN, pan, 1);
    tlv::write(0x57, &hex::decode(track2).expect("hex"), &mut out);
    tlv::write(0x5F20, NAME.as_bytes(), &mut out);
    tlv::write(0x9F1F, TRACK1_DISCRETIONARY.as_bytes(), &mut out);
    tlv::write(0x9F26, &hex::decode(cryptogram).expect("hex"), &mut out);
    tlv::write(0x9F27, &[0x80], &mut out);
    tlv::write(0x9F02, &hex::decode("000000012500").expect("hex"), &mut out);
    out.to_vec()
}

fn request() -> Message {
    let mut m = Message::new("0100".parse().expect("mti"));
    for (n, v) in [
        (2, PAN),
        (3, "000000"),
        (4, "000000012500"),
        (11, "123456"),
        (35, TRACK2),
        (41, "TERM0001"),
        (45, TRACK1),
        (49, "840"),
    ] {
        m.set_str(n, v).expect("field");
    }
    m.set(52, Bytes::from(hex::decode(PIN_BLOCK).expect("hex")))
        .expect("DE52");
    m.set(55, Bytes::from(icc_data(PAN, CRYPTOGRAM)))
        .expect("DE55");
    m
}

fn spec() -> Arc<Spec> {
    Spec::resolve(SPEC).expect("spec")
}

fn wire(m: &Message) -> Bytes {
    spec().build(m).expect("build")
}

/// A response to `request` holding card data: the captured one has the
/// request's, the replayed one another card's.
fn response(request: &Message, replayed: bool) -> Message {
    let mut m = request.clone();
    m.set_mti("0110".parse().expect("mti"));
    m.set_str(39, "00").expect("DE39");
    if replayed {
        m.set_str(2, PAN_REPLAYED).expect("DE2");
        m.set_str(35, &TRACK2.replace(PAN, PAN_REPLAYED))
            .expect("DE35");
        m.set_str(45, &TRACK1.replace(PAN, PAN_REPLAYED))
            .expect("DE45");
        m.set(52, Bytes::from_static(&[0x11; 8])).expect("DE52");
        m.set(55, Bytes::from(icc_data(PAN_REPLAYED, CRYPTOGRAM_REPLAYED)))
            .expect("DE55");
    }
    m
}

fn framed(message: &[u8]) -> Vec<u8> {
    let mut v = (message.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(message);
    v
}

/// A loopback host that answers each framed request with `answer(request)`,
/// for `connections` connections, then stops.
fn host(connections: usize, answer: fn(&[u8]) -> Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            std::thread::spawn(move || serve(stream, answer));
        }
    });
    addr
}

fn serve(mut stream: TcpStream, answer: fn(&[u8]) -> Vec<u8>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut msg).is_err() {
            return;
        }
        if stream.write_all(&framed(&answer(&msg))).is_err() {
            return;
        }
    }
}

fn echo(request: &[u8]) -> Vec<u8> {
    request.to_vec()
}

fn replayed_answer(request: &[u8]) -> Vec<u8> {
    let req = spec().parse_slice(request).expect("request parses");
    wire(&response(&req, true)).to_vec()
}

#[test]
fn decode_describe_and_send_show_no_card_data_unless_revealed() {
    let hex = hex::encode_upper(wire(&request()));
    let (code, out, err) = run(&["decode", "--spec", SPEC, &hex]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("476173******0119"), "{out}");
    assert_clean("decode", format!("{out}{err}").as_bytes());
    let (code, out, err) = run(&["decode", "--spec", SPEC, "--json", &hex]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["fields"]["2"], "476173******0119");
    assert!(
        v["fields"]["55"]
            .as_str()
            .is_some_and(|s| s.contains("5A=476173******0119") && s.contains("9F27=80")),
        "{out}"
    );
    assert_clean("decode --json", format!("{out}{err}").as_bytes());
    assert_clean("describe", describe(&spec(), &request()).as_bytes());
    assert_clean(
        "to_json",
        to_json(&spec(), &request(), Reveal::Masked)
            .to_string()
            .as_bytes(),
    );

    // --reveal: the clear values, and a warning.
    let (code, out, err) = run(&["decode", "--spec", SPEC, "--json", "--reveal", &hex]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("card data"), "no warning: {err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["fields"]["2"], PAN);
    assert_eq!(v["fields"]["35"], TRACK2);
    assert_eq!(
        v["fields"]["55"],
        hex::encode_upper(icc_data(PAN, CRYPTOGRAM))
    );

    // `send` prints the (echoed) response masked, as text and as JSON.
    let addr = host(2, echo);
    for json in [false, true] {
        let mut args = vec!["send", "--target", &addr, "--spec", SPEC, &hex];
        if json {
            args.push("--json");
        }
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("476173******0119"), "{out}");
        assert_clean("send", format!("{out}{err}").as_bytes());
    }
}

#[test]
fn messages_that_do_not_parse_are_reported_without_card_data() {
    let full = wire(&request());
    let cut = hex::encode_upper(&full[..full.len() - 3]);
    for json in [false, true] {
        let mut args = vec!["decode", "--spec", SPEC, &cut];
        if json {
            args.push("--json");
        }
        let (code, out, err) = run(&args);
        assert_ne!(code, 0);
        assert!(err.contains("field 55"), "{err}");
        assert_clean("a parse error", format!("{out}{err}").as_bytes());
    }
    // DE55 itself broken (a tag cut short after the card data): a format
    // error naming the field, which shows none of the card data before it.
    let mut m = request();
    let mut icc = icc_data(PAN, CRYPTOGRAM);
    icc.push(0x9F);
    m.set(55, Bytes::from(icc)).expect("DE55");
    let hex = hex::encode_upper(wire(&m));
    for json in [false, true] {
        let mut args = vec!["decode", "--spec", SPEC, &hex];
        if json {
            args.push("--json");
        }
        let (code, out, err) = run(&args);
        assert_ne!(code, 0, "{out}");
        assert!(format!("{out}{err}").contains("field 55"), "{out}{err}");
        assert_clean("broken DE55", format!("{out}{err}").as_bytes());
    }
}

#[test]
fn captures_hold_no_card_data() {
    let dir = temp_dir("card-data-captures");
    let framing = Framing::new(LengthHeader::Binary2);
    let spec = spec();
    for (name, format) in [
        ("capture.jsonl", CaptureFormat::JsonLines),
        ("capture.pcap", CaptureFormat::Pcap),
    ] {
        let path = dir.join(name);
        let (tap, handle) = sink::start(CaptureOptions {
            path: path.clone(),
            format,
            masked: true,
            specs: HashMap::from([("pos".to_string(), spec.clone())]),
            default_spec: None,
        })
        .expect("capture");
        let link: Arc<str> = Arc::from("pos");
        let req = request();
        for (direction, message) in [
            (Direction::In, wire(&req)),
            (Direction::Out, wire(&response(&req, false))),
        ] {
            tap.frame(&TapFrame {
                link: &link,
                connection: 1,
                side: Side::Accepted,
                direction,
                framing: &framing,
                frame: &Frame::new(message),
            });
        }
        let stats = handle.finish().expect("finish");
        assert_eq!(stats.written, 2);
        let bytes = std::fs::read(&path).expect("read capture");
        assert!(!bytes.is_empty());
        assert_clean(name, &bytes);
    }
}

#[test]
fn replay_reports_hold_no_card_data() {
    let dir = temp_dir("card-data-replay");
    let req = request();
    let log = format!(
        "> {}\n< {}\n",
        hex::encode_upper(wire(&req)),
        hex::encode_upper(wire(&response(&req, false)))
    );
    let capture = dir.join("capture.hex");
    std::fs::write(&capture, log).expect("write");
    let report = dir.join("report.json");
    let addr = host(1, replayed_answer);
    let (code, out, err) = run(&[
        "replay",
        "--capture",
        &capture.display().to_string(),
        "--format",
        "hex",
        "--target",
        &addr,
        "--spec",
        SPEC,
        "--fast",
        "--report",
        &report.display().to_string(),
    ]);
    assert_ne!(code, 0, "the replay differs: {out}{err}");
    let report = std::fs::read_to_string(&report).expect("report");
    let v: serde_json::Value = serde_json::from_str(&report).expect("json");
    let fields: Vec<&str> = v["differences"][0]["fields"]
        .as_array()
        .expect("differences")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(fields, ["2", "35", "45", "52", "55"], "{report}");
    assert!(out.contains("550000******0004"), "{out}");
    assert_clean("replay output", format!("{out}{err}").as_bytes());
    assert_clean("replay report", report.as_bytes());
}

/// A dialect that carries ICC data in a private field (DE126) as well.
const PRIVATE_TLV_SPEC: &str = r#"
name = "iso87-ascii-private-icc"
description = "iso87-ascii with ICC data in DE126"
base = "iso87-ascii"
fields = [
  { number = 126, name = "Private ICC data", class = "b", length = "LLL", max = 255, structure = "tlv" },
]
"#;

#[test]
fn any_tlv_field_is_masked_not_only_de55() {
    let dir = temp_dir("card-data-private-tlv");
    let spec_path = dir.join("private-icc.toml");
    std::fs::write(&spec_path, PRIVATE_TLV_SPEC).expect("spec");
    let spec_arg = spec_path.display().to_string();
    let spec = Spec::resolve(&spec_arg).expect("spec");
    let mut m = Message::new("0100".parse().expect("mti"));
    for (n, v) in [(3, "000000"), (11, "000001"), (41, "TERM0001")] {
        m.set_str(n, v).expect("field");
    }
    m.set(126, Bytes::from(icc_data(PAN, CRYPTOGRAM)))
        .expect("DE126");
    let raw = spec.build(&m).expect("build");
    let hex = hex::encode_upper(&raw);
    for json in [false, true] {
        let mut args = vec!["decode", "--spec", &spec_arg, &hex];
        if json {
            args.push("--json");
        }
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("476173******0119"), "{out}");
        assert_clean("decode of DE126", format!("{out}{err}").as_bytes());
    }
    // A capture drops the field: it holds card data.
    let path = dir.join("capture.jsonl");
    let (tap, handle) = sink::start(CaptureOptions {
        path: path.clone(),
        format: CaptureFormat::JsonLines,
        masked: true,
        specs: HashMap::new(),
        default_spec: Some(spec.clone()),
    })
    .expect("capture");
    let link: Arc<str> = Arc::from("pos");
    tap.frame(&TapFrame {
        link: &link,
        connection: 1,
        side: Side::Accepted,
        direction: Direction::In,
        framing: &Framing::new(LengthHeader::Binary2),
        frame: &Frame::new(raw),
    });
    handle.finish().expect("finish");
    let text = std::fs::read_to_string(&path).expect("capture");
    assert!(
        text.contains("\"hex\":\"30313030"),
        "a frame is written: {text}"
    );
    assert_clean("capture of DE126", text.as_bytes());
}
