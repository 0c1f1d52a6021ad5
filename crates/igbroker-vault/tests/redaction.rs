//! Canary tests: a known key never shows up in Debug output or error messages.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use igbroker_vault::{
    Aad, EnvKeyProvider, FileKeyProvider, KeyMaterial, KeyProvider, KeyRing, KeyState, Vault,
    VaultError,
};

/// A recognisable key: bytes 0xC0, 0xC1, ... 0xDF.
fn canary() -> [u8; 32] {
    std::array::from_fn(|i| 0xC0 + i as u8)
}

fn canary_b64() -> String {
    KeyMaterial::from_bytes(canary()).to_base64().to_string()
}

fn forbidden() -> Vec<String> {
    let bytes = canary();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let b64 = canary_b64();
    vec![
        b64.clone(),
        b64.trim_end_matches('=').to_owned(),
        b64[..16].to_owned(),
        b64[20..36].to_owned(),
        hex.clone(),
        hex.to_uppercase(),
        hex[..16].to_owned(),
        // Debug of a byte array: "[192, 193, 194, ..."
        format!("{:?}", &bytes[..4])
            .trim_end_matches(']')
            .to_owned(),
        format!("{:x?}", &bytes[..4])
            .trim_end_matches(']')
            .to_owned(),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for needle in forbidden() {
        assert!(
            !text.contains(&needle),
            "{what} leaks key material ({needle}):\n{text}"
        );
    }
}

fn canary_ring() -> KeyRing {
    KeyRing::from_keys(
        "test",
        [
            (1, KeyMaterial::from_bytes(canary()), KeyState::Current),
            (2, KeyMaterial::from_bytes([9; 32]), KeyState::Active),
        ],
    )
    .unwrap()
}

#[test]
fn debug_output_has_no_key_material() {
    let ring = canary_ring();
    let vault = Vault::new(ring.clone());
    let key = KeyMaterial::from_bytes(canary());
    let env = EnvKeyProvider::new(format!("1:{}", canary_b64()));
    for (what, text) in [
        ("KeyRing {:?}", format!("{ring:?}")),
        ("KeyRing {:#?}", format!("{ring:#?}")),
        ("Vault {:?}", format!("{vault:?}")),
        ("Vault {:#?}", format!("{vault:#?}")),
        ("KeyMaterial", format!("{key:?}")),
        ("EnvKeyProvider", format!("{env:?}")),
        ("fingerprint", ring.fingerprint(1).unwrap()),
    ] {
        assert_clean(what, &text);
    }
    assert!(format!("{ring:?}").contains("Current"));
    assert_eq!(format!("{key:?}"), "KeyMaterial([REDACTED])");
    // The canary is really there (the test would prove nothing otherwise).
    assert!(ring.to_toml().contains(&canary_b64()));
}

#[test]
fn error_text_has_no_key_material() {
    let b64 = canary_b64();
    let bare = b64.trim_end_matches('=').to_owned();
    assert!(!bare.contains(['+', '/']));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.toml");
    let bad_files = [
        // Key in the wrong field, bad syntax around a key, duplicate, wrong state, etc.
        format!("[[key]]\nversion = \"{b64}\"\nkey = \"{b64}\"\nstate = \"current\"\n"),
        format!("[[key]]\nversion = 1\nkey = \"{b64}\nstate = \"current\"\n"),
        format!("[[key]]\nversion = 1\nkey = {b64}\nstate = \"current\"\n"),
        format!("[[key]]\nversion = 1\nkey = \"{b64}\"\nstate = \"{b64}\"\n"),
        format!("[[key]]\nversion = 1\nkey = \"{b64}\"\nstate = \"current\"\n{b64} = 1\n"),
        format!("{b64} = 1\n"),
        format!(
            "[[key]]\nversion = 1\nkey = \"{}\"\nstate = \"current\"\n",
            &b64[..40]
        ),
        format!("[[key]]\nversion = 1\nkey = \"{b64}!\"\nstate = \"current\"\n"),
        format!("[[key]]\nversion = 1\nkey = \"{b64}\"\nstate = \"active\"\n"),
        format!(
            "[[key]]\nversion = 1\nkey = \"{b64}\"\nstate = \"current\"\n[[key]]\nversion = 1\nkey = \"{b64}\"\nstate = \"active\"\n"
        ),
        format!("[key]\nversion = 1\nkey = \"{b64}\"\n"),
        // The key pasted as a bare TOML key (valid: the canary has no `+`, `/` once unpadded).
        format!("{bare} = 1\n"),
        format!("[[key]]\nversion = 1\nkey = \"{b64}\"\nstate = \"current\"\n{bare} = 1\n"),
        format!("{bare} = 1\n{bare} = 2\n"),
        format!("[[key]]\n{bare} = 1\n{bare} = 2\n"),
        format!("[{bare}]\n[{bare}]\n"),
        format!("key = 1\n{bare}\n"),
    ];
    let mut errors: Vec<VaultError> = Vec::new();
    for content in &bad_files {
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        errors.push(KeyRing::load_file(&path).unwrap_err());
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    errors.push(KeyRing::load_file(&path).unwrap_err());

    let hex: String = canary().iter().map(|b| format!("{b:02x}")).collect();
    let bad_specs = [
        b64.clone(),
        format!("{b64}:1"),
        format!("1:{b64}!"),
        format!("1:{}", &b64[..40]),
        format!("1:{hex}"),
        format!("1:{b64},1:{b64}"),
        format!("{b64}:{b64}"),
        format!("1{b64}:x"),
    ];
    for spec in &bad_specs {
        errors.push(KeyRing::from_env_spec(spec).unwrap_err());
    }

    // Failing opens under the canary key.
    let vault = Vault::new(canary_ring());
    let aad = Aad::new("accounts", "acc_1", "access_token");
    let mut sealed = vault.seal_str(&aad, "tok").unwrap();
    errors.push(vault.open(&Aad::new("x", "y", "z"), &sealed).unwrap_err());
    sealed[0] = 9;
    errors.push(vault.open(&aad, &sealed).unwrap_err());
    errors.push(vault.open(&aad, &sealed[..3]).unwrap_err());

    // The provider the broker loads its ring through: the same file (with the canary key and
    // too-open permissions at this point) fails as cleanly, and says which file.
    let provider = FileKeyProvider::new(&path);
    let provider_err = provider.ring().unwrap_err();
    assert!(
        matches!(provider_err, VaultError::RingFilePermissions { .. }),
        "{provider_err:?}"
    );
    assert!(
        provider.describe().contains("keys.toml"),
        "{}",
        provider.describe()
    );
    errors.push(provider_err);

    assert!(errors.len() > 20);
    for err in &errors {
        if std::env::var_os("SHOW_ERRORS").is_some() {
            eprintln!("{err}\n");
        }
        assert_clean("error Display", &err.to_string());
        assert_clean("error Debug", &format!("{err:?}"));
    }
}
