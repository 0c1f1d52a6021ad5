//! Property tests: any plaintext round-trips; any single change to a sealed value or to its
//! row binding is detected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::LazyLock;

use igbroker_vault::{Aad, KeyMaterial, KeyRing, KeyState, Vault, VaultError, sealed_key_version};
use proptest::prelude::*;

static VAULT: LazyLock<Vault> = LazyLock::new(|| {
    Vault::new(
        KeyRing::from_keys(
            "test",
            [
                (1, KeyMaterial::generate(), KeyState::Retired),
                (2, KeyMaterial::generate(), KeyState::Active),
                (3, KeyMaterial::generate(), KeyState::Current),
            ],
        )
        .unwrap(),
    )
});

proptest! {
    #[test]
    fn round_trip(
        plaintext in proptest::collection::vec(any::<u8>(), 0..600),
        table in ".{0,12}", row in ".{0,40}", column in ".{0,12}",
    ) {
        let aad = Aad::new(&table, &row, &column);
        let sealed = VAULT.seal(&aad, &plaintext).unwrap();
        prop_assert_eq!(sealed_key_version(&sealed).unwrap(), 3);
        let opened = VAULT.open(&aad, &sealed).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
    }

    #[test]
    fn any_byte_change_is_detected(
        plaintext in proptest::collection::vec(any::<u8>(), 0..200),
        index in any::<prop::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let aad = Aad::new("accounts", "acc_1", "access_token");
        let mut sealed = VAULT.seal(&aad, &plaintext).unwrap();
        let i = index.index(sealed.len());
        sealed[i] ^= delta;
        let err = VAULT.open(&aad, &sealed).unwrap_err();
        let expected = matches!(
            err,
            VaultError::Tampered | VaultError::Malformed(_) | VaultError::UnknownKeyVersion(_)
        );
        prop_assert!(expected, "{:?}", err);
    }

    #[test]
    fn any_other_binding_is_refused(
        plaintext in proptest::collection::vec(any::<u8>(), 0..64),
        a in (".{0,6}", ".{0,6}", ".{0,6}"),
        b in (".{0,6}", ".{0,6}", ".{0,6}"),
    ) {
        prop_assume!(a != b);
        let sealed = VAULT.seal(&Aad::new(&a.0, &a.1, &a.2), &plaintext).unwrap();
        let err = VAULT.open(&Aad::new(&b.0, &b.1, &b.2), &sealed).unwrap_err();
        prop_assert!(matches!(err, VaultError::Tampered), "{:?}", err);
    }

    #[test]
    fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let aad = Aad::new("t", "r", "c");
        let _ = VAULT.open(&aad, &bytes);
        let _ = VAULT.reseal(&aad, &bytes);
        let _ = sealed_key_version(&bytes);
    }

    #[test]
    fn env_spec_never_panics(spec in ".{0,120}") {
        let _ = KeyRing::from_env_spec(&spec);
    }

    #[test]
    fn ring_toml_never_panics(text in ".{0,200}") {
        let _ = KeyRing::from_toml_str("test", &text);
    }
}
