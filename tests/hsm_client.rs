//! The payShield client against a fake HSM on loopback (tests/hsm_client/
//! fake.rs): every operation's round trip, pipelining over two
//! connections with no answer going to the wrong caller, refusals and
//! their response codes, a slow HSM (time-out, then recovery), an HSM
//! down (Unavailable at once, then reconnect), wrong headers and garbage
//! (Protocol, connection replaced), health checks replacing a dead
//! connection, and TLS.

#[path = "support/certs.rs"]
#[allow(dead_code)]
mod certs;
#[path = "hsm_client/fake.rs"]
mod fake;
#[path = "hsm_client/inputs.rs"]
mod inputs;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use cardswitch::hsm::command::request::{GenerateKey, ImportKey, KeyCheck};
use cardswitch::hsm::command::{ErrorCode, KeyScheme, Sensitive};
use cardswitch::hsm::soft::TdesKey;
use cardswitch::link::tls::{TlsClient, TlsServer};
use cardswitch::node::hsm::*;
use fake::{FakeHsm, Script};
use inputs::*;

/// A client over a fake HSM, held through the interface as the core's
/// glue will hold it.
async fn over_fake() -> (FakeHsm, Arc<dyn Hsm>, CancellationToken) {
    let fake = FakeHsm::start(HEADER, None).await;
    let (hsm, stop) = client(settings(&fake), None).await;
    (fake, Arc::new(hsm), stop)
}

#[tokio::test]
async fn pin_translations_round_trip() {
    let (_fake, hsm, stop) = over_fake().await;
    let t = hsm
        .translate_pin_tpk(translation("1234", PAN, TPK, ZPK))
        .await
        .expect("CA");
    assert_eq!((t.pin_len, t.pin_block.format), (4, PinFormat::Iso3));
    assert_eq!(pin_of(ZPK, &t.pin_block, PAN), "1234");

    let mut zz = translation("987654", PAN, ZPK, ZPK2);
    zz.destination_format = PinFormat::Iso1;
    let t = hsm.translate_pin_zpk(zz).await.expect("CC");
    assert_eq!((t.pin_len, t.pin_block.format), (6, PinFormat::Iso1));
    assert_eq!(pin_of(ZPK2, &t.pin_block, PAN), "987654");

    // The X9.24 vector: PIN 1234 on 4012345678909, counter 1.
    let g = DukptTranslation {
        bdk: cryptogram(TPK),
        zpk: cryptogram(ZPK),
        ksn: "FFFF9876543210E00001".into(),
        pin_block: PinBlock {
            hex: Sensitive("1B9C1845EB993A7A".into()),
            format: PinFormat::Iso0,
        },
        destination_format: PinFormat::Iso0,
        account: Account::from_pan(PAN).expect("pan"),
    };
    let t = hsm.translate_pin_dukpt(g).await.expect("G0");
    assert_eq!(pin_of(ZPK, &t.pin_block, PAN), "1234");
    stop.cancel();
}

#[tokio::test]
async fn macs_cryptograms_and_cvvs_round_trip() {
    let (_fake, hsm, stop) = over_fake().await;
    let mac = hsm
        .generate_mac(mac_input(b"0200 message"))
        .await
        .expect("M6");
    hsm.verify_mac(mac_input(b"0200 message"), mac)
        .await
        .expect("M8");
    let bad = hsm
        .verify_mac(mac_input(b"0200 messagf"), mac)
        .await
        .expect_err("M8 fails");
    assert_eq!(bad, HsmError::Refused(ErrorCode::VerificationFailure));
    assert_eq!(bad.response_code(b"M8"), "63");

    let arpc = hsm
        .verify_arqc(arqc([0xAA; 8]), Some(*b"00"))
        .await
        .expect("KQ");
    assert_eq!(arpc, Some([b'0', b'0', 0, 0, 0, 0, 0, 0x55]));
    assert_eq!(
        hsm.verify_arqc(arqc([0xAA; 8]), None)
            .await
            .expect("KQ mode 0"),
        None
    );
    let bad = hsm
        .verify_arqc(arqc([0xAB; 8]), None)
        .await
        .expect_err("KQ fails");
    assert_eq!(bad.response_code(b"KQ"), "05");

    let cvv = hsm.generate_cvv(cvv_input()).await.expect("CW");
    assert_eq!(cvv.as_str(), "561", "the published example");
    hsm.verify_cvv(cvv_input(), cvv).await.expect("CY");
    let bad = hsm
        .verify_cvv(cvv_input(), Sensitive("562".into()))
        .await
        .expect_err("CY fails");
    assert_eq!(bad, HsmError::Refused(ErrorCode::VerificationFailure));
    stop.cancel();
}

