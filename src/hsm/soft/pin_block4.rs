//! ISO 9564-1:2017 format 4, the AES PIN block: a 16-byte PIN field
//! (`4`, length, digits, fill `A` to nibble 15, then 8 random bytes) and a
//! 16-byte PAN field (PAN length minus 12, the PAN, zero padding), bound by
//! enciphering: block = E(K, E(K, PIN field) XOR PAN field). Deciphering
//! runs the steps backwards, so the PIN field never appears on the wire
//! in a form an XOR with a known PAN would reveal.

use super::error::CryptoError;
use super::keys::{AesKey, xor_into};
use super::pin_block::{Pin, pan_digits, read_pin_field, set_nibble};
use super::secret::Secret;

/// The plain PIN field: `4`, length, digits, `A` fill to nibble 15, then
/// the 8 random bytes of `fill` as nibbles 16..32.
pub fn pin_field(pin: &Pin, fill: &[u8; 8]) -> Secret<16> {
    let mut f = Secret::<16>::zeroed();
    let b = f.expose_mut();
    set_nibble(b, 0, 4);
    set_nibble(b, 1, pin.len() as u8);
    for (i, d) in pin.digits().iter().enumerate() {
        set_nibble(b, 2 + i, *d);
    }
    for i in 2 + pin.len()..16 {
        set_nibble(b, i, 0xA);
    }
    b[8..].copy_from_slice(fill);
    f
}

/// The PAN field: nibble 0 is the PAN's length minus 12 (0 for PANs of 12
/// digits or fewer, which are left-padded with zeros to 12), then the PAN,
/// then zeros.
pub fn pan_field(pan: &str) -> Result<[u8; 16], CryptoError> {
    let digits = pan_digits(pan)?;
    let mut out = [0u8; 16];
    let pad = 12usize.saturating_sub(digits.len());
    set_nibble(&mut out, 0, digits.len().saturating_sub(12) as u8);
    for (i, d) in digits.iter().enumerate() {
        set_nibble(&mut out, 1 + pad + i, d - b'0');
    }
    Ok(out)
}

/// Makes and enciphers a format 4 PIN block under `key`.
pub fn encipher(
    key: &AesKey,
    pin: &Pin,
    pan: &str,
    fill: &[u8; 8],
) -> Result<Secret<16>, CryptoError> {
    let pan_f = pan_field(pan)?;
    let mut block = pin_field(pin, fill);
    key.encrypt_block(block.expose_mut());
    xor_into(block.expose_mut(), &pan_f);
    key.encrypt_block(block.expose_mut());
    Ok(block)
}

/// Deciphers a format 4 PIN block and reads its PIN, checking the control
/// nibble, the length, the digits and the `A` fill.
pub fn decipher(key: &AesKey, block: &Secret<16>, pan: &str) -> Result<Pin, CryptoError> {
    let pan_f = pan_field(pan)?;
    let mut field = block.clone();
    key.decrypt_block(field.expose_mut());
    xor_into(field.expose_mut(), &pan_f);
    key.decrypt_block(field.expose_mut());
    read_pin_field(field.expose(), 4, 16, |v| v == 0xA)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "00112233445566778899AABBCCDDEEFF";

    #[test]
    fn fields_are_laid_out_per_iso_9564_1_2017() {
        let pin = Pin::new("1234").unwrap();
        let f = pin_field(&pin, &[0x11; 8]);
        assert_eq!(f.to_hex(), "441234AAAAAAAAAA1111111111111111");
        assert_eq!(super::super::pin_block::nibble(f.expose(), 0), 4);
        let p = pan_field("1234567890123456789").unwrap();
        assert_eq!(hex::encode_upper(p), "71234567890123456789000000000000");
        let short = pan_field("12345678").unwrap();
        assert_eq!(hex::encode_upper(short), "00000123456780000000000000000000");
        let twelve = pan_field("432198765432").unwrap();
        assert_eq!(
            hex::encode_upper(twelve),
            "04321987654320000000000000000000"
        );
    }

    #[test]
    fn round_trip_and_pan_binding() {
        let key = AesKey::from_hex(KEY).unwrap();
        let pin = Pin::new("987654321012").unwrap();
        let pan = "5413330089010012";
        let block = encipher(&key, &pin, pan, &[7; 8]).unwrap();
        assert!(decipher(&key, &block, pan).unwrap().ct_eq(&pin));
        // The same PIN and PAN with other fill give another block.
        assert_ne!(
            block.to_hex(),
            encipher(&key, &pin, pan, &[8; 8]).unwrap().to_hex()
        );
        // Another PAN does not decipher to a valid field.
        assert!(decipher(&key, &block, "5413330089010020").is_err());
    }
}
