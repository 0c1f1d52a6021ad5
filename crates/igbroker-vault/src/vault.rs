//! Sealing and opening values with AES-256-GCM under the ring's keys.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use aes_gcm::aead::{self, AeadInOut as _, Generate as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Key};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::provider::KeyProvider;
use crate::ring::KeyRing;

/// The first byte of every sealed value.
pub const FORMAT_VERSION: u8 = 1;
/// Format byte + big-endian key version.
pub const HEADER_LEN: usize = 1 + 4;
/// AES-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed value adds to its plaintext (header, nonce and tag): 33.
pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

type Nonce = aead::Nonce<Aes256Gcm>;
type Tag = aead::Tag<Aes256Gcm>;

/// Where a sealed value lives; bound into its associated data, so a value copied to another
/// table, row or column does not open.
///
/// `row_id` should be the broker-generated id of the row (stable for the row's life).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aad<'a> {
    /// Table name, e.g. `"accounts"`.
    pub table: &'a str,
    /// The row's broker id, e.g. `"acc_0190…"`.
    pub row_id: &'a str,
    /// Column name, e.g. `"access_token"`.
    pub column: &'a str,
}

impl<'a> Aad<'a> {
    /// Shorthand for the struct literal.
    #[must_use]
    pub fn new(table: &'a str, row_id: &'a str, column: &'a str) -> Aad<'a> {
        Aad {
            table,
            row_id,
            column,
        }
    }

    /// The AEAD associated data: `header (5 bytes) ‖ len(table) ‖ table ‖ len(row_id) ‖ row_id
    /// ‖ len(column) ‖ column`, lengths as u64 big-endian.
    fn encode(&self, header: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            header.len() + 24 + self.table.len() + self.row_id.len() + self.column.len(),
        );
        out.extend_from_slice(header);
        for part in [self.table, self.row_id, self.column] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

/// The parts of a sealed value.
struct Parsed<'s> {
    header: &'s [u8],
    key_version: u32,
    nonce: Nonce,
    ciphertext: &'s [u8],
    tag: Tag,
}

fn parse(sealed: &[u8]) -> Result<Parsed<'_>, VaultError> {
    if sealed.len() < OVERHEAD {
        return Err(VaultError::Malformed(format!(
            "it is {} bytes long, shorter than the {OVERHEAD} bytes of header, nonce and tag: it \
             was truncated or was never sealed by igbroker; restore it from a backup or enter the \
             secret again",
            sealed.len()
        )));
    }
    let (header, rest) = sealed.split_at(HEADER_LEN);
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let [format, v0, v1, v2, v3] = *header else {
        return Err(VaultError::Malformed(
            "its header is incomplete; restore it from a backup or enter the secret again"
                .to_owned(),
        ));
    };
    if format != FORMAT_VERSION {
        return Err(VaultError::Malformed(format!(
            "it has format version {format}, but this igbroker reads only format \
             {FORMAT_VERSION}: if a newer igbroker wrote it, upgrade this one; otherwise it was \
             damaged: restore it from a backup or enter the secret again"
        )));
    }
    let malformed = |_| {
        VaultError::Malformed(
            "its nonce or tag is truncated; restore it from a backup or enter the secret again"
                .to_owned(),
        )
    };
    Ok(Parsed {
        header,
        key_version: u32::from_be_bytes([v0, v1, v2, v3]),
        nonce: Nonce::try_from(nonce).map_err(malformed)?,
        ciphertext,
        tag: Tag::try_from(tag).map_err(malformed)?,
    })
}

/// The key version that sealed `sealed`, read from its header (nothing is decrypted).
///
/// Fails with [`VaultError::Malformed`] when the value is too short to be sealed or has an
/// unknown format version.
pub fn sealed_key_version(sealed: &[u8]) -> Result<u32, VaultError> {
    parse(sealed).map(|p| p.key_version)
}

struct Inner {
    ring: KeyRing,
    current: u32,
    ciphers: BTreeMap<u32, Aes256Gcm>,
}