#[tokio::test]
async fn key_commands_and_diagnostics_round_trip() {
    let (_fake, hsm, stop) = over_fake().await;
    let k = hsm
        .generate_key(GenerateKey {
            mode: 1,
            key_type: "001".into(),
            lmk_scheme: KeyScheme::U,
            zmk: Some((cryptogram(ZPK), KeyScheme::X)),
        })
        .await
        .expect("A0");
    assert_eq!((k.lmk.scheme, k.kcv.as_str()), (KeyScheme::U, "ABCDEF"));
    assert!(k.zmk.is_some());
    let bdk = TdesKey::from_hex(TPK).expect("key");
    let imported = hsm
        .import_key(ImportKey {
            key_type: "001".into(),
            zmk: cryptogram(ZPK),
            key: cryptogram(TPK),
            lmk_scheme: KeyScheme::U,
        })
        .await
        .expect("A6");
    assert_eq!(imported.kcv, bdk.kcv_hex());
    let kcv = hsm
        .key_check_value(KeyCheck {
            key_type_code: "FF".into(),
            length_flag: 1,
            key: cryptogram(TPK),
            key_type: Some("001".into()),
        })
        .await
        .expect("BU");
    assert_eq!(kcv, "08D7B4", "the X9.24 BDK's published check value");
    let d = hsm.diagnostics().await.expect("NC");
    assert_eq!(
        (d.lmk_check.as_str(), d.firmware.as_str()),
        (fake::LMK_CHECK, fake::FIRMWARE)
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_calls_over_two_connections_each_get_their_own_answer() {
    let fake = FakeHsm::start(HEADER, None).await;
    let mut s = settings(&fake);
    s.connections = 2;
    s.pipeline_depth = 8;
    s.timeout = Duration::from_secs(20);
    let (hsm, stop) = client(s, None).await;
    let hsm = Arc::new(hsm);
    while hsm.pool().up_connections() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut calls = Vec::new();
    for i in 0..400u32 {
        let hsm = hsm.clone();
        calls.push(tokio::spawn(async move {
            // A different PIN and account for each caller.
            let pin = format!("{:06}", i * 7919 % 1_000_000);
            let pan = format!("4{:011}{}", i, i % 10);
            let pan = format!("{pan}{}", i % 7);
            let t = hsm
                .translate_pin_tpk(translation(&pin, &pan, TPK, ZPK))
                .await
                .expect("answered");
            assert_eq!(pin_of(ZPK, &t.pin_block, &pan), pin, "caller {i}");
        }));
    }
    for c in calls {
        c.await.expect("no caller panicked");
    }
    assert_eq!(fake.accepted(), 2, "no connection was replaced");
    stop.cancel();
}

#[tokio::test]
async fn the_pipeline_depth_bounds_the_commands_in_flight() {
    let fake = FakeHsm::start(HEADER, None).await;
    fake.set(Script::Slow(Duration::from_millis(20)));
    let mut s = settings(&fake);
    s.connections = 1;
    s.pipeline_depth = 4;
    s.timeout = Duration::from_secs(20);
    let (hsm, stop) = client(s, None).await;
    let hsm = Arc::new(hsm);
    let calls: Vec<_> = (0..24)
        .map(|_| {
            let hsm = hsm.clone();
            tokio::spawn(async move { hsm.diagnostics().await })
        })
        .collect();
    for c in calls {
        c.await.expect("joined").expect("answered");
    }
    let seen = fake.in_flight_max();
    assert!((2..=4).contains(&seen), "{seen} commands waited at once");
    stop.cancel();
}

#[tokio::test]
async fn refusals_are_typed_and_mapped() {
    let fake = FakeHsm::start(HEADER, None).await;
    let mut s = settings(&fake);
    s.connections = 1;
    let (hsm, stop) = client(s, None).await;
    for (code, response) in [(20, "55"), (24, "55"), (15, "96"), (10, "96"), (68, "96")] {
        fake.set(Script::Refuse(code));
        let e = hsm
            .translate_pin_tpk(translation("1234", PAN, TPK, ZPK))
            .await
            .expect_err("refused");
        assert_eq!(e, HsmError::Refused(ErrorCode::from_number(code)));
        assert_eq!(e.response_code(b"CA"), response, "{code}");
        assert!(!e.to_string().contains(TPK) && e.to_string().contains(&format!("{code:02}")));
    }
    assert_eq!(fake.accepted(), 1, "a refusal keeps the connection");
    stop.cancel();
}

#[tokio::test]
async fn a_slow_hsm_times_out_then_the_pool_recovers() {
    let fake = FakeHsm::start(HEADER, None).await;
    let mut s = settings(&fake);
    s.connections = 1;
    s.timeout = Duration::from_millis(200);
    let (hsm, stop) = client(s, None).await;
    fake.set(Script::Slow(Duration::from_millis(1_000)));
    let started = Instant::now();
    let e = hsm.diagnostics().await.expect_err("late");
    let took = started.elapsed();
    assert_eq!(e, HsmError::Timeout);
    assert_eq!(e.response_code(b"NC"), "96");
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_millis(900),
        "{took:?}"
    );
    fake.set(Script::Normal);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match hsm.diagnostics().await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                assert!(
                    matches!(e, HsmError::Unavailable | HsmError::Timeout),
                    "{e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("not recovered: {e}"),
        }
    }
    assert_eq!(fake.accepted(), 2, "the late connection was replaced");
    stop.cancel();
}

