//! Random identifiers and the one-way hashes under which the sandbox remembers what it issued.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const URLSAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A SHA-256 digest; tokens, codes and secrets are looked up by this, never by their text.
pub type Digest32 = [u8; 32];

pub fn sha256(text: &str) -> Digest32 {
    Sha256::digest(text.as_bytes()).into()
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(sha256(text))
}

pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> Digest32 {
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps clippy quiet.
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(msg);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

/// Equality that does not leak where two secrets first differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_from(alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| char::from(alphabet[rand::random_range(0..alphabet.len())]))
        .collect()
}

fn random_digits(len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'0' + rand::random_range(0..10u8)))
        .collect()
}

/// Instagram-login user tokens are opaque strings starting with `IGAA`.
pub fn new_access_token() -> String {
    format!("IGAA{}", random_from(ALNUM, 140))
}

/// Authorization codes look like `AQ…` and never contain `#`, so the `#_` suffix stays separable.
pub fn new_auth_code() -> String {
    format!("AQ{}", random_from(URLSAFE, 126))
}

/// Instagram App IDs are 15–16 digit numbers.
pub fn new_client_id() -> String {
    format!("{}{}", rand::random_range(1..10u8), random_digits(15))
}

pub fn new_client_secret() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Professional account ids have the `17841` prefix and 17 digits.
pub fn new_professional_id() -> String {
    format!("17841{}", random_digits(12))
}

/// App-scoped ids are 17-digit numbers above 2^53 and odd, so a float-based JSON decoder
/// visibly corrupts them: that is the bug this value exists to catch.
pub fn new_scoped_id() -> u64 {
    let n: u64 = rand::random_range(20_000_000_000_000_000..30_000_000_000_000_000);
    n | 1
}

/// Graph object ids (media, containers, comments): 17 digits starting with `179`.
pub fn new_object_id() -> String {
    format!("179{}", random_digits(14))
}

pub fn new_fbtrace_id() -> String {
    format!("A{}", random_from(URLSAFE, 22))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_ids_lose_precision_as_floats() {
        for _ in 0..100 {
            let id = new_scoped_id();
            assert_eq!(id.to_string().len(), 17);
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let through_float = (id as f64) as u64;
            assert_ne!(through_float, id);
        }
    }

    #[test]
    fn token_and_code_shapes() {
        assert!(new_access_token().starts_with("IGAA"));
        let code = new_auth_code();
        assert!(code.starts_with("AQ") && !code.contains('#'));
        let pid = new_professional_id();
        assert!(pid.starts_with("17841") && pid.len() == 17);
        assert_eq!(new_client_secret().len(), 32);
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"a", b"ab"));
    }
}
