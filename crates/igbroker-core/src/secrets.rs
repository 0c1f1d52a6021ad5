//! Random values the broker hands out and the hashes it keeps of them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use sha2::{Digest, Sha256};

/// 32 random bytes, base64url: for OAuth `state` and API keys.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A lookup hash: the database holds only this for states, codes and API keys,
/// so a stolen database cannot replay them.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

pub const API_KEY_PREFIX: &str = "igb_";

pub fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_token())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_hashes_stable() {
        let a = random_token();
        assert_ne!(a, random_token());
        assert_eq!(a.len(), 43);
        assert_eq!(sha256_hex("x"), sha256_hex("x"));
        assert_ne!(sha256_hex("x"), sha256_hex("y"));
        assert!(new_api_key().starts_with("igb_"));
    }
}
