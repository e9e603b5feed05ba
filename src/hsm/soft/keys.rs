//! DES / TDES and AES keys: ECB and CBC on whole blocks, the key check
//! value (KCV: the key encrypting a block of zeros, first 3 bytes, shown as
//! 6 hex digits) and DES odd parity. Keys live in [`Secret`] buffers; a
//! key's `Debug` shows its length only.

use std::fmt;

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};

use super::des::DesCipher;
use super::error::CryptoError;
use super::secret::Secret;

/// A DES-family key's length: single (8 bytes), double (16: K1 K2 K1) or
/// triple (24: K1 K2 K3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DesKeyLength {
    Single,
    Double,
    Triple,
}

impl DesKeyLength {
    /// The key's length in bytes.
    pub fn bytes(self) -> usize {
        match self {
            DesKeyLength::Single => 8,
            DesKeyLength::Double => 16,
            DesKeyLength::Triple => 24,
        }
    }
}

/// A DES, double- or triple-length TDES key.
#[derive(Clone)]
pub struct TdesKey {
    bytes: Secret<24>,
    length: DesKeyLength,
}

impl fmt::Debug for TdesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TdesKey({:?}, ..)", self.length)
    }
}

/// A key's block cipher, its key schedule made (`TdesKey::cipher`).
pub struct Cipher(DesCipher);

impl Cipher {
    /// Encrypts one 8-byte block in place.
    pub fn encrypt_block(&self, block: &mut [u8; 8]) {
        self.0.encrypt_block(block);
    }

    /// Decrypts one 8-byte block in place.
    pub fn decrypt_block(&self, block: &mut [u8; 8]) {
        self.0.decrypt_block(block);
    }

    /// The last block of `data`'s CBC encryption from `iv` (a CBC-MAC),
    /// faster than a block at a time; `data` must be whole blocks.
    pub fn cbc_last(&self, iv: [u8; 8], data: &[u8]) -> Result<[u8; 8], CryptoError> {
        let (blocks, rest) = data.as_chunks::<8>();
        if !rest.is_empty() {
            return Err(CryptoError::DataLength {
                got: data.len(),
                why: "not whole 8-byte blocks",
            });
        }
        let blocks = blocks.iter().map(|b| u64::from_be_bytes(*b));
        Ok(self
            .0
            .cbc_last(u64::from_be_bytes(iv), blocks)
            .to_be_bytes())
    }
}

