//! EBCDIC code page 500 (the code page of Mastercard IPM files) as two
//! lookup tables. cp500 is a permutation of Latin-1, so every byte maps back.

use crate::message::spec::Class;

/// Converts EBCDIC bytes to their Latin-1 equivalent in place.
pub fn to_latin1(bytes: &mut [u8]) {
    for b in bytes {
        *b = CP500_TO_LATIN1[*b as usize];
    }
}

/// Converts EBCDIC bytes into `dst`, as many as both hold.
#[inline]
pub fn to_latin1_into(bytes: &[u8], dst: &mut [u8]) {
    for (d, &b) in dst.iter_mut().zip(bytes) {
        *d = CP500_TO_LATIN1[usize::from(b)];
    }
}

/// The parser's transcoding: `src[..len]` into `dst[..len]`, 16 bytes at a
/// time where the build targets SSSE3 (a byte shuffle per step; see
/// `.cargo/config.toml`). Both slices may run past `len` (the rest of the
/// frame, the rest of the buffer): a value shorter than 16 bytes is then
/// converted in one step that also writes `dst[len..16]`, bytes the caller
/// treats as scratch. `None` (nothing written) when either slice is
/// shorter than `len`; else what the conversion saw of the value's bytes,
/// which spares the parser the class checks it proves.
#[inline]
pub(crate) fn to_latin1_front(src: &[u8], dst: &mut [u8], len: usize) -> Option<Seen> {
    to_latin1_kept(src, dst, len, || u64::MAX)
}

/// `to_latin1_front` for a run of values of several classes (a plan's
/// block): of step `k`'s faults, only those under `keep[k]` count (all of
/// them past the end of `keep`), so that each proof covers the lanes of the
/// values it is for. `keep` comes from `lanes_kept`.
#[inline]
pub(crate) fn to_latin1_block(
    src: &[u8],
    dst: &mut [u8],
    len: usize,
    keep: &[u64],
) -> Option<Seen> {
    let mut masks = keep.iter();
    to_latin1_kept(src, dst, len, move || {
        masks.next().copied().unwrap_or(u64::MAX)
    })
}

