//! Sealing of app secrets for the state file.
//!
//! The sandbox verifies client secrets against a SHA-256 hash, but it must also *sign*
//! deauthorize, data-deletion and webhook requests with the secret, so it has to get the secret
//! back after a restart. It therefore stores the secret AES-256-GCM-sealed under a key kept in a
//! separate file (`sandbox-secret.key`, mode 0600) next to the state file. The state file alone
//! (what people attach to bug reports) reveals nothing; deleting the key file makes the stored
//! secrets unrecoverable, after which events for those apps are refused until the app is
//! registered again with its secret.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::errors::SandboxError;

pub const KEY_FILE: &str = "sandbox-secret.key";

pub struct Sealer {
    cipher: Aes256Gcm,
}

impl Sealer {
    pub fn ephemeral() -> Self {
        let key: [u8; 32] = rand::random();
        Self::from_key(&key)
    }

    fn from_key(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// Loads the key file in `dir`, creating it when absent.
    pub fn load_or_create(dir: &Path) -> Result<Self, SandboxError> {
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = STANDARD
                    .decode(text.trim())
                    .map_err(|e| SandboxError::BadKey {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                let key: [u8; 32] = bytes.try_into().map_err(|_| SandboxError::BadKey {
                    path: path.clone(),
                    message: "expected 32 bytes of base64".into(),
                })?;
                Ok(Self::from_key(&key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                write_private(&path, STANDARD.encode(key).as_bytes())
                    .map_err(|source| SandboxError::Io { path, source })?;
                Ok(Self::from_key(&key))
            }
            Err(source) => Err(SandboxError::Io { path, source }),
        }
    }

    pub fn seal(&self, plaintext: &str) -> Option<String> {
        let nonce_bytes: [u8; 12] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        let ct = self.cipher.encrypt(&nonce, plaintext.as_bytes()).ok()?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ct);
        Some(STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Option<String> {
        let bytes = STANDARD.decode(sealed).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, ct) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let pt = self.cipher.decrypt(&Nonce::from(nonce), ct).ok()?;
        String::from_utf8(pt).ok()
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_tamper() {
        let s = Sealer::ephemeral();
        let sealed = s.seal("0123456789abcdef").unwrap_or_default();
        assert!(!sealed.contains("0123456789abcdef"));
        assert_eq!(s.open(&sealed).as_deref(), Some("0123456789abcdef"));
        let other = Sealer::ephemeral();
        assert_eq!(other.open(&sealed), None);
        assert_eq!(s.open("AAAA"), None);
    }
}
