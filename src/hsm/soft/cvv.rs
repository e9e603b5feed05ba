//! The Visa card verification value (CVV on the magnetic stripe, CVV2 on
//! the card's back with service code 000, iCVV in the chip's track 2 with
//! service code 999): PAN, expiry (YYMM) and service code as 32 nibbles,
//! two DES steps under CVK A, one TDES step under CVK A / B, decimalized.

use super::error::CryptoError;
use super::keys::{DesKeyLength, TdesKey, xor_into};
use super::pin_block::{nibble, pan_digits, set_nibble};
use super::secret::{Secret, ct_eq};

/// The service code a CVV2 is computed with.
pub const CVV2_SERVICE_CODE: &str = "000";
/// The service code an iCVV is computed with.
pub const ICVV_SERVICE_CODE: &str = "999";

fn digits_of<'a>(text: &'a str, n: usize, what: &'static str) -> Result<&'a [u8], CryptoError> {
    let b = text.as_bytes();
    if b.len() != n || !b.iter().all(u8::is_ascii_digit) {
        return Err(CryptoError::CardData { what });
    }
    Ok(b)
}

/// The 3-digit CVV (as ASCII digits) for a double-length CVK A / B.
pub fn cvv(
    cvk: &TdesKey,
    pan: &str,
    expiry_yymm: &str,
    service_code: &str,
) -> Result<Secret<3>, CryptoError> {
    cvk.require(DesKeyLength::Double)?;
    let pan = pan_digits(pan)?;
    let exp = digits_of(expiry_yymm, 4, "expiry is not 4 digits (YYMM)")?;
    let sc = digits_of(service_code, 3, "service code is not 3 digits")?;
    let mut data = Secret::<16>::zeroed();
    for (i, d) in pan.iter().chain(exp).chain(sc).enumerate() {
        set_nibble(data.expose_mut(), i, d - b'0');
    }
    let a = TdesKey::from_bytes(cvk.part(0).expose())?;
    let mut r = Secret::<8>::zeroed();
    r.expose_mut().copy_from_slice(&data.expose()[..8]);
    a.encrypt_block(r.expose_mut());
    xor_into(r.expose_mut(), &data.expose()[8..]);
    cvk.encrypt_block(r.expose_mut());
    Ok(decimalize(r.expose()))
}

/// The first three decimal digits of the result, then (if too few) its
/// hex digits A-F less 10, in order: the Visa decimalization.
fn decimalize(r: &[u8; 8]) -> Secret<3> {
    let nibbles = (0..16).map(|i| nibble(r, i));
    let digits = nibbles.clone().filter(|&n| n <= 9);
    let letters = nibbles.filter(|&n| n > 9).map(|n| n - 10);
    let mut out = Secret::<3>::zeroed();
    for (o, d) in out.expose_mut().iter_mut().zip(digits.chain(letters)) {
        *o = b'0' + d;
    }
    out
}

/// Verifies a CVV in constant time.
pub fn verify(
    cvk: &TdesKey,
    pan: &str,
    expiry_yymm: &str,
    service_code: &str,
    given: &str,
) -> Result<bool, CryptoError> {
    let computed = cvv(cvk, pan, expiry_yymm, service_code)?;
    Ok(ct_eq(computed.expose(), given.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_example() {
        // CVK A 0123456789ABCDEF, CVK B FEDCBA9876543210, PAN
        // 4123456789012345, expiry 8701, service code 101: CVV 561.
        let cvk = TdesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let v = cvv(&cvk, "4123456789012345", "8701", "101").unwrap();
        assert_eq!(v.expose(), b"561");
        assert!(verify(&cvk, "4123456789012345", "8701", "101", "561").unwrap());
        assert!(!verify(&cvk, "4123456789012345", "8701", "101", "562").unwrap());
    }

    #[test]
    fn decimalization_falls_back_to_letters() {
        let r = [0xAB, 0xCD, 0xEF, 0xAB, 0xCD, 0xEF, 0xAB, 0x1C];
        assert_eq!(decimalize(&r).expose(), b"101");
    }

    #[test]
    fn malformed_card_data() {
        let cvk = TdesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        assert!(cvv(&cvk, "4123456789012345", "870", "101").is_err());
        assert!(cvv(&cvk, "4123456789012345", "8701", "1a1").is_err());
        assert!(cvv(&cvk, "41234", "8701", "101").is_err());
        let single = TdesKey::from_hex("0123456789ABCDEF").unwrap();
        assert!(cvv(&single, "4123456789012345", "8701", "101").is_err());
    }
}
