//! EMV cryptograms (EMV 4.x Book 2, annex A1.4 and A1.3): the card's
//! master key from the issuer's (option A, from PAN and PAN sequence
//! number), the common session key (A1.3.1, diversified by `R`, with ATC),
//! the ARQC as an ISO 9797-1 algorithm 3 MAC over the transaction data
//! (CDOL1 values), and ARPC method 1 (ARQC XOR the response code,
//! encrypted under the session key).

use super::error::CryptoError;
use super::keys::{DesKeyLength, TdesKey, xor_into};
use super::mac::{self, Padding};
use super::pin_block::pan_digits;
use super::secret::{Secret, ct_eq};

/// The 8-byte block `Y` of option A: the rightmost 16 digits of PAN then
/// PAN sequence number (`00` when the card has none), left-padded with
/// zeros, packed as BCD. It is also payShield KQ's "PAN/PAN sequence no".
pub fn pan_psn_block(pan: &str, psn: u8) -> Result<[u8; 8], CryptoError> {
    if psn > 99 {
        return Err(CryptoError::CardData {
            what: "PAN sequence number over 99",
        });
    }
    let mut digits: Vec<u8> = pan_digits(pan)?.iter().map(|d| d - b'0').collect();
    digits.extend([psn / 10, psn % 10]);
    let mut y = [0u8; 16];
    let take = digits.len().min(16);
    y[16 - take..].copy_from_slice(&digits[digits.len() - take..]);
    let mut out = [0u8; 8];
    for (o, pair) in out.iter_mut().zip(y.chunks_exact(2)) {
        *o = (pair[0] << 4) | pair[1];
    }
    Ok(out)
}

/// The card's master key (option A): `Y` and `Y` XOR `FF..` each encrypted
/// under the issuer master key, odd parity forced.
pub fn icc_master_key(imk: &TdesKey, pan: &str, psn: u8) -> Result<TdesKey, CryptoError> {
    imk.require(DesKeyLength::Double)?;
    let y = pan_psn_block(pan, psn)?;
    let mut out = Secret::<16>::zeroed();
    out.expose_mut()[..8].copy_from_slice(&y);
    out.expose_mut()[8..].copy_from_slice(&y);
    xor_into(&mut out.expose_mut()[8..], &[0xFF; 8]);
    imk.encrypt_ecb(out.expose_mut())?;
    Ok(TdesKey::from_bytes(out.expose())?.with_odd_parity())
}

/// `R` for the application cryptogram session key: the ATC then six
/// zero bytes (EMV Book 2 A1.3.1).
pub fn r_from_atc(atc: [u8; 2]) -> [u8; 8] {
    [atc[0], atc[1], 0, 0, 0, 0, 0, 0]
}

/// `R` as M/Chip 4 sets it: ATC, two zero bytes, unpredictable number.
pub fn r_mchip(atc: [u8; 2], un: [u8; 4]) -> [u8; 8] {
    [atc[0], atc[1], 0, 0, un[0], un[1], un[2], un[3]]
}

/// The common session key from the card master key and `R`: byte 2 of
/// `R` set to `F0` for the left half and `0F` for the right, each
/// encrypted under the master key; odd parity forced.
pub fn session_key(mk: &TdesKey, r: [u8; 8]) -> Result<TdesKey, CryptoError> {
    mk.require(DesKeyLength::Double)?;
    let mut out = Secret::<16>::zeroed();
    out.expose_mut()[..8].copy_from_slice(&r);
    out.expose_mut()[8..].copy_from_slice(&r);
    out.expose_mut()[2] = 0xF0;
    out.expose_mut()[10] = 0x0F;
    mk.encrypt_ecb(out.expose_mut())?;
    Ok(TdesKey::from_bytes(out.expose())?.with_odd_parity())
}

/// The application cryptogram (ARQC, TC or AAC) over the transaction data
/// under the session key: algorithm 3, padding as the scheme says (method 2
/// for EMV's common core; method 1 for Visa CVN 10).
pub fn arqc(sk: &TdesKey, data: &[u8], padding: Padding) -> Result<[u8; 8], CryptoError> {
    mac::alg3(sk, data, padding)
}

/// Checks an ARQC in constant time.
pub fn verify_arqc(
    sk: &TdesKey,
    data: &[u8],
    padding: Padding,
    given: &[u8; 8],
) -> Result<bool, CryptoError> {
    Ok(ct_eq(&arqc(sk, data, padding)?, given))
}

/// ARPC method 1: (ARQC XOR (ARC then six zero bytes)) encrypted under the
/// session key.
pub fn arpc_method1(sk: &TdesKey, arqc: &[u8; 8], arc: [u8; 2]) -> Result<[u8; 8], CryptoError> {
    sk.require(DesKeyLength::Double)?;
    let mut b = *arqc;
    b[0] ^= arc[0];
    b[1] ^= arc[1];
    sk.encrypt_block(&mut b);
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_psn_block_takes_the_rightmost_16_digits() {
        let y = pan_psn_block("5413330089010012", 1).unwrap();
        assert_eq!(hex::encode_upper(y), "1333008901001201");
        let short = pan_psn_block("4761739001010119", 0).unwrap();
        assert_eq!(hex::encode_upper(short), "6173900101011900");
        assert!(pan_psn_block("4761739001010119", 100).is_err());
    }

    #[test]
    fn published_master_and_session_key_check_values() {
        // The figures pyemv's documentation publishes: issuer master key
        // 0123456789ABCDEFFEDCBA9876543210, PAN 1234567890123456, PSN 01
        // give a card master key with check value 0239..; R
        // ABCDEF1234567890 gives a session key with check value F088...
        let imk = TdesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let mk = icc_master_key(&imk, "1234567890123456", 1).unwrap();
        assert_eq!(&mk.kcv_hex()[..4], "0239");
        let r = [0xAB, 0xCD, 0xEF, 0x12, 0x34, 0x56, 0x78, 0x90];
        let sk = session_key(&mk, r).unwrap();
        assert_eq!(&sk.kcv_hex()[..4], "F088");
    }

    #[test]
    fn session_key_and_arpc_are_consistent() {
        let imk = TdesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let mk = icc_master_key(&imk, "5413330089010012", 1).unwrap();
        assert!(mk.has_odd_parity());
        let sk = session_key(&mk, r_from_atc([0x00, 0x2A])).unwrap();
        let data = [0x12u8; 29];
        let ac = arqc(&sk, &data, Padding::Method2).unwrap();
        assert!(verify_arqc(&sk, &data, Padding::Method2, &ac).unwrap());
        let mut other = ac;
        other[7] ^= 1;
        assert!(!verify_arqc(&sk, &data, Padding::Method2, &other).unwrap());
        // Another ATC gives another session key.
        let sk2 = session_key(&mk, r_from_atc([0x00, 0x2B])).unwrap();
        assert_ne!(sk.as_bytes(), sk2.as_bytes());
        let arpc = arpc_method1(&sk, &ac, *b"00").unwrap();
        let mut back = arpc;
        sk.decrypt_block(&mut back);
        assert_eq!(back[0] ^ ac[0], b'0');
        assert_eq!(back[2..], ac[2..]);
    }
}
