//! The fast cipher against the standard's definition (a bit-by-bit DES
//! written from the same tables), published vectors, and the `des` crate.

use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use proptest::prelude::*;

use super::tables::{E, IP, P, PC1, PC2, S, SHIFTS, SP};
use super::*;
use crate::hsm::soft::TdesKey;

/// `table` applied bit by bit: output bit i is bit `table[i]` (from 1,
/// the leftmost) of the `width`-bit `input`.
fn permute(input: u64, width: u32, table: &[u8]) -> u64 {
    table.iter().fold(0, |acc, &src| {
        (acc << 1) | ((input >> (width - u32::from(src))) & 1)
    })
}

fn inverse(table: &[u8; 64]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, &src) in table.iter().enumerate() {
        out[usize::from(src) - 1] = i as u8 + 1;
    }
    out
}

/// DES as FIPS 46-3 defines it, one bit at a time.
fn reference(key: u64, block: u64, decrypt: bool) -> u64 {
    let cd = permute(key, 64, &PC1);
    let (mut c, mut d) = (cd >> 28, cd & 0x0FFF_FFFF);
    let mut keys = [0u64; 16];
    for (k, &s) in keys.iter_mut().zip(&SHIFTS) {
        c = ((c << s) | (c >> (28 - s))) & 0x0FFF_FFFF;
        d = ((d << s) | (d >> (28 - s))) & 0x0FFF_FFFF;
        *k = permute((c << 28) | d, 56, &PC2);
    }
    let x = permute(block, 64, &IP);
    let (mut l, mut r) = (x >> 32, x & 0xFFFF_FFFF);
    for i in 0..16 {
        let k = keys[if decrypt { 15 - i } else { i }];
        let e = permute(r, 32, &E) ^ k;
        let mut s = 0u64;
        for (b, sbox) in S.iter().enumerate() {
            let v = ((e >> (42 - 6 * b)) & 0x3F) as usize;
            let (row, col) = (((v >> 4) & 2) | (v & 1), (v >> 1) & 0xF);
            s = (s << 4) | u64::from(sbox[row * 16 + col]);
        }
        (l, r) = (r, l ^ permute(s, 32, &P));
    }
    permute((r << 32) | l, 64, &inverse(&IP))
}

fn hex8(s: &str) -> [u8; 8] {
    let mut b = [0u8; 8];
    hex::decode_to_slice(s, &mut b).unwrap();
    b
}

#[test]
fn the_tables_are_as_the_standard_shapes_them() {
    // A typo in a table would break one of these.
    for sbox in &S {
        for row in sbox.chunks_exact(16) {
            let mut seen = [false; 16];
            row.iter().for_each(|&v| seen[usize::from(v)] = true);
            assert!(seen.iter().all(|&s| s), "each S-box row is a permutation");
        }
    }
    let distinct = |t: &[u8], max: u8| {
        let mut v = t.to_vec();
        v.sort_unstable();
        v.dedup();
        v.len() == t.len() && v.iter().all(|&x| (1..=max).contains(&x))
    };
    assert!(distinct(&IP, 64) && distinct(&P, 32) && distinct(&PC2, 56));
    assert!(
        distinct(&PC1, 64) && PC1.iter().all(|b| b % 8 != 0),
        "no parity bit"
    );
    assert_eq!(SHIFTS.iter().map(|&s| u32::from(s)).sum::<u32>(), 28);
}

#[test]
fn the_sp_tables_outputs_have_disjoint_bits() {
    // The round function adds and ORs them as if XORing: it relies on it.
    let bits: Vec<u32> = SP.iter().map(|t| t.iter().fold(0, |a, &v| a | v)).collect();
    for (i, a) in bits.iter().enumerate() {
        assert_eq!(a.count_ones(), 4, "S-box {} sets 4 bits", i + 1);
        for b in &bits[i + 1..] {
            assert_eq!(a & b, 0);
        }
    }
}

#[test]
fn ip_and_fp_are_the_standards_permutations() {
    // Bit permutations are linear: the 64 single bits show all of them.
    let fp_table = inverse(&IP);
    for k in 0..64 {
        let x = 1u64 << k;
        let (l, r) = ip(x);
        let unrotated = (u64::from(l.rotate_right(1)) << 32) | u64::from(r.rotate_right(1));
        assert_eq!(unrotated, permute(x, 64, &IP), "IP of bit {k}");
        let (l, r) = ((x >> 32) as u32, x as u32);
        assert_eq!(
            fp(l.rotate_left(1), r.rotate_left(1)),
            permute(x, 64, &fp_table),
            "FP of bit {k}"
        );
    }
    let x = 0x0123_4567_89AB_CDEF;
    let (l, r) = ip(x);
    assert_eq!(fp(l, r), x);
}

