//! `signed_request` verification against vectors computed independently with Python's `hmac`
//! and `base64` (`fixtures/signed_request/make_vectors.py`), and properties over random input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use igbroker_core::signed_request::{MAX_LEN, SignedRequestError, sign, verify};
use proptest::prelude::*;
use serde_json::Value;

const VECTORS: &str = include_str!("fixtures/signed_request/vectors.json");

fn vectors(kind: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    v[kind].as_array().unwrap().clone()
}

fn secrets(v: &Value) -> Vec<String> {
    v["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// The variant's name, without its fields: what the fixture names.
fn variant(e: &SignedRequestError) -> String {
    let debug = format!("{e:?}");
    debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn independently_computed_valid_vectors_verify() {
    let valid = vectors("valid");
    assert!(valid.len() >= 8);
    for v in valid {
        let name = v["name"].as_str().unwrap();
        let got = verify(v["signed_request"].as_str().unwrap(), &secrets(&v))
            .unwrap_or_else(|e| panic!("{name}: refused: {e}"));
        assert_eq!(got.user_id, v["user_id"].as_str().unwrap(), "{name}");
        assert_eq!(got.issued_at, v["issued_at"].as_i64(), "{name}");
        assert_eq!(got.expires, v["expires"].as_i64(), "{name}");
        assert_eq!(
            got.secret_index as u64,
            v["secret_index"].as_u64().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn independently_computed_forgeries_are_refused_for_the_right_reason() {
    let invalid = vectors("invalid");
    assert!(invalid.len() >= 20);
    for v in invalid {
        let name = v["name"].as_str().unwrap();
        let err = verify(v["signed_request"].as_str().unwrap(), &secrets(&v)).expect_err(name);
        assert_eq!(variant(&err), v["error"].as_str().unwrap(), "{name}: {err}");
        for s in secrets(&v) {
            assert!(
                !err.to_string().contains(&s),
                "{name}: message names the secret"
            );
        }
    }
}

#[test]
fn one_mebibyte_is_refused_before_any_work() {
    let good = sign(b"s", r#"{"user_id":"1","algorithm":"HMAC-SHA256"}"#);
    let huge = format!("{good}{}", "A".repeat(1 << 20));
    assert_eq!(
        verify(&huge, &["s"]),
        Err(SignedRequestError::TooLong { len: huge.len() })
    );
    let at_limit = format!("{good}{}", "A".repeat(MAX_LEN - good.len()));
    assert_eq!(
        verify(&at_limit, &["s"]),
        Err(SignedRequestError::BadSignature)
    );
}

fn payload_strategy() -> impl Strategy<Value = String> {
    (
        "[0-9]{1,20}",
        prop::option::of(0i64..4_000_000_000),
        prop_oneof![
            Just("HMAC-SHA256"),
            Just("hmac-sha256"),
            Just("Hmac-Sha256")
        ],
    )
        .prop_map(|(uid, issued, alg)| {
            serde_json::json!({"user_id": uid, "algorithm": alg, "issued_at": issued}).to_string()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary text never panics and is never accepted: a valid signature cannot be guessed.
    #[test]
    fn random_text_is_refused(input in ".{0,300}") {
        prop_assert!(verify(&input, &["secret"]).is_err());
    }

    /// Random text of the right shape: two base64url halves.
    #[test]
    fn random_shaped_input_is_refused(
        sig in proptest::collection::vec(any::<u8>(), 0..40),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(&sig), URL_SAFE_NO_PAD.encode(&payload));
        prop_assert!(verify(&input, &["secret"]).is_err());
    }

    /// Whatever is signed with the secret verifies, and any single-character change to the
    /// result (signature or payload) is refused.
    #[test]
    fn any_change_to_a_signed_request_is_refused(
        payload in payload_strategy(),
        secret in "[ -~]{1,40}",
        index in any::<prop::sample::Index>(),
        replacement in prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.+/ ".chars().collect::<Vec<_>>()
        ),
    ) {
        let sr = sign(secret.as_bytes(), &payload);
        let verified = verify(&sr, &[secret.as_str()]);
        prop_assert!(verified.is_ok(), "{:?}", verified);
        let mut chars: Vec<char> = sr.chars().collect();
        let i = index.index(chars.len());
        prop_assume!(chars[i] != replacement);
        chars[i] = replacement;
        let changed: String = chars.into_iter().collect();
        prop_assert!(verify(&changed, &[secret.as_str()]).is_err(), "accepted {changed}");
    }

    /// Any other secret is refused, whether alone or with others that also do not match.
    #[test]
    fn other_secrets_are_refused(
        payload in payload_strategy(),
        secret in "[ -~]{1,40}",
        others in proptest::collection::vec("[ -~]{0,40}", 0..4),
    ) {
        prop_assume!(!others.contains(&secret));
        let sr = sign(secret.as_bytes(), &payload);
        prop_assert_eq!(verify(&sr, &others).map(|_| ()), Err(if others.is_empty() {
            SignedRequestError::NoSecret
        } else {
            SignedRequestError::BadSignature
        }));
    }
}
