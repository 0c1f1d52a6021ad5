//! The stored format is exactly what the crate documents, so any AES-256-GCM implementation
//! (e.g. aws-lc-rs, for FIPS) can read and write it given the key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Key};
use igbroker_vault::{Aad, KeyMaterial, KeyRing, KeyState, Vault};
use secrecy::ExposeSecret as _;

const KEY: [u8; 32] = [0x42; 32];

/// The documented associated data, written out independently of the crate.
fn documented_aad(header: &[u8], table: &str, row_id: &str, column: &str) -> Vec<u8> {
    let mut out = header.to_vec();
    for part in [table, row_id, column] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn vault() -> Vault {
    Vault::new(
        KeyRing::from_keys(
            "test",
            [(0x0102_0304, KeyMaterial::from_bytes(KEY), KeyState::Current)],
        )
        .unwrap(),
    )
}

#[test]
fn vault_output_opens_with_plain_aes_gcm() {
    let sealed = vault()
        .seal_str(&Aad::new("accounts", "acc_9", "access_token"), "hello")
        .unwrap();
    assert_eq!(&sealed[..5], &[1, 1, 2, 3, 4]);
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(KEY));
    let nonce = aes_gcm::aead::Nonce::<Aes256Gcm>::try_from(&sealed[5..17]).unwrap();
    let aad = documented_aad(&sealed[..5], "accounts", "acc_9", "access_token");
    let plaintext = cipher
        .decrypt(
            &nonce,
            Payload {
                msg: &sealed[17..],
                aad: &aad,
            },
        )
        .unwrap();
    assert_eq!(plaintext, b"hello");
}

#[test]
fn plain_aes_gcm_output_opens_with_the_vault() {
    let header = [1u8, 1, 2, 3, 4];
    let nonce_bytes = [7u8; 12];
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(KEY));
    let nonce = aes_gcm::aead::Nonce::<Aes256Gcm>::from(nonce_bytes);
    let aad = documented_aad(&header, "apps", "app_1", "client_secret");
    let body = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: b"shh",
                aad: &aad,
            },
        )
        .unwrap();
    let mut sealed = header.to_vec();
    sealed.extend_from_slice(&nonce_bytes);
    sealed.extend_from_slice(&body);
    let opened = vault()
        .open_string(&Aad::new("apps", "app_1", "client_secret"), &sealed)
        .unwrap();
    assert_eq!(opened.expose_secret(), "shh");
}
