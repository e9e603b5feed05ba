//! The simulator's local master key (LMK), the way a payShield Variant LMK
//! holds keys: 20 double-length DES pairs (00-01 .. 38-39); a key type
//! (3H, e.g. `001` ZPK) names a pair and a variant (its first digit), the
//! variant XORed into the pair's first byte; double- and triple-length
//! keys are encrypted one 8-byte part at a time, each part under the pair
//! with a key-scheme variant XORed into the first byte of its right half
//! (scheme `U`: A6, 5A; `T`: 6A, DE, 2B). X9.17 schemes (`X`, `Y`, and
//! untagged double keys) are plain ECB. Key blocks are not taken.
//!
//! The pair values are the published payShield *test* LMK (the set test
//! HSMs and simulators ship with): a test LMK protects nothing.

use thiserror::Error;

use crate::hsm::command::{KeyCryptogram, KeyScheme};
use crate::hsm::soft::{CryptoError, DesKeyLength, Secret, TdesKey};

/// LMK pairs held: 00-01 .. 38-39.
pub const LMK_PAIRS: usize = 20;

/// The test LMK, pair by pair (00-01 first), 32 hex digits each.
const TEST_LMK: [&str; LMK_PAIRS] = [
    "01010101010101017902CD1FD36EF8BA",
    "20202020202020203131313131313131",
    "40404040404040405151515151515151",
    "61616161616161617070707070707070",
    "80808080808080809191919191919191",
    "A1A1A1A1A1A1A1A1B0B0B0B0B0B0B0B0",
    "C1C1010101010101D0D0010101010101",
    "E0E0010101010101F1F1010101010101",
    "1C587F1C13924FEF0101010101010101",
    "01010101010101010101010101010101",
    "02020202020202020404040404040404",
    "07070707070707071010101010101010",
    "13131313131313131515151515151515",
    "16161616161616161919191919191919",
    "1A1A1A1A1A1A1A1A1C1C1C1C1C1C1C1C",
    "23232323232323232525252525252525",
    "26262626262626262929292929292929",
    "2A2A2A2A2A2A2A2A2C2C2C2C2C2C2C2C",
    "2F2F2F2F2F2F2F2F3131313131313131",
    "01010101010101010101010101010101",
];

/// Key-type variants 1..=9, XORed into the pair's first byte.
const TYPE_VARIANTS: [u8; 9] = [0xA6, 0x5A, 0x6A, 0xDE, 0x2B, 0x50, 0x74, 0x9C, 0xFA];
/// Scheme `U`'s variants for the left and right parts.
const DOUBLE_VARIANTS: [u8; 2] = [0xA6, 0x5A];
/// Scheme `T`'s variants for the three parts.
const TRIPLE_VARIANTS: [u8; 3] = [0x6A, 0xDE, 0x2B];

/// The LMK pair a key type's last two digits name (`00` -> 04-05 ..
/// `0E` -> 38-39), as pair numbers (pair `n` holds LMKs 2n and 2n+1).
const PAIR_OF_CODE: [usize; 15] = [2, 3, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];

/// Why a key could not go under or come from under the LMK (or a ZMK).
/// No variant carries key bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LmkError {
    /// A key type code this LMK does not know (bad variant or pair).
    #[error("unknown key type code")]
    KeyType,
    /// A cryptogram whose length does not fit its scheme, or a key whose
    /// length does not fit the scheme asked for.
    #[error("key length does not fit the key scheme")]
    Length,
    /// A scheme the simulator does not take here.
    #[error("key scheme not supported")]
    Scheme,
    /// The decrypted key is not of odd parity: wrong key type, wrong LMK
    /// or a damaged cryptogram.
    #[error("key parity error")]
    Parity,
}

/// A key type: which LMK pair and which variant encrypt it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyType {
    pub pair: usize,
    pub variant: u8,
}

