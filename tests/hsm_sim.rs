//! `cardswitch hsm-sim` as a process: keys formed with `form-key`, framed
//! payShield commands over TCP checked against `hsm::soft` (a PIN
//! translated by CA or G0 decrypts to the same PIN under the ZPK; M6 / M8;
//! NC; BU against form-key's check value), pipelined requests answered in
//! order, the fault flags, and malformed frames.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cardswitch::hsm::command::request::{DukptTranslate, KeyCheck, MacCommand, PinTranslate};
use cardswitch::hsm::command::{
    ErrorCode, KeyCryptogram, KeyScheme, Request, Response, ResponseBody, Sensitive, frame,
};
use cardswitch::hsm::soft::TdesKey;
use cardswitch::hsm::soft::mac::{self, Padding};
use cardswitch::hsm::soft::pin_block::{Pin, PinBlockFormat, account_number_12};
use cardswitch::hsm::soft::translate::{PinBlock, PinKey, decrypt_pin, encrypt_pin};
use support::process::{Running, run, start_listening};

const PAN: &str = "4012345678909";
const TPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const ZPK: &str = "89ABCDEF01234567FEDCBA9876543210";
const BDK: &str = "0123456789ABCDEFFEDCBA9876543210";
const HEADER: &[u8] = b"0042";

