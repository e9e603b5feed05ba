//! A fake payShield for the client's tests: a tokio listener that decodes
//! requests with `hsm::command` and answers them in order, computing PIN
//! translations, MACs and CVVs with `hsm::soft` (its "LMK" is the
//! identity: a key cryptogram's hex is the clear key), or misbehaving as
//! scripted (slow, silent, a wrong header, garbage, an error code).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use cardswitch::hsm::command::request::{CvvCommand, MacCommand, PinTranslate, Request};
use cardswitch::hsm::command::response::{Response, ResponseBody};
use cardswitch::hsm::command::{ErrorCode, KeyCryptogram, KeyScheme, Sensitive, frame};
use cardswitch::hsm::soft::dukpt::{KeyUsage, Ksn, host_key};
use cardswitch::hsm::soft::pin_block::PinBlockFormat;
use cardswitch::hsm::soft::translate::{PinBlock, PinKey, PinZone, translate};
use cardswitch::hsm::soft::{TdesKey, cvv, mac};
use cardswitch::link::tls::TlsServer;

/// How the fake answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Normal,
    /// Waits this long before each answer (answers stay in order).
    Slow(Duration),
    /// Answers with another header.
    WrongHeader,
    /// Answers bytes that do not decode.
    Garbage,
    /// Answers this error code to everything but NC.
    Refuse(u8),
}

pub const LMK_CHECK: &str = "0123456789ABCDEF";
pub const FIRMWARE: &str = "1500-0901";

pub struct FakeHsm {
    pub addr: std::net::SocketAddr,
    pub header: Vec<u8>,
    script: Arc<Mutex<Script>>,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
    /// The next this many connections are silent (health checks fail).
    silent_next: Arc<AtomicUsize>,
    /// The most commands seen waiting at once on one connection.
    in_flight_max: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl FakeHsm {
    pub async fn start(header: &[u8], tls: Option<TlsServer>) -> FakeHsm {
        Self::start_on("127.0.0.1:0", header, tls).await
    }

    /// On a given address (to come back where it was).
    pub async fn start_on(addr: &str, header: &[u8], tls: Option<TlsServer>) -> FakeHsm {
        let listener = TcpListener::bind(addr).await.expect("bind");
        let fake = FakeHsm {
            addr: listener.local_addr().expect("addr"),
            header: header.to_vec(),
            script: Arc::new(Mutex::new(Script::Normal)),
            accepted: Arc::new(AtomicUsize::new(0)),
            silent_next: Arc::new(AtomicUsize::new(0)),
            in_flight_max: Arc::new(AtomicUsize::new(0)),
            stop: CancellationToken::new(),
        };
        let (script, accepted, silent_next, stop) = (
            fake.script.clone(),
            fake.accepted.clone(),
            fake.silent_next.clone(),
            fake.stop.clone(),
        );
        let header = fake.header.clone();
        let in_flight_max = fake.in_flight_max.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = listener.accept() => match r { Ok(c) => c, Err(_) => return },
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let silent = silent_next
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let (script, header, stop, tls) =
                    (script.clone(), header.clone(), stop.clone(), tls.clone());
                let seen = in_flight_max.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(t) => {
                            if let Ok(s) = t.accept(tcp, Duration::from_secs(5)).await {
                                serve(s, header, script, silent, stop, seen).await;
                            }
                        }
                        None => serve(tcp, header, script, silent, stop, seen).await,
                    }
                });
            }
        });
        fake
    }

    pub fn set(&self, script: Script) {
        *self.script.lock().unwrap() = script;
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn in_flight_max(&self) -> usize {
        self.in_flight_max.load(Ordering::SeqCst)
    }

    pub fn silence_next(&self, n: usize) {
        self.silent_next.store(n, Ordering::SeqCst);
    }

    /// Stops listening and drops every connection.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    header: Vec<u8>,
    script: Arc<Mutex<Script>>,
    silent: bool,
    stop: CancellationToken,
    in_flight_max: Arc<AtomicUsize>,
) {
    let mut buf = BytesMut::new();
    loop {
        in_flight_max.fetch_max(complete_frames(&buf, header.len()), Ordering::SeqCst);
        while let Ok(Some((f, used))) = frame::decode(&buf, header.len()) {
            let request = Request::decode(f.message).expect("the client's requests decode");
            assert_eq!(f.header, &header[..], "the client sends its header");
            buf.advance(used);
            let now = *script.lock().unwrap();
            let mut out = Vec::new();
            match (silent, now, &request) {
                (true, _, _) => continue,
                (false, Script::Slow(d), _) => {
                    tokio::time::sleep(d).await;
                    answer_into(&header, &request, &mut out);
                }
                (false, Script::WrongHeader, _) => {
                    let other: Vec<u8> = header.iter().map(|b| b ^ 1).collect();
                    answer_into(&other, &request, &mut out);
                }
                (false, Script::Garbage, _) => {
                    frame::encode(&header, b"??garbage", &mut out).expect("frame");
                }
                (false, Script::Refuse(n), r) if !matches!(r, Request::Nc) => {
                    let resp = Response::error(r.code(), ErrorCode::from_number(n)).expect("code");
                    let mut m = Vec::new();
                    resp.encode(&mut m).expect("encode");
                    frame::encode(&header, &m, &mut out).expect("frame");
                }
                _ => answer_into(&header, &request, &mut out),
            }
            if s.write_all(&out).await.is_err() {
                return;
            }
        }
        let n = tokio::select! {
            _ = stop.cancelled() => return,
            n = s.read_buf(&mut buf) => n,
        };
        if !matches!(n, Ok(n) if n > 0) {
            return;
        }
    }
}

