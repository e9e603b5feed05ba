//! The software HSM (`hsm::soft`) against independent MIT-licensed Python
//! implementations (tests/interop/hsm_reference.py: psec, pydukpt, pyemv,
//! cryptography) on the same random inputs: PIN blocks formats 0, 3 and 4
//! both ways (theirs read by us, ours read by them), KCVs, ISO 9797-1 MAC
//! algorithms 1 and 3 with padding 1 and 2, AES-CMAC, CVV, DUKPT keys
//! (IPEK, transaction key, all five variants), EMV card master key,
//! session keys, ARQC (both paddings) and ARPC. Any difference fails.
//!
//! Needs the virtual environment scripts/test-all.sh makes (`.venv`, or
//! `CARDSWITCH_PYTHON`): a missing Python or reference fails this test
//! rather than skipping it. ISO format 1 has no reference there (psec
//! has no format 1): its tests are the unit tests only.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use cardswitch::hsm::soft::dukpt::{self, KeyUsage, Ksn};
use cardswitch::hsm::soft::mac::{self, Padding};
use cardswitch::hsm::soft::pin_block::{self, Pin, PinBlockFormat};
use cardswitch::hsm::soft::{AesKey, Secret, TdesKey, cvv, emv, pin_block4};
use serde_json::{Value, json};

/// Cases per kind: each is a fresh random input.
const CASES: usize = 25;

/// A small deterministic generator (xorshift64*), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + (self.next() % 10) as u8))
            .collect()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Between `min` and `min + spread - 1` digits.
    fn digits_between(&mut self, min: usize, spread: u64) -> String {
        let n = min + self.below(spread) as usize;
        self.digits(n)
    }
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("CARDSWITCH_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = std::env::var("VENV").unwrap_or_else(|_| ".venv".into());
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(venv)
        .join("bin/python")
}

fn reference(cases: &[Value]) -> Vec<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/hsm_reference.py");
    let py = python();
    let mut child = Command::new(&py)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run scripts/test-all.sh (it makes .venv with the references)",
                py.display()
            )
        });
    let input = serde_json::to_vec(cases).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "hsm_reference.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let values: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(values.len(), cases.len());
    values
}

fn hx(b: &[u8]) -> String {
    hex::encode(b)
}

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("reference gave no {k}"))
}

fn fill(rng: &mut Rng) -> [u8; 8] {
    rng.bytes(8).try_into().unwrap()
}

fn block8(text: &str) -> Secret<8> {
    Secret::new(hex::decode(text).unwrap().try_into().unwrap())
}

#[test]
fn pin_blocks_agree_with_psec() {
    let mut rng = Rng(0x9564);
    let mut cases = Vec::new();
    for _ in 0..CASES {
        let pin = rng.digits_between(4, 9);
        let pan = rng.digits_between(13, 7);
        let key = AesKey::from_bytes(&rng.bytes(16)).unwrap();
        let p = Pin::new(&pin).unwrap();
        let iso0 = pin_block::make(PinBlockFormat::Iso0, &p, &pan, &[0; 8]).unwrap();
        let iso3 = pin_block::make(PinBlockFormat::Iso3, &p, &pan, &fill(&mut rng)).unwrap();
        let iso4 = pin_block4::encipher(&key, &p, &pan, &fill(&mut rng)).unwrap();
        cases.push(json!({"kind": "pin_blocks", "pin": pin, "pan": pan,
            "aes_key": hx(key.as_bytes()), "ours_iso0": iso0.to_hex(),
            "ours_iso3": iso3.to_hex(), "ours_iso4": iso4.to_hex()}));
    }
    for (c, r) in cases.iter().zip(reference(&cases)) {
        let (pin, pan) = (field(c, "pin"), field(c, "pan"));
        let key = AesKey::from_hex(field(c, "aes_key")).unwrap();
        assert_eq!(
            field(c, "ours_iso0").to_lowercase(),
            field(&r, "iso0"),
            "format 0, PAN {pan}"
        );
        for k in ["iso0_read_ours", "iso3_read_ours", "iso4_read_ours"] {
            assert_eq!(field(&r, k), pin, "{k}");
        }
        let theirs3 =
            pin_block::read(PinBlockFormat::Iso3, &block8(field(&r, "iso3")), pan).unwrap();
        assert!(
            theirs3.ct_eq(&Pin::new(pin).unwrap()),
            "psec's format 3 read by us"
        );
        let b4 = Secret::new(hex::decode(field(&r, "iso4")).unwrap().try_into().unwrap());
        let theirs4 = pin_block4::decipher(&key, &b4, pan).unwrap();
        assert!(
            theirs4.ct_eq(&Pin::new(pin).unwrap()),
            "psec's format 4 read by us"
        );
    }
}

