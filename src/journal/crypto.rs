//! Card data at rest (PCI DSS 3.5.1): PANs and queued messages are sealed
//! with AES-256-GCM under a key named by a key id stored beside each row
//! (so keys can rotate), and looked up by a keyed hash (HMAC-SHA-256 over
//! the whole PAN, 3.5.1.1). Keys come from a key file or an environment
//! variable, never from the database; they are zeroized when dropped.
//!
//! Each configured secret is a master key; the sealing key and the look-up
//! key are derived from it with HMAC under distinct labels, so one secret
//! never serves two purposes.

use std::collections::BTreeMap;
use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, AeadInPlace, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::private_file::read_private;

/// The environment variable holding one key as `ID:HEX64`.
pub const KEY_ENV: &str = "CARDSWITCH_JOURNAL_KEY";
const NONCE_BYTES: usize = 12;
const KEY_ID_BYTES_MAX: usize = 32;
/// A key file holds a few keys of 64 hex digits; anything larger is not one.
const KEY_FILE_BYTES_MAX: u64 = 64 * 1024;

/// Why keys could not be loaded or data not opened. Never carries key or
/// card material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error(
        "no journal key: give --journal-key-file FILE or set {KEY_ENV}=ID:HEX (64 hex digits); `cardswitch journal keygen FILE` makes one"
    )]
    Missing,
    #[error("key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("{KEY_ENV}: {0}")]
    Env(String),
    #[error("the journal holds data sealed with key id '{0}', which the key file does not provide")]
    UnknownKey(String),
    #[error("wrong key for key id '{0}': it does not match the key that sealed this journal")]
    WrongKey(String),
    #[error("sealed data under key id '{key_id}' does not authenticate (corrupt or tampered)")]
    Unauthentic { key_id: String },
}

type HmacSha256 = Hmac<Sha256>;

fn derive(master: &[u8; 32], label: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(label);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// The bytes [`Keyring::seal_into`] appends for `plain_len` bytes: nonce,
/// ciphertext, tag.
pub const fn sealed_len(plain_len: usize) -> usize {
    NONCE_BYTES + plain_len + 16
}

/// Sealed bytes and the id of the key that sealed them.
pub struct Sealed<'a> {
    pub key_id: &'a str,
    /// nonce (12 bytes) || ciphertext || tag (16 bytes)
    pub blob: Vec<u8>,
}

/// The journal's keys.
pub struct Keyring {
    /// key id -> sealing cipher (key derived; schedule zeroized on drop).
    seal_keys: BTreeMap<String, Aes256Gcm>,
    /// key id -> check value, computed once.
    checks: BTreeMap<String, [u8; 32]>,
    current: String,
    lookup_id: String,
    /// HMAC keyed with the look-up key once (its inner and outer pads
    /// hashed), cloned per PAN: two SHA-256 blocks fewer per hash.
    lookup_mac: LookupMac,
}

/// The look-up key's HMAC state (as good as the key): the hmac crate does
/// not zeroize, so it is overwritten with a state keyed by zeros on drop.
struct LookupMac(HmacSha256);

impl Drop for LookupMac {
    fn drop(&mut self) {
        self.0 =
            <HmacSha256 as Mac>::new_from_slice(&[0u8; 32]).expect("HMAC takes any key length");
        // The overwrite is read, so it is not dropped as a dead store.
        std::hint::black_box(&self.0);
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.seal_keys.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish()
    }
}

fn parse_key_hex(text: &str) -> Result<Zeroizing<[u8; 32]>, String> {
    let text = text.trim();
    if text.len() != 64 {
        return Err(format!("a key is 64 hex digits, found {}", text.len()));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text, &mut key[..]).map_err(|_| "a key is hex digits".to_string())?;
    Ok(key)
}

fn check_key_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= KEY_ID_BYTES_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "key id '{id}' must be 1-{KEY_ID_BYTES_MAX} letters, digits, '-' or '_'"
        ))
    }
}

