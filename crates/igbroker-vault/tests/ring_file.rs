//! The ring file and the env spec.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use igbroker_vault::{
    Aad, EnvKeyProvider, FileKeyProvider, KeyMaterial, KeyProvider, KeyRing, KeyState, Vault,
    VaultError,
};
use secrecy::ExposeSecret as _;

fn b64(byte: u8) -> String {
    KeyMaterial::from_bytes([byte; 32]).to_base64().to_string()
}

/// Input, the expected error, and a phrase its message must contain.
type Case = (String, fn(&VaultError) -> bool, &'static str);

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn write_with_mode(path: &Path, content: &str, mode: u32) {
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn same_keys(a: &KeyRing, b: &KeyRing) -> bool {
    a.versions() == b.versions()
        && a.versions()
            .iter()
            .all(|(v, _)| a.fingerprint(*v) == b.fingerprint(*v))
}

#[test]
fn ring_file_round_trip_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/keys.toml");
    let mut ring = KeyRing::generate();
    ring.add_version();
    ring.add_version();
    ring.make_current(2).unwrap();
    ring.retire(1).unwrap();
    ring.write_file(&path).unwrap();

    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(path.parent().unwrap()), 0o700);
    let back = KeyRing::load_file(&path).unwrap();
    assert!(same_keys(&ring, &back));
    assert_eq!(back.current_version(), 2);

    // Values sealed with one open with the other.
    let aad = Aad::new("apps", "app_1", "client_secret");
    let sealed = Vault::new(ring).seal_str(&aad, "s3cret").unwrap();
    assert_eq!(
        Vault::new(back)
            .open_string(&aad, &sealed)
            .unwrap()
            .expose_secret(),
        "s3cret"
    );

    // Only the ring file is left behind (no temporary files).
    let names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("keys.toml")]);
}

#[test]
fn write_file_replaces_an_existing_file_and_tightens_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.toml");
    write_with_mode(&path, "old", 0o644);
    let ring = KeyRing::generate();
    ring.write_file(&path).unwrap();
    assert_eq!(mode_of(&path), 0o600);
    assert!(same_keys(&ring, &KeyRing::load_file(&path).unwrap()));
}

#[test]
fn written_file_has_the_documented_shape() {
    let ring = KeyRing::from_keys(
        "test",
        [
            (1, KeyMaterial::from_bytes([1; 32]), KeyState::Active),
            (2, KeyMaterial::from_bytes([2; 32]), KeyState::Current),
        ],
    )
    .unwrap();
    let text = ring.to_toml();
    let value: toml::Table = text.parse().unwrap();
    let keys = value["key"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1]["version"].as_integer(), Some(2));
    assert_eq!(keys[1]["state"].as_str(), Some("current"));
    assert_eq!(keys[1]["key"].as_str(), Some(b64(2).as_str()));
}

#[test]
fn group_or_world_accessible_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.toml");
    let content = KeyRing::generate().to_toml();
    for mode in [0o640, 0o604, 0o660, 0o644, 0o610, 0o601] {
        write_with_mode(&path, &content, mode);
        let err = KeyRing::load_file(&path).unwrap_err();
        assert!(
            matches!(err, VaultError::RingFilePermissions { mode: m, .. } if m == mode),
            "{mode:o}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("chmod 600"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
    }
    for mode in [0o600, 0o400] {
        write_with_mode(&path, &content, mode);
        KeyRing::load_file(&path).unwrap();
    }
}

#[test]
fn missing_file_suggests_keys_init() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = KeyRing::load_file(&path).unwrap_err();
    assert!(matches!(err, VaultError::RingFileMissing { .. }));
    let message = err.to_string();
    assert!(message.contains("igbroker keys init"), "{message}");
    assert!(message.contains("nope.toml"), "{message}");
    let err = FileKeyProvider::new(&path).ring().unwrap_err();
    assert!(matches!(err, VaultError::RingFileMissing { .. }));
}