impl KeyType {
    /// ZMK (000): LMK 04-05.
    pub const ZMK: KeyType = KeyType::new(2, 0);
    /// ZPK (001): LMK 06-07.
    pub const ZPK: KeyType = KeyType::new(3, 0);
    /// TPK, TMK, PVK (002): LMK 14-15.
    pub const TPK: KeyType = KeyType::new(7, 0);
    /// TAK (003): LMK 16-17.
    pub const TAK: KeyType = KeyType::new(8, 0);
    /// ZAK (008): LMK 26-27.
    pub const ZAK: KeyType = KeyType::new(13, 0);
    /// BDK type 1 (009): LMK 28-29.
    pub const BDK: KeyType = KeyType::new(14, 0);
    /// MK-AC (109): LMK 28-29 variant 1.
    pub const MK_AC: KeyType = KeyType::new(14, 1);
    /// CVK (402): LMK 14-15 variant 4.
    pub const CVK: KeyType = KeyType::new(7, 4);

    const fn new(pair: usize, variant: u8) -> KeyType {
        KeyType { pair, variant }
    }

    /// From the 3H code: variant digit, then the 2H pair code.
    pub fn from_code(code: &str) -> Result<KeyType, LmkError> {
        let b = code.as_bytes();
        if b.len() != 3 {
            return Err(LmkError::KeyType);
        }
        let variant = char::from(b[0]).to_digit(10).ok_or(LmkError::KeyType)? as u8;
        let pair_code = u8::from_str_radix(&code[1..], 16).map_err(|_| LmkError::KeyType)?;
        let pair = *PAIR_OF_CODE
            .get(usize::from(pair_code))
            .ok_or(LmkError::KeyType)?;
        Ok(KeyType::new(pair, variant))
    }

    /// From BU's 2H LMK pair code (variant 0).
    pub fn from_pair_code(code: &str) -> Result<KeyType, LmkError> {
        KeyType::from_code(&format!("0{code}"))
    }

    /// By the names consoles use (`form-key --type`).
    pub fn from_name(name: &str) -> Option<KeyType> {
        Some(match name.to_ascii_uppercase().as_str() {
            "ZMK" => KeyType::ZMK,
            "ZPK" => KeyType::ZPK,
            "TPK" => KeyType::TPK,
            "TAK" => KeyType::TAK,
            "ZAK" => KeyType::ZAK,
            "BDK" => KeyType::BDK,
            "CVK" => KeyType::CVK,
            "MK-AC" => KeyType::MK_AC,
            _ => return None,
        })
    }
}

/// The LMK: 20 pairs in one zeroized buffer.
pub struct Lmk {
    pairs: Secret<{ LMK_PAIRS * 16 }>,
}

impl std::fmt::Debug for Lmk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lmk(..)")
    }
}

impl Lmk {
    /// The published test LMK.
    pub fn test() -> Lmk {
        let mut pairs = Secret::<{ LMK_PAIRS * 16 }>::zeroed();
        for (i, h) in TEST_LMK.iter().enumerate() {
            // The table is constant and valid hex: a failure is a bug.
            hex::decode_to_slice(h, &mut pairs.expose_mut()[i * 16..i * 16 + 16])
                .expect("test LMK table is hex");
        }
        Lmk { pairs }
    }

    /// The pair for `t` with its variant applied.
    fn key_for(&self, t: KeyType) -> Result<TdesKey, LmkError> {
        let p = self
            .pairs
            .expose()
            .get(t.pair * 16..t.pair * 16 + 16)
            .ok_or(LmkError::KeyType)?;
        let mut mask = [0u8; 16];
        if t.variant > 0 {
            mask[0] = *TYPE_VARIANTS
                .get(usize::from(t.variant) - 1)
                .ok_or(LmkError::KeyType)?;
        }
        let key = TdesKey::from_bytes(p).map_err(|_| LmkError::Length)?;
        Ok(key.xor(&mask))
    }

    /// `key` encrypted under the LMK for `t` in `scheme`.
    pub fn encrypt(
        &self,
        t: KeyType,
        key: &TdesKey,
        scheme: KeyScheme,
    ) -> Result<KeyCryptogram, LmkError> {
        wrap(&self.key_for(t)?, key, scheme)
    }

