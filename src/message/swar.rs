//! Eight bytes at a time ("SIMD within a register") for the two scans that
//! dominate parsing: class checks of digits and printable text, and
//! hexadecimal text. Values are short (4 to 40 bytes), too short for the
//! compiler's vector loops, so a word per 8 bytes is what pays; the tail of
//! a value is padded with a byte that passes. Long hexadecimal values (DE55
//! in ASCII dialects) go 16 characters at a time in SSE2 on x86-64.

use super::spec::Class;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of each byte of `x` set where the byte is in `lo..=hi`. Exact
/// when every byte is below 0x80 (no carry crosses a byte); callers reject
/// words with a high bit separately, so the result for those is unused.
#[inline(always)]
const fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    let above_lo = x.wrapping_add(ONES * (0x80 - lo as u64));
    let above_hi = x.wrapping_add(ONES * (0x7F - hi as u64));
    above_lo & !above_hi & HIGH
}

/// A little-endian word of 8 bytes.
#[inline(always)]
pub(crate) fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(w)
}

/// A little-endian word of 4 bytes.
#[inline(always)]
fn half(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&bytes[..4]);
    u64::from(u32::from_le_bytes(w))
}

/// Whether `fault` is zero for every word of `value`. Words may overlap
/// (the checks are per byte): a value of 8 bytes or more ends with an
/// overlapping word, one of 4 to 7 is two overlapping halves, and one of
/// fewer bytes is padded with `fill`.
#[inline(always)]
fn all_words(value: &[u8], fill: u8, fault: impl Fn(u64) -> u64) -> bool {
    let len = value.len();
    if len < 8 {
        let w = if len >= 4 {
            half(value) | (half(&value[len - 4..]) << 32)
        } else {
            let mut w = [fill; 8];
            for (d, &b) in w.iter_mut().zip(value) {
                *d = b;
            }
            u64::from_le_bytes(w)
        };
        return fault(w) == 0;
    }
    let mut faults = 0;
    let mut at = 0;
    while at + 8 <= len {
        faults |= fault(word(&value[at..]));
        at += 8;
    }
    if at < len {
        faults |= fault(word(&value[len - 8..]));
    }
    faults == 0
}

/// Whether every byte is an ASCII digit.
#[inline]
pub(crate) fn all_digits(value: &[u8]) -> bool {
    all_words(value, b'0', |x| {
        (x & HIGH) | (in_range(x, b'0', b'9') ^ HIGH)
    })
}

/// Bit 7 of each byte set where the byte is a letter (either case).
#[inline(always)]
const fn letters(x: u64) -> u64 {
    // Folding case maps A-Z onto a-z and nothing else onto a-z.
    in_range(x | (ONES * 0x20), b'a', b'z')
}

/// Whether every byte is a letter or a space: the `a` class.
#[inline]
pub(crate) fn all_alpha(value: &[u8]) -> bool {
    all_words(value, b' ', |x| {
        (x & HIGH) | ((letters(x) | in_range(x, b' ', b' ')) ^ HIGH)
    })
}

/// Whether every byte is a letter, a digit or a space: the `an` class.
#[inline]
pub(crate) fn all_alphanumeric(value: &[u8]) -> bool {
    all_words(value, b' ', |x| {
        (x & HIGH) | ((letters(x) | in_range(x, b'0', b'9') | in_range(x, b' ', b' ')) ^ HIGH)
    })
}

/// Whether every byte is a digit or a track separator (`=` or `D`): the `z` class.
#[inline]
pub(crate) fn all_track(value: &[u8]) -> bool {
    all_words(value, b'0', |x| {
        (x & HIGH)
            | ((in_range(x, b'0', b'9') | in_range(x, b'=', b'=') | in_range(x, b'D', b'D')) ^ HIGH)
    })
}

/// Whether every byte is printable ASCII (0x20..=0x7E) or Latin-1 above 0x9F:
/// the `ans` class. Values with bytes above 0x7F go byte by byte.
#[inline]
pub(crate) fn all_printable(value: &[u8]) -> bool {
    let ascii = all_words(value, b' ', |x| {
        (x & HIGH) | (in_range(x, 0x20, 0x7E) ^ HIGH)
    });
    ascii || value.iter().all(|&b| printable(b))
}

/// Whether one Latin-1 byte belongs to the `ans` class.
#[inline]
pub(crate) fn printable(b: u8) -> bool {
    (0x20..=0x7E).contains(&b) || b >= 0xA0
}