impl Inner {
    fn new(ring: KeyRing) -> Inner {
        let ciphers = ring
            .iter_keys()
            .map(|(version, key)| {
                let key: &Key<Aes256Gcm> = key.expose_secret().into();
                (version, Aes256Gcm::new(key))
            })
            .collect();
        Inner {
            current: ring.current_version(),
            ring,
            ciphers,
        }
    }
}

/// Seals and opens values under a [`KeyRing`]. Cheap to clone (an `Arc` inside), `Send + Sync`.
/// Clones share one ring: [`Vault::replace_ring`] on any of them (a running broker reloading
/// its ring file after `keys add` / `keys rotate`) is seen by all.
///
/// Layout of a sealed value, AES-256-GCM with a random 96-bit nonce per seal:
///
/// ```text
/// format version (1 byte = 1) | key version (u32 big-endian) | nonce (12) | ciphertext | tag (16)
/// ```
///
/// The associated data is the 5 header bytes followed by table, row id and column, each
/// prefixed with its length as a big-endian u64. So a value moved to another row or column,
/// or with its header edited, fails to open with [`VaultError::Tampered`].
#[derive(Clone)]
pub struct Vault {
    shared: Arc<RwLock<Arc<Inner>>>,
}

impl Vault {
    /// A vault over `ring`: the current key seals, every key (active and retired too) opens.
    #[must_use]
    pub fn new(ring: KeyRing) -> Vault {
        Vault {
            shared: Arc::new(RwLock::new(Arc::new(Inner::new(ring)))),
        }
    }