/// Both kinds of transcoding, one instance each, kept out of line: the
/// block's instance inlined into the parser made the parse slower.
#[inline(never)]
fn to_latin1_kept(
    src: &[u8],
    dst: &mut [u8],
    len: usize,
    keep: impl FnMut() -> u64,
) -> Option<Seen> {
    if src.len() < len || dst.len() < len {
        return None;
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    if len >= 16 || (src.len() >= 16 && dst.len() >= 16) {
        // SAFETY: the only requirement of a `target_feature` function is
        // that the CPU has the feature; this is compiled only for targets
        // that have it (the `cfg` above).
        #[allow(unsafe_code)]
        return Some(unsafe { ssse3::to_latin1_front(src, dst, len, keep) });
    }
    let _ = keep; // Without SSSE3, nothing is proven.
    to_latin1_into(&src[..len], &mut dst[..len]);
    Some(Seen::NOTHING)
}

/// Where the transcoder's 16-byte steps start in a value of `len` bytes:
/// one step for a short value, else every 16 bytes and, for a length that
/// is not a multiple of 16, a last step that ends with the value.
/// The transcoder's loop spells the same schedule out by hand (walking
/// this iterator cost ~750 instructions per IPM parse); the test
/// `block_proofs_cover_the_kept_lanes` holds the two together.
pub(crate) fn step_starts(len: usize) -> impl Iterator<Item = usize> {
    let whole = if len < 16 { 1 } else { len / 16 };
    let tail = (len > 16 && !len.is_multiple_of(16)).then(|| len - 16);
    (0..whole).map(|k| k * 16).chain(tail)
}

/// The `keep` masks of `to_latin1_block` for a run of `len` bytes, given
/// which bytes must be plain (`an` values) and which digits (`n` values).
/// Printability is kept for the whole run.
pub(crate) fn lanes_kept(
    len: usize,
    plain: impl Fn(usize) -> bool,
    digit: impl Fn(usize) -> bool,
) -> impl Iterator<Item = u64> {
    step_starts(len).map(move |start| {
        let mut keep = Seen::NOT_PRINTABLE;
        for (lane, at) in (start..(start + 16).min(len)).enumerate() {
            if plain(at) {
                keep |= 1 << lane;
            }
            if digit(at) {
                keep |= 1 << (16 + lane);
            }
        }
        keep
    })
}

/// What a conversion saw of a value, as faults against three proofs:
/// every byte a digit (`n`); every byte a digit, a letter or a space
/// (`plain`, which proves `an`); every byte printable (`ans`). Bits 0-15:
/// lanes of a step outside the runs (not plain); 16-31: lanes not digits;
/// 32: some byte not printable. A proof holds when its bits are clear;
/// the table loop sees nothing (`NOTHING`, every bit set). A proof never
/// holds when false; it may fail when true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen(u64);

impl Seen {
    const NOT_PLAIN: u64 = 0xFFFF;
    const NOT_DIGITS: u64 = 0xFFFF_0000;
    const NOT_PRINTABLE: u64 = 1 << 32;
    pub const NOTHING: Seen = Seen(u64::MAX);

    /// Whether a value of `class` with these bytes passes its check.
    #[inline]
    pub fn proves(self, class: Class) -> bool {
        let faults = match class {
            Class::An => Seen::NOT_PLAIN,
            Class::Ans => Seen::NOT_PRINTABLE,
            Class::N => Seen::NOT_DIGITS,
            _ => return false,
        };
        self.0 & faults == 0
    }

    /// What was seen of two parts, of the whole.
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    #[inline]
    fn and(self, other: Seen) -> Seen {
        Seen(self.0 | other.0)
    }

    /// Only the faults under `keep` (see `to_latin1_block`).
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    #[inline]
    fn kept(self, keep: u64) -> Seen {
        Seen(self.0 & keep)
    }
}

/// Converts Latin-1 bytes to EBCDIC cp500 in place.
pub fn from_latin1(bytes: &mut [u8]) {
    for b in bytes {
        *b = LATIN1_TO_CP500[*b as usize];
    }
}

/// One EBCDIC byte as Latin-1.
pub fn byte_to_latin1(b: u8) -> u8 {
    CP500_TO_LATIN1[b as usize]
}

/// One Latin-1 byte as EBCDIC.
pub fn byte_from_latin1(b: u8) -> u8 {
    LATIN1_TO_CP500[b as usize]
}

pub(crate) const CP500_TO_LATIN1: [u8; 256] = [
    0x00, 0x01, 0x02, 0x03, 0x9C, 0x09, 0x86, 0x7F, 0x97, 0x8D, 0x8E, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
    0x10, 0x11, 0x12, 0x13, 0x9D, 0x85, 0x08, 0x87, 0x18, 0x19, 0x92, 0x8F, 0x1C, 0x1D, 0x1E, 0x1F,
    0x80, 0x81, 0x82, 0x83, 0x84, 0x0A, 0x17, 0x1B, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x05, 0x06, 0x07,
    0x90, 0x91, 0x16, 0x93, 0x94, 0x95, 0x96, 0x04, 0x98, 0x99, 0x9A, 0x9B, 0x14, 0x15, 0x9E, 0x1A,
    0x20, 0xA0, 0xE2, 0xE4, 0xE0, 0xE1, 0xE3, 0xE5, 0xE7, 0xF1, 0x5B, 0x2E, 0x3C, 0x28, 0x2B, 0x21,
    0x26, 0xE9, 0xEA, 0xEB, 0xE8, 0xED, 0xEE, 0xEF, 0xEC, 0xDF, 0x5D, 0x24, 0x2A, 0x29, 0x3B, 0x5E,
    0x2D, 0x2F, 0xC2, 0xC4, 0xC0, 0xC1, 0xC3, 0xC5, 0xC7, 0xD1, 0xA6, 0x2C, 0x25, 0x5F, 0x3E, 0x3F,
    0xF8, 0xC9, 0xCA, 0xCB, 0xC8, 0xCD, 0xCE, 0xCF, 0xCC, 0x60, 0x3A, 0x23, 0x40, 0x27, 0x3D, 0x22,
    0xD8, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0xAB, 0xBB, 0xF0, 0xFD, 0xFE, 0xB1,
    0xB0, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x70, 0x71, 0x72, 0xAA, 0xBA, 0xE6, 0xB8, 0xC6, 0xA4,
    0xB5, 0x7E, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0xA1, 0xBF, 0xD0, 0xDD, 0xDE, 0xAE,
    0xA2, 0xA3, 0xA5, 0xB7, 0xA9, 0xA7, 0xB6, 0xBC, 0xBD, 0xBE, 0xAC, 0x7C, 0xAF, 0xA8, 0xB4, 0xD7,
    0x7B, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0xAD, 0xF4, 0xF6, 0xF2, 0xF3, 0xF5,
    0x7D, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F, 0x50, 0x51, 0x52, 0xB9, 0xFB, 0xFC, 0xF9, 0xFA, 0xFF,
    0x5C, 0xF7, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0xB2, 0xD4, 0xD6, 0xD2, 0xD3, 0xD5,
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0xB3, 0xDB, 0xDC, 0xD9, 0xDA, 0x9F,
];

pub(crate) const LATIN1_TO_CP500: [u8; 256] = [
    0x00, 0x01, 0x02, 0x03, 0x37, 0x2D, 0x2E, 0x2F, 0x16, 0x05, 0x25, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
    0x10, 0x11, 0x12, 0x13, 0x3C, 0x3D, 0x32, 0x26, 0x18, 0x19, 0x3F, 0x27, 0x1C, 0x1D, 0x1E, 0x1F,
    0x40, 0x4F, 0x7F, 0x7B, 0x5B, 0x6C, 0x50, 0x7D, 0x4D, 0x5D, 0x5C, 0x4E, 0x6B, 0x60, 0x4B, 0x61,
    0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0x7A, 0x5E, 0x4C, 0x7E, 0x6E, 0x6F,
    0x7C, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6,
    0xD7, 0xD8, 0xD9, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0x4A, 0xE0, 0x5A, 0x5F, 0x6D,
    0x79, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96,
    0x97, 0x98, 0x99, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xC0, 0xBB, 0xD0, 0xA1, 0x07,
    0x20, 0x21, 0x22, 0x23, 0x24, 0x15, 0x06, 0x17, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x09, 0x0A, 0x1B,
    0x30, 0x31, 0x1A, 0x33, 0x34, 0x35, 0x36, 0x08, 0x38, 0x39, 0x3A, 0x3B, 0x04, 0x14, 0x3E, 0xFF,
    0x41, 0xAA, 0xB0, 0xB1, 0x9F, 0xB2, 0x6A, 0xB5, 0xBD, 0xB4, 0x9A, 0x8A, 0xBA, 0xCA, 0xAF, 0xBC,
    0x90, 0x8F, 0xEA, 0xFA, 0xBE, 0xA0, 0xB6, 0xB3, 0x9D, 0xDA, 0x9B, 0x8B, 0xB7, 0xB8, 0xB9, 0xAB,
    0x64, 0x65, 0x62, 0x66, 0x63, 0x67, 0x9E, 0x68, 0x74, 0x71, 0x72, 0x73, 0x78, 0x75, 0x76, 0x77,
    0xAC, 0x69, 0xED, 0xEE, 0xEB, 0xEF, 0xEC, 0xBF, 0x80, 0xFD, 0xFE, 0xFB, 0xFC, 0xAD, 0xAE, 0x59,
    0x44, 0x45, 0x42, 0x46, 0x43, 0x47, 0x9C, 0x48, 0x54, 0x51, 0x52, 0x53, 0x58, 0x55, 0x56, 0x57,
    0x8C, 0x49, 0xCD, 0xCE, 0xCB, 0xCF, 0xCC, 0xE1, 0x70, 0xDD, 0xDE, 0xDB, 0xDC, 0x8D, 0x8E, 0xDF,
];

/// The common characters of EBCDIC text (digits, letters, space) sit in
/// runs whose Latin-1 code points are the EBCDIC ones minus a constant per
/// high nibble: one shuffle gives each byte its constant, two more tell
/// whether its low nibble lies in its run. The few bytes outside the runs
/// (punctuation, controls) are looked up in the table one by one. No raw
/// pointers: bytes go in and out as words.
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
mod ssse3 {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_cvtsi128_si64, _mm_movemask_epi8,
        _mm_set_epi64x, _mm_set1_epi8, _mm_setr_epi8, _mm_setzero_si128, _mm_shuffle_epi8,
        _mm_srli_epi16, _mm_srli_si128, _mm_sub_epi8,
    };

    use super::{CP500_TO_LATIN1, Seen};
    use crate::message::swar::{printable, word};

    /// By high nibble: what to subtract from an EBCDIC byte of its run.
    /// 4x: space (40); 8x, 9x, Ax: a-i, j-r, s-z; Cx, Dx, Ex: A-I, J-R,
    /// S-Z; Fx: 0-9. Values are the two's complement of the byte as `i8`.
    const OFFSETS: [u8; 16] = [
        0, 0, 0, 0, 0x20, 0, 0, 0, 0x20, 0x27, 0x2F, 0, 0x80, 0x87, 0x8F, 0xC0,
    ];
    /// By high nibble: the run its byte can belong to, as one bit: 1 for
    /// low nibble 0 only, 2 for 1-9, 4 for 2-9, 8 for 0-9.
    const HIGH_RUN: [u8; 16] = [0, 0, 0, 0, 1, 0, 0, 0, 2, 2, 4, 0, 2, 2, 4, 8];
    /// By low nibble: the runs that take it.
    const LOW_RUN: [u8; 16] = [9, 10, 14, 14, 14, 14, 14, 14, 14, 14, 0, 0, 0, 0, 0, 0];

    #[inline]
    #[target_feature(enable = "ssse3")]
    fn table(t: [u8; 16]) -> __m128i {
        let b = t.map(|x| x as i8);
        _mm_setr_epi8(
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15],
        )
    }

    /// 16 EBCDIC bytes at `src[..16]` as Latin-1 into `dst[..16]`; only
    /// the lanes of `wanted` are exact (the others are scratch); what they were.
    #[inline]
    #[target_feature(enable = "ssse3")]
    fn step(src: &[u8], dst: &mut [u8], wanted: u32) -> Seen {
        let x = _mm_set_epi64x(word(&src[8..]) as i64, word(src) as i64);
        let nibble = _mm_set1_epi8(0x0F);
        let high = _mm_and_si128(_mm_srli_epi16::<4>(x), nibble);
        let low = _mm_and_si128(x, nibble);
        let out = _mm_sub_epi8(x, _mm_shuffle_epi8(table(OFFSETS), high));
        let runs = _mm_and_si128(
            _mm_shuffle_epi8(table(HIGH_RUN), high),
            _mm_shuffle_epi8(table(LOW_RUN), low),
        );
        let outside = _mm_movemask_epi8(_mm_cmpeq_epi8(runs, _mm_setzero_si128())) as u32 & wanted;
        // Only the digits' run has bit 8 (high nibble F, low 0-9).
        let digit_run = _mm_and_si128(runs, _mm_set1_epi8(8));
        let non_digits = _mm_movemask_epi8(_mm_cmpeq_epi8(digit_run, _mm_setzero_si128())) as u32;
        let dst = &mut dst[..16];
        dst[..8].copy_from_slice(&_mm_cvtsi128_si64(out).to_le_bytes());
        dst[8..].copy_from_slice(&_mm_cvtsi128_si64(_mm_srli_si128::<8>(out)).to_le_bytes());
        // Bytes of the runs are printable; the others are looked at here.
        let mut unprintable = false;
        let mut fix = outside;
        while fix != 0 {
            let lane = fix.trailing_zeros() as usize;
            let c = CP500_TO_LATIN1[usize::from(src[lane])];
            dst[lane] = c;
            unprintable |= !printable(c);
            fix &= fix - 1;
        }
        Seen(u64::from(outside | (non_digits & wanted) << 16) | u64::from(unprintable) << 32)
    }

    /// As `super::to_latin1_front`, whose checks hold: `len <= src.len()`,
    /// `len <= dst.len()`, and 16 bytes in both when `len < 16`. Steps
    /// overlap at the end of a long value (converting a byte twice gives
    /// the same byte).
    #[inline]
    #[target_feature(enable = "ssse3")]
    pub(super) fn to_latin1_front(
        src: &[u8],
        dst: &mut [u8],
        len: usize,
        mut keep: impl FnMut() -> u64,
    ) -> Seen {
        debug_assert!(len <= src.len() && len <= dst.len());
        if len < 16 {
            return step(src, dst, (1 << len) - 1).kept(keep());
        }
        let mut seen = step(src, dst, 0xFFFF).kept(keep());
        let mut at = 16;
        while at + 16 <= len {
            seen = seen.and(step(&src[at..], &mut dst[at..], 0xFFFF).kept(keep()));
            at += 16;
        }
        if at < len {
            seen = seen.and(step(&src[len - 16..], &mut dst[len - 16..], 0xFFFF).kept(keep()));
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digits_and_letters_map_to_the_expected_code_points() {
        assert_eq!(byte_from_latin1(b'0'), 0xF0);
        assert_eq!(byte_from_latin1(b'9'), 0xF9);
        assert_eq!(byte_from_latin1(b'A'), 0xC1);
        assert_eq!(byte_from_latin1(b' '), 0x40);
        assert_eq!(byte_to_latin1(0x4B), b'.');
    }

    #[test]
    fn tables_are_inverse_permutations() {
        for b in 0..=255u8 {
            assert_eq!(byte_to_latin1(byte_from_latin1(b)), b);
        }
    }

    /// The proofs a conversion should give for these Latin-1 bytes:
    /// (plain, digits, printable).
    fn truth(text: &[u8]) -> [bool; 3] {
        [
            Class::An.admits(text),
            Class::N.admits(text),
            Class::Ans.admits(text),
        ]
    }

    /// The proofs a conversion gave, in the order of `truth`.
    fn proofs(seen: Seen) -> [bool; 3] {
        [Class::An, Class::N, Class::Ans].map(|class| seen.proves(class))
    }

    #[test]
    fn every_byte_converts_in_every_lane() {
        for lane in 0..16 {
            for b in 0..=255u8 {
                let mut src = [0xF1u8; 16];
                src[lane] = b;
                let mut dst = [0u8; 16];
                let seen = to_latin1_front(&src, &mut dst, 16).expect("room");
                let mut expected = src;
                to_latin1(&mut expected);
                assert_eq!(dst, expected, "byte {b:#04x} in lane {lane}");
                let truth = truth(&[byte_to_latin1(b)]);
                // Never proven when false; with SSSE3, exactly when true.
                for (proof, truth) in proofs(seen).into_iter().zip(truth) {
                    assert!(
                        !proof || truth,
                        "byte {b:#04x}: {:?} against {truth:?}",
                        proofs(seen)
                    );
                }
                #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
                assert_eq!(proofs(seen), truth, "byte {b:#04x} in lane {lane}");
            }
        }
    }

    proptest! {
        /// Any value, with any slack around it, converts as the table says,
        /// and nothing before it or past the scratch bytes is written.
        #[test]
        fn front_conversion_agrees_with_the_table(
            src in proptest::collection::vec(any::<u8>(), 0..80),
            len_seed in any::<usize>(),
            slack in 0usize..20,
        ) {
            let len = len_seed % (src.len() + 1);
            let mut dst = vec![0xAAu8; len + slack];
            let seen = to_latin1_front(&src, &mut dst, len);
            prop_assert!(seen.is_some());
            let seen = seen.unwrap_or(Seen::NOTHING);
            let mut expected = src[..len].to_vec();
            to_latin1(&mut expected);
            prop_assert_eq!(&dst[..len], &expected[..]);
            // What is seen is of the value's bytes, never of the scratch lanes.
            let truth = truth(&expected);
            for (proof, truth) in proofs(seen).into_iter().zip(truth) {
                prop_assert!(!proof || truth);
            }
            #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
            if len >= 16 || (src.len() >= 16 && dst.len() >= 16) {
                prop_assert_eq!(proofs(seen), truth);
            }
            let scratch_end = if len < 16 { 16 } else { len };
            prop_assert!(dst[scratch_end.min(dst.len())..].iter().all(|&b| b == 0xAA));
            let mut short = vec![0u8; len.saturating_sub(1)];
            prop_assert_eq!(to_latin1_front(&src, &mut short, len).is_some(), len == 0);
        }

        /// A block's proofs cover exactly the lanes its masks keep: `n`
        /// over one range of the value, `an` over another, `ans` over the
        /// whole value, whatever the value's length and the step it is in.
        #[test]
        fn block_proofs_cover_the_kept_lanes(
            src in proptest::collection::vec(
                prop_oneof![0xF0u8..=0xF9, 0xC1u8..=0xC9, Just(0x40), Just(0xE0), any::<u8>()],
                16..90),
            len_seed in any::<usize>(),
            cuts in proptest::array::uniform4(any::<prop::sample::Index>()),
        ) {
            let len = len_seed % (src.len() + 1);
            let mut bounds = cuts.map(|c| c.index(len + 1));
            bounds.sort_unstable();
            let [a, b, c, d] = bounds;
            let digits = a..b;
            let plain = c..d;
            let keep: Vec<u64> = lanes_kept(len, |i| plain.contains(&i), |i| digits.contains(&i)).collect();
            prop_assert_eq!(keep.len(), step_starts(len).count());
            let mut dst = vec![0u8; len + 16];
            let seen = to_latin1_block(&src, &mut dst, len, &keep).unwrap_or(Seen::NOTHING);
            let text = &dst[..len];
            let truth = [
                Class::An.admits(&text[plain.clone()]),
                Class::N.admits(&text[digits.clone()]),
                Class::Ans.admits(text),
            ];
            for (proof, truth) in proofs(seen).into_iter().zip(truth) {
                prop_assert!(!proof || truth);
            }
            #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
            prop_assert_eq!(proofs(seen), truth, "n {:?}, an {:?} of {}", digits, plain, len);
        }
    }
}
