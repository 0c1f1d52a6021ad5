//! Where a ring comes from: a file, an environment variable, or (later) a KMS.

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret as _, SecretString};

use crate::error::VaultError;
use crate::ring::{ENV_RING_VAR, KeyRing};

/// A source of the key ring. Callers hold a `dyn KeyProvider` (or a generic one), so a KMS
/// provider can be added without touching them.
pub trait KeyProvider: Send + Sync + 'static {
    /// Loads the ring (again: a provider may be asked repeatedly, e.g. after `keys rotate`).
    fn ring(&self) -> Result<KeyRing, VaultError>;

    /// Where the keys come from, for logs and `igbroker keys status`. Never key material.
    fn describe(&self) -> String {
        "key provider".to_owned()
    }
}

/// The ring file (`[keys] ring_file`), re-read at every [`KeyProvider::ring`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileKeyProvider {
    /// The ring file.
    pub path: PathBuf,
}

impl FileKeyProvider {
    /// A provider reading `path`.
    pub fn new(path: impl Into<PathBuf>) -> FileKeyProvider {
        FileKeyProvider { path: path.into() }
    }
}

impl KeyProvider for FileKeyProvider {
    fn ring(&self) -> Result<KeyRing, VaultError> {
        KeyRing::load_file(&self.path)
    }

    fn describe(&self) -> String {
        format!("key ring file {}", self.path.display())
    }
}

/// A ring spec such as the value of `IGBROKER_KEYS__RING` (`"1:<base64>,2:<base64>"`; the
/// highest version is current). `Debug` redacts the spec.
#[derive(Clone)]
pub struct EnvKeyProvider {
    /// The spec.
    pub spec: SecretString,
}

impl EnvKeyProvider {
    /// A provider over `spec`.
    pub fn new(spec: impl Into<SecretString>) -> EnvKeyProvider {
        EnvKeyProvider { spec: spec.into() }
    }

    /// A provider over `IGBROKER_KEYS__RING` when that variable is set and not blank.
    #[must_use]
    pub fn from_env() -> Option<EnvKeyProvider> {
        let spec = std::env::var(ENV_RING_VAR).ok()?;
        let spec = SecretString::from(spec);
        if spec.expose_secret().trim().is_empty() {
            return None;
        }
        Some(EnvKeyProvider { spec })
    }
}

impl fmt::Debug for EnvKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvKeyProvider")
            .field("spec", &"[REDACTED]")
            .finish()
    }
}

impl KeyProvider for EnvKeyProvider {
    fn ring(&self) -> Result<KeyRing, VaultError> {
        KeyRing::from_env_spec(self.spec.expose_secret())
    }

    fn describe(&self) -> String {
        ENV_RING_VAR.to_owned()
    }
}

/// A ring held in memory is its own provider (tests, the demo).
impl KeyProvider for KeyRing {
    fn ring(&self) -> Result<KeyRing, VaultError> {
        Ok(self.clone())
    }

    fn describe(&self) -> String {
        "in-memory key ring".to_owned()
    }
}