/// `form-key` with two components whose XOR is `clear`: (cryptogram, KCV).
fn form_key(key_type: &str, clear: &str) -> (KeyCryptogram, String) {
    let c1 = "1111111111111111".repeat(clear.len() / 16);
    let c2: String = hex::encode_upper(
        hex::decode(clear)
            .unwrap()
            .iter()
            .zip(hex::decode(&c1).unwrap())
            .map(|(a, b)| a ^ b)
            .collect::<Vec<u8>>(),
    );
    let (code, out, err) = run(&[
        "hsm-sim",
        "form-key",
        "--type",
        key_type,
        "--component",
        &c1,
        "--component",
        &c2,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains(clear) && !out.contains(&c2),
        "clear key printed"
    );
    let mut it = out.split_whitespace();
    let field = it.next().expect("key");
    let kcv = it.next().expect("kcv").to_string();
    let scheme = KeyScheme::from_tag(field.as_bytes()[0]).expect("tagged");
    (KeyCryptogram::new(scheme, &field[1..]), kcv)
}

fn start(extra: &[&str]) -> Running {
    let mut args = vec!["hsm-sim", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    start_listening(&args)
}

fn connect(sim: &Running) -> TcpStream {
    let s = TcpStream::connect(&sim.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn framed(request: &Request) -> Vec<u8> {
    let mut msg = Vec::new();
    request.encode(&mut msg).unwrap();
    let mut out = Vec::new();
    frame::encode(HEADER, &msg, &mut out).unwrap();
    out
}

/// Reads one answer: its header must be ours.
fn read_answer(s: &mut TcpStream) -> std::io::Result<Response> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body)?;
    assert_eq!(&body[..HEADER.len()], HEADER, "header echoed");
    Ok(Response::decode(&body[HEADER.len()..]).expect("response decodes"))
}

fn ask(s: &mut TcpStream, request: &Request) -> Response {
    s.write_all(&framed(request)).unwrap();
    read_answer(s).expect("an answer")
}

fn account() -> Sensitive<String> {
    let a = account_number_12(PAN).unwrap();
    Sensitive(String::from_utf8(a.to_vec()).unwrap())
}

fn pin_under_zpk(r: &Response) -> Pin {
    assert_eq!(r.error, ErrorCode::NoError, "{r:?}");
    let ResponseBody::PinTranslated { pin_block, .. } = &r.body else {
        panic!("not a PIN answer: {r:?}");
    };
    let key = PinKey::Tdes(TdesKey::from_hex(ZPK).unwrap());
    let block = PinBlock::from_bytes(&hex::decode(pin_block.as_str()).unwrap()).unwrap();
    decrypt_pin(&key, PinBlockFormat::Iso0, &block, PAN).expect("a PIN under the ZPK")
}

fn ca_request(tpk: &KeyCryptogram, zpk: &KeyCryptogram) -> Request {
    let key = PinKey::Tdes(TdesKey::from_hex(TPK).unwrap());
    let pin = Pin::new("1234").unwrap();
    let block = encrypt_pin(&key, PinBlockFormat::Iso0, &pin, PAN, &[0; 8]).unwrap();
    Request::Ca(PinTranslate {
        source_key: tpk.clone(),
        destination_zpk: zpk.clone(),
        max_pin_len: 12,
        pin_block: Sensitive(block.to_hex()),
        source_format: 1,
        destination_format: 1,
        account: account(),
    })
}

fn mac_request(tak: &KeyCryptogram, mac: Option<String>) -> Request {
    let c = MacCommand {
        mode: 0,
        input_format: 0,
        algorithm: 3,
        padding: 2,
        key_type: "003".into(),
        key: tak.clone(),
        iv: None,
        message: Sensitive(b"0200 message as sent".to_vec()),
        mac: mac.clone(),
    };
    if mac.is_some() {
        Request::M8(c)
    } else {
        Request::M6(c)
    }
}

#[test]
fn translates_pins_makes_macs_and_answers_diagnostics() {
    let (tpk, _) = form_key("TPK", TPK);
    let (zpk, zpk_kcv) = form_key("ZPK", ZPK);
    let (tak, _) = form_key("TAK", TPK);
    let (bdk, _) = form_key("BDK", BDK);
    let sim = start(&[]);
    let mut s = connect(&sim);

    let r = ask(&mut s, &ca_request(&tpk, &zpk));
    assert_eq!(&r.code, b"CB");
    assert!(pin_under_zpk(&r).ct_eq(&Pin::new("1234").unwrap()));

    let g0 = Request::G0(DukptTranslate {
        bdk,
        zpk: zpk.clone(),
        ksn_descriptor: "A05".into(),
        ksn: "FFFF9876543210E00001".into(),
        pin_block: Sensitive("1B9C1845EB993A7A".into()),
        source_format: 1,
        destination_format: 1,
        account: account(),
    });
    let r = ask(&mut s, &g0);
    assert_eq!(&r.code, b"G1");
    assert!(pin_under_zpk(&r).ct_eq(&Pin::new("1234").unwrap()));

    let want = mac::alg3(
        &TdesKey::from_hex(TPK).unwrap(),
        b"0200 message as sent",
        Padding::Method2,
    )
    .unwrap();
    let want = hex::encode_upper(want);
    let r = ask(&mut s, &mac_request(&tak, None));
    assert_eq!(r.body, ResponseBody::Mac(want.clone()));
    let r = ask(&mut s, &mac_request(&tak, Some(want)));
    assert_eq!((&r.code, r.error), (b"M9", ErrorCode::NoError));
    let r = ask(&mut s, &mac_request(&tak, Some("0123456789ABCDEF".into())));
    assert_eq!(r.error, ErrorCode::VerificationFailure);

    let r = ask(&mut s, &Request::Nc);
    assert!(matches!(r.body, ResponseBody::Diagnostics { .. }), "{r:?}");
    let bu = Request::Bu(KeyCheck {
        key_type_code: "01".into(),
        length_flag: 1,
        key: zpk.clone(),
        key_type: None,
    });
    assert_eq!(ask(&mut s, &bu).body, ResponseBody::Kcv(zpk_kcv));

    // Pipelined: three requests in one write, answered in order.
    let mut burst = framed(&Request::Nc);
    burst.extend(framed(&ca_request(&tpk, &zpk)));
    burst.extend(framed(&bu));
    s.write_all(&burst).unwrap();
    let codes: Vec<[u8; 2]> = (0..3).map(|_| read_answer(&mut s).unwrap().code).collect();
    assert_eq!(codes, [*b"ND", *b"CB", *b"BV"]);
}

#[test]
fn fault_flags_error_delay_and_silence() {
    let (tpk, _) = form_key("TPK", TPK);
    let (zpk, _) = form_key("ZPK", ZPK);
    let sim = start(&["--error", "CA=24", "--delay-ms", "300"]);
    let mut s = connect(&sim);
    let t = Instant::now();
    let r = ask(&mut s, &ca_request(&tpk, &zpk));
    assert_eq!(
        (&r.code, r.error, r.body),
        (b"CB", ErrorCode::PinLength, ResponseBody::Empty)
    );
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "answer not delayed"
    );
    // Two pipelined requests are each delayed, not one after the other.
    let t = Instant::now();
    let mut burst = framed(&Request::Nc);
    burst.extend(framed(&Request::Nc));
    s.write_all(&burst).unwrap();
    read_answer(&mut s).unwrap();
    read_answer(&mut s).unwrap();
    assert!(t.elapsed() < Duration::from_millis(3000));

    let sim = start(&["--silent-after", "1"]);
    let mut s = connect(&sim);
    assert_eq!(&ask(&mut s, &Request::Nc).code, b"ND");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.write_all(&framed(&Request::Nc)).unwrap();
    assert!(
        read_answer(&mut s).is_err(),
        "answered after --silent-after"
    );
}

#[test]
fn malformed_frames_get_error_15_or_a_close() {
    let sim = start(&[]);
    let mut s = connect(&sim);
    // A known command whose fields do not decode: 15.
    let mut bad = Vec::new();
    frame::encode(HEADER, b"BU01", &mut bad).unwrap();
    s.write_all(&bad).unwrap();
    let r = read_answer(&mut s).unwrap();
    assert_eq!((&r.code, r.error), (b"BV", ErrorCode::InputData));
    // An unknown command: the connection is closed.
    let mut unknown = Vec::new();
    frame::encode(HEADER, b"ZQ", &mut unknown).unwrap();
    s.write_all(&unknown).unwrap();
    let mut byte = [0u8; 1];
    assert!(matches!(s.read(&mut byte), Ok(0) | Err(_)), "not closed");
    // A frame shorter than its header and code: closed too.
    let mut s = connect(&sim);
    s.write_all(b"\x00\x03004").unwrap();
    assert!(matches!(s.read(&mut byte), Ok(0) | Err(_)), "not closed");
    // The server still answers.
    let mut s = connect(&sim);
    assert_eq!(&ask(&mut s, &Request::Nc).code, b"ND");
}

#[test]
fn form_key_refuses_bad_components_without_showing_them() {
    let (code, _, err) = run(&[
        "hsm-sim",
        "form-key",
        "--type",
        "ZPK",
        "--component",
        "0123456789ABCDEFFEDCBA987654321G",
    ]);
    assert_ne!(code, 0);
    assert!(!err.contains("0123456789ABCDEF"), "{err}");
    let (code, out, _) = run(&["hsm-sim", "generate-key", "--type", "ZPK"]);
    assert_eq!(code, 0);
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!((fields[0].len(), fields[1].len()), (33, 6), "{out}");
}

#[test]
fn answers_over_mutual_tls() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = support::certs::temp_dir("hsm-sim-tls");
    let pki = support::certs::make_pki(&dir, "hsm");
    let p = |p: &std::path::Path| p.display().to_string();
    let sim = start(&[
        "--tls-cert",
        &p(&pki.server_cert),
        "--tls-key",
        &p(&pki.server_key),
        "--tls-ca",
        &p(&pki.ca),
    ]);
    let client = cardswitch::link::tls::TlsClient::from_files(
        &pki.ca,
        "localhost",
        Some((&pki.client_cert, &pki.client_key)),
    )
    .expect("tls client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(&sim.addr).await.unwrap();
        let mut tls = client.connect(tcp).await.expect("handshake");
        tls.write_all(&framed(&Request::Nc)).await.unwrap();
        let mut len = [0u8; 2];
        tls.read_exact(&mut len).await.unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tls.read_exact(&mut body).await.unwrap();
        body
    });
    let r = Response::decode(&body[HEADER.len()..]).unwrap();
    assert_eq!((&r.code, r.error), (b"ND", ErrorCode::NoError));
}