#[test]
fn kcv_macs_and_cvv_agree_with_psec() {
    let mut rng = Rng(0x9797);
    let mut cases = Vec::new();
    for _ in 0..CASES {
        let n = rng.below(70) as usize;
        let service = ["101", "000", "999", "201"][rng.below(4) as usize];
        cases.push(
            json!({"kind": "keys_and_macs", "tdes_key": hx(&rng.bytes(16)),
            "aes_key": hx(&rng.bytes(16)), "data": hx(&rng.bytes(n)),
            "pan": rng.digits_between(13, 7),
            "expiry": rng.digits(4), "service_code": service}),
        );
    }
    for (c, r) in cases.iter().zip(reference(&cases)) {
        let key = TdesKey::from_hex(field(c, "tdes_key")).unwrap();
        let aes = AesKey::from_hex(field(c, "aes_key")).unwrap();
        let data = hex::decode(field(c, "data")).unwrap();
        assert_eq!(hx(&key.kcv()), field(&r, "kcv"));
        for (pad, n) in [(Padding::Method1, "1"), (Padding::Method2, "2")] {
            assert_eq!(
                hx(&mac::alg3(&key, &data, pad).unwrap()),
                field(&r, &format!("retail_mac_{n}"))
            );
            assert_eq!(
                hx(&mac::alg1(&key, &data, pad).unwrap()),
                field(&r, &format!("cbc_mac_{n}"))
            );
        }
        assert_eq!(hx(&mac::aes_cmac(&aes, &data)), field(&r, "aes_cmac"));
        let ours = cvv::cvv(
            &key,
            field(c, "pan"),
            field(c, "expiry"),
            field(c, "service_code"),
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(ours.expose()).unwrap(),
            field(&r, "cvv")
        );
    }
}

#[test]
fn dukpt_keys_agree_with_pydukpt() {
    let mut rng = Rng(0x2024);
    let mut cases = Vec::new();
    while cases.len() < CASES {
        let ksn = Ksn::from_bytes(&rng.bytes(10)).unwrap();
        if ksn.counter().count_ones() > dukpt::COUNTER_ONES_MAX || ksn.counter() == 0 {
            continue;
        }
        cases.push(json!({"kind": "dukpt", "bdk": hx(&rng.bytes(16)), "ksn": hx(&ksn.0)}));
    }
    for (c, r) in cases.iter().zip(reference(&cases)) {
        let bdk = TdesKey::from_hex(field(c, "bdk")).unwrap();
        let ksn = Ksn::from_hex(field(c, "ksn")).unwrap();
        let ipek = dukpt::ipek(&bdk, &ksn).unwrap();
        assert_eq!(hx(ipek.as_bytes()), field(&r, "ipek"));
        let tk = dukpt::transaction_key(&ipek, &ksn).unwrap();
        assert_eq!(hx(tk.as_bytes()), field(&r, "key"), "KSN {}", ksn.to_hex());
        for (usage, k) in [
            (KeyUsage::Pin, "pin"),
            (KeyUsage::MacRequest, "mac_request"),
            (KeyUsage::MacResponse, "mac_response"),
            (KeyUsage::DataRequest, "data_request"),
            (KeyUsage::DataResponse, "data_response"),
        ] {
            assert_eq!(
                hx(dukpt::usage_key(&tk, usage).as_bytes()),
                field(&r, k),
                "{k}"
            );
        }
    }
}

#[test]
fn emv_cryptograms_agree_with_pyemv() {
    let mut rng = Rng(0xE3F);
    let mut cases = Vec::new();
    for _ in 0..CASES {
        let n = 1 + rng.below(60) as usize;
        cases.push(json!({"kind": "emv", "imk": hx(&rng.bytes(16)),
            "pan": rng.digits_between(13, 7), "psn": rng.digits(2),
            "atc": hx(&rng.bytes(2)), "un": hx(&rng.bytes(4)),
            "data": hx(&rng.bytes(n)), "arc": hx(&rng.bytes(2))}));
    }
    for (c, r) in cases.iter().zip(reference(&cases)) {
        let imk = TdesKey::from_hex(field(c, "imk")).unwrap();
        let psn: u8 = field(c, "psn").parse().unwrap();
        let mk = emv::icc_master_key(&imk, field(c, "pan"), psn).unwrap();
        assert_eq!(hx(mk.as_bytes()), field(&r, "icc_mk"));
        let atc: [u8; 2] = hex::decode(field(c, "atc")).unwrap().try_into().unwrap();
        let un: [u8; 4] = hex::decode(field(c, "un")).unwrap().try_into().unwrap();
        let sk = emv::session_key(&mk, emv::r_from_atc(atc)).unwrap();
        assert_eq!(hx(sk.as_bytes()), field(&r, "sk"));
        let skm = emv::session_key(&mk, emv::r_mchip(atc, un)).unwrap();
        assert_eq!(hx(skm.as_bytes()), field(&r, "sk_mchip"));
        let data = hex::decode(field(c, "data")).unwrap();
        let arqc = emv::arqc(&sk, &data, Padding::Method2).unwrap();
        assert_eq!(hx(&arqc), field(&r, "arqc"));
        assert_eq!(
            hx(&emv::arqc(&sk, &data, Padding::Method1).unwrap()),
            field(&r, "arqc_visa")
        );
        let arc: [u8; 2] = hex::decode(field(c, "arc")).unwrap().try_into().unwrap();
        assert_eq!(
            hx(&emv::arpc_method1(&sk, &arqc, arc).unwrap()),
            field(&r, "arpc")
        );
    }
}
