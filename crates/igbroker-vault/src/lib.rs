//! Encryption of igbroker's secrets at rest (access tokens, app client secrets, webhook
//! secrets) under a versioned key ring.
//!
//! - [`KeyRing`]: versioned AES-256 keys, exactly one [`KeyState::Current`]; loaded from a
//!   ring file ([`KeyRing::load_file`], refused unless mode 0600-ish) or from
//!   `IGBROKER_KEYS__RING` ([`KeyRing::from_env_spec`]), behind the [`KeyProvider`] trait.
//! - [`Vault`]: seals under the current key, opens under any key of the ring, re-seals for
//!   rotation. Each sealed value is bound to its row by [`Aad`] (table, row id, column).
//!
//! Sealed layout (AES-256-GCM, random 96-bit nonce per seal):
//!
//! ```text
//! format version (1 byte = 1) | key version (u32 BE) | nonce (12) | ciphertext | tag (16)
//! ```
//!
//! Associated data: the 5 header bytes, then table, row id and column, each preceded by its
//! length as a u64 BE. Any AES-GCM implementation can open a value given the key.
//!
//! Keys and plaintexts zeroize on drop and never appear in `Debug` output or error messages.
//!
//! ```
//! use igbroker_vault::{Aad, KeyRing, Vault};
//! use secrecy::ExposeSecret;
//!
//! let vault = Vault::new(KeyRing::generate());
//! let aad = Aad::new("accounts", "acc_01", "access_token");
//! let sealed = vault.seal_str(&aad, "IGQ...token")?;
//! assert_eq!(vault.open_string(&aad, &sealed)?.expose_secret(), "IGQ...token");
//! assert!(vault.open(&Aad::new("accounts", "acc_02", "access_token"), &sealed).is_err());
//! # Ok::<(), igbroker_vault::VaultError>(())
//! ```

mod error;
mod key;
mod provider;
mod ring;
mod vault;

pub use error::VaultError;
pub use key::{InvalidKeyState, KEY_LEN, KeyMaterial, KeyState};
pub use provider::{EnvKeyProvider, FileKeyProvider, KeyProvider};
pub use ring::{ENV_RING_VAR, KeyRing, MAX_KEY_VERSION};
pub use vault::{
    Aad, FORMAT_VERSION, HEADER_LEN, NONCE_LEN, OVERHEAD, TAG_LEN, Vault, sealed_key_version,
};