impl TdesKey {
    /// A key of 8, 16 or 24 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let length = match bytes.len() {
            8 => DesKeyLength::Single,
            16 => DesKeyLength::Double,
            24 => DesKeyLength::Triple,
            got => {
                return Err(CryptoError::KeyLength {
                    got,
                    expected: "8, 16 or 24",
                });
            }
        };
        let mut buf = Secret::<24>::zeroed();
        buf.expose_mut()[..bytes.len()].copy_from_slice(bytes);
        Ok(TdesKey { bytes: buf, length })
    }

    /// A key from 16, 32 or 48 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        let mut buf = Secret::<24>::zeroed();
        let n = text.len() / 2;
        if !text.len().is_multiple_of(2) || n > 24 {
            return Err(CryptoError::KeyLength {
                got: n,
                expected: "8, 16 or 24",
            });
        }
        hex::decode_to_slice(text, &mut buf.expose_mut()[..n])
            .map_err(|_| CryptoError::Hex { what: "key" })?;
        Self::from_bytes(&buf.expose()[..n])
    }

    /// The key's bytes (8, 16 or 24).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes.expose()[..self.length.bytes()]
    }

    /// Single, double or triple length.
    pub fn length(&self) -> DesKeyLength {
        self.length
    }

    /// Refuses any length but `want`, naming it in the error.
    pub fn require(&self, want: DesKeyLength) -> Result<(), CryptoError> {
        if self.length == want {
            return Ok(());
        }
        let expected = match want {
            DesKeyLength::Single => "8",
            DesKeyLength::Double => "16",
            DesKeyLength::Triple => "24",
        };
        Err(CryptoError::KeyLength {
            got: self.length.bytes(),
            expected,
        })
    }

    /// The i-th 8-byte DES component (0 = left half).
    pub fn part(&self, i: usize) -> Secret<8> {
        let mut out = Secret::<8>::zeroed();
        out.expose_mut()
            .copy_from_slice(&self.as_bytes()[i * 8..i * 8 + 8]);
        out
    }

    /// This key XORed with `mask` (a variant), same length; `mask` is
    /// repeated if shorter.
    pub fn xor(&self, mask: &[u8]) -> TdesKey {
        let mut out = self.clone();
        let n = self.length.bytes();
        for (i, b) in out.bytes.expose_mut()[..n].iter_mut().enumerate() {
            *b ^= mask[i % mask.len()];
        }
        out
    }

    fn engine(&self) -> DesCipher {
        // Whole 8-byte parts of the 24-byte buffer: the length says how
        // many are the key's.
        let (parts, _) = self.bytes.expose().as_chunks::<8>();
        match (self.length, parts) {
            (DesKeyLength::Single, [k1, ..]) => DesCipher::single(k1),
            (DesKeyLength::Double, [k1, k2, ..]) => DesCipher::ede2(k1, k2),
            (_, [k1, k2, k3, ..]) => DesCipher::ede3(k1, k2, k3),
            (_, _) => unreachable!("a 24-byte buffer has three 8-byte parts"),
        }
    }

    /// The key's cipher with its schedule made once, for many blocks
    /// (a schedule costs about half a block: make it once per key, not
    /// once per block).
    pub fn cipher(&self) -> Cipher {
        Cipher(self.engine())
    }

    /// Encrypts one 8-byte block in place.
    pub fn encrypt_block(&self, block: &mut [u8; 8]) {
        self.cipher().encrypt_block(block);
    }

    /// Decrypts one 8-byte block in place.
    pub fn decrypt_block(&self, block: &mut [u8; 8]) {
        self.cipher().decrypt_block(block);
    }

    /// ECB over whole blocks, in place.
    pub fn encrypt_ecb(&self, data: &mut [u8]) -> Result<(), CryptoError> {
        let c = self.cipher();
        for block in blocks8(data)? {
            c.encrypt_block(block);
        }
        Ok(())
    }

    /// ECB decryption over whole blocks, in place.
    pub fn decrypt_ecb(&self, data: &mut [u8]) -> Result<(), CryptoError> {
        let c = self.cipher();
        for block in blocks8(data)? {
            c.decrypt_block(block);
        }
        Ok(())
    }

    /// CBC over whole blocks from `iv`, in place (for keys under a ZMK).
    pub fn encrypt_cbc(&self, iv: [u8; 8], data: &mut [u8]) -> Result<(), CryptoError> {
        let (c, mut chain) = (self.cipher(), iv);
        for block in blocks8(data)? {
            xor_into(block, &chain);
            c.encrypt_block(block);
            chain = *block;
        }
        Ok(())
    }

    /// The key check value: the first 3 bytes of the key encrypting zeros.
    pub fn kcv(&self) -> [u8; 3] {
        let mut z = [0u8; 8];
        self.encrypt_block(&mut z);
        [z[0], z[1], z[2]]
    }

    /// The check value as 6 upper-case hex digits, the form HSMs print.
    pub fn kcv_hex(&self) -> String {
        hex::encode_upper(self.kcv())
    }

    /// True if every byte has odd parity (DES keys are meant to).
    pub fn has_odd_parity(&self) -> bool {
        self.as_bytes().iter().all(|b| b.count_ones() % 2 == 1)
    }

    /// The same key with each byte's low bit set for odd parity (DES ignores
    /// that bit, so the key encrypts the same).
    pub fn with_odd_parity(&self) -> TdesKey {
        let mut out = self.clone();
        let n = self.length.bytes();
        for b in &mut out.bytes.expose_mut()[..n] {
            *b = odd_parity(*b);
        }
        out
    }
}

/// `b` with its low bit chosen so that it has an odd number of one bits.
pub fn odd_parity(b: u8) -> u8 {
    let high = b & 0xFE;
    if high.count_ones().is_multiple_of(2) {
        high | 1
    } else {
        high
    }
}

/// XORs `mask` into `block`.
pub fn xor_into(block: &mut [u8], mask: &[u8]) {
    for (b, m) in block.iter_mut().zip(mask) {
        *b ^= m;
    }
}

fn blocks8(data: &mut [u8]) -> Result<impl Iterator<Item = &mut [u8; 8]>, CryptoError> {
    if !data.len().is_multiple_of(8) {
        return Err(CryptoError::DataLength {
            got: data.len(),
            why: "not whole 8-byte blocks",
        });
    }
    Ok(data
        .chunks_exact_mut(8)
        .map(|c| <&mut [u8; 8]>::try_from(c).expect("8-byte chunk")))
}

/// An AES-128, -192 or -256 key.
#[derive(Clone)]
pub struct AesKey {
    bytes: Secret<32>,
    len: usize,
}

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AesKey({} bits, ..)", self.len * 8)
    }
}

/// The AES cipher a key runs, chosen by its length.
enum AesEngine {
    A128(aes::Aes128),
    A192(aes::Aes192),
    A256(aes::Aes256),
}

