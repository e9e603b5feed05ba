//! The tables of FIPS 46-3 as the standard prints them (bits numbered from
//! 1, the leftmost), and the lookup tables the fast cipher uses, computed
//! from them at compile time so that nothing but the standard's own
//! numbers is typed in.
//!
//! Layouts the cipher relies on (see `super` for why):
//! - a half block is kept rotated left by one bit, so that the six bits
//!   the expansion E gives S2, S4, S6 and S8 sit at bits 24..29, 16..21,
//!   8..13 and 0..5 of it, and those of S1, S3, S5 and S7 at the same
//!   places once it is rotated right by four more;
//! - a round key is a `u64`: its 6-bit pieces for S1, S3, S5, S7 at those
//!   places in the high word, for S2, S4, S6, S8 in the low word.

/// The initial permutation: output bit i is input bit `IP[i]` (the
/// cipher does it with bit exchanges; the tests check them against this).
#[cfg(test)]
pub(crate) const IP: [u8; 64] = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, //
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8, //
    57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, //
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];

/// The expansion of a half block to 48 bits (what the rotations do).
#[cfg(test)]
pub(crate) const E: [u8; 48] = [
    32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17, //
    16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
];

/// The permutation of the S-boxes' 32 output bits.
pub(crate) const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, //
    2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
];

/// The eight S-boxes, each 4 rows of 16 (row from the outer input bits,
/// column from the inner four).
pub(crate) const S: [[u8; 64]; 8] = [
    [
        14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, //
        0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8, //
        4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, //
        15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
    ],
    [
        15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, //
        3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5, //
        0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, //
        13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
    ],
    [
        10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, //
        13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1, //
        13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, //
        1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
    ],
    [
        7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, //
        13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9, //
        10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, //
        3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
    ],
    [
        2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, //
        14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6, //
        4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, //
        11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
    ],
    [
        12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, //
        10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8, //
        9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, //
        4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
    ],
    [
        4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, //
        13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6, //
        1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, //
        6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
    ],
    [
        13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, //
        1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2, //
        7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, //
        2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
    ],
];

/// Permuted choice 1: the key's 56 bits (parity bits dropped) as C then D.
pub(crate) const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, //
    10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36, //
    63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, //
    14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];

/// Permuted choice 2: a round key's 48 bits from C and D (numbered 1..56).
pub(crate) const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, //
    16, 7, 27, 20, 13, 2, 41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, //
    44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];

/// How far C and D rotate left before each round.
pub(crate) const SHIFTS: [u8; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

/// 28 less how far C and D have rotated by each round (from [`SHIFTS`]):
/// the shift right that rotates a doubled C or D into place.
pub(crate) const ROTATED_BACK: [u32; 16] = rotated_back();

const fn rotated_back() -> [u32; 16] {
    let mut out = [0u32; 16];
    let (mut i, mut total) = (0, 0);
    while i < 16 {
        total += SHIFTS[i] as u32;
        out[i] = 28 - total;
        i += 1;
    }
    out
}

/// Each S-box followed by P: `SP[i][v]` is S-box i+1's output for the six
/// bits `v`, placed and permuted by P, rotated left one bit (the rotated
/// half-block layout). One lookup per S-box and round.
pub(crate) static SP: [[u32; 64]; 8] = sp_tables();

/// PC-1 by key nibble: `PC1_BY_NIBBLE[n][v]` is what nibble n (key bits
/// 4n+1..4n+4) holding `v` contributes to C (bits 28..55) and D (0..27).
pub(crate) static PC1_BY_NIBBLE: [[u64; 16]; 16] = pc1_tables();

/// PC-2 by 7-bit piece of C and D: `PC2_BY_PIECE[m][v]` is what bits
/// 7m+1..7m+7 of C||D holding `v` contribute to a round key (layout above).
pub(crate) static PC2_BY_PIECE: [[u64; 128]; 8] = pc2_tables();

/// Where round-key bit `j` (0-based, FIPS order) goes in the `u64` layout:
/// piece g = j / 6 of S-box g+1, even-numbered pieces (0, 2, 4, 6) in the
/// high word, the piece's top bit first.
pub(crate) const fn round_key_bit(j: usize) -> u32 {
    let (g, p) = (j / 6, j % 6);
    let word = if g % 2 == 0 { 32 } else { 0 };
    (word + 24 - 8 * (g / 2) + 5 - p) as u32
}

const fn sp_tables() -> [[u32; 64]; 8] {
    let mut out = [[0u32; 64]; 8];
    let mut i = 0;
    while i < 8 {
        let mut v = 0;
        while v < 64 {
            let row = ((v >> 4) & 2) | (v & 1);
            let col = (v >> 1) & 0xF;
            let s = S[i][row * 16 + col] as u32;
            // The S-box's four bits at its place (bits 4i+1..4i+4), then P.
            let before = s << (28 - 4 * i);
            let mut after = 0u32;
            let mut j = 0;
            while j < 32 {
                let bit = (before >> (32 - P[j] as u32)) & 1;
                after |= bit << (31 - j);
                j += 1;
            }
            out[i][v] = after.rotate_left(1);
            v += 1;
        }
        i += 1;
    }
    out
}

const fn pc1_tables() -> [[u64; 16]; 16] {
    let mut out = [[0u64; 16]; 16];
    let mut j = 0;
    while j < 56 {
        let src = PC1[j] as usize - 1;
        let (n, within) = (src / 4, src % 4);
        let mut v = 0;
        while v < 16 {
            if (v >> (3 - within)) & 1 == 1 {
                out[n][v] |= 1 << (55 - j);
            }
            v += 1;
        }
        j += 1;
    }
    out
}

const fn pc2_tables() -> [[u64; 128]; 8] {
    let mut out = [[0u64; 128]; 8];
    let mut j = 0;
    while j < 48 {
        let src = PC2[j] as usize - 1;
        let (m, within) = (src / 7, src % 7);
        let mut v = 0;
        while v < 128 {
            if (v >> (6 - within)) & 1 == 1 {
                out[m][v] |= 1 << round_key_bit(j);
            }
            v += 1;
        }
        j += 1;
    }
    out
}