/// Whole frames in `buf` (commands read and not answered yet).
fn complete_frames(buf: &[u8], header_len: usize) -> usize {
    let (mut at, mut n) = (0, 0);
    while let Ok(Some((_, used))) = frame::decode(&buf[at..], header_len) {
        at += used;
        n += 1;
    }
    n
}

fn answer_into(header: &[u8], request: &Request, out: &mut Vec<u8>) {
    let resp = answer(request);
    let mut m = Vec::new();
    resp.encode(&mut m).expect("encode");
    frame::encode(header, &m, out).expect("frame");
}

fn ok(code: &[u8; 2], body: ResponseBody) -> Response {
    let mut r = Response::error(code, ErrorCode::NoError).expect("code");
    r.body = body;
    r
}

fn refused(code: &[u8; 2], n: u8) -> Response {
    Response::error(code, ErrorCode::from_number(n)).expect("code")
}

pub fn key(k: &KeyCryptogram) -> TdesKey {
    TdesKey::from_hex(k.hex.as_str()).expect("a clear test key")
}

pub fn format(code: u8) -> PinBlockFormat {
    match code {
        1 => PinBlockFormat::Iso0,
        5 => PinBlockFormat::Iso1,
        47 => PinBlockFormat::Iso3,
        _ => panic!("format {code}"),
    }
}

/// A PAN whose 12 digits before the check digit are `account`.
fn pan_of(account: &str) -> String {
    format!("{account}0")
}

fn pin_answer(code: &[u8; 2], from: &TdesKey, c: &PinTranslate) -> Response {
    translated(
        code,
        from,
        &key(&c.destination_zpk),
        &c.pin_block.0,
        c.source_format,
        c.destination_format,
        c.account.as_str(),
    )
}

fn translated(
    code: &[u8; 2],
    from: &TdesKey,
    to: &TdesKey,
    block: &str,
    src: u8,
    dst: u8,
    account: &str,
) -> Response {
    let block = PinBlock::from_bytes(&hex::decode(block).expect("hex")).expect("block");
    let (from, to) = (PinKey::Tdes(from.clone()), PinKey::Tdes(to.clone()));
    let zone = |key, f| PinZone {
        key,
        format: format(f),
    };
    match translate(
        zone(&from, src),
        zone(&to, dst),
        &block,
        &pan_of(account),
        &[0x5A; 8],
    ) {
        Ok(t) => ok(
            code,
            ResponseBody::PinTranslated {
                pin_len: t.pin_len as u8,
                pin_block: Sensitive(t.block.to_hex()),
                format: dst,
            },
        ),
        Err(_) => refused(code, 20),
    }
}

fn mac_answer(code: &[u8; 2], m: &MacCommand) -> Response {
    let padding = match m.padding {
        1 => mac::Padding::Method1,
        _ => mac::Padding::Method2,
    };
    let computed = hex::encode_upper(mac::alg3(&key(&m.key), &m.message.0, padding).expect("mac"));
    match &m.mac {
        None => ok(code, ResponseBody::Mac(computed)),
        Some(given) if *given == computed => ok(code, ResponseBody::Empty),
        Some(_) => refused(code, 1),
    }
}

fn cvv_answer(code: &[u8; 2], c: &CvvCommand) -> Response {
    let v = cvv::cvv(
        &key(&c.cvk),
        c.pan.as_str(),
        c.expiry.as_str(),
        &c.service_code,
    )
    .expect("cvv");
    let v = String::from_utf8(v.expose().to_vec()).expect("digits");
    match &c.cvv {
        None => ok(code, ResponseBody::Cvv(Sensitive(v))),
        Some(given) if given.as_str() == v => ok(code, ResponseBody::Empty),
        Some(_) => refused(code, 1),
    }
}

fn answer(request: &Request) -> Response {
    let code = request.code();
    match request {
        Request::Ca(c) | Request::Cc(c) => pin_answer(code, &key(&c.source_key), c),
        Request::G0(g) => {
            let mut ksn = [0u8; 10];
            hex::decode_to_slice(&g.ksn, &mut ksn).expect("a 20-digit test KSN");
            let pin_key = host_key(&key(&g.bdk), &Ksn(ksn), KeyUsage::Pin).expect("key");
            translated(
                code,
                &pin_key,
                &key(&g.zpk),
                &g.pin_block.0,
                g.source_format,
                g.destination_format,
                g.account.as_str(),
            )
        }
        Request::M6(m) | Request::M8(m) => mac_answer(code, m),
        Request::Kq(k) => {
            if k.arqc != [0xAA; 8] {
                return refused(code, 1);
            }
            match k.arc {
                Some(arc) => ok(
                    code,
                    ResponseBody::Arpc([arc[0], arc[1], 0, 0, 0, 0, 0, 0x55]),
                ),
                None => ok(code, ResponseBody::Empty),
            }
        }
        Request::Cw(c) | Request::Cy(c) => cvv_answer(code, c),
        Request::A0(g) => ok(
            code,
            ResponseBody::GeneratedKey {
                lmk: KeyCryptogram::new(KeyScheme::U, &"1".repeat(32)),
                zmk: g
                    .zmk
                    .as_ref()
                    .map(|_| KeyCryptogram::new(KeyScheme::X, &"2".repeat(32))),
                kcv: "ABCDEF".into(),
            },
        ),
        Request::A6(i) => ok(
            code,
            ResponseBody::ImportedKey {
                lmk: i.key.clone(),
                kcv: key(&i.key).kcv_hex(),
            },
        ),
        Request::Bu(b) => ok(code, ResponseBody::Kcv(key(&b.key).kcv_hex())),
        Request::Nc => ok(
            code,
            ResponseBody::Diagnostics {
                lmk_check: LMK_CHECK.into(),
                firmware: FIRMWARE.into(),
            },
        ),
        _ => refused(code, 68),
    }
}
