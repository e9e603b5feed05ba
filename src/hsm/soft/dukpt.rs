//! ANSI X9.24-1 (2009) TDES DUKPT, host side: the initial key (IPEK) from
//! the base derivation key (BDK) and the key serial number (KSN), and the
//! transaction key for a KSN's counter by the non-reversible key
//! generation process, one step per set counter bit, from the highest.
//! Then the variants a transaction uses: PIN, MAC request and response,
//! data request and response.

use std::fmt;

use super::des::Schedule;
use super::error::CryptoError;
use super::keys::{DesKeyLength, TdesKey, xor_into};
use super::secret::Secret;

/// The transaction counter: the KSN's rightmost 21 bits.
pub const COUNTER_MASK: u32 = 0x1F_FFFF;
/// A counter a terminal uses has at most this many one bits.
pub const COUNTER_ONES_MAX: u32 = 10;

/// The mask that makes the right half of the IPEK (and the left half of
/// each derived key) from the key: X9.24's `C0C0 C0C0 0000 0000` twice.
const KEY_MASK: [u8; 16] = [
    0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0, 0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0,
];

/// A 10-byte key serial number: key set id and device id, then the
/// 21-bit counter. Not secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ksn(pub [u8; 10]);

impl fmt::Debug for Ksn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ksn({})", hex::encode_upper(self.0))
    }
}

impl Ksn {
    /// A KSN from 20 hex digits.
    pub fn from_hex(text: &str) -> Result<Ksn, CryptoError> {
        if text.len() != 20 {
            return Err(CryptoError::KsnLength {
                got: text.len() / 2,
            });
        }
        super::secret::hex_array(text)
            .map(Ksn)
            .ok_or(CryptoError::Hex { what: "KSN" })
    }

    /// A KSN from its bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Ksn, CryptoError> {
        <[u8; 10]>::try_from(bytes)
            .map(Ksn)
            .map_err(|_| CryptoError::KsnLength { got: bytes.len() })
    }

    /// The transaction counter.
    pub fn counter(&self) -> u32 {
        u32::from_be_bytes([0, self.0[7], self.0[8], self.0[9]]) & COUNTER_MASK
    }

    /// The same KSN with another counter.
    pub fn with_counter(&self, counter: u32) -> Ksn {
        let mut k = self.0;
        let c = (counter & COUNTER_MASK).to_be_bytes();
        k[7] = (k[7] & 0xE0) | c[1];
        k[8] = c[2];
        k[9] = c[3];
        Ksn(k)
    }

    /// Upper-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode_upper(self.0)
    }

    /// The leftmost 8 bytes with the counter cleared: what the IPEK is
    /// derived from.
    fn initial_register(&self) -> [u8; 8] {
        let k = self.with_counter(0).0;
        <[u8; 8]>::try_from(&k[..8]).expect("8 of 10 bytes")
    }

    /// The rightmost 8 bytes with the counter cleared: the register the
    /// counter bits are ORed into during derivation.
    pub(crate) fn base_register(&self) -> u64 {
        let k = self.0;
        let r = u64::from_be_bytes(<[u8; 8]>::try_from(&k[2..]).expect("8 of 10 bytes"));
        r & !u64::from(COUNTER_MASK)
    }
}

/// The initial key: the BDK encrypting the KSN's left 8 bytes (counter
/// cleared), then the BDK XOR the mask encrypting them again.
pub fn ipek(bdk: &TdesKey, ksn: &Ksn) -> Result<TdesKey, CryptoError> {
    bdk.require(DesKeyLength::Double)?;
    let reg = ksn.initial_register();
    let mut out = Secret::<16>::zeroed();
    let mut left = reg;
    bdk.encrypt_block(&mut left);
    let mut right = reg;
    bdk.xor(&KEY_MASK).encrypt_block(&mut right);
    out.expose_mut()[..8].copy_from_slice(&left);
    out.expose_mut()[8..].copy_from_slice(&right);
    TdesKey::from_bytes(out.expose())
}

