//! Wire representations shared by the parser and the builder: length
//! prefixes, packed BCD, hexadecimal text and EBCDIC. Pure functions over
//! slices; positions in errors are relative to the slice given.

use bytes::BytesMut;

use super::ebcdic;
use super::spec::{Class, Encoding, FieldSpec, Length, Padding};
use super::swar;

/// Where encoders and decoders append: a `Vec<u8>` (the builder's
/// exact-size buffer, the parser's transcoding buffer) or a `BytesMut`.
pub trait Output {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);
    /// Appends `count` zero bytes and returns them, to be filled in place.
    fn grow(&mut self, count: usize) -> &mut [u8];
    /// Bytes written so far.
    fn written(&self) -> usize;
    /// Drops what was written after `len`.
    fn truncate_to(&mut self, len: usize);
    /// Appends each byte of `bytes` mapped through `table`.
    fn put_mapped(&mut self, bytes: &[u8], table: &[u8; 256]);
}

impl Output for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    #[inline]
    fn grow(&mut self, count: usize) -> &mut [u8] {
        let start = self.len();
        // Inlined, unlike `resize`: values are short and this runs per field.
        self.extend(std::iter::repeat_n(0, count));
        &mut self[start..]
    }
    #[inline]
    fn written(&self) -> usize {
        self.len()
    }
    #[inline]
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }
    #[inline]
    fn put_mapped(&mut self, bytes: &[u8], table: &[u8; 256]) {
        self.extend(bytes.iter().map(|&b| table[usize::from(b)]));
    }
}

impl Output for BytesMut {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    #[inline]
    fn grow(&mut self, count: usize) -> &mut [u8] {
        let start = self.len();
        self.resize(start + count, 0);
        &mut self[start..]
    }
    #[inline]
    fn written(&self) -> usize {
        self.len()
    }
    #[inline]
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }
    #[inline]
    fn put_mapped(&mut self, bytes: &[u8], table: &[u8; 256]) {
        for (d, &b) in self.grow(bytes.len()).iter_mut().zip(bytes) {
            *d = table[usize::from(b)];
        }
    }
}

/// `value` as `N` ASCII digits, zero-padded on the left (the top digits
/// are dropped if it has more).
pub fn decimal_digits<const N: usize>(mut value: u64) -> [u8; N] {
    let mut out = [b'0'; N];
    for d in out.iter_mut().rev() {
        // The digits left are zeros already (a STAN has 6 of 20).
        if value == 0 {
            break;
        }
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out
}

/// Bytes a length prefix of `digits` digits takes in `encoding`.
pub fn prefix_bytes(digits: u8, encoding: Encoding) -> usize {
    match encoding {
        Encoding::Ascii | Encoding::Ebcdic | Encoding::Hex => usize::from(digits),
        Encoding::Bcd => usize::from(digits).div_ceil(2),
        Encoding::Binary => {
            if digits <= 2 {
                1
            } else {
                2
            }
        }
    }
}

/// Reads a length prefix; `None` if it is not a number in its encoding.
#[inline]
pub fn read_prefix(bytes: &[u8], encoding: Encoding) -> Option<usize> {
    match encoding {
        Encoding::Ascii | Encoding::Hex => decimal(bytes.iter().copied()),
        // EBCDIC digits are F0-F9: XOR C0 makes them ASCII digits, and
        // no other byte (the table maps no other byte to a digit).
        Encoding::Ebcdic => decimal(bytes.iter().map(|&b| b ^ 0xC0)),
        Encoding::Bcd => {
            let mut n = 0usize;
            for &b in bytes {
                let (hi, lo) = (b >> 4, b & 0x0F);
                if hi > 9 || lo > 9 {
                    return None;
                }
                n = n * 100 + usize::from(hi) * 10 + usize::from(lo);
            }
            Some(n)
        }
        Encoding::Binary => Some(bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))),
    }
}

#[inline]
fn decimal(digits: impl Iterator<Item = u8>) -> Option<usize> {
    let mut n = 0usize;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + usize::from(d - b'0');
    }
    Some(n)
}