#[tokio::test]
async fn an_hsm_down_is_unavailable_at_once_and_reconnected_when_back() {
    let fake = FakeHsm::start(HEADER, None).await;
    let addr = fake.addr.to_string();
    let (hsm, stop) = client(settings(&fake), None).await;
    hsm.diagnostics().await.expect("up");
    fake.stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    while hsm.pool().up_connections() > 0 {
        assert!(Instant::now() < deadline, "the pool saw the HSM go");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    assert_eq!(
        hsm.diagnostics().await.expect_err("down"),
        HsmError::Unavailable
    );
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    let back = FakeHsm::start_on(&addr, HEADER, None).await;
    assert!(
        hsm.pool().wait_up(Duration::from_secs(5)).await,
        "reconnected"
    );
    hsm.diagnostics().await.expect("back");
    assert!(back.accepted() >= 1);
    stop.cancel();
}

#[tokio::test]
async fn a_wrong_header_or_garbage_is_a_protocol_error_and_the_connection_is_replaced() {
    let fake = FakeHsm::start(HEADER, None).await;
    let mut s = settings(&fake);
    s.connections = 1;
    let (hsm, stop) = client(s, None).await;
    for (script, want) in [
        (Script::WrongHeader, "header"),
        (Script::Garbage, "does not decode"),
    ] {
        let before = fake.accepted();
        fake.set(script);
        let e = hsm.diagnostics().await.expect_err("broken");
        assert!(matches!(e, HsmError::Protocol(_)), "{e}");
        assert!(e.to_string().contains(want), "{e}");
        assert_eq!(e.response_code(b"NC"), "96");
        fake.set(Script::Normal);
        let deadline = Instant::now() + Duration::from_secs(5);
        while fake.accepted() == before || hsm.pool().up_connections() == 0 {
            assert!(Instant::now() < deadline, "replaced");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        hsm.diagnostics().await.expect("the new connection works");
    }
    stop.cancel();
}

#[tokio::test]
async fn the_health_check_replaces_a_dead_connection() {
    let fake = FakeHsm::start(HEADER, None).await;
    fake.silence_next(1);
    let mut s = settings(&fake);
    s.connections = 1;
    s.timeout = Duration::from_millis(100);
    s.health_interval = Duration::from_millis(100);
    let (hsm, stop) = client(s, None).await;
    // Nothing is asked: only the health check can find the silent one.
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.accepted() < 2 || hsm.pool().up_connections() == 0 {
        assert!(
            Instant::now() < deadline,
            "the silent connection was replaced"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    hsm.diagnostics().await.expect("the replacement answers");
    stop.cancel();
}

#[tokio::test]
async fn tls_with_a_test_certificate() {
    let dir = certs::temp_dir("hsm-tls");
    let pki = certs::make_pki(&dir, "hsm");
    let server = TlsServer::from_files(&pki.server_cert, &pki.server_key, None).expect("server");
    let fake = FakeHsm::start(HEADER, Some(server)).await;
    let tls = TlsClient::from_files(&pki.ca, "localhost", None)
        .expect("client")
        .with_handshake_timeout(Duration::from_secs(5));
    let (hsm, stop) = client(settings(&fake), Some(tls)).await;
    let t = hsm
        .translate_pin_tpk(translation("4321", PAN, TPK, ZPK))
        .await
        .expect("CA over TLS");
    assert_eq!(pin_of(ZPK, &t.pin_block, PAN), "4321");
    stop.cancel();
}

#[test]
fn inputs_and_errors_never_show_their_values() {
    let t = translation("1234", PAN, TPK, ZPK);
    let shown = format!("{t:?}");
    assert!(
        !shown.contains(TPK)
            && !shown.contains("40123456789")
            && !shown.contains(t.pin_block.hex.as_str()),
        "{shown}"
    );
    let e = HsmError::Protocol(ProtocolError::Header);
    assert!(!format!("{e} {e:?}").contains("HDR1"));
}

/// A switch configuration whose `[hsm]` is at `hsm`.
fn switch_config(hsm: &str) -> cardswitch::node::config::SwitchConfig {
    let text = format!(
        r#"[switch]
institution_id = "123456"

[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = {{ length = "ascii4" }}

[[issuer]]
name = "issuer-a"
addresses = ["127.0.0.1:9"]
spec = "iso87-ascii"
framing = {{ length = "ascii4" }}

[hsm]
address = "{hsm}"
header = "HDR1"
connect_timeout_ms = 200
handshake_timeout_ms = 200
"#
    );
    cardswitch::node::config::SwitchConfig::from_toml(&text, "switch.toml").expect("loads")
}

#[tokio::test]
async fn a_switch_checks_its_hsm_at_start_and_refuses_an_unreachable_one() {
    let fake = FakeHsm::start(HEADER, None).await;
    let shutdown = CancellationToken::new();
    let running = cardswitch::node::start(&switch_config(&fake.addr.to_string()), shutdown.clone())
        .await
        .expect("starts with its HSM");
    assert!(running.hsm.is_some());
    assert!(fake.accepted() >= 1);
    shutdown.cancel();
    running.stopped().await;

    // Nothing listens there any more.
    fake.stop();
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let e = cardswitch::node::start(&switch_config(&gone), CancellationToken::new())
        .await
        .err()
        .expect("refuses to start");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!(
            "switch.toml:16: hsm: address = \"{gone}\": not reachable"
        )),
        "{shown}"
    );
}

#[tokio::test]
async fn a_switch_refuses_an_hsm_that_echoes_another_header() {
    let fake = FakeHsm::start(HEADER, None).await;
    fake.set(Script::WrongHeader);
    let e = cardswitch::node::start(
        &switch_config(&fake.addr.to_string()),
        CancellationToken::new(),
    )
    .await
    .err()
    .expect("refuses to start");
    assert!(
        e.to_string().contains("NC at start: HSM protocol error"),
        "{e}"
    );
}

/// The process's metrics, recorded from the first call on.
fn metrics() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("the one recorder")
    })
}

