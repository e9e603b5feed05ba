//! DES and TDES (EDE2: K1 K2 K1, EDE3: K1 K2 K3) written from FIPS 46-3,
//! table driven, for speed.
//!
//! Why our own: the simulator (`hsm-sim`) and the test peers (the DUKPT
//! terminals of `load`, `issuer-sim`) spend most of their CPU in DES: a
//! DUKPT derivation makes a new key schedule for every step and a retail
//! MAC runs a block per 8 bytes of message. The `des` crate is a faithful
//! but slow implementation (on the bench machine 230 ns a block, 86-130 ns
//! a schedule); this one combines each S-box with P in a lookup table and
//! makes a schedule from lookup tables too (89 ns a block, 49 ns a
//! schedule: `benches/des.rs`, about OpenSSL's speed). The switch itself
//! never does PIN cryptography: it asks an HSM.
//!
//! Not constant time: the S-box and key schedule lookups index memory by
//! key- and data-dependent values, so cache timing can leak key bits to
//! code sharing the machine. Acceptable for a simulator and test peers
//! whose keys are test keys; not for a production HSM.
//!
//! Round keys are key material: a [`Schedule`] is zeroized when dropped.
//! The tables and their layouts are in `tables.rs`.

mod tables;
#[cfg(test)]
mod tests;

use zeroize::Zeroize;

use tables::{PC1_BY_NIBBLE, PC2_BY_PIECE, ROTATED_BACK, SP};

/// The 16 round keys of one DES key, in the layout of `tables.rs`.
pub struct Schedule([u64; 16]);

impl Drop for Schedule {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Schedule {
    /// The schedule of an 8-byte key (its parity bits are ignored). Its
    /// locals are not wiped: the compiler copies registers to the stack
    /// as it likes, so only the schedule kept is (on drop).
    pub fn new(key: &[u8; 8]) -> Schedule {
        let k = u64::from_be_bytes(*key);
        let mut cd = 0u64;
        for (n, table) in PC1_BY_NIBBLE.iter().enumerate() {
            cd |= table[((k >> (60 - 4 * n)) & 0xF) as usize];
        }
        // C and D each twice over, side by side: a rotation left by s is
        // then one shift right by 28 - s, and the rounds do not depend on
        // one another.
        const HALF: u64 = 0x0FFF_FFFF;
        let (c, d) = ((cd >> 28) & HALF, cd & HALF);
        let (c2, d2) = (c | (c << 28), d | (d << 28));
        let mut keys = [0u64; 16];
        for (key, &back) in keys.iter_mut().zip(&ROTATED_BACK) {
            *key = pc2((c2 >> back & HALF) as u32, (d2 >> back & HALF) as u32);
        }
        Schedule(keys)
    }

    /// Encrypts one block (as a big-endian `u64`).
    pub fn encrypt(&self, block: u64) -> u64 {
        let (l, r) = ip(block);
        let (l, r) = self.rounds::<false>(l, r);
        fp(l, r)
    }

    /// Decrypts one block (as a big-endian `u64`).
    pub fn decrypt(&self, block: u64) -> u64 {
        let (l, r) = ip(block);
        let (l, r) = self.rounds::<true>(l, r);
        fp(l, r)
    }

    /// The 16 rounds on halves already through IP (rotated layout), the
    /// halves swapped at the end as DES does before FP: so the output of
    /// one run is the input of the next, as TDES chains them.
    #[inline(always)]
    fn rounds<const DECRYPT: bool>(&self, mut l: u32, mut r: u32) -> (u32, u32) {
        for i in 0..8 {
            let (a, b) = if DECRYPT {
                (15 - 2 * i, 14 - 2 * i)
            } else {
                (2 * i, 2 * i + 1)
            };
            l ^= f(r, self.0[a]);
            r ^= f(l, self.0[b]);
        }
        (r, l)
    }
}

/// PC-2 of the rotated C and D: one lookup per 7 bits.
#[inline(always)]
fn pc2(c: u32, d: u32) -> u64 {
    let t = &PC2_BY_PIECE;
    let piece = |x: u32, at: u32| (x >> at) as usize & 0x7F;
    t[0][piece(c, 21)]
        | t[1][piece(c, 14)]
        | t[2][piece(c, 7)]
        | t[3][piece(c, 0)]
        | t[4][piece(d, 21)]
        | t[5][piece(d, 14)]
        | t[6][piece(d, 7)]
        | t[7][piece(d, 0)]
}

/// The round function on a rotated half: expansion, round key, the
/// S-boxes and P, eight lookups.
#[inline(always)]
fn f(r: u32, key: u64) -> u32 {
    let odd = r ^ key as u32;
    let even = r.rotate_right(4) ^ (key >> 32) as u32;
    let six = |x: u32, at: u32| (x >> at) as usize & 0x3F;
    // The eight outputs have disjoint bits (P sends each S-box's four bits
    // to its own places), so OR, + and XOR agree on them. The rounds are
    // a chain of latencies, so combine them as a tree; mixing the
    // operators stops the compiler making the tree a chain again.
    let a = SP[0][six(even, 24)] | SP[2][six(even, 16)];
    let b = SP[4][six(even, 8)] | SP[6][six(even, 0)];
    let c = SP[1][six(odd, 24)] | SP[3][six(odd, 16)];
    let d = SP[5][six(odd, 8)] | SP[7][six(odd, 0)];
    (a + b) | (c + d)
}

/// Exchanges the bits of `a` under `mask << shift` with those of `b`
/// under `mask`: the step IP and FP are made of.
#[inline(always)]
fn exchange(a: &mut u32, b: &mut u32, shift: u32, mask: u32) {
    let t = ((*a >> shift) ^ *b) & mask;
    *b ^= t;
    *a ^= t << shift;
}

/// The initial permutation as five exchanges (a transpose of the block's
/// 8 x 8 bit matrix), its halves rotated left one bit for the rounds.
#[inline(always)]
fn ip(block: u64) -> (u32, u32) {
    let (mut l, mut r) = ((block >> 32) as u32, block as u32);
    exchange(&mut l, &mut r, 4, 0x0F0F_0F0F);
    exchange(&mut l, &mut r, 16, 0x0000_FFFF);
    exchange(&mut r, &mut l, 2, 0x3333_3333);
    exchange(&mut r, &mut l, 8, 0x00FF_00FF);
    exchange(&mut l, &mut r, 1, 0x5555_5555);
    (l.rotate_left(1), r.rotate_left(1))
}

/// The final permutation, IP's inverse: the same exchanges in reverse.
#[inline(always)]
fn fp(l: u32, r: u32) -> u64 {
    let (mut l, mut r) = (l.rotate_right(1), r.rotate_right(1));
    exchange(&mut l, &mut r, 1, 0x5555_5555);
    exchange(&mut r, &mut l, 8, 0x00FF_00FF);
    exchange(&mut r, &mut l, 2, 0x3333_3333);
    exchange(&mut l, &mut r, 16, 0x0000_FFFF);
    exchange(&mut l, &mut r, 4, 0x0F0F_0F0F);
    (u64::from(l) << 32) | u64::from(r)
}

/// A DES-family cipher, its schedules made: single DES, or TDES with
/// two keys (K1 K2 K1) or three.
pub enum DesCipher {
    Single(Schedule),
    Ede2(Schedule, Schedule),
    Ede3(Schedule, Schedule, Schedule),
}

impl DesCipher {
    /// Single DES under `k`.
    pub fn single(k: &[u8; 8]) -> DesCipher {
        DesCipher::Single(Schedule::new(k))
    }