/// Writes a length prefix of `digits` digits. The caller has checked that
/// `len` fits (spec loading guarantees max fits the prefix).
pub fn write_prefix(len: usize, digits: u8, encoding: Encoding, out: &mut impl Output) {
    let width = prefix_bytes(digits, encoding);
    match encoding {
        Encoding::Ascii | Encoding::Hex | Encoding::Ebcdic => {
            debug_assert!((1..=4).contains(&digits));
            // Four digits at once, no loop: the prefix is written per field.
            // EBCDIC digits are 0xF0..=0xF9.
            let zero = if encoding == Encoding::Ebcdic {
                0xF0
            } else {
                b'0'
            };
            let v = (len % 10_000) as u32;
            let text = [
                zero + (v / 1000) as u8,
                zero + (v / 100 % 10) as u8,
                zero + (v / 10 % 10) as u8,
                zero + (v % 10) as u8,
            ];
            out.put(&text[4 - usize::from(digits).min(4)..]);
        }
        Encoding::Bcd => {
            let mut buf = [0u8; 2];
            let mut v = len;
            for i in (0..width).rev() {
                let two = (v % 100) as u8;
                buf[i] = ((two / 10) << 4) | (two % 10);
                v /= 100;
            }
            out.put(&buf[..width]);
        }
        Encoding::Binary => {
            if width == 1 {
                out.put(&[len as u8]);
            } else {
                out.put(&(len as u16).to_be_bytes());
            }
        }
    }
}

/// The most units a variable field's prefix may announce.
pub fn max_units(spec: &FieldSpec) -> usize {
    match spec.length {
        Length::Fixed(size) | Length::Variable { max: size, .. } => {
            if spec.encoding == Encoding::Hex {
                size * 2
            } else {
                size
            }
        }
    }
}

/// A fault inside a field's wire bytes, at a position relative to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFault {
    Bcd(usize),
    Hex(usize),
}

/// For each packed byte, its two digits as ASCII; 0 where a nibble is not a
/// digit. One look-up per byte instead of two nibble tests.
const BCD_PAIRS: [[u8; 2]; 256] = bcd_pairs(false);
/// The same for track data, where the nibble D is the separator `=`.
const BCD_PAIRS_TRACK: [[u8; 2]; 256] = bcd_pairs(true);

const fn bcd_pairs(track: bool) -> [[u8; 2]; 256] {
    const fn char_of(nibble: u8, track: bool) -> u8 {
        match nibble {
            0..=9 => b'0' + nibble,
            0x0D if track => b'=',
            _ => 0,
        }
    }
    let mut table = [[0u8; 2]; 256];
    let mut b = 0usize;
    while b < 256 {
        table[b] = [
            char_of((b >> 4) as u8, track),
            char_of((b & 0x0F) as u8, track),
        ];
        b += 1;
    }
    table
}

/// Unpacks `digits` BCD digits (plus the `x+n` sign byte) into text.
pub fn bcd_decode(
    wire: &[u8],
    digits: usize,
    class: Class,
    padding: Padding,
    out: &mut impl Output,
) -> Result<(), WireFault> {
    let start = out.written();
    let result = bcd_decode_fast(wire, digits, class, padding, out);
    if result.is_err() {
        out.truncate_to(start);
        // Rare: walk nibble by nibble to name the faulty byte.
        return Err(bcd_fault(wire, digits, class, padding));
    }
    Ok(())
}

/// The common, valid case: whole bytes through the pair table.
#[inline]
fn bcd_decode_fast(
    wire: &[u8],
    digits: usize,
    class: Class,
    padding: Padding,
    out: &mut impl Output,
) -> Result<(), ()> {
    let sign = usize::from(class == Class::Xn);
    if wire.len() != sign + digits.div_ceil(2) {
        return Err(());
    }
    if bcd_decode_into(wire, digits, class, padding, out.grow(digits + sign)) {
        Ok(())
    } else {
        Err(())
    }
}

/// Unpacks `digits` BCD digits (plus the `x+n` sign byte, copied) from
/// `wire` into `dst`, which holds exactly the text (`digits` + sign bytes).
/// `false` when a nibble is not a digit (or `=` in track data), a pad
/// nibble is wrong, or the sizes do not match; `dst` is then garbage.
#[inline]
pub(crate) fn bcd_decode_into(
    wire: &[u8],
    digits: usize,
    class: Class,
    padding: Padding,
    dst: &mut [u8],
) -> bool {
    let (packed, dst) = if class == Class::Xn {
        match (wire.split_first(), dst.split_first_mut()) {
            (Some((&s, packed)), Some((d, dst))) => {
                *d = s;
                (packed, dst)
            }
            _ => return false,
        }
    } else {
        (wire, dst)
    };
    if packed.len() != digits.div_ceil(2) || dst.len() != digits {
        return false;
    }
    let table = if class == Class::Z {
        &BCD_PAIRS_TRACK
    } else {
        &BCD_PAIRS
    };
    let odd = digits % 2 == 1;
    let pad = if padding == Padding::RightF { 0x0F } else { 0 };
    let (body, dst) = match (odd, padding) {
        (false, _) => (packed, dst),
        (true, Padding::Left) => {
            let (Some((&first, body)), Some((d, dst))) =
                (packed.split_first(), dst.split_first_mut())
            else {
                return false;
            };
            let pair = table[usize::from(first)];
            if first >> 4 != 0 || pair[1] == 0 {
                return false;
            }
            *d = pair[1];
            (body, dst)
        }
        (true, _) => {
            let (Some((&last, body)), Some((d, dst))) = (packed.split_last(), dst.split_last_mut())
            else {
                return false;
            };
            let pair = table[usize::from(last)];
            if last & 0x0F != pad || pair[0] == 0 {
                return false;
            }
            *d = pair[0];
            (body, dst)
        }
    };
    let mut bad = false;
    for (two, &b) in dst.chunks_exact_mut(2).zip(body) {
        let pair = table[usize::from(b)];
        bad |= (pair[0] == 0) | (pair[1] == 0);
        two.copy_from_slice(&pair);
    }
    !bad
}