#[tokio::test]
async fn metrics_count_commands_and_errors_by_code_never_by_value() {
    let metrics = metrics();
    let fake = FakeHsm::start(HEADER, None).await;
    let (hsm, stop) = client(settings(&fake), None).await;
    let t = translation("1234", PAN, TPK, ZPK);
    let block = t.pin_block.hex.as_str().to_string();
    hsm.translate_pin_tpk(t).await.expect("CA");
    fake.set(Script::Refuse(20));
    let _ = hsm
        .translate_pin_tpk(translation("1234", PAN, TPK, ZPK))
        .await;
    let text = metrics.render();
    for want in [
        r#"cardswitch_hsm_commands_total{command="CA"}"#,
        r#"cardswitch_hsm_errors_total{command="CA",error="20"}"#,
        r#"cardswitch_hsm_latency_seconds"#,
        r#"cardswitch_hsm_connections_up"#,
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    for secret in [TPK, ZPK, PAN, "401234567890", block.as_str()] {
        assert!(!text.contains(secret), "a value in the metrics:\n{text}");
    }
    stop.cancel();
}

#[tokio::test]
async fn an_hsm_that_drops_every_connection_is_redialled_with_growing_backoff() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(conn);
        }
    });
    let mut s = HsmSettings::new(&addr);
    s.connections = 1;
    s.backoff_min = Duration::from_millis(20);
    s.backoff_max = Duration::from_millis(400);
    let stop = CancellationToken::new();
    let _pool = Pool::start(s, None, stop.clone());
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop.cancel();
    // 10-20, 20-40, 40-80, 80-160, 160-320, then 200-400 ms: at most about
    // 8 in a second (at a 20 ms backoff each time it would be 50 or more).
    let n = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=12).contains(&n), "{n} connections in a second");
}
