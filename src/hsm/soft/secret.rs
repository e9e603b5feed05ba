//! Fixed-size buffers for keys, PINs, PIN blocks and card verification
//! values: zeroized when dropped, shown as `Secret<N>(..)` by `Debug`, and
//! compared in constant time, so that no log line, error text or timing
//! gives their bytes away.

use std::fmt;

use zeroize::Zeroize;

/// `N` secret bytes.
#[derive(Clone)]
pub struct Secret<const N: usize>([u8; N]);

impl<const N: usize> Secret<N> {
    /// Takes the bytes (the caller's copy should be zeroized by the caller).
    pub fn new(bytes: [u8; N]) -> Self {
        Secret(bytes)
    }

    /// All zeros: a buffer to fill in place.
    pub fn zeroed() -> Self {
        Secret([0; N])
    }

    /// The bytes, for the cryptography that needs them.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }

    /// The bytes, mutable, for filling in place.
    pub fn expose_mut(&mut self) -> &mut [u8; N] {
        &mut self.0
    }

    /// Upper-case hex of the bytes, for the wire (a PIN block in a host
    /// command): the text is as secret as the bytes.
    pub fn to_hex(&self) -> String {
        hex::encode_upper(self.0)
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl<const N: usize> Drop for Secret<N> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret<{N}>(..)")
    }
}

/// Equality of two byte strings in time that depends only on their
/// lengths: MAC, ARQC and CVV checks must not tell how many bytes matched.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from ending the fold at the first
    // difference.
    std::hint::black_box(diff) == 0
}

/// Decodes hex into a fixed array, for keys and blocks given as text.
pub(crate) fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let s = Secret::new([0x12, 0x34, 0xAB]);
        let shown = format!("{s:?}");
        assert_eq!(shown, "Secret<3>(..)");
        assert!(!shown.contains("12") && !shown.contains("AB"));
    }

    #[test]
    fn ct_eq_compares_lengths_and_bytes() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(Secret::new([1u8, 2]).ct_eq(&Secret::new([1, 2])));
    }
}
