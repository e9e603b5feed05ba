//! A chip card's cryptogram for stand-in (issue 21): from DE55 the ARQC
//! (9F26), the ATC (9F36), the unpredictable number (9F37) and the data
//! the card covered, assembled as EMV Book 2 recommends (the minimum set,
//! in order: 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36); from DE2 and DE23
//! the PAN / PAN sequence number block the HSM derives the card's key
//! from. The reply carries the ARPC in 91 (method 1: ARPC, then the ARC).
//! Pure: the cryptography is the HSM's.

use bytes::{Bytes, BytesMut};

use crate::hsm::command::KeyCryptogram;
use crate::message::Message;
use crate::message::tlv;

/// The EMV scheme the issuer's cards follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChipScheme {
    Mchip,
    Vsdc,
}

/// An issuer's MK-AC, for stand-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipKey {
    pub key: KeyCryptogram,
    pub scheme: ChipScheme,
}

/// The tags a cryptogram covers, in the order they are concatenated.
pub const COVERED_TAGS: [u32; 10] = [
    0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37, 0x82, 0x9F36,
];

/// What the HSM needs to check one ARQC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cryptogram {
    pub pan_psn: [u8; 8],
    pub atc: [u8; 2],
    pub un: [u8; 4],
    pub data: Bytes,
    pub arqc: [u8; 8],
}

/// Whether `request` is a chip transaction: it carries chip data (DE55),
/// readable or not (unreadable chip data is not a card without chip).
pub fn is_chip(request: &Message) -> bool {
    request.has(55)
}

/// The cryptogram of `request`, or `None` when DE55 lacks what it needs
/// (such a chip transaction is not approved in stand-in).
pub fn cryptogram(request: &Message) -> Option<Cryptogram> {
    let objects = tlv::parse(request.value(55)?).ok()?;
    let get = |tag: u32| objects.iter().find(|o| o.tag == tag).map(|o| o.value);
    let mut data = Vec::with_capacity(40);
    for tag in COVERED_TAGS {
        data.extend_from_slice(get(tag)?);
    }
    Some(Cryptogram {
        pan_psn: pan_psn_block(request.value(2)?, request.value(23))?,
        atc: get(0x9F36)?.try_into().ok()?,
        un: get(0x9F37)?.try_into().ok()?,
        data: Bytes::from(data),
        arqc: get(0x9F26)?.try_into().ok()?,
    })
}

/// EMV option A: the PAN's digits then the PAN sequence number's two
/// (00 without DE23), the rightmost 16, packed.
pub fn pan_psn_block(pan: &[u8], psn: Option<&[u8]>) -> Option<[u8; 8]> {
    let psn = match psn {
        None => b"00".as_slice(),
        Some(p) if p.len() >= 2 => &p[p.len() - 2..],
        Some(_) => return None,
    };
    if !pan.iter().chain(psn).all(u8::is_ascii_digit) || pan.len() < 12 || pan.len() > 19 {
        return None;
    }
    let digits: Vec<u8> = pan.iter().chain(psn).map(|d| d - b'0').collect();
    let mut padded = [0u8; 16];
    let take = digits.len().min(16);
    padded[16 - take..].copy_from_slice(&digits[digits.len() - take..]);
    let mut out = [0u8; 8];
    for (i, pair) in padded.chunks(2).enumerate() {
        out[i] = (pair[0] << 4) | pair[1];
    }
    Some(out)
}

/// DE55 for the reply: 91, the issuer authentication data (ARPC and ARC).
pub fn issuer_authentication(arpc: [u8; 8], arc: [u8; 2]) -> Bytes {
    let mut value = [0u8; 10];
    value[..8].copy_from_slice(&arpc);
    value[8..].copy_from_slice(&arc);
    let mut out = BytesMut::new();
    tlv::write(0x91, &value, &mut out);
    out.freeze()
}

/// Test chip data: an ARQC (01..08), ATC 002A, UN 0A0B0C0D and every
/// covered tag, as DE55.
#[cfg(test)]
pub(crate) fn sample_chip_data() -> Bytes {
    let mut de55 = BytesMut::new();
    let objects: [(u32, &[u8]); 11] = [
        (0x9F26, &[1, 2, 3, 4, 5, 6, 7, 8]),
        (0x9F02, &[0, 0, 0, 0, 1, 0]),
        (0x9F03, &[0; 6]),
        (0x9F1A, &[0x08, 0x26]),
        (0x95, &[0; 5]),
        (0x5F2A, &[0x09, 0x78]),
        (0x9A, &[0x26, 0x12, 0x02]),
        (0x9C, &[0]),
        (0x9F37, &[0xA, 0xB, 0xC, 0xD]),
        (0x82, &[0x58, 0]),
        (0x9F36, &[0, 0x2A]),
    ];
    for (tag, v) in objects {
        tlv::write(tag, v, &mut de55);
    }
    de55.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Mti;

    fn chip_request() -> Message {
        let de55 = sample_chip_data();
        let mut m = Message::new(Mti::from_digits(*b"0100").unwrap());
        m.set(2, "5413330089600010").unwrap();
        m.set(23, "001").unwrap();
        m.set(55, de55).unwrap();
        m
    }

    #[test]
    fn the_cryptogram_is_read_from_de55_in_the_covered_order() {
        let c = cryptogram(&chip_request()).expect("complete");
        assert_eq!(c.arqc, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(c.atc, [0, 0x2A]);
        assert_eq!(c.un, [0xA, 0xB, 0xC, 0xD]);
        assert_eq!(c.data.len(), 6 + 6 + 2 + 5 + 2 + 3 + 1 + 4 + 2 + 2);
        assert_eq!(&c.data[..6], &[0, 0, 0, 0, 1, 0]);
        assert_eq!(&c.data[c.data.len() - 2..], &[0, 0x2A]);
        assert_eq!(c.pan_psn, [0x13, 0x33, 0x00, 0x89, 0x60, 0x00, 0x10, 0x01]);
        assert!(is_chip(&chip_request()));
    }

    #[test]
    fn incomplete_chip_data_gives_no_cryptogram() {
        let mut m = chip_request();
        let de55 = m.value(55).unwrap().to_vec();
        m.set(55, de55[..de55.len() - 5].to_vec()).unwrap();
        assert!(cryptogram(&m).is_none());
        let mut plain = chip_request();
        plain.remove(55);
        assert!(!is_chip(&plain) && cryptogram(&plain).is_none());
    }

    #[test]
    fn pan_psn_blocks_and_the_reply() {
        assert_eq!(
            pan_psn_block(b"4012345678909", None).unwrap(),
            [4, 1, 0x23, 0x45, 0x67, 0x89, 9, 0]
        );
        assert_eq!(pan_psn_block(b"40123456789A", None), None);
        let de55 = issuer_authentication([9; 8], *b"00");
        let objects = tlv::parse(&de55).unwrap();
        assert_eq!(objects[0].tag, 0x91);
        assert_eq!(objects[0].value, &[9, 9, 9, 9, 9, 9, 9, 9, b'0', b'0']);
    }
}