    /// The clear key of `c`, a cryptogram under the LMK for `t`, parity
    /// checked.
    pub fn decrypt(&self, t: KeyType, c: &KeyCryptogram) -> Result<TdesKey, LmkError> {
        unwrap(&self.key_for(t)?, c)
    }

    /// The LMK check value (16H) NC reports: pair 00-01 encrypting zeros,
    /// all 8 bytes. (payShield's own derivation is not public: ours.)
    pub fn check_value(&self) -> String {
        let k = self.key_for(KeyType::new(0, 0)).expect("pair 00-01 exists");
        let mut z = [0u8; 8];
        k.encrypt_block(&mut z);
        hex::encode_upper(z)
    }
}

/// The number of 8-byte parts a scheme carries (untagged: from the hex).
fn parts_of(c: &KeyCryptogram) -> Result<usize, LmkError> {
    let n = match c.scheme {
        KeyScheme::Z => 1,
        KeyScheme::U | KeyScheme::X => 2,
        KeyScheme::T | KeyScheme::Y => 3,
        KeyScheme::Untagged => c.hex.as_str().len() / 16,
    };
    if c.hex.as_str().len() == n * 16 && (1..=3).contains(&n) {
        Ok(n)
    } else {
        Err(LmkError::Length)
    }
}

/// The key encrypting part `i` under `kek` for `scheme`: `kek` itself, or
/// with the scheme's variant in the first byte of its right half.
fn part_kek(kek: &TdesKey, scheme: KeyScheme, i: usize) -> TdesKey {
    let v = match scheme {
        KeyScheme::U => DOUBLE_VARIANTS.get(i).copied(),
        KeyScheme::T => TRIPLE_VARIANTS.get(i).copied(),
        _ => None,
    };
    let Some(v) = v else {
        return kek.clone();
    };
    // A single-length KEK as its double-length equal (K K encrypts as K).
    let double = match kek.length() {
        DesKeyLength::Single => {
            let mut b = Secret::<16>::zeroed();
            b.expose_mut()[..8].copy_from_slice(kek.as_bytes());
            b.expose_mut()[8..].copy_from_slice(kek.as_bytes());
            TdesKey::from_bytes(b.expose()).expect("16 bytes")
        }
        _ => kek.clone(),
    };
    let mut mask = [0u8; 24];
    mask[8] = v;
    double.xor(&mask[..double.length().bytes()])
}

/// `key` encrypted under `kek` (the LMK pair, or a ZMK) in `scheme`.
pub fn wrap(kek: &TdesKey, key: &TdesKey, scheme: KeyScheme) -> Result<KeyCryptogram, LmkError> {
    let parts = key.length().bytes() / 8;
    let fits = match scheme {
        KeyScheme::Untagged => true,
        KeyScheme::Z => parts == 1,
        KeyScheme::U | KeyScheme::X => parts == 2,
        KeyScheme::T | KeyScheme::Y => parts == 3,
    };
    if !fits {
        return Err(LmkError::Length);
    }
    let mut out = Secret::<24>::zeroed();
    for i in 0..parts {
        let mut block = *key.part(i).expose();
        part_kek(kek, scheme, i).encrypt_block(&mut block);
        out.expose_mut()[i * 8..i * 8 + 8].copy_from_slice(&block);
    }
    let hex = hex::encode_upper(&out.expose()[..parts * 8]);
    Ok(KeyCryptogram::new(scheme, &hex))
}

/// The clear key of `c` under `kek`, parity checked.
pub fn unwrap(kek: &TdesKey, c: &KeyCryptogram) -> Result<TdesKey, LmkError> {
    let key = unwrap_unchecked(kek, c)?;
    if key.has_odd_parity() {
        Ok(key)
    } else {
        Err(LmkError::Parity)
    }
}