    /// TDES K1 K2 K1.
    pub fn ede2(k1: &[u8; 8], k2: &[u8; 8]) -> DesCipher {
        DesCipher::Ede2(Schedule::new(k1), Schedule::new(k2))
    }

    /// TDES K1 K2 K3.
    pub fn ede3(k1: &[u8; 8], k2: &[u8; 8], k3: &[u8; 8]) -> DesCipher {
        DesCipher::Ede3(Schedule::new(k1), Schedule::new(k2), Schedule::new(k3))
    }

    /// Encrypts one block (big-endian `u64`). TDES runs IP and FP once:
    /// between the three passes they cancel.
    pub fn encrypt(&self, block: u64) -> u64 {
        let (l, r) = ip(block);
        let (l, r) = self.encrypt_halves(l, r);
        fp(l, r)
    }

    /// Decrypts one block (big-endian `u64`).
    pub fn decrypt(&self, block: u64) -> u64 {
        let (l, r) = ip(block);
        let (l, r) = match self {
            DesCipher::Single(k) => k.rounds::<true>(l, r),
            DesCipher::Ede2(k1, k2) => ede::<true>(k1, k2, k1, l, r),
            DesCipher::Ede3(k1, k2, k3) => ede::<true>(k1, k2, k3, l, r),
        };
        fp(l, r)
    }

    /// The last block of the CBC encryption of `blocks` from `iv`: a
    /// CBC-MAC. The chain stays in IP's domain: IP is a bit permutation,
    /// so it commutes with the XOR, and each block's FP and the next one's
    /// IP cancel (one IP a block instead of an IP and an FP).
    pub fn cbc_last(&self, iv: u64, blocks: impl Iterator<Item = u64>) -> u64 {
        let (mut l, mut r) = ip(iv);
        for m in blocks {
            let (ml, mr) = ip(m);
            (l, r) = self.encrypt_halves(l ^ ml, r ^ mr);
        }
        fp(l, r)
    }

    #[inline(always)]
    fn encrypt_halves(&self, l: u32, r: u32) -> (u32, u32) {
        match self {
            DesCipher::Single(k) => k.rounds::<false>(l, r),
            DesCipher::Ede2(k1, k2) => ede::<false>(k1, k2, k1, l, r),
            DesCipher::Ede3(k1, k2, k3) => ede::<false>(k1, k2, k3, l, r),
        }
    }

    /// Encrypts an 8-byte block in place.
    pub fn encrypt_block(&self, block: &mut [u8; 8]) {
        *block = self.encrypt(u64::from_be_bytes(*block)).to_be_bytes();
    }

    /// Decrypts an 8-byte block in place.
    pub fn decrypt_block(&self, block: &mut [u8; 8]) {
        *block = self.decrypt(u64::from_be_bytes(*block)).to_be_bytes();
    }
}

/// Encrypt under `k1`, decrypt under `k2`, encrypt under `k3`; or, to
/// decrypt, the inverse: decrypt under `k3`, encrypt under `k2`, decrypt
/// under `k1`.
#[inline(always)]
fn ede<const DECRYPT: bool>(
    k1: &Schedule,
    k2: &Schedule,
    k3: &Schedule,
    l: u32,
    r: u32,
) -> (u32, u32) {
    if DECRYPT {
        let (l, r) = k3.rounds::<true>(l, r);
        let (l, r) = k2.rounds::<false>(l, r);
        k1.rounds::<true>(l, r)
    } else {
        let (l, r) = k1.rounds::<false>(l, r);
        let (l, r) = k2.rounds::<true>(l, r);
        k3.rounds::<false>(l, r)
    }
}
