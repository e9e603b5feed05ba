//! PIN block translation, what an HSM's CA / CC / G0 do: decrypt the block
//! under the source key, read the PIN from it (so a wrong key or PAN shows
//! as a bad block, never a silently wrong PIN), make the destination
//! format and encrypt it under the destination key.

use super::error::CryptoError;
use super::keys::{AesKey, TdesKey};
use super::pin_block::{self, Pin, PinBlockFormat};
use super::pin_block4;
use super::secret::Secret;

/// A PIN encryption key: TDES for formats 0, 1, 3 and AES for format 4.
#[derive(Debug, Clone)]
pub enum PinKey {
    Tdes(TdesKey),
    Aes(AesKey),
}

/// An encrypted PIN block: 8 bytes under TDES, 16 under AES.
#[derive(Debug, Clone)]
pub enum PinBlock {
    Tdes(Secret<8>),
    Aes(Secret<16>),
}

impl PinBlock {
    /// The block's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            PinBlock::Tdes(b) => b.expose(),
            PinBlock::Aes(b) => b.expose(),
        }
    }

    /// A block from its bytes (8 or 16).
    pub fn from_bytes(bytes: &[u8]) -> Result<PinBlock, CryptoError> {
        if let Ok(a) = <[u8; 8]>::try_from(bytes) {
            return Ok(PinBlock::Tdes(Secret::new(a)));
        }
        if let Ok(a) = <[u8; 16]>::try_from(bytes) {
            return Ok(PinBlock::Aes(Secret::new(a)));
        }
        Err(CryptoError::BlockLength {
            got: bytes.len(),
            expected: 8,
        })
    }

    /// Upper-case hex, as in a host command.
    pub fn to_hex(&self) -> String {
        match self {
            PinBlock::Tdes(b) => b.to_hex(),
            PinBlock::Aes(b) => b.to_hex(),
        }
    }
}

/// Encrypts `pin` as a `format` block under `key` (random `fill` for the
/// formats that take it).
pub fn encrypt_pin(
    key: &PinKey,
    format: PinBlockFormat,
    pin: &Pin,
    pan: &str,
    fill: &[u8; 8],
) -> Result<PinBlock, CryptoError> {
    match (key, format) {
        (PinKey::Aes(k), PinBlockFormat::Iso4) => {
            Ok(PinBlock::Aes(pin_block4::encipher(k, pin, pan, fill)?))
        }
        (PinKey::Tdes(k), f) if f != PinBlockFormat::Iso4 => {
            let mut b = pin_block::make(f, pin, pan, fill)?;
            k.encrypt_block(b.expose_mut());
            Ok(PinBlock::Tdes(b))
        }
        (_, f) => Err(CryptoError::FormatKey { format: f.nibble() }),
    }
}

/// Decrypts a `format` block under `key` and reads its PIN.
pub fn decrypt_pin(
    key: &PinKey,
    format: PinBlockFormat,
    block: &PinBlock,
    pan: &str,
) -> Result<Pin, CryptoError> {
    match (key, format, block) {
        (PinKey::Aes(k), PinBlockFormat::Iso4, PinBlock::Aes(b)) => pin_block4::decipher(k, b, pan),
        (PinKey::Tdes(k), f, PinBlock::Tdes(b)) if f != PinBlockFormat::Iso4 => {
            let mut clear = b.clone();
            k.decrypt_block(clear.expose_mut());
            pin_block::read(f, &clear, pan)
        }
        (_, f, b) if b.as_bytes().len() != f.block_bytes() => Err(CryptoError::BlockLength {
            got: b.as_bytes().len(),
            expected: f.block_bytes(),
        }),
        (_, f, _) => Err(CryptoError::FormatKey { format: f.nibble() }),
    }
}

/// What a translation gives back: the new block and the PIN's length (the
/// HSM's answer carries the length, never the PIN).
#[derive(Debug, Clone)]
pub struct Translated {
    pub block: PinBlock,
    pub pin_len: usize,
}

/// One side of a translation: the key and the block format under it.
#[derive(Debug, Clone, Copy)]
pub struct PinZone<'a> {
    pub key: &'a PinKey,
    pub format: PinBlockFormat,
}

/// Decrypts under `from`, reformats, encrypts under `to`. The same `pan`
/// serves both sides (an HSM gets one account number).
pub fn translate(
    from: PinZone<'_>,
    to: PinZone<'_>,
    block: &PinBlock,
    pan: &str,
    fill: &[u8; 8],
) -> Result<Translated, CryptoError> {
    let pin = decrypt_pin(from.key, from.format, block, pan)?;
    let block = encrypt_pin(to.key, to.format, &pin, pan, fill)?;
    Ok(Translated {
        block,
        pin_len: pin.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAN: &str = "4012345678909";

    fn tdes(h: &str) -> PinKey {
        PinKey::Tdes(TdesKey::from_hex(h).unwrap())
    }

    #[test]
    fn zpk_to_zpk_every_format_pair() {
        let a = tdes("0123456789ABCDEFFEDCBA9876543210");
        let b = tdes("89ABCDEF01234567FEDCBA9876543210");
        let aes = PinKey::Aes(AesKey::from_hex("000102030405060708090A0B0C0D0E0F").unwrap());
        let pin = Pin::new("24680").unwrap();
        use PinBlockFormat::*;
        let zones = [(&a, Iso0), (&a, Iso1), (&a, Iso3), (&aes, Iso4)];
        for (kf, ff) in zones {
            for (kt, ft) in [(&b, Iso0), (&b, Iso1), (&b, Iso3), (&aes, Iso4)] {
                let src = encrypt_pin(kf, ff, &pin, PAN, &[0x5A; 8]).unwrap();
                let from = PinZone {
                    key: kf,
                    format: ff,
                };
                let to = PinZone {
                    key: kt,
                    format: ft,
                };
                let t = translate(from, to, &src, PAN, &[0xC3; 8]).unwrap();
                assert_eq!(t.pin_len, 5);
                let back = decrypt_pin(kt, ft, &t.block, PAN).unwrap();
                assert!(back.ct_eq(&pin), "{ff:?} -> {ft:?}");
            }
        }
    }

    #[test]
    fn wrong_key_is_an_error_not_another_pin() {
        let a = tdes("0123456789ABCDEFFEDCBA9876543210");
        let wrong = tdes("1111111111111111FEDCBA9876543210");
        let pin = Pin::new("1234").unwrap();
        let blk = encrypt_pin(&a, PinBlockFormat::Iso0, &pin, PAN, &[0; 8]).unwrap();
        assert!(decrypt_pin(&wrong, PinBlockFormat::Iso0, &blk, PAN).is_err());
    }

    #[test]
    fn format_and_key_must_agree() {
        let a = tdes("0123456789ABCDEFFEDCBA9876543210");
        let pin = Pin::new("1234").unwrap();
        assert_eq!(
            encrypt_pin(&a, PinBlockFormat::Iso4, &pin, PAN, &[0; 8]).unwrap_err(),
            CryptoError::FormatKey { format: 4 }
        );
        let short = PinBlock::Tdes(Secret::new([0; 8]));
        let aes = PinKey::Aes(AesKey::from_bytes(&[1; 16]).unwrap());
        assert!(decrypt_pin(&aes, PinBlockFormat::Iso4, &short, PAN).is_err());
    }
}