#[test]
fn published_single_des_vectors() {
    // The worked example of the DES literature, and the first entries of
    // NIST SP 800-17's variable-plaintext and variable-key tables.
    for (key, plain, cipher) in [
        ("133457799BBCDFF1", "0123456789ABCDEF", "85E813540F0AB405"),
        ("0101010101010101", "8000000000000000", "95F8A5E5DD31D900"),
        ("8001010101010101", "0000000000000000", "95A8D72813DAA94D"),
        ("0123456789ABCDEF", "4E6F772069732074", "3FA40E8A984D4815"),
    ] {
        let c = DesCipher::single(&hex8(key));
        let mut b = hex8(plain);
        c.encrypt_block(&mut b);
        assert_eq!(hex::encode_upper(b), cipher, "key {key}");
        c.decrypt_block(&mut b);
        assert_eq!(hex::encode_upper(b), plain);
    }
}

#[test]
fn published_tdes_vector() {
    // NIST SP 800-67 (rev. 1) appendix B: three keys, ECB, three blocks.
    let c = DesCipher::ede3(
        &hex8("0123456789ABCDEF"),
        &hex8("23456789ABCDEF01"),
        &hex8("456789ABCDEF0123"),
    );
    let want = ["A826FD8CE53B855F", "CCE21C8112256FE6", "68D5C05DD9B6B900"];
    for (chunk, want) in b"The qufck brown fox jump".chunks_exact(8).zip(want) {
        let mut b: [u8; 8] = chunk.try_into().unwrap();
        c.encrypt_block(&mut b);
        assert_eq!(hex::encode_upper(b), want);
        c.decrypt_block(&mut b);
        assert_eq!(&b, chunk);
    }
}

#[test]
fn ede2_is_ede3_with_k3_k1() {
    let (k1, k2) = (hex8("0123456789ABCDEF"), hex8("FEDCBA9876543210"));
    let x = 0x4E6F_7720_6973_2074;
    let two = DesCipher::ede2(&k1, &k2);
    let three = DesCipher::ede3(&k1, &k2, &k1);
    assert_eq!(two.encrypt(x), three.encrypt(x));
    assert_eq!(two.decrypt(x), three.decrypt(x));
}

/// The `des` crate's answer for `key` (8, 16 or 24 bytes) on `block`.
fn des_crate(key: &[u8], block: [u8; 8], decrypt: bool) -> [u8; 8] {
    fn run<C: BlockEncrypt + BlockDecrypt + KeyInit>(key: &[u8], b: [u8; 8], d: bool) -> [u8; 8] {
        let c = C::new_from_slice(key).unwrap();
        let mut b = b;
        let g = GenericArray::from_mut_slice(&mut b);
        if d {
            c.decrypt_block(g)
        } else {
            c.encrypt_block(g)
        }
        b
    }
    match key.len() {
        8 => run::<des::Des>(key, block, decrypt),
        16 => run::<des::TdesEde2>(key, block, decrypt),
        _ => run::<des::TdesEde3>(key, block, decrypt),
    }
}

fn any_key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(8usize), Just(16), Just(24)]
        .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn single_des_is_the_standards(key in any::<u64>(), block in any::<u64>()) {
        let s = Schedule::new(&key.to_be_bytes());
        prop_assert_eq!(s.encrypt(block), reference(key, block, false));
        prop_assert_eq!(s.decrypt(block), reference(key, block, true));
    }

    #[test]
    fn agrees_with_the_des_crate(key in any_key(), block in any::<[u8; 8]>()) {
        let c = TdesKey::from_bytes(&key).unwrap().cipher();
        let mut enc = block;
        c.encrypt_block(&mut enc);
        prop_assert_eq!(enc, des_crate(&key, block, false));
        let mut dec = block;
        c.decrypt_block(&mut dec);
        prop_assert_eq!(dec, des_crate(&key, block, true));
        c.decrypt_block(&mut enc);
        prop_assert_eq!(enc, block);
    }
}

#[test]
fn cbc_last_is_the_chain_of_single_blocks() {
    let c = DesCipher::ede2(&hex8("0123456789ABCDEF"), &hex8("FEDCBA9876543210"));
    let blocks = [0x4E6F_7720_6973_2074u64, 0, u64::MAX, 0x0123_4567_89AB_CDEF];
    let mut chain = 0x1122_3344_5566_7788u64;
    for &m in &blocks {
        chain = c.encrypt(chain ^ m);
    }
    assert_eq!(c.cbc_last(0x1122_3344_5566_7788, blocks.into_iter()), chain);
    assert_eq!(c.cbc_last(7, std::iter::empty()), 7, "no blocks: the IV");
}