fn load_text(content: &str) -> Result<KeyRing, VaultError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.toml");
    write_with_mode(&path, content, 0o600);
    KeyRing::load_file(&path)
}

fn entry(version: &str, key: &str, state: &str) -> String {
    format!("[[key]]\nversion = {version}\nkey = \"{key}\"\nstate = \"{state}\"\n")
}

#[test]
fn ring_file_errors() {
    let good = b64(7);
    let cases: Vec<Case> = vec![
        (
            entry("1", "!!!not base64!!!", "current"),
            |e| matches!(e, VaultError::InvalidKeyEncoding { version: 1, .. }),
            "base64",
        ),
        (
            entry("1", "AAAA", "current"),
            |e| {
                matches!(
                    e,
                    VaultError::InvalidKeyLength {
                        version: 1,
                        len: 3,
                        ..
                    }
                )
            },
            "32 bytes",
        ),
        (
            entry("1", &good, "current") + &entry("1", &b64(8), "active"),
            |e| matches!(e, VaultError::DuplicateVersion { version: 1, .. }),
            "more than once",
        ),
        (
            entry("1", &good, "active") + &entry("2", &b64(8), "active"),
            |e| matches!(e, VaultError::NoCurrentKey { .. }),
            "current",
        ),
        (
            entry("1", &good, "current") + &entry("2", &b64(8), "current"),
            |e| matches!(e, VaultError::SeveralCurrentKeys { versions, .. } if versions == &[1, 2]),
            "exactly one",
        ),
        (
            "# nothing here\n".to_owned(),
            |e| matches!(e, VaultError::EmptyRing { .. }),
            "keys init",
        ),
        (
            entry("0", &good, "current"),
            |e| matches!(e, VaultError::RingFormat { .. }),
            "from 1",
        ),
        (
            entry("-3", &good, "current"),
            |e| matches!(e, VaultError::RingFormat { .. }),
            "from 1",
        ),
        (
            entry("\"one\"", &good, "current"),
            |e| matches!(e, VaultError::RingFormat { .. }),
            "whole number",
        ),
        (
            entry("1", &good, "primary"),
            |e| matches!(e, VaultError::RingFormat { .. }),
            "\"retired\"",
        ),
        (
            format!("[[key]]\nversion = 1\nkey = \"{good}\"\n"),
            |e| matches!(e, VaultError::RingFormat { .. }),
            "no `state`",
        ),
        (
            "[[key]]\nversion = 1\nstate = \"current\"\n".to_owned(),
            |e| matches!(e, VaultError::RingFormat { .. }),
            "no `key`",
        ),
        (
            entry("1", &good, "current") + "stat = \"x\"\n",
            |e| matches!(e, VaultError::RingFormat { .. }),
            "unknown field `stat`",
        ),
        (
            format!("current = 1\n{}", entry("1", &good, "current")),
            |e| matches!(e, VaultError::RingFormat { .. }),
            "top-level",
        ),
        (
            "key = \"abc\"\n".to_owned(),
            |e| matches!(e, VaultError::RingFormat { .. }),
            "[[key]]",
        ),
        (
            "[[key]\nversion = 1\n".to_owned(),
            |e| matches!(e, VaultError::RingSyntax { line: 1, .. }),
            "not valid TOML",
        ),
    ];
    for (content, check, needle) in cases {
        let err = load_text(&content).unwrap_err();
        assert!(check(&err), "{content}\n=> {err:?}");
        let message = err.to_string();
        assert!(message.contains(needle), "{content}\n=> {message}");
        assert!(message.contains("keys.toml"), "{message}");
    }
}

#[test]
fn hand_written_file_with_comments_loads() {
    let content = format!(
        "# my keys\n\n[[key]]\nversion = 1\nkey = \"{}\"\nstate = \"retired\"\n\n\
         [[key]] # newest\nversion = 5\nkey = \"{}\"   \nstate = \"current\"\n\n\
         [[key]]\nstate = \"active\"\nversion = 3\nkey = \"{}\"\n",
        b64(1),
        b64(5).trim_end_matches('='),
        b64(3)
    );
    let mut ring = load_text(&content).unwrap();
    assert_eq!(
        ring.versions(),
        vec![
            (1, KeyState::Retired),
            (3, KeyState::Active),
            (5, KeyState::Current)
        ]
    );
    assert_eq!(ring.add_version(), 6);
}