/// Decodes 16 hexadecimal characters (either case) into 8 bytes; `None`
/// if any is not a hex digit.
#[inline]
pub(crate) fn hex16(text: &[u8; 16]) -> Option<[u8; 8]> {
    let mut out = [0u8; 8];
    hex_decode_into(text, &mut out).then_some(out)
}

/// 8 hexadecimal characters (a little-endian word) into 4 bytes, and a
/// fault word that is zero when all 8 are hex digits.
#[inline(always)]
fn hex8(x: u64) -> ([u8; 4], u64) {
    // Folding case maps A-F onto a-f and leaves digits as they are.
    let valid = in_range(x, b'0', b'9') | in_range(x | (ONES * 0x20), b'a', b'f');
    let fault = (x & HIGH) | (valid ^ HIGH);
    // Letters have bit 6 set: their value is the low nibble plus 9.
    let nibbles = (x & (ONES * 0x0F)) + ((x >> 6) & ONES) * 9;
    // Each 16-bit lane holds (high nibble, low nibble): make it one byte.
    const LANE_LOW: u64 = 0x00FF_00FF_00FF_00FF;
    let bytes = ((nibbles & LANE_LOW) << 4) | ((nibbles >> 8) & LANE_LOW);
    // Gather the low byte of each 16-bit lane.
    let packed = (bytes | (bytes >> 8)) & 0x0000_FFFF_0000_FFFF;
    let packed = (packed | (packed >> 16)) & 0xFFFF_FFFF;
    ((packed as u32).to_le_bytes(), fault)
}

/// Decodes hexadecimal text into `out` (`out.len() * 2 == text.len()`);
/// `false` if any character is not a hex digit. Sixteen characters at a
/// time with SSE2 where there is SSE2 (every x86-64), eight otherwise.
#[inline]
pub(crate) fn hex_decode_into(text: &[u8], out: &mut [u8]) -> bool {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if text.len() >= 16 && out.len() * 2 == text.len() {
        // SAFETY: the only requirement of a `target_feature` function is
        // that the CPU has the feature, and this is compiled only where
        // SSE2 is part of the target (every x86-64 has it).
        #[allow(unsafe_code)]
        return unsafe { sse2::hex_decode_into(text, out) };
    }
    hex_decode_words(text, out)
}

/// The portable decoder: a word of 8 characters at a time.
fn hex_decode_words(text: &[u8], out: &mut [u8]) -> bool {
    let mut faults = 0;
    let mut src = text.chunks_exact(8);
    let mut dst = out.chunks_exact_mut(4);
    // `src` leads the zip so that `dst` keeps its chunk for the tail.
    for (s, d) in (&mut src).zip(&mut dst) {
        let (bytes, fault) = hex8(word(s));
        faults |= fault;
        d.copy_from_slice(&bytes);
    }
    let tail = src.remainder();
    if !tail.is_empty() {
        let mut w = [b'0'; 8];
        for (d, &c) in w.iter_mut().zip(tail) {
            *d = c;
        }
        let (bytes, fault) = hex8(u64::from_le_bytes(w));
        faults |= fault;
        for (d, b) in dst.into_remainder().iter_mut().zip(bytes) {
            *d = b;
        }
    }
    faults == 0
}

/// Whether `buffer[start..end]` belongs to `class`, 16 bytes at a time
/// where SSE2 is there: the parser's check of a run of values. The window
/// may read bytes of `buffer` around the run (masked out), so that a short
/// run costs one vector step too; `false` for a range outside `buffer`.
#[inline]
pub(crate) fn run_admits(buffer: &[u8], start: usize, end: usize, class: Class) -> bool {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if buffer.len() >= 16 && start <= end && end <= buffer.len() && class != Class::Xn {
        // SAFETY: as for `hex_decode_into` below: a `target_feature`
        // function, compiled only where SSE2 is part of the target.
        #[allow(unsafe_code)]
        return unsafe { sse2::run_admits(buffer, start, end, class) };
    }
    buffer
        .get(start..end)
        .is_some_and(|value| class.admits(value))
}

