//! Message authentication codes: ISO 9797-1 MAC algorithm 1 (CBC-MAC with
//! the key's own cipher) and algorithm 3 (the retail MAC of ANSI X9.19:
//! single-DES CBC under the left half, the last block then decrypted under
//! the right half and encrypted under the left), with padding method 1
//! (zeros) or 2 (`80` then zeros); and AES-CMAC (RFC 4493).

use cmac::{Cmac, Mac};

use super::error::CryptoError;
use super::keys::{AesKey, DesKeyLength, TdesKey};
use super::secret::ct_eq;

/// ISO 9797-1 padding methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// No padding: the data must be whole blocks (and not empty).
    None,
    /// Method 1: zero bytes to a whole block (empty data is one block).
    Method1,
    /// Method 2: `80`, then zero bytes to a whole block.
    Method2,
}

/// `data` padded to whole 8-byte blocks.
pub fn pad(data: &[u8], padding: Padding) -> Result<Vec<u8>, CryptoError> {
    let mut out = data.to_vec();
    match padding {
        Padding::None => {
            if data.is_empty() || !data.len().is_multiple_of(8) {
                return Err(CryptoError::DataLength {
                    got: data.len(),
                    why: "no padding needs whole 8-byte blocks",
                });
            }
        }
        Padding::Method1 => {
            if out.is_empty() || !out.len().is_multiple_of(8) {
                out.resize(out.len().div_ceil(8).max(1) * 8, 0);
            }
        }
        Padding::Method2 => {
            out.push(0x80);
            out.resize(out.len().div_ceil(8) * 8, 0);
        }
    }
    Ok(out)
}

/// ISO 9797-1 MAC algorithm 1: CBC-MAC under the whole key (single DES
/// for an 8-byte key, ANSI X9.9; TDES for double and triple length).
pub fn alg1(key: &TdesKey, data: &[u8], padding: Padding) -> Result<[u8; 8], CryptoError> {
    let padded = pad(data, padding)?;
    key.cipher().cbc_last([0; 8], &padded)
}

/// ISO 9797-1 MAC algorithm 3, the retail MAC, under a double-length key.
pub fn alg3(key: &TdesKey, data: &[u8], padding: Padding) -> Result<[u8; 8], CryptoError> {
    key.require(DesKeyLength::Double)?;
    let left = TdesKey::from_bytes(key.part(0).expose())?;
    let right = TdesKey::from_bytes(key.part(1).expose())?;
    let padded = pad(data, padding)?;
    let l = left.cipher();
    let mut mac = l.cbc_last([0; 8], &padded)?;
    right.decrypt_block(&mut mac);
    l.encrypt_block(&mut mac);
    Ok(mac)
}

/// AES-CMAC (RFC 4493; NIST SP 800-38B with AES).
pub fn aes_cmac(key: &AesKey, data: &[u8]) -> [u8; 16] {
    // The key's length was checked when it was made: each arm fits.
    macro_rules! run {
        ($cipher:ty) => {{
            let mut m = <Cmac<$cipher> as Mac>::new_from_slice(key.as_bytes()).expect("key length");
            m.update(data);
            m.finalize().into_bytes().into()
        }};
    }
    match key.as_bytes().len() {
        16 => run!(aes::Aes128),
        24 => run!(aes::Aes192),
        _ => run!(aes::Aes256),
    }
}

/// Checks `mac` (its first `mac.len()` bytes, 4 to 16) against `computed`
/// in constant time: MACs are often sent truncated.
pub fn verify(computed: &[u8], mac: &[u8]) -> bool {
    (4..=computed.len()).contains(&mac.len()) && ct_eq(&computed[..mac.len()], mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn padding_methods() {
        assert_eq!(pad(b"", Padding::Method1).unwrap(), vec![0; 8]);
        assert_eq!(pad(&[1; 8], Padding::Method1).unwrap(), vec![1; 8]);
        assert_eq!(pad(&[1; 8], Padding::Method2).unwrap().len(), 16);
        assert_eq!(
            pad(&[1; 3], Padding::Method2).unwrap(),
            h("0101018000000000")
        );
        assert!(pad(&[1; 3], Padding::None).is_err());
        assert!(pad(b"", Padding::None).is_err());
    }

    #[test]
    fn ansi_x9_9_and_x9_19_example() {
        // "Now is the time for all " (FIPS 113 / ANSI X9.9's example).
        let data = b"Now is the time for all ";
        let k1 = TdesKey::from_hex("0123456789ABCDEF").unwrap();
        assert_eq!(
            hex::encode_upper(alg1(&k1, data, Padding::None).unwrap()),
            "70A30640CC76DD8B"
        );
        // With the same half twice, algorithm 3 is algorithm 1.
        let k2 = TdesKey::from_hex("0123456789ABCDEF0123456789ABCDEF").unwrap();
        assert_eq!(
            alg3(&k2, data, Padding::None).unwrap(),
            alg1(&k1, data, Padding::None).unwrap()
        );
    }

    #[test]
    fn retail_mac_uses_both_halves() {
        let a = TdesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let b = TdesKey::from_hex("0123456789ABCDEF0123456789ABCDEF").unwrap();
        let d = b"4012345678909 amount 000000001234";
        assert_ne!(
            alg3(&a, d, Padding::Method2).unwrap(),
            alg3(&b, d, Padding::Method2).unwrap()
        );
        assert!(
            alg3(
                &TdesKey::from_hex("0123456789ABCDEF").unwrap(),
                d,
                Padding::Method1
            )
            .is_err()
        );
    }

    #[test]
    fn rfc_4493_vectors() {
        let k = AesKey::from_hex("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let msg = h(concat!(
            "6bc1bee22e409f96e93d7e117393172a",
            "ae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52ef",
            "f69f2445df4f9b17ad2b417be66c3710"
        ));
        assert_eq!(
            hex::encode(aes_cmac(&k, b"")),
            "bb1d6929e95937287fa37d129b756746"
        );
        assert_eq!(
            hex::encode(aes_cmac(&k, &msg[..16])),
            "070a16b46b4d4144f79bdd9dd04a287c"
        );
        assert_eq!(
            hex::encode(aes_cmac(&k, &msg[..40])),
            "dfa66747de9ae63030ca32611497c827"
        );
        assert_eq!(
            hex::encode(aes_cmac(&k, &msg)),
            "51f0bebf7e3b9d92fc49741779363cfe"
        );
    }

    #[test]
    fn verify_takes_truncated_macs() {
        let m = [1, 2, 3, 4, 5, 6, 7, 8];
        assert!(verify(&m, &m[..4]));
        assert!(!verify(&m, &[1, 2, 3]));
        assert!(!verify(&m, &[1, 2, 3, 5]));
    }
}
