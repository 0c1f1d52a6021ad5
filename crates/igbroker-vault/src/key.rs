//! One key: 32 bytes that zeroize on drop and never print, and its state in the ring.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use rand::RngExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::{ZeroizeOnDrop, Zeroizing};

/// Length of an AES-256 key in bytes.
pub const KEY_LEN: usize = 32;

/// Standard alphabet, padding optional (what `openssl rand -base64 32` and we write).
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// URL-safe alphabet, padding optional (accepted too: some tools emit it).
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// 32 bytes of AES-256 key material.
///
/// Zeroized on drop; `Debug` prints `KeyMaterial([REDACTED])`. The bytes are reachable only
/// through [`KeyMaterial::expose_secret`] and [`KeyMaterial::to_base64`].
#[derive(Clone)]
pub struct KeyMaterial(Zeroizing<[u8; KEY_LEN]>);

impl KeyMaterial {
    /// A fresh random key from the thread-local CSPRNG (seeded by the operating system).
    #[must_use]
    pub fn generate() -> KeyMaterial {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill(&mut bytes[..]);
        KeyMaterial(bytes)
    }

    /// Wraps bytes the caller already holds (a KMS answer, a test vector). The caller's own
    /// copy is the caller's to zeroize.
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> KeyMaterial {
        KeyMaterial(Zeroizing::new(bytes))
    }

    /// Decodes base64 (standard or URL-safe alphabet, padding optional).
    pub(crate) fn from_base64(text: &str) -> Result<KeyMaterial, KeyDecodeError> {
        let text = text.trim();
        let mut decoded = Zeroizing::new(Vec::with_capacity(KEY_LEN + 3));
        if STANDARD_LENIENT
            .decode_vec(text, &mut decoded)
            .or_else(|_| {
                decoded.clear();
                URL_SAFE_LENIENT.decode_vec(text, &mut decoded)
            })
            .is_err()
        {
            return Err(KeyDecodeError::NotBase64);
        }
        let Ok(bytes) = <[u8; KEY_LEN]>::try_from(decoded.as_slice()) else {
            return Err(KeyDecodeError::Length(decoded.len()));
        };
        // `bytes` is a plain copy on the stack; moving it into `Zeroizing` right away keeps the
        // window as small as the language allows.
        Ok(KeyMaterial(Zeroizing::new(bytes)))
    }

    /// The raw key bytes. Named like `secrecy`'s accessor so that every use stands out in review.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key in standard padded base64 (the ring file's format), in a zeroizing string.
    #[must_use]
    pub fn to_base64(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(44));
        general_purpose::STANDARD.encode_string(&self.0[..], &mut out);
        out
    }

    /// A short public identifier of the key: the first 8 bytes of
    /// SHA-256(`"igbroker-vault key fingerprint v1\0"` ‖ key), in hex.
    ///
    /// Safe to log and store: it reveals nothing usable about a random 256-bit key, and it lets
    /// replicas detect that they hold *different* material under the same version number.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"igbroker-vault key fingerprint v1\0");
        hasher.update(&self.0[..]);
        let digest = hasher.finalize();
        let mut out = String::with_capacity(16);
        for byte in &digest[..8] {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }
}

impl ZeroizeOnDrop for KeyMaterial {}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMaterial([REDACTED])")
    }
}

/// Why a base64 key was refused (the caller adds where it came from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyDecodeError {
    NotBase64,
    Length(usize),
}

/// The state of one key version in the ring.
///
/// - `Current`: seals every new value; exactly one key is current.
/// - `Active`: opens values it sealed earlier; never seals.
/// - `Retired`: nothing should use it any more; it still opens (so a forgotten record is not
///   lost) but never seals, and cannot become current again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Seals new values.
    Current,
    /// Opens old values.
    Active,
    /// Unused; still opens, never seals.
    Retired,
}

impl KeyState {
    /// `"current"`, `"active"` or `"retired"`: the spelling of the ring file.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Current => "current",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of `current`, `active`, `retired`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a key state is one of \"current\", \"active\" or \"retired\"")]
pub struct InvalidKeyState;

impl FromStr for KeyState {
    type Err = InvalidKeyState;

    fn from_str(s: &str) -> Result<KeyState, InvalidKeyState> {
        match s {
            "current" => Ok(KeyState::Current),
            "active" => Ok(KeyState::Active),
            "retired" => Ok(KeyState::Retired),
            _ => Err(InvalidKeyState),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_variants_decode_to_the_same_key() {
        let key = KeyMaterial::from_bytes([0xfb; KEY_LEN]);
        let padded = key.to_base64();
        assert_eq!(padded.len(), 44);
        let unpadded = padded.trim_end_matches('=').to_owned();
        let url = padded.replace('+', "-").replace('/', "_");
        for text in [
            padded.as_str(),
            &unpadded,
            &url,
            &format!("  {}\n", padded.as_str()),
        ] {
            let back = KeyMaterial::from_base64(text).unwrap();
            assert_eq!(back.expose_secret(), key.expose_secret());
        }
    }

    #[test]
    fn bad_base64_and_lengths() {
        assert_eq!(
            KeyMaterial::from_base64("not base64!").unwrap_err(),
            KeyDecodeError::NotBase64
        );
        assert_eq!(
            KeyMaterial::from_base64("AAAA").unwrap_err(),
            KeyDecodeError::Length(3)
        );
        assert_eq!(
            KeyMaterial::from_base64("").unwrap_err(),
            KeyDecodeError::Length(0)
        );
    }

    #[test]
    fn fingerprint_is_stable_and_distinct() {
        let a = KeyMaterial::from_bytes([1; KEY_LEN]);
        let b = KeyMaterial::from_bytes([2; KEY_LEN]);
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(
            KeyMaterial::generate().expose_secret(),
            KeyMaterial::generate().expose_secret()
        );
    }

    #[test]
    fn state_spellings() {
        for s in [KeyState::Current, KeyState::Active, KeyState::Retired] {
            assert_eq!(s.as_str().parse::<KeyState>().unwrap(), s);
        }
        assert!("Current".parse::<KeyState>().is_err());
    }
}