impl Keyring {
    /// Builds a keyring from master keys; `current` seals new data and
    /// `lookup` keys the PAN hash (kept stable across rotations).
    pub fn new(
        masters: BTreeMap<String, Zeroizing<[u8; 32]>>,
        current: &str,
        lookup: &str,
    ) -> Result<Keyring, String> {
        for id in masters.keys() {
            check_key_id(id)?;
        }
        let lookup_master = masters
            .get(lookup)
            .ok_or_else(|| format!("lookup key id '{lookup}' is not among the keys"))?;
        if !masters.contains_key(current) {
            return Err(format!("current key id '{current}' is not among the keys"));
        }
        let lookup_key = derive(lookup_master, b"cardswitch journal pan lookup v1");
        let mut seal_keys = BTreeMap::new();
        let mut checks = BTreeMap::new();
        for (id, master) in &masters {
            let key = derive(master, b"cardswitch journal seal v1");
            checks.insert(id.clone(), *derive(&key, b"cardswitch key check v1"));
            let cipher = Aes256Gcm::new_from_slice(&key[..]).expect("32-byte key");
            seal_keys.insert(id.clone(), cipher);
        }
        checks.insert(
            format!("lookup:{lookup}"),
            *derive(&lookup_key, b"cardswitch key check v1"),
        );
        let lookup_mac = LookupMac(
            <HmacSha256 as Mac>::new_from_slice(&lookup_key[..])
                .expect("HMAC takes any key length"),
        );
        Ok(Keyring {
            seal_keys,
            checks,
            current: current.to_string(),
            lookup_id: lookup.to_string(),
            lookup_mac,
        })
    }

    /// Reads a key file (TOML):
    ///
    /// ```toml
    /// current = "k2"      # seals new data
    /// lookup = "k1"       # keys the PAN hash; defaults to current
    /// [keys]
    /// k1 = "64 hex digits"
    /// k2 = "64 hex digits"
    /// ```
    pub fn from_file(path: &Path) -> Result<Keyring, CryptoError> {
        let fail = |reason: String| CryptoError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let bytes = read_private(path, KEY_FILE_BYTES_MAX).map_err(fail)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| fail("not UTF-8 text".into()))?;
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            current: String,
            lookup: Option<String>,
            keys: BTreeMap<String, String>,
        }
        let mut file: File = toml::from_str(text).map_err(|e| fail(e.message().to_string()))?;
        let mut masters = BTreeMap::new();
        for (id, hex_text) in &mut file.keys {
            let key = parse_key_hex(hex_text).map_err(|r| fail(format!("key '{id}': {r}")))?;
            zeroize::Zeroize::zeroize(hex_text);
            masters.insert(id.clone(), key);
        }
        let lookup = file.lookup.clone().unwrap_or_else(|| file.current.clone());
        Keyring::new(masters, &file.current, &lookup).map_err(fail)
    }

    /// Reads one key from `ID:HEX64` (the environment variable's form).
    pub fn from_env_value(value: &str) -> Result<Keyring, CryptoError> {
        let (id, hex_text) = value
            .split_once(':')
            .ok_or_else(|| CryptoError::Env("expected ID:HEX64".into()))?;
        let key = parse_key_hex(hex_text).map_err(CryptoError::Env)?;
        let masters = BTreeMap::from([(id.to_string(), key)]);
        Keyring::new(masters, id, id).map_err(CryptoError::Env)
    }

    /// The key file if given, else the environment variable, else an error.
    pub fn load(file: Option<&Path>) -> Result<Keyring, CryptoError> {
        if let Some(path) = file {
            return Keyring::from_file(path);
        }
        match std::env::var(KEY_ENV) {
            Ok(value) => Keyring::from_env_value(&Zeroizing::new(value)),
            Err(_) => Err(CryptoError::Missing),
        }
    }

    /// A new key file's text with one random key.
    pub fn generate_file_text(key_id: &str) -> Result<Zeroizing<String>, String> {
        check_key_id(key_id)?;
        let key = Aes256Gcm::generate_key(&mut OsRng);
        Ok(Zeroizing::new(format!(
            "# cardswitch journal keys: keep this file out of the database's backups.\ncurrent = \"{key_id}\"\n[keys]\n{key_id} = \"{}\"\n",
            hex::encode(key.as_slice())
        )))
    }

    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Key ids this keyring can open, with the look-up key as `lookup:ID`.
    pub fn key_ids(&self) -> impl Iterator<Item = String> + '_ {
        self.seal_keys
            .keys()
            .cloned()
            .chain(std::iter::once(format!("lookup:{}", self.lookup_id)))
    }

    /// A value that proves which key is behind `key_id` without revealing it.
    pub fn check_value(&self, key_id: &str) -> Option<[u8; 32]> {
        self.checks.get(key_id).copied()
    }

    /// Seals `plain` under the current key; `purpose` is bound in as
    /// associated data so a sealed PAN cannot pass for a sealed message.
    pub fn seal(&self, purpose: &[u8], plain: &[u8]) -> Sealed<'_> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        self.seal_with_nonce(purpose, plain, nonce.into())
    }

    /// [`Keyring::seal`] with a nonce the caller drew at random (from a
    /// [`NoncePool`]); a nonce must never serve twice under one key.
    pub fn seal_with_nonce(&self, purpose: &[u8], plain: &[u8], nonce: [u8; 12]) -> Sealed<'_> {
        let mut blob = Vec::with_capacity(sealed_len(plain.len()));
        let key_id = self.seal_into(purpose, plain, nonce, &mut blob);
        Sealed { key_id, blob }
    }

    /// [`Keyring::seal_with_nonce`] appending `nonce || ciphertext || tag`
    /// ([`sealed_len`] bytes) to `out`, encrypted in place there: no
    /// buffer of its own. The id of the key that sealed.
    pub fn seal_into(
        &self,
        purpose: &[u8],
        plain: &[u8],
        nonce: [u8; 12],
        out: &mut Vec<u8>,
    ) -> &str {
        let cipher = &self.seal_keys[&self.current];
        let mut aad = [0u8; 16 + 1 + KEY_ID_BYTES_MAX];
        let aad_len = purpose.len() + 1 + self.current.len();
        let aad: std::borrow::Cow<'_, [u8]> = if aad_len <= aad.len() {
            aad[..purpose.len()].copy_from_slice(purpose);
            aad[purpose.len()] = b'/';
            aad[purpose.len() + 1..aad_len].copy_from_slice(self.current.as_bytes());
            std::borrow::Cow::Borrowed(&aad[..aad_len])
        } else {
            std::borrow::Cow::Owned([purpose, b"/", self.current.as_bytes()].concat())
        };
        out.reserve(sealed_len(plain.len()));
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut out[start..])
            .expect("AES-GCM encryption of a bounded buffer");
        out.extend_from_slice(&tag);
        &self.current
    }

    /// Opens what `seal` sealed.
    pub fn open(
        &self,
        purpose: &[u8],
        key_id: &str,
        blob: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let cipher = self
            .seal_keys
            .get(key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_string()))?;
        let unauthentic = || CryptoError::Unauthentic {
            key_id: key_id.to_string(),
        };
        if blob.len() < NONCE_BYTES + 16 {
            return Err(unauthentic());
        }
        let (nonce, sealed) = blob.split_at(NONCE_BYTES);
        let aad = [purpose, b"/", key_id.as_bytes()].concat();
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| unauthentic())
    }

    /// The keyed look-up hash of a whole PAN.
    pub fn pan_hash(&self, pan: &[u8]) -> [u8; 32] {
        let mut mac = self.lookup_mac.0.clone();
        mac.update(pan);
        mac.finalize().into_bytes().into()
    }
}