/// Where a BCD value the fast path refused goes wrong.
fn bcd_fault(wire: &[u8], digits: usize, class: Class, padding: Padding) -> WireFault {
    let (sign, packed) = if class == Class::Xn {
        match wire.split_first() {
            Some((s, rest)) => (Some(*s), rest),
            None => return WireFault::Bcd(0),
        }
    } else {
        (None, wire)
    };
    let base = usize::from(sign.is_some());
    let odd = digits % 2 == 1;
    let total = packed.len() * 2;
    let skip_first = odd && padding == Padding::Left;
    for i in 0..total {
        let byte = packed[i / 2];
        let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0F };
        let is_pad = (skip_first && i == 0) || (odd && !skip_first && i == total - 1);
        if is_pad {
            let pad_ok = match padding {
                Padding::RightF => nibble == 0x0F,
                _ => nibble == 0,
            };
            if !pad_ok {
                return WireFault::Bcd(base + i / 2);
            }
            continue;
        }
        match nibble {
            0..=9 => {}
            0x0D if class == Class::Z => {}
            _ => return WireFault::Bcd(base + i / 2),
        }
    }
    // Only a wire of the wrong size gets here (callers size it): a fault all the same.
    WireFault::Bcd(base)
}

/// The nibble of each text byte in packed BCD (`=` and `D` are track separators).
const BCD_NIBBLE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut d = 0;
    while d < 10 {
        t[b'0' as usize + d] = d as u8;
        d += 1;
    }
    t[b'=' as usize] = 0x0D;
    t[b'D' as usize] = 0x0D;
    t
};

/// Packs text digits (and `=` for track data) into BCD, with the `x+n` sign
/// byte first. The value has been class-checked.
pub fn bcd_encode(value: &[u8], class: Class, padding: Padding, out: &mut impl Output) {
    let (sign, digits) = match value.split_first() {
        Some((s, rest)) if class == Class::Xn => (Some(*s), rest),
        _ => (None, value),
    };
    let odd = digits.len() % 2 == 1;
    let dst = out.grow(usize::from(sign.is_some()) + digits.len().div_ceil(2));
    let mut dst = dst.iter_mut();
    if let Some(s) = sign
        && let Some(d) = dst.next()
    {
        *d = s;
    }
    let nibble = |c: u8| BCD_NIBBLE[usize::from(c)];
    let mut rest = digits;
    if odd
        && padding == Padding::Left
        && let Some((&first, tail)) = rest.split_first()
        && let Some(d) = dst.next()
    {
        *d = nibble(first);
        rest = tail;
    }
    let pairs = rest.chunks_exact(2);
    let last = pairs.remainder();
    // `pairs` leads the zip so that `dst` is not advanced past the last pair.
    for (two, d) in pairs.zip(dst.by_ref()) {
        *d = (nibble(two[0]) << 4) | nibble(two[1]);
    }
    if let (Some(&c), Some(d)) = (last.first(), dst.next()) {
        let pad = if padding == Padding::RightF { 0x0F } else { 0 };
        *d = (nibble(c) << 4) | pad;
    }
}

/// Value of each byte as a hex digit, 0xFF when it is not one.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'A' as usize + i] = 10 + i as u8;
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Decodes hexadecimal text (either case) into bytes.
pub fn hex_decode(wire: &[u8], out: &mut impl Output) -> Result<(), WireFault> {
    if wire.len() % 2 == 1 {
        return Err(WireFault::Hex(wire.len() - 1));
    }
    let start = out.written();
    if !swar::hex_decode_into(wire, out.grow(wire.len() / 2)) {
        out.truncate_to(start);
        let position = wire
            .iter()
            .position(|&c| HEX_VALUE[usize::from(c)] == 0xFF)
            .unwrap_or(0);
        return Err(WireFault::Hex(position));
    }
    Ok(())
}

#[inline]
pub fn hex_value(c: u8) -> Option<u8> {
    let v = HEX_VALUE[usize::from(c)];
    (v != 0xFF).then_some(v)
}