/// One step of the non-reversible key generation process: a new 16-byte
/// key from `key` and the 8-byte register `data` (X9.24-1 A.2). A
/// single-DES schedule per half (the key changes every step), made
/// directly from the half's bytes.
pub(crate) fn nrkgp(key: &TdesKey, data: u64) -> TdesKey {
    let (left, right) = (key.part(0), key.part(1));
    let (mut masked_left, mut masked_right) = (left.clone(), right.clone());
    xor_into(masked_left.expose_mut(), &KEY_MASK[..8]);
    xor_into(masked_right.expose_mut(), &KEY_MASK[8..]);
    let mut out = Secret::<16>::zeroed();
    out.expose_mut()[..8].copy_from_slice(&nrkgp_half(&masked_left, &masked_right, data));
    out.expose_mut()[8..].copy_from_slice(&nrkgp_half(&left, &right, data));
    TdesKey::from_bytes(out.expose()).expect("16 bytes")
}

/// Half a step: the register XOR the right half, encrypted under the left
/// half, XOR the right half again.
fn nrkgp_half(left: &Secret<8>, right: &Secret<8>, data: u64) -> [u8; 8] {
    let r = u64::from_be_bytes(*right.expose());
    (Schedule::new(left.expose()).encrypt(data ^ r) ^ r).to_be_bytes()
}

/// The transaction key for the KSN's counter, from the IPEK: one step per
/// set bit of the counter, highest first. Counters with more than 10 one
/// bits are refused: no terminal ever uses them.
pub fn transaction_key(ipek: &TdesKey, ksn: &Ksn) -> Result<TdesKey, CryptoError> {
    ipek.require(DesKeyLength::Double)?;
    let counter = ksn.counter();
    let ones = counter.count_ones();
    if ones > COUNTER_ONES_MAX {
        return Err(CryptoError::KsnCounter { ones });
    }
    let mut reg = ksn.base_register();
    let mut key = ipek.clone();
    for bit in (0..21).rev() {
        let b = 1u32 << bit;
        if counter & b != 0 {
            reg |= u64::from(b);
            key = nrkgp(&key, reg);
        }
    }
    Ok(key)
}

/// The key a transaction uses, by what it protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsage {
    Pin,
    MacRequest,
    MacResponse,
    DataRequest,
    DataResponse,
}

impl KeyUsage {
    /// The variant XORed into each half of the transaction key.
    fn mask(self) -> [u8; 8] {
        match self {
            KeyUsage::Pin => [0, 0, 0, 0, 0, 0, 0, 0xFF],
            KeyUsage::MacRequest => [0, 0, 0, 0, 0, 0, 0xFF, 0],
            KeyUsage::MacResponse => [0, 0, 0, 0, 0xFF, 0, 0, 0],
            KeyUsage::DataRequest => [0, 0, 0, 0, 0, 0xFF, 0, 0],
            KeyUsage::DataResponse => [0, 0, 0, 0xFF, 0, 0, 0, 0],
        }
    }
}

/// The transaction key's variant for `usage`. The data keys go one step
/// further, each half encrypted under the variant key (X9.24-1:2009), so
/// that a data key does not reveal the MAC or PIN key of the same counter.
pub fn usage_key(transaction_key: &TdesKey, usage: KeyUsage) -> TdesKey {
    let variant = transaction_key.xor(&usage.mask());
    match usage {
        KeyUsage::DataRequest | KeyUsage::DataResponse => {
            let mut halves = Secret::<16>::zeroed();
            halves.expose_mut().copy_from_slice(variant.as_bytes());
            variant.encrypt_ecb(halves.expose_mut()).expect("16 bytes");
            TdesKey::from_bytes(halves.expose()).expect("16 bytes")
        }
        _ => variant,
    }
}

