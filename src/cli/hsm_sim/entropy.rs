//! The simulator's randomness (key material for A0, PIN block fill):
//! operating-system random bytes fetched 4 KiB at a time, one `getrandom`
//! call per 128 commands instead of one per command. Bytes handed out are
//! zeroed in the pool, so it never keeps what a command used.

use std::sync::Mutex;

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;

use crate::hsm::sim::Random;
use crate::hsm::soft::Secret;

const POOL_BYTES: usize = 4096;

/// A pool of OS randomness.
pub(super) struct Entropy(Mutex<Pool>);

struct Pool {
    bytes: Box<Secret<POOL_BYTES>>,
    /// Bytes handed out from the front of `bytes`.
    used: usize,
}

impl Entropy {
    pub(super) fn new() -> Entropy {
        Entropy(Mutex::new(Pool {
            bytes: Box::new(Secret::zeroed()),
            used: POOL_BYTES,
        }))
    }

    /// The next 32 random bytes.
    pub(super) fn next(&self) -> Random {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = Random::zeroed().expose().len();
        if pool.used + n > POOL_BYTES {
            OsRng.fill_bytes(pool.bytes.expose_mut());
            pool.used = 0;
        }
        let at = pool.used;
        let mut out = Random::zeroed();
        let taken = &mut pool.bytes.expose_mut()[at..at + n];
        out.expose_mut().copy_from_slice(taken);
        taken.fill(0);
        pool.used += n;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_and_the_pool_refills() {
        let e = Entropy::new();
        let draws: Vec<[u8; 32]> = (0..300).map(|_| *e.next().expose()).collect();
        for (i, a) in draws.iter().enumerate() {
            assert!(draws[i + 1..].iter().all(|b| b != a), "draw {i} repeated");
        }
        let pool = e.0.lock().unwrap();
        assert!(pool.bytes.expose()[..pool.used].iter().all(|&b| b == 0));
    }
}
