//! The client tests' inputs: keys, PIN blocks made and read with
//! `hsm::soft`, and one typed input per operation.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use cardswitch::hsm::command::{KeyCryptogram, KeyScheme, Sensitive};
use cardswitch::hsm::soft::TdesKey;
use cardswitch::hsm::soft::pin_block::{Pin, PinBlockFormat};
use cardswitch::hsm::soft::translate::{self, PinKey};
use cardswitch::link::tls::TlsClient;
use cardswitch::node::hsm::*;

use super::fake::{self, FakeHsm};

pub const HEADER: &[u8] = b"HDR1";
pub const TPK: &str = "0123456789ABCDEFFEDCBA9876543210";
pub const ZPK: &str = "89ABCDEF0123456776543210FEDCBA98";
pub const ZPK2: &str = "F1E2D3C4B5A6978812345678ABCDEF01";
pub const PAN: &str = "4012345678909";

pub fn settings(fake: &FakeHsm) -> HsmSettings {
    let mut s = HsmSettings::new(&fake.addr.to_string());
    s.header = HEADER.to_vec();
    s.timeout = Duration::from_millis(2_000);
    s.backoff_min = Duration::from_millis(20);
    s.backoff_max = Duration::from_millis(200);
    s
}

pub async fn client(s: HsmSettings, tls: Option<TlsClient>) -> (PayShield, CancellationToken) {
    let stop = CancellationToken::new();
    let pool = Pool::start(s, tls, stop.clone());
    assert!(
        pool.wait_up(Duration::from_secs(5)).await,
        "the pool connects"
    );
    (PayShield::new(pool), stop)
}

pub fn cryptogram(hex: &str) -> KeyCryptogram {
    KeyCryptogram::new(KeyScheme::U, hex)
}

pub fn tdes(hex: &str) -> PinKey {
    PinKey::Tdes(TdesKey::from_hex(hex).expect("key"))
}

/// A PIN block of `pin` under `key`.
pub fn pin_block(key: &str, format: PinBlockFormat, pin: &str, pan: &str) -> String {
    let pin = Pin::new(pin).expect("pin");
    translate::encrypt_pin(&tdes(key), format, &pin, pan, &[0x3C; 8])
        .expect("block")
        .to_hex()
}

/// The PIN in a block under `key`.
pub fn pin_of(key: &str, block: &PinBlock, pan: &str) -> String {
    let format = fake::format(block.format.code());
    let bytes = hex::decode(block.hex.as_str()).expect("hex");
    let b = translate::PinBlock::from_bytes(&bytes).expect("block");
    let pin = translate::decrypt_pin(&tdes(key), format, &b, pan).expect("decrypts");
    pin.digits().iter().map(|d| char::from(b'0' + d)).collect()
}

pub fn translation(pin: &str, pan: &str, from: &str, to: &str) -> PinTranslation {
    PinTranslation {
        source_key: cryptogram(from),
        destination_zpk: cryptogram(to),
        pin_block: PinBlock {
            hex: Sensitive(pin_block(from, PinBlockFormat::Iso0, pin, pan)),
            format: PinFormat::Iso0,
        },
        destination_format: PinFormat::Iso3,
        account: Account::from_pan(pan).expect("pan"),
    }
}

pub fn mac_input(message: &[u8]) -> MacInput {
    MacInput {
        key: cryptogram(ZPK),
        key_type: MacKeyType::Zak,
        algorithm: MacAlgorithm::Iso9797Alg3,
        padding: MacPadding::Method2,
        message: Sensitive(message.to_vec()),
    }
}

pub fn arqc(arqc: [u8; 8]) -> ArqcInput {
    ArqcInput {
        scheme: EmvScheme::Visa,
        mk_ac: KeyCryptogram::new(KeyScheme::Untagged, TPK),
        pan_psn: Sensitive(vec![0x40, 0x12, 0x34, 0x56, 0x78, 0x90, 0x90, 0x01]),
        atc: [0, 7],
        un: [1, 2, 3, 4],
        data: Sensitive(vec![0x11; 29]),
        arqc,
    }
}

pub fn cvv_input() -> CvvInput {
    CvvInput {
        cvk: cryptogram(TPK),
        pan: Sensitive("4123456789012345".into()),
        expiry: Sensitive("8701".into()),
        kind: CvvKind::Stripe {
            service_code: "101".into(),
        },
    }
}