/// What a host computes per transaction: the `usage` key for this KSN
/// from the BDK.
pub fn host_key(bdk: &TdesKey, ksn: &Ksn, usage: KeyUsage) -> Result<TdesKey, CryptoError> {
    let initial = ipek(bdk, ksn)?;
    Ok(usage_key(&transaction_key(&initial, ksn)?, usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BDK: &str = "0123456789ABCDEFFEDCBA9876543210";

    fn hexkey(k: &TdesKey) -> String {
        hex::encode_upper(k.as_bytes())
    }

    #[test]
    fn x924_ipek_and_first_pin_key() {
        let bdk = TdesKey::from_hex(BDK).unwrap();
        let ksn = Ksn::from_hex("FFFF9876543210E00001").unwrap();
        let ik = ipek(&bdk, &ksn).unwrap();
        assert_eq!(hexkey(&ik), "6AC292FAA1315B4D858AB3A3D7D5933A");
        // The vector's "transaction key" is the key before its variant; the
        // PIN key XORs its bytes 7 and 15 with FF.
        let tk = transaction_key(&ik, &ksn).unwrap();
        assert_eq!(hexkey(&tk), "042666B49184CFA368DE9628D0397BC9");
        let pin = host_key(&bdk, &ksn, KeyUsage::Pin).unwrap();
        assert_eq!(hexkey(&pin), "042666B49184CF5C68DE9628D0397B36");
    }

    #[test]
    fn x924_encrypted_pin_block_for_counter_1() {
        // The annex's PIN 1234 on PAN 4012345678909, format 0, under the
        // first PIN key.
        let bdk = TdesKey::from_hex(BDK).unwrap();
        let ksn = Ksn::from_hex("FFFF9876543210E00001").unwrap();
        let key = host_key(&bdk, &ksn, KeyUsage::Pin).unwrap();
        let mut block = [0x04, 0x12, 0x74, 0xED, 0xCB, 0xA9, 0x87, 0x6F];
        key.encrypt_block(&mut block);
        assert_eq!(hex::encode_upper(block), "1B9C1845EB993A7A");
    }

    #[test]
    fn x924_encrypted_pin_blocks_for_later_counters() {
        // The same annex's blocks for counters 2 to 7.
        let bdk = TdesKey::from_hex(BDK).unwrap();
        let ksn = Ksn::from_hex("FFFF9876543210E00000").unwrap();
        let expected = [
            (2, "10A01C8D02C69107"),
            (3, "18DC07B94797B466"),
            (4, "0BC79509D5645DF7"),
            (5, "5BC0AF22AD87B327"),
            (6, "A16DF70AE36158D8"),
            (7, "27711C16CB257F8E"),
        ];
        for (counter, want) in expected {
            let key = host_key(&bdk, &ksn.with_counter(counter), KeyUsage::Pin).unwrap();
            let mut block = [0x04, 0x12, 0x74, 0xED, 0xCB, 0xA9, 0x87, 0x6F];
            key.encrypt_block(&mut block);
            assert_eq!(hex::encode_upper(block), want, "counter {counter}");
        }
    }

    #[test]
    fn ksn_counter_round_trip() {
        let ksn = Ksn::from_hex("FFFF9876543210E00001").unwrap();
        assert_eq!(ksn.counter(), 1);
        let k = ksn.with_counter(0x1F_FFFF);
        assert_eq!(k.to_hex(), "FFFF9876543210FFFFFF");
        assert_eq!(k.counter(), COUNTER_MASK);
        assert_eq!(k.with_counter(0).to_hex(), "FFFF9876543210E00000");
    }

    #[test]
    fn counters_with_too_many_ones_are_refused() {
        let bdk = TdesKey::from_hex(BDK).unwrap();
        let ksn = Ksn::from_hex("FFFF9876543210E007FF").unwrap();
        assert_eq!(
            host_key(&bdk, &ksn, KeyUsage::Pin).unwrap_err(),
            CryptoError::KsnCounter { ones: 11 }
        );
        assert!(Ksn::from_hex("FFFF").is_err());
        assert!(ipek(&TdesKey::from_hex("0123456789ABCDEF").unwrap(), &ksn).is_err());
    }
}