/// SSE2 is part of x86-64 itself: no run-time detection. The only
/// `unsafe` are the calls into `hex_decode_into` and `run_admits`
/// (`target_feature` functions); values go in and out as words, no raw
/// pointers.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_cvtsi128_si64,
        _mm_movemask_epi8, _mm_or_si128, _mm_packus_epi16, _mm_set_epi64x, _mm_set1_epi8,
        _mm_set1_epi16, _mm_setzero_si128, _mm_slli_epi16, _mm_srli_epi16, _mm_sub_epi8,
        _mm_subs_epu8, _mm_xor_si128,
    };

    use crate::message::spec::Class;

    use super::word;

    /// Lanes below `n` (unsigned), from a signed compare with the sign bit flipped.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn below(x: __m128i, n: u8) -> __m128i {
        let flip = _mm_set1_epi8(i8::MIN);
        _mm_cmplt_epi8(_mm_xor_si128(x, flip), _mm_set1_epi8((n ^ 0x80) as i8))
    }

    /// 16 hexadecimal characters at `text[..16]` into 8 bytes, and a mask
    /// with a bit set per character that is a hex digit (0xFFFF: all).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn hex16(text: &[u8]) -> ([u8; 8], i32) {
        let v = _mm_set_epi64x(word(&text[8..]) as i64, word(text) as i64);
        let digit = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
        let is_digit = below(digit, 10);
        // Folding case maps A-F onto a-f and nothing else onto them.
        let letter = _mm_sub_epi8(
            _mm_or_si128(v, _mm_set1_epi8(0x20)),
            _mm_set1_epi8(b'a' as i8),
        );
        let is_letter = below(letter, 6);
        let valid = _mm_movemask_epi8(_mm_or_si128(is_digit, is_letter));
        let nibbles = _mm_or_si128(
            _mm_and_si128(is_digit, digit),
            _mm_and_si128(is_letter, _mm_add_epi8(letter, _mm_set1_epi8(10))),
        );
        // Each 16-bit lane holds (high nibble, low nibble) in its two bytes:
        // make it one byte, then pack the eight lanes.
        let pairs = _mm_and_si128(
            _mm_or_si128(_mm_slli_epi16::<4>(nibbles), _mm_srli_epi16::<8>(nibbles)),
            _mm_set1_epi16(0x00FF),
        );
        let packed = _mm_cvtsi128_si64(_mm_packus_epi16(pairs, pairs));
        (packed.to_le_bytes(), valid)
    }

    /// `text.len() >= 16`, `out.len() * 2 == text.len()`. A length that is
    /// not a multiple of 16 ends with an overlapping block.
    #[target_feature(enable = "sse2")]
    pub(super) fn hex_decode_into(text: &[u8], out: &mut [u8]) -> bool {
        debug_assert!(text.len() >= 16 && out.len() * 2 == text.len());
        let mut valid = 0xFFFF;
        let mut at = 0;
        while at + 16 <= text.len() {
            let (bytes, mask) = hex16(&text[at..]);
            valid &= mask;
            out[at / 2..at / 2 + 8].copy_from_slice(&bytes);
            at += 16;
        }
        if at < text.len() {
            let last = text.len() - 16;
            let (bytes, mask) = hex16(&text[last..]);
            valid &= mask;
            out[last / 2..].copy_from_slice(&bytes);
        }
        valid == 0xFFFF
    }

    /// Lanes of `x` in `lo..=hi` (unsigned): 0xFF, else 0.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn within(x: __m128i, lo: u8, hi: u8) -> __m128i {
        let above = _mm_sub_epi8(x, _mm_set1_epi8(lo as i8));
        let beyond = _mm_subs_epu8(above, _mm_set1_epi8((hi - lo) as i8));
        _mm_cmpeq_epi8(beyond, _mm_setzero_si128())
    }

    /// A bit per lane of `x` whose byte belongs to `class` (not `Xn`).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn members(x: __m128i, class: Class) -> u32 {
        let digits = || within(x, b'0', b'9');
        let space = || _mm_cmpeq_epi8(x, _mm_set1_epi8(b' ' as i8));
        // Folding case maps A-Z onto a-z and nothing else onto a-z.
        let letters = || within(_mm_or_si128(x, _mm_set1_epi8(0x20)), b'a', b'z');
        let good = match class {
            Class::B => return 0xFFFF,
            Class::N | Class::Xn => digits(),
            Class::A => _mm_or_si128(letters(), space()),
            Class::An => _mm_or_si128(_mm_or_si128(letters(), digits()), space()),
            Class::Ans => _mm_or_si128(within(x, 0x20, 0x7E), within(x, 0xA0, 0xFF)),
            Class::Z => _mm_or_si128(
                digits(),
                _mm_or_si128(
                    _mm_cmpeq_epi8(x, _mm_set1_epi8(b'=' as i8)),
                    _mm_cmpeq_epi8(x, _mm_set1_epi8(b'D' as i8)),
                ),
            ),
        };
        _mm_movemask_epi8(good) as u32
    }

    /// `buffer.len() >= 16`, `start <= end <= buffer.len()`. Each step
    /// looks at a window of 16 bytes that starts at the next unchecked
    /// byte, or ends at the buffer's end near it; lanes outside the run
    /// are masked out.
    #[target_feature(enable = "sse2")]
    pub(super) fn run_admits(buffer: &[u8], start: usize, end: usize, class: Class) -> bool {
        debug_assert!(buffer.len() >= 16 && start <= end && end <= buffer.len());
        let mut at = start;
        while at < end {
            let window = at.min(buffer.len() - 16);
            let x = _mm_set_epi64x(
                word(&buffer[window + 8..]) as i64,
                word(&buffer[window..]) as i64,
            );
            let first = at - window;
            let last = (end - window).min(16);
            let wanted = ((1u32 << last) - 1) & !((1u32 << first) - 1);
            if members(x, class) & wanted != wanted {
                return false;
            }
            at = window + 16;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_class() -> impl Strategy<Value = Class> {
        prop::sample::select(vec![
            Class::N,
            Class::A,
            Class::An,
            Class::Ans,
            Class::B,
            Class::Z,
            Class::Xn,
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

        /// The vector check of a run agrees with the class test of its
        /// bytes, wherever the run lies in its buffer.
        #[test]
        fn run_checks_agree_with_the_class_test(
            buffer in proptest::collection::vec(
                prop_oneof![b'0'..=b'9', prop::sample::select(b"AZaz =D/:@[`{~".to_vec()), any::<u8>()],
                0..80),
            a in any::<prop::sample::Index>(),
            b in any::<prop::sample::Index>(),
            class in any_class(),
        ) {
            let (i, j) = (a.index(buffer.len() + 1), b.index(buffer.len() + 1));
            let (start, end) = (i.min(j), i.max(j));
            prop_assert_eq!(
                run_admits(&buffer, start, end, class),
                class.admits(&buffer[start..end]),
                "{:?} over {}..{} of {:?}", class, start, end, buffer
            );
        }

        #[test]
        fn digit_scan_agrees_with_a_byte_loop(value in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(all_digits(&value), value.iter().all(u8::is_ascii_digit));
        }

        #[test]
        fn letter_and_track_scans_agree_with_byte_loops(value in proptest::collection::vec(
            prop_oneof![0x1Eu8..0x7F, any::<u8>()], 0..40)) {
            let alpha = |b: &u8| b.is_ascii_alphabetic() || *b == b' ';
            prop_assert_eq!(all_alpha(&value), value.iter().all(alpha));
            prop_assert_eq!(
                all_alphanumeric(&value),
                value.iter().all(|b| alpha(b) || b.is_ascii_digit())
            );
            prop_assert_eq!(
                all_track(&value),
                value.iter().all(|b| b.is_ascii_digit() || *b == b'=' || *b == b'D')
            );
        }

        #[test]
        fn printable_scan_agrees_with_a_byte_loop(value in proptest::collection::vec(
            prop_oneof![0x1Eu8..0x82, any::<u8>()], 0..40)) {
            let expected = value.iter().all(|&b| (0x20..=0x7E).contains(&b) || b >= 0xA0);
            prop_assert_eq!(all_printable(&value), expected);
        }

        #[test]
        fn hex_decode_agrees_with_the_hex_crate(text in "[0-9A-Fa-f]{0,100}", junk in any::<u8>(), at in any::<usize>()) {
            let mut text = text.into_bytes();
            text.truncate(text.len() / 2 * 2);
            let mut out = vec![0u8; text.len() / 2];
            let mut portable = vec![0u8; text.len() / 2];
            prop_assert!(hex_decode_words(&text, &mut portable));
            prop_assert_eq!(&portable, &hex::decode(&text).expect("hex"));
            prop_assert!(hex_decode_into(&text, &mut out));
            prop_assert_eq!(&out, &hex::decode(&text).expect("hex"));
            if !text.is_empty() {
                let i = at % text.len();
                text[i] = junk;
                let expected = hex::decode(&text).ok();
                let ok = hex_decode_into(&text, &mut out);
                prop_assert_eq!(ok, expected.is_some());
                if let Some(bytes) = expected {
                    prop_assert_eq!(out, bytes);
                }
            }
        }
    }
}