/// Random nonces drawn from the operating system a batch at a time, so
/// sealing does not make a system call per value.
pub struct NoncePool {
    bytes: Zeroizing<Vec<u8>>,
    used: usize,
}

/// Nonces drawn per system call.
const NONCE_POOL_NONCES: usize = 256;

impl Default for NoncePool {
    fn default() -> NoncePool {
        NoncePool::new()
    }
}

impl NoncePool {
    pub fn new() -> NoncePool {
        let bytes = Zeroizing::new(vec![0u8; NONCE_BYTES * NONCE_POOL_NONCES]);
        NoncePool {
            used: bytes.len(),
            bytes,
        }
    }

    /// A fresh random nonce (each handed out once).
    pub fn draw(&mut self) -> [u8; 12] {
        use aes_gcm::aead::rand_core::RngCore;
        if self.used == self.bytes.len() {
            OsRng.fill_bytes(&mut self.bytes);
            self.used = 0;
        }
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&self.bytes[self.used..self.used + NONCE_BYTES]);
        // Handed out: wiped so it cannot be handed out again by mistake.
        self.bytes[self.used..self.used + NONCE_BYTES].fill(0);
        self.used += NONCE_BYTES;
        nonce
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_key_file(path: &Path, text: &str) {
        use std::io::Write;
        let mut file = crate::private_file::create_private(path).unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    fn ring(id: &str, byte: u8) -> Keyring {
        Keyring::from_env_value(&format!("{id}:{}", hex::encode([byte; 32]))).unwrap()
    }

    #[test]
    fn seals_and_opens_and_detects_tampering() {
        let k = ring("k1", 7);
        let sealed = k.seal(b"pan", b"4000000000000002");
        assert!(!sealed.blob.windows(16).any(|w| w == b"4000000000000002"));
        let id = sealed.key_id.to_string();
        assert_eq!(
            &k.open(b"pan", &id, &sealed.blob).unwrap()[..],
            b"4000000000000002"
        );
        // Another purpose, a flipped bit or another key does not open it.
        assert!(k.open(b"message", &id, &sealed.blob).is_err());
        let mut bad = sealed.blob.clone();
        bad[20] ^= 1;
        assert!(matches!(
            k.open(b"pan", &id, &bad),
            Err(CryptoError::Unauthentic { .. })
        ));
        assert!(ring("k1", 8).open(b"pan", &id, &sealed.blob).is_err());
        assert!(matches!(
            k.open(b"pan", "k9", &sealed.blob),
            Err(CryptoError::UnknownKey(_))
        ));
        assert!(k.open(b"pan", &id, &sealed.blob[..5]).is_err());
    }

    #[test]
    fn pooled_nonces_differ_and_seal_like_seal() {
        let k = ring("k1", 6);
        let mut pool = NoncePool::new();
        let nonces: std::collections::HashSet<[u8; 12]> =
            (0..3 * NONCE_POOL_NONCES).map(|_| pool.draw()).collect();
        assert_eq!(nonces.len(), 3 * NONCE_POOL_NONCES);
        let sealed = k.seal_with_nonce(b"pan", b"4000000000000002", pool.draw());
        assert_eq!(
            &k.open(b"pan", "k1", &sealed.blob).unwrap()[..],
            b"4000000000000002"
        );
        assert!(k.open(b"message", "k1", &sealed.blob).is_err());
    }

    #[test]
    fn lookup_hash_is_keyed_and_stable() {
        let a = ring("k1", 1);
        assert_eq!(
            a.pan_hash(b"4000000000000002"),
            ring("k1", 1).pan_hash(b"4000000000000002")
        );
        assert_ne!(
            a.pan_hash(b"4000000000000002"),
            ring("k1", 2).pan_hash(b"4000000000000002")
        );
        assert_ne!(
            a.pan_hash(b"4000000000000002"),
            a.pan_hash(b"4000000000000010")
        );
        assert_ne!(a.check_value("k1"), ring("k1", 2).check_value("k1"));
    }

    #[test]
    fn key_file_rotation_and_errors() {
        let dir = crate::test_dir::TempDir::new("keys");
        let path = dir.join("keys.toml");
        let old = ring("k1", 3);
        let sealed_old = old.seal(b"pan", b"5500000000000004").blob;
        write_key_file(
            &path,
            &format!(
                "current = \"k2\"\nlookup = \"k1\"\n[keys]\nk1 = \"{}\"\nk2 = \"{}\"\n",
                hex::encode([3u8; 32]),
                hex::encode([4u8; 32])
            ),
        );
        let k = Keyring::from_file(&path).unwrap();
        assert_eq!(k.current_key_id(), "k2");
        assert_eq!(
            &k.open(b"pan", "k1", &sealed_old).unwrap()[..],
            b"5500000000000004"
        );
        assert_eq!(k.pan_hash(b"1"), old.pan_hash(b"1"));
        write_key_file(&path, "current = \"k1\"\n[keys]\nk1 = \"abc\"\n");
        let e = Keyring::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("64 hex digits"), "{e}");
        write_key_file(&path, &Keyring::generate_file_text("fresh").unwrap());
        assert_eq!(Keyring::from_file(&path).unwrap().current_key_id(), "fresh");
        // The same key, readable by every account: refused, naming the mode.
        std::fs::write(
            dir.join("open.toml"),
            &*Keyring::generate_file_text("open").unwrap(),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let open = dir.join("open.toml");
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = Keyring::from_file(&open).unwrap_err().to_string();
            assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
            assert!(!e.contains("[keys]"), "{e}");
        }
        assert!(Keyring::from_env_value("nocolon").is_err());
    }
}