/// The clear key of `c` under `kek`, parity not checked (A6 imports a key
/// of bad parity with an advice).
pub fn unwrap_unchecked(kek: &TdesKey, c: &KeyCryptogram) -> Result<TdesKey, LmkError> {
    let parts = parts_of(c)?;
    let mut bytes = Secret::<24>::zeroed();
    hex::decode_to_slice(c.hex.as_str(), &mut bytes.expose_mut()[..parts * 8])
        .map_err(|_| LmkError::Length)?;
    for i in 0..parts {
        let block: &mut [u8; 8] = (&mut bytes.expose_mut()[i * 8..i * 8 + 8])
            .try_into()
            .expect("8-byte part");
        part_kek(kek, c.scheme, i).decrypt_block(block);
    }
    TdesKey::from_bytes(&bytes.expose()[..parts * 8]).map_err(|_: CryptoError| LmkError::Length)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BDK: &str = "0123456789ABCDEFFEDCBA9876543210";

    #[test]
    fn key_types_name_their_pairs() {
        assert_eq!(KeyType::from_code("001").unwrap(), KeyType::ZPK);
        assert_eq!(KeyType::from_code("402").unwrap(), KeyType::CVK);
        assert_eq!(KeyType::from_code("109").unwrap(), KeyType::MK_AC);
        assert_eq!(KeyType::from_code("00E").unwrap().pair, 19);
        assert_eq!(KeyType::from_pair_code("03").unwrap(), KeyType::TAK);
        for bad in ["0F0", "00F", "A01", "01", "0011", "0G1"] {
            assert_eq!(KeyType::from_code(bad), Err(LmkError::KeyType), "{bad}");
        }
    }

    #[test]
    fn every_scheme_round_trips_and_types_differ() {
        let lmk = Lmk::test();
        let double = TdesKey::from_hex(BDK).unwrap();
        let triple = TdesKey::from_hex(&format!("{BDK}0123456789ABCDEF")).unwrap();
        let single = TdesKey::from_hex("0123456789ABCDEF").unwrap();
        let cases = [
            (&single, KeyScheme::Z),
            (&single, KeyScheme::Untagged),
            (&double, KeyScheme::U),
            (&double, KeyScheme::X),
            (&double, KeyScheme::Untagged),
            (&triple, KeyScheme::T),
            (&triple, KeyScheme::Y),
        ];
        for (key, scheme) in cases {
            let c = lmk.encrypt(KeyType::ZPK, key, scheme).unwrap();
            let back = lmk.decrypt(KeyType::ZPK, &c).unwrap();
            assert_eq!(back.as_bytes(), key.as_bytes(), "{scheme:?}");
            let other = lmk.encrypt(KeyType::TPK, key, scheme).unwrap();
            assert_ne!(other.hex, c.hex, "types give other cryptograms");
        }
        let u = lmk.encrypt(KeyType::ZPK, &double, KeyScheme::U).unwrap();
        let x = lmk.encrypt(KeyType::ZPK, &double, KeyScheme::X).unwrap();
        assert_ne!(u.hex, x.hex, "U applies its variants");
    }

    #[test]
    fn wrong_type_or_length_is_refused() {
        let lmk = Lmk::test();
        let key = TdesKey::from_hex(BDK).unwrap();
        assert_eq!(
            lmk.encrypt(KeyType::ZPK, &key, KeyScheme::Z).unwrap_err(),
            LmkError::Length
        );
        let c = lmk.encrypt(KeyType::BDK, &key, KeyScheme::U).unwrap();
        // Under another pair the key decrypts to noise: parity fails
        // (for this key and these pairs; in general with odds 1 - 2^-16).
        assert_eq!(lmk.decrypt(KeyType::ZPK, &c).unwrap_err(), LmkError::Parity);
        let short = KeyCryptogram::new(KeyScheme::U, "0123");
        assert_eq!(
            lmk.decrypt(KeyType::ZPK, &short).unwrap_err(),
            LmkError::Length
        );
    }

    #[test]
    fn check_value_is_stable_and_debug_hides_the_lmk() {
        let lmk = Lmk::test();
        assert_eq!(lmk.check_value().len(), 16);
        assert_eq!(lmk.check_value(), Lmk::test().check_value());
        assert_eq!(format!("{lmk:?}"), "Lmk(..)");
    }
}