    /// One consistent view of the ring for the length of an operation, so a concurrent
    /// [`Vault::replace_ring`] never mixes two rings within one seal or open.
    fn inner(&self) -> Arc<Inner> {
        // The lock guards a pointer swap that cannot panic half-way, so a poisoned lock still
        // holds a valid ring.
        self.shared
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Switches this vault and every clone of it to `ring` (values sealed from now on use its
    /// current key). Used by a running broker to pick up `keys add` / `keys rotate` without a
    /// restart; the caller decides whether the new ring is acceptable.
    pub fn replace_ring(&self, ring: KeyRing) {
        let next = Arc::new(Inner::new(ring));
        *self.shared.write().unwrap_or_else(PoisonError::into_inner) = next;
    }

    /// A vault over the ring `provider` supplies.
    pub fn from_provider(provider: &dyn KeyProvider) -> Result<Vault, VaultError> {
        provider.ring().map(Vault::new)
    }

    /// The version new values are sealed under.
    #[must_use]
    pub fn current_version(&self) -> u32 {
        self.inner().current
    }

    /// A copy of the ring this vault uses now.
    #[must_use]
    pub fn ring(&self) -> KeyRing {
        self.inner().ring.clone()
    }

    /// Whether the vault can open values sealed under `version`.
    #[must_use]
    pub fn holds(&self, version: u32) -> bool {
        self.inner().ciphers.contains_key(&version)
    }

    /// Seals `plaintext` under the current key, bound to `aad`.
    pub fn seal(&self, aad: &Aad<'_>, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let inner = self.inner();
        let version = inner.current;
        let cipher = inner
            .ciphers
            .get(&version)
            .ok_or(VaultError::UnknownKeyVersion(version))?;
        let nonce = Nonce::try_generate().map_err(|err| VaultError::Random(err.to_string()))?;

        // Built in place: the plaintext is copied once into the output and encrypted there.
        // Zeroizing until encryption succeeded, so an error leaves no plaintext behind.
        let mut out = Zeroizing::new(Vec::with_capacity(plaintext.len() + OVERHEAD));
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let associated = aad.encode(&out[..HEADER_LEN]);
        let tag = cipher
            .encrypt_inout_detached(
                &nonce,
                &associated,
                (&mut out[HEADER_LEN + NONCE_LEN..]).into(),
            )
            .map_err(|_| VaultError::TooLarge(plaintext.len()))?;
        out.extend_from_slice(&tag);
        Ok(std::mem::take(&mut *out))
    }

    /// Opens a value sealed under any key of the ring (current, active or retired), checking
    /// that it was sealed for `aad`.
    pub fn open(&self, aad: &Aad<'_>, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let parsed = parse(sealed)?;
        let inner = self.inner();
        let cipher = inner
            .ciphers
            .get(&parsed.key_version)
            .ok_or(VaultError::UnknownKeyVersion(parsed.key_version))?;
        let associated = aad.encode(parsed.header);
        let mut buf = Zeroizing::new(parsed.ciphertext.to_vec());
        cipher
            .decrypt_inout_detached(
                &parsed.nonce,
                &associated,
                buf.as_mut_slice().into(),
                &parsed.tag,
            )
            .map_err(|_| VaultError::Tampered)?;
        Ok(buf)
    }

    /// [`Vault::seal`] for text.
    pub fn seal_str(&self, aad: &Aad<'_>, s: &str) -> Result<Vec<u8>, VaultError> {
        self.seal(aad, s.as_bytes())
    }

    /// [`Vault::open`] for text sealed with [`Vault::seal_str`]. Fails with
    /// [`VaultError::NotUtf8`] when the plaintext is not UTF-8.
    pub fn open_string(&self, aad: &Aad<'_>, sealed: &[u8]) -> Result<SecretString, VaultError> {
        let bytes = self.open(aad, sealed)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| VaultError::NotUtf8)?;
        // Exact capacity, so turning it into a boxed str does not reallocate (a reallocation
        // would leave an unzeroized copy behind).
        let mut owned = String::with_capacity(text.len());
        owned.push_str(text);
        Ok(SecretString::from(owned))
    }

    /// Re-seals a value under the current key, for rotation. `Ok(None)` when it already is
    /// under the current key (checked from the header alone, without decrypting); otherwise
    /// it is opened (which authenticates it against `aad`) and sealed again.
    pub fn reseal(&self, aad: &Aad<'_>, sealed: &[u8]) -> Result<Option<Vec<u8>>, VaultError> {
        if sealed_key_version(sealed)? == self.current_version() {
            return Ok(None);
        }
        let plaintext = self.open(aad, sealed)?;
        self.seal(aad, &plaintext).map(Some)
    }

    /// Whether `sealed` is under a key other than the current one (what rotation re-seals).
    pub fn needs_reseal(&self, sealed: &[u8]) -> Result<bool, VaultError> {
        Ok(sealed_key_version(sealed)? != self.inner().current)
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner();
        f.debug_struct("Vault")
            .field("current", &inner.current)
            .field("versions", &inner.ring.versions())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn aad_encoding_is_unambiguous() {
        let h = [1, 0, 0, 0, 1];
        let a = Aad::new("ab", "c", "d").encode(&h);
        let b = Aad::new("a", "bc", "d").encode(&h);
        let c = Aad::new("a", "b", "cd").encode(&h);
        assert_ne!(a, b);
        assert_ne!(b, c);
        assert_ne!(a, c);
        assert_eq!(a.len(), 5 + 24 + 4);
        assert_ne!(
            Aad::new("t", "r", "c").encode(&[1, 0, 0, 0, 1]),
            Aad::new("t", "r", "c").encode(&[1, 0, 0, 0, 2])
        );
    }

    #[test]
    fn vault_is_send_sync() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Vault>();
        check::<KeyRing>();
    }

    #[test]
    fn replace_ring_is_seen_by_every_clone() {
        let mut ring = KeyRing::generate();
        let vault = Vault::new(ring.clone());
        let clone = vault.clone();
        let aad = Aad::new("accounts", "acc_1", "token");
        let old = vault.seal(&aad, b"x").unwrap();
        let v2 = ring.add_version();
        ring.make_current(v2).unwrap();
        vault.replace_ring(ring);
        assert_eq!(clone.current_version(), v2);
        assert_eq!(
            crate::sealed_key_version(&clone.seal(&aad, b"y").unwrap()).unwrap(),
            v2
        );
        assert_eq!(&clone.open(&aad, &old).unwrap()[..], b"x");
    }

    #[test]
    fn key_holders_zeroize_on_drop() {
        fn check<T: zeroize::ZeroizeOnDrop>() {}
        check::<Aes256Gcm>();
        check::<crate::KeyMaterial>();
    }
}