#[test]
fn env_spec_parsing() {
    let spec = format!("1:{}, 3:{} ,2:{},", b64(1), b64(3), b64(2));
    let ring = KeyRing::from_env_spec(&spec).unwrap();
    assert_eq!(
        ring.versions(),
        vec![
            (1, KeyState::Active),
            (2, KeyState::Active),
            (3, KeyState::Current)
        ]
    );
    let single = KeyRing::from_env_spec(&format!("7:{}", b64(7))).unwrap();
    assert_eq!(single.current_version(), 7);
    assert_eq!(
        single.fingerprint(7),
        Some(KeyMaterial::from_bytes([7; 32]).fingerprint())
    );

    let provider = EnvKeyProvider::new(spec.clone());
    assert_eq!(provider.ring().unwrap().current_version(), 3);
    assert_eq!(provider.describe(), "IGBROKER_KEYS__RING");
}

#[test]
fn env_spec_errors() {
    let good = b64(1);
    let cases: Vec<Case> = vec![
        (
            "".to_owned(),
            |e| matches!(e, VaultError::EmptyRing { .. }),
            "no keys",
        ),
        (
            " , ".to_owned(),
            |e| matches!(e, VaultError::EmptyRing { .. }),
            "no keys",
        ),
        (
            good.clone(),
            |e| matches!(e, VaultError::RingFormat { .. }),
            "entry 1 is not `VERSION:BASE64KEY`",
        ),
        (
            format!("x:{good}"),
            |e| matches!(e, VaultError::RingFormat { .. }),
            "entry 1 does not start with a key version",
        ),
        (
            format!("0:{good}"),
            |e| matches!(e, VaultError::RingFormat { .. }),
            "entry 1 does not start",
        ),
        (
            format!("1:{good},4294967296:{good}"),
            |e| matches!(e, VaultError::RingFormat { .. }),
            "entry 2 does not start",
        ),
        (
            "1:@@@@".to_owned(),
            |e| matches!(e, VaultError::InvalidKeyEncoding { version: 1, .. }),
            "version 1 is not valid base64",
        ),
        (
            format!("1:{good},2:AAAA"),
            |e| {
                matches!(
                    e,
                    VaultError::InvalidKeyLength {
                        version: 2,
                        len: 3,
                        ..
                    }
                )
            },
            "decodes to 3 bytes",
        ),
        (
            format!("2:{good},2:{good}"),
            |e| matches!(e, VaultError::DuplicateVersion { version: 2, .. }),
            "more than once",
        ),
        (
            "1:".to_owned(),
            |e| {
                matches!(
                    e,
                    VaultError::InvalidKeyLength {
                        version: 1,
                        len: 0,
                        ..
                    }
                )
            },
            "32 bytes",
        ),
    ];
    for (spec, check, needle) in cases {
        let err = KeyRing::from_env_spec(&spec).unwrap_err();
        assert!(check(&err), "{spec:?} => {err:?}");
        let message = err.to_string();
        assert!(message.contains(needle), "{spec:?} => {message}");
        assert!(message.contains("IGBROKER_KEYS__RING"), "{message}");
    }
}

#[test]
fn oversized_file_and_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.toml");
    let file = fs::File::create(&path).unwrap();
    file.set_len(2 << 20).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let err = KeyRing::load_file(&path).unwrap_err();
    assert!(err.to_string().contains("ring_file"), "{err}");

    let sub = dir.path().join("a-dir");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
    let err = KeyRing::load_file(&sub).unwrap_err();
    assert!(matches!(err, VaultError::RingFileRead { .. }), "{err:?}");
}