#[test]
fn debug_logs_show_no_key_pin_block_or_account() {
    let (tpk, _) = form_key("TPK", TPK);
    let (zpk, _) = form_key("ZPK", ZPK);
    let dir = support::certs::temp_dir("hsm-sim-logs");
    let log = dir.join("hsm-sim.log");
    let (sim, _) = support::process::start_logged(
        &["hsm-sim", "--listen", "127.0.0.1:0"],
        1,
        &log,
        &[("RUST_LOG", "debug")],
    );
    let mut s = connect(&sim);
    let ca = ca_request(&tpk, &zpk);
    let r = ask(&mut s, &ca);
    let ResponseBody::PinTranslated { pin_block, .. } = &r.body else {
        panic!("{r:?}");
    };
    // A malformed CA (its account cut short) is logged by field name.
    let mut bad = framed(&ca);
    bad.truncate(bad.len() - 3);
    bad[1] -= 3;
    s.write_all(&bad).unwrap();
    assert_eq!(read_answer(&mut s).unwrap().error, ErrorCode::InputData);
    drop(s);
    drop(sim);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("answered"),
        "debug logs were not written: {text}"
    );
    let Request::Ca(c) = &ca else { unreachable!() };
    for secret in [
        tpk.hex.as_str(),
        zpk.hex.as_str(),
        c.pin_block.as_str(),
        pin_block.as_str(),
        c.account.as_str(),
        TPK,
        ZPK,
    ] {
        assert!(!text.contains(secret), "log shows a secret");
    }
}

#[test]
fn a_peer_that_never_reads_its_answers_is_closed() {
    let sim = start(&["--idle-timeout-s", "1"]);
    let mut s = connect(&sim);
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let chunk: Vec<u8> = (0..1000).flat_map(|_| framed(&Request::Nc)).collect();
    let start = Instant::now();
    let outcome = loop {
        if let Err(e) = s.write_all(&chunk) {
            break e;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never closed");
    };
    // Closed by the server (reset / broken pipe), not our write time-out.
    assert!(
        !matches!(
            outcome.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{outcome:?}"
    );
    let mut again = connect(&sim);
    assert_eq!(&ask(&mut again, &Request::Nc).code, b"ND");
}
