//! A DUKPT terminal (ANSI X9.24-1 annex A, the PIN entry device's side):
//! it holds the IPEK only until it has derived its 21 future keys, then
//! keeps one future key per counter bit and derives each next key from the
//! current one, so it never holds a key that could give back an earlier
//! one. Counters with more than 10 one bits are skipped, as the standard
//! does. The host derives the same keys from the BDK (`dukpt::host_key`);
//! the load generator's terminals use this.

use std::fmt;

use super::dukpt::{COUNTER_MASK, COUNTER_ONES_MAX, KeyUsage, Ksn, nrkgp, usage_key};
use super::error::CryptoError;
use super::keys::TdesKey;

/// The number of future key registers: one per counter bit.
const REGISTERS: usize = 21;

/// A terminal's DUKPT state: its KSN (with the counter of the current
/// key) and the future key registers.
#[derive(Clone)]
pub struct Terminal {
    ksn: Ksn,
    future: [Option<TdesKey>; REGISTERS],
}

impl fmt::Debug for Terminal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Terminal({:?}, ..)", self.ksn)
    }
}

/// The lowest set bit's position (the counter is never 0 here).
fn lowest_bit(c: u32) -> usize {
    c.trailing_zeros() as usize
}

impl Terminal {
    /// A terminal loaded with its initial key and KSN (the counter is
    /// cleared): it derives the future keys and erases the IPEK, leaving
    /// counter 1 current.
    pub fn load(ipek: &TdesKey, ksn: &Ksn) -> Result<Terminal, CryptoError> {
        ipek.require(super::keys::DesKeyLength::Double)?;
        let ksn = ksn.with_counter(0);
        let mut t = Terminal {
            ksn,
            future: std::array::from_fn(|_| None),
        };
        t.fill_below(ipek, 0, REGISTERS);
        t.ksn = ksn.with_counter(1);
        Ok(t)
    }

    /// Fills future registers `0..top` from `key`, the key of `counter`.
    fn fill_below(&mut self, key: &TdesKey, counter: u32, top: usize) {
        let base = self.ksn.base_register() | u64::from(counter);
        for bit in (0..top).rev() {
            self.future[bit] = Some(nrkgp(key, base | (1u64 << bit)));
        }
    }

    /// The KSN to send with the current key.
    pub fn ksn(&self) -> Ksn {
        self.ksn
    }

    /// The current transaction key (the future register of the counter's
    /// lowest set bit).
    fn current(&self) -> Result<&TdesKey, CryptoError> {
        let c = self.ksn.counter();
        if c == 0 {
            return Err(CryptoError::Exhausted);
        }
        self.future[lowest_bit(c)]
            .as_ref()
            .ok_or(CryptoError::Exhausted)
    }

    /// The current key's `usage` variant, with the KSN to send with it.
    pub fn key(&self, usage: KeyUsage) -> Result<(Ksn, TdesKey), CryptoError> {
        Ok((self.ksn, usage_key(self.current()?, usage)))
    }

    /// Ends the current key: derives the future keys below it (when its
    /// counter has fewer than 10 one bits), erases it, and moves to the
    /// next counter that has a key.
    pub fn advance(&mut self) -> Result<(), CryptoError> {
        let c = self.ksn.counter();
        let current = self.current()?.clone();
        let low = lowest_bit(c);
        if c.count_ones() < COUNTER_ONES_MAX {
            self.fill_below(&current, c, low);
            self.future[low] = None;
            self.ksn = self.ksn.with_counter(c + 1);
        } else {
            // No keys below this one: skip to the next counter whose key an
            // ancestor already derived.
            self.future[low] = None;
            let next = c + (1 << low);
            if next > COUNTER_MASK {
                self.ksn = self.ksn.with_counter(0);
                return Err(CryptoError::Exhausted);
            }
            self.ksn = self.ksn.with_counter(next);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::dukpt::{host_key, ipek};
    use super::*;

    #[test]
    fn terminal_keys_are_the_hosts_for_the_first_counters() {
        let bdk = TdesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let ksn = Ksn::from_hex("FFFF9876543210E00000").unwrap();
        let mut t = Terminal::load(&ipek(&bdk, &ksn).unwrap(), &ksn).unwrap();
        for expected in 1..=300u32 {
            let (sent, key) = t.key(KeyUsage::Pin).unwrap();
            assert_eq!(sent.counter(), expected);
            let host = host_key(&bdk, &sent, KeyUsage::Pin).unwrap();
            assert_eq!(key.as_bytes(), host.as_bytes(), "counter {expected}");
            t.advance().unwrap();
        }
    }

    #[test]
    fn terminal_skips_counters_with_more_than_ten_ones() {
        let bdk = TdesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let ksn = Ksn::from_hex("FFFF9876543210E00000").unwrap();
        let mut t = Terminal::load(&ipek(&bdk, &ksn).unwrap(), &ksn).unwrap();
        // Walk to 0x3FF (ten ones) and past it: 0x400 comes next.
        let mut steps = 0;
        while t.ksn().counter() < 0x3FF {
            t.advance().unwrap();
            steps += 1;
        }
        assert_eq!(
            steps, 0x3FE,
            "every counter below 0x3FF has at most ten ones"
        );
        t.advance().unwrap();
        assert_eq!(t.ksn().counter(), 0x400);
        let (sent, key) = t.key(KeyUsage::MacRequest).unwrap();
        let host = host_key(&bdk, &sent, KeyUsage::MacRequest).unwrap();
        assert_eq!(key.as_bytes(), host.as_bytes());
    }
}