/// Encodes bytes as uppercase hexadecimal text.
pub fn hex_encode(value: &[u8], out: &mut impl Output) {
    for (pair, &b) in out.grow(value.len() * 2).chunks_exact_mut(2).zip(value) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
}

/// Each byte's two uppercase hex digits: one look-up per byte.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut table = [[0u8; 2]; 256];
    let mut b = 0usize;
    while b < 256 {
        table[b] = [DIGITS[b >> 4], DIGITS[b & 0x0F]];
        b += 1;
    }
    table
};

/// Appends text converted to EBCDIC.
pub fn ebcdic_encode(value: &[u8], out: &mut impl Output) {
    out.put_mapped(value, &ebcdic::LATIN1_TO_CP500);
}

/// Appends EBCDIC converted to text.
pub fn ebcdic_decode(wire: &[u8], out: &mut impl Output) {
    out.put_mapped(wire, &ebcdic::CP500_TO_LATIN1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ebcdic_prefix_reads_as_its_transcoded_digits_and_nothing_else() {
        for b in 0..=255u8 {
            let by_table = [ebcdic::byte_to_latin1(b)];
            assert_eq!(
                read_prefix(&[b], Encoding::Ebcdic),
                read_prefix(&by_table, Encoding::Ascii),
                "byte {b:#04x}"
            );
        }
    }

    #[test]
    fn text_prefixes_are_zero_padded_decimals_read_back_as_written() {
        for digits in 1..=4u8 {
            for len in [0, 1, 7, 9, 10, 42, 99, 100, 999, 1000, 9999] {
                if len >= 10usize.pow(u32::from(digits)) {
                    continue;
                }
                let ascii = format!("{len:0width$}", width = usize::from(digits));
                for encoding in [Encoding::Ascii, Encoding::Ebcdic] {
                    let mut out = Vec::new();
                    write_prefix(len, digits, encoding, &mut out);
                    let mut expected = ascii.clone().into_bytes();
                    if encoding == Encoding::Ebcdic {
                        ebcdic::from_latin1(&mut expected);
                    }
                    assert_eq!(out, expected, "{len} in {digits} {encoding:?} digits");
                    assert_eq!(read_prefix(&out, encoding), Some(len));
                }
            }
        }
    }

    #[test]
    fn bcd_paddings_round_trip() {
        for (padding, wire) in [
            (Padding::Left, vec![0x01, 0x23]),
            (Padding::Right, vec![0x12, 0x30]),
            (Padding::RightF, vec![0x12, 0x3F]),
        ] {
            let mut out = BytesMut::new();
            bcd_encode(b"123", Class::N, padding, &mut out);
            assert_eq!(&out[..], &wire[..], "{padding:?}");
            let mut text = BytesMut::new();
            bcd_decode(&wire, 3, Class::N, padding, &mut text).expect("decode");
            assert_eq!(&text[..], b"123");
        }
    }

    #[test]
    fn bcd_rejects_bad_nibbles_and_pads() {
        let mut out = BytesMut::new();
        assert_eq!(
            bcd_decode(&[0x1A], 2, Class::N, Padding::Left, &mut out),
            Err(WireFault::Bcd(0))
        );
        assert_eq!(
            bcd_decode(&[0x11, 0x23], 3, Class::N, Padding::Left, &mut out),
            Err(WireFault::Bcd(0))
        );
        let mut t = BytesMut::new();
        bcd_decode(&[0x41, 0xD2], 4, Class::Z, Padding::Left, &mut t).expect("track 2");
        assert_eq!(&t[..], b"41=2");
    }

    #[test]
    fn prefixes_in_every_encoding() {
        for enc in [
            Encoding::Ascii,
            Encoding::Ebcdic,
            Encoding::Bcd,
            Encoding::Binary,
        ] {
            for digits in [2u8, 3, 4] {
                let mut out = BytesMut::new();
                write_prefix(99, digits, enc, &mut out);
                assert_eq!(out.len(), prefix_bytes(digits, enc));
                assert_eq!(read_prefix(&out, enc), Some(99), "{enc} {digits}");
            }
        }
        assert_eq!(read_prefix(b"1a", Encoding::Ascii), None);
    }

    #[test]
    fn hex_round_trip_and_fault_position() {
        let mut out = BytesMut::new();
        hex_encode(&[0x9F, 0x26], &mut out);
        assert_eq!(&out[..], b"9F26");
        let mut back = BytesMut::new();
        hex_decode(b"9f26", &mut back).expect("hex");
        assert_eq!(&back[..], &[0x9F, 0x26]);
        assert_eq!(hex_decode(b"9G", &mut back), Err(WireFault::Hex(1)));
    }
}