impl AesKey {
    /// A key of 16, 24 or 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if ![16, 24, 32].contains(&bytes.len()) {
            return Err(CryptoError::KeyLength {
                got: bytes.len(),
                expected: "16, 24 or 32",
            });
        }
        let mut buf = Secret::<32>::zeroed();
        buf.expose_mut()[..bytes.len()].copy_from_slice(bytes);
        Ok(AesKey {
            bytes: buf,
            len: bytes.len(),
        })
    }

    /// A key from 32, 48 or 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        let n = text.len() / 2;
        if !text.len().is_multiple_of(2) || n > 32 {
            return Err(CryptoError::KeyLength {
                got: n,
                expected: "16, 24 or 32",
            });
        }
        let mut buf = Secret::<32>::zeroed();
        hex::decode_to_slice(text, &mut buf.expose_mut()[..n])
            .map_err(|_| CryptoError::Hex { what: "key" })?;
        Self::from_bytes(&buf.expose()[..n])
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes.expose()[..self.len]
    }

    fn engine(&self) -> AesEngine {
        let b = self.as_bytes();
        // Lengths were checked at construction.
        match self.len {
            16 => AesEngine::A128(aes::Aes128::new_from_slice(b).expect("16-byte key")),
            24 => AesEngine::A192(aes::Aes192::new_from_slice(b).expect("24-byte key")),
            _ => AesEngine::A256(aes::Aes256::new_from_slice(b).expect("32-byte key")),
        }
    }

    /// Encrypts one 16-byte block in place.
    pub fn encrypt_block(&self, block: &mut [u8; 16]) {
        let b = aes::cipher::generic_array::GenericArray::from_mut_slice(block);
        match self.engine() {
            AesEngine::A128(c) => c.encrypt_block(b),
            AesEngine::A192(c) => c.encrypt_block(b),
            AesEngine::A256(c) => c.encrypt_block(b),
        }
    }

    /// Decrypts one 16-byte block in place.
    pub fn decrypt_block(&self, block: &mut [u8; 16]) {
        let b = aes::cipher::generic_array::GenericArray::from_mut_slice(block);
        match self.engine() {
            AesEngine::A128(c) => c.decrypt_block(b),
            AesEngine::A192(c) => c.decrypt_block(b),
            AesEngine::A256(c) => c.decrypt_block(b),
        }
    }

    /// The check value by the zeros method (the key encrypting a block of
    /// zeros, first 3 bytes), as for TDES keys.
    pub fn kcv(&self) -> [u8; 3] {
        let mut z = [0u8; 16];
        self.encrypt_block(&mut z);
        [z[0], z[1], z[2]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kcv_of_the_x924_bdk() {
        // The check value published with the X9.24 test BDK.
        let bdk = TdesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        assert_eq!(bdk.kcv_hex(), "08D7B4");
    }

    #[test]
    fn single_des_fips_81_style_vector() {
        // DES with key 0123456789ABCDEF on "Now is t" (FIPS 81's example).
        let k = TdesKey::from_hex("0123456789ABCDEF").unwrap();
        let mut b = *b"Now is t";
        k.encrypt_block(&mut b);
        assert_eq!(hex::encode_upper(b), "3FA40E8A984D4815");
        k.decrypt_block(&mut b);
        assert_eq!(&b, b"Now is t");
    }

    #[test]
    fn double_length_with_equal_halves_is_single_des() {
        let single = TdesKey::from_hex("0123456789ABCDEF").unwrap();
        let double = TdesKey::from_hex("0123456789ABCDEF0123456789ABCDEF").unwrap();
        assert_eq!(single.kcv(), double.kcv());
    }

    #[test]
    fn cbc_last_is_the_cbc_encryptions_last_block() {
        let k = TdesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let data: Vec<u8> = (0..24).collect();
        let mut cbc = data.clone();
        k.encrypt_cbc([7; 8], &mut cbc).unwrap();
        assert_eq!(k.cipher().cbc_last([7; 8], &data).unwrap(), cbc[16..]);
        assert!(k.cipher().cbc_last([0; 8], &data[..20]).is_err());
    }

    #[test]
    fn parity_check_and_fix() {
        let k = TdesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        assert!(k.has_odd_parity());
        let even = TdesKey::from_hex("0022446688AACCEE0022446688AACCEE").unwrap();
        assert!(!even.has_odd_parity());
        let fixed = even.with_odd_parity();
        assert!(fixed.has_odd_parity());
        assert_eq!(
            hex::encode_upper(fixed.as_bytes()),
            "0123456789ABCDEF0123456789ABCDEF"
        );
        assert_eq!(fixed.kcv(), even.kcv(), "parity bits do not change the key");
    }

    #[test]
    fn lengths_are_checked() {
        assert!(TdesKey::from_bytes(&[0; 7]).is_err());
        assert!(TdesKey::from_hex("0123").is_err());
        assert!(TdesKey::from_hex("0123456789ABCDEG").is_err());
        assert!(AesKey::from_bytes(&[0; 15]).is_err());
        assert!(AesKey::from_hex(&"00".repeat(33)).is_err());
    }

    #[test]
    fn aes_fips_197_vector() {
        // FIPS-197 appendix C.1.
        let k = AesKey::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
        let mut b = [0u8; 16];
        hex::decode_to_slice("00112233445566778899aabbccddeeff", &mut b).unwrap();
        k.encrypt_block(&mut b);
        assert_eq!(hex::encode(b), "69c4e0d86a7b0430d8cdb78070b4c55a");
        k.decrypt_block(&mut b);
        assert_eq!(hex::encode(b), "00112233445566778899aabbccddeeff");
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let k = TdesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        assert_eq!(format!("{k:?}"), "TdesKey(Double, ..)");
        let a = AesKey::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
        assert_eq!(format!("{a:?}"), "AesKey(128 bits, ..)");
    }
}
