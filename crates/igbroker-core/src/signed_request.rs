//! Meta's `signed_request`: the form field of the deauthorize and data-deletion callbacks.
//!
//! `{base64url(signature)}.{base64url(payload JSON)}`, where the signature is the raw 32-byte
//! HMAC-SHA256 of the payload *as it was sent* (still encoded), keyed with the app's client
//! secret. The signature is checked before the payload is decoded, so nothing a forger wrote
//! is interpreted; every refusal names what was wrong without echoing the input.

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, NO_PAD_INDIFFERENT};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The longest `signed_request` accepted. Meta's are a few hundred bytes; anything near this
/// is not from Meta, and refusing it early bounds the work a forger can cause.
pub const MAX_LEN: usize = 8 * 1024;

/// The longest `user_id` accepted (Instagram ids are 17 digits today).
pub const MAX_USER_ID_LEN: usize = 64;

/// base64url, with or without `=` padding; trailing bits must be zero (one encoding per value).
const B64: GeneralPurpose = GeneralPurpose::new(&URL_SAFE, NO_PAD_INDIFFERENT);

/// A verified callback payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The Instagram user the callback is about: an app-scoped or a professional id.
    pub user_id: String,
    /// When Meta signed it (unix seconds), when present.
    pub issued_at: Option<i64>,
    /// Data-deletion requests carry an expiry (unix seconds).
    pub expires: Option<i64>,
    /// Which of the candidate secrets verified it: 0 is the first one passed (the current
    /// secret); a higher index means a previous secret still inside its grace period.
    pub secret_index: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedRequestError {
    #[error("signed_request is missing or empty: send it as the form field `signed_request`")]
    Empty,
    #[error("signed_request is {len} bytes; at most {MAX_LEN} are accepted")]
    TooLong { len: usize },
    #[error("signed_request must be `<signature>.<payload>`, and there is no '.' in it")]
    NoDot,
    #[error("the signature part of signed_request is not base64url")]
    SignatureEncoding,
    #[error("the signature of signed_request is {0} bytes; an HMAC-SHA256 signature is 32")]
    SignatureLength(usize),
    #[error("there is no client secret to verify signed_request with")]
    NoSecret,
    #[error(
        "the signature of signed_request does not match: it was not signed with this app's client secret, or the payload was changed"
    )]
    BadSignature,
    #[error("the payload part of signed_request is not base64url")]
    PayloadEncoding,
    #[error("the payload of signed_request is not a JSON object")]
    PayloadNotJson,
    #[error("the `algorithm` in the payload of signed_request must be HMAC-SHA256")]
    Algorithm,
    #[error(
        "the `user_id` in the payload of signed_request is missing or is not an Instagram user id"
    )]
    UserId,
    #[error("`{0}` in the payload of signed_request must be a whole number of seconds")]
    Timestamp(&'static str),
}

/// Verifies `signed_request` against each candidate secret (current first) and returns the
/// payload. Secrets are compared in constant time, and every candidate is tried whatever
/// the outcome of the others, so timing says nothing about which one matched.
pub fn verify<S: AsRef<[u8]>>(
    signed_request: &str,
    secrets: &[S],
) -> Result<SignedRequest, SignedRequestError> {
    if signed_request.is_empty() {
        return Err(SignedRequestError::Empty);
    }
    if signed_request.len() > MAX_LEN {
        return Err(SignedRequestError::TooLong {
            len: signed_request.len(),
        });
    }
    let (sig_b64, payload_b64) = signed_request
        .split_once('.')
        .ok_or(SignedRequestError::NoDot)?;
    let sig = B64
        .decode(sig_b64)
        .map_err(|_| SignedRequestError::SignatureEncoding)?;
    if sig.len() != 32 {
        return Err(SignedRequestError::SignatureLength(sig.len()));
    }
    if secrets.is_empty() {
        return Err(SignedRequestError::NoSecret);
    }
    let mut matched: Option<usize> = None;
    for (i, secret) in secrets.iter().enumerate() {
        let expected = hmac_sha256(secret.as_ref(), payload_b64.as_bytes());
        let ok: bool = expected.ct_eq(sig.as_slice()).into();
        if ok && matched.is_none() {
            matched = Some(i);
        }
    }
    let secret_index = matched.ok_or(SignedRequestError::BadSignature)?;

    let payload = B64
        .decode(payload_b64)
        .map_err(|_| SignedRequestError::PayloadEncoding)?;
    let value: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|_| SignedRequestError::PayloadNotJson)?;
    let obj = value
        .as_object()
        .ok_or(SignedRequestError::PayloadNotJson)?;
    let algorithm_ok = obj
        .get("algorithm")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|a| a.eq_ignore_ascii_case("HMAC-SHA256"));
    if !algorithm_ok {
        return Err(SignedRequestError::Algorithm);
    }
    let user_id = match obj.get("user_id") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) if n.is_u64() => n.to_string(),
        _ => return Err(SignedRequestError::UserId),
    };
    if user_id.is_empty()
        || user_id.len() > MAX_USER_ID_LEN
        || !user_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(SignedRequestError::UserId);
    }
    Ok(SignedRequest {
        user_id,
        issued_at: timestamp(obj, "issued_at")?,
        expires: timestamp(obj, "expires")?,
        secret_index,
    })
}

fn timestamp(
    obj: &serde_json::Map<String, serde_json::Value>,
    field: &'static str,
) -> Result<Option<i64>, SignedRequestError> {
    match obj.get(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or(SignedRequestError::Timestamp(field)),
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail; the fallback never matches a
    // 32-byte signature the way a real MAC could (it is refused by the caller's compare).
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(msg);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

/// Builds a `signed_request` the way Meta does: for tests, the sandbox and tools.
pub fn sign(secret: &[u8], payload_json: &str) -> String {
    let payload_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload_json);
    let sig = hmac_sha256(secret, payload_b64.as_bytes());
    format!(
        "{}.{payload_b64}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str =
        r#"{"user_id":"218471","algorithm":"HMAC-SHA256","issued_at":1291836800}"#;

    #[test]
    fn round_trip_and_secret_index() {
        let sr = sign(b"new", PAYLOAD);
        let ok = verify(&sr, &["new", "old"]);
        assert_eq!(
            ok,
            Ok(SignedRequest {
                user_id: "218471".into(),
                issued_at: Some(1_291_836_800),
                expires: None,
                secret_index: 0
            })
        );
        let old = sign(b"old", PAYLOAD);
        assert_eq!(verify(&old, &["new", "old"]).map(|s| s.secret_index), Ok(1));
        assert_eq!(
            verify(&old, &["new"]),
            Err(SignedRequestError::BadSignature)
        );
        assert_eq!(verify::<&str>(&old, &[]), Err(SignedRequestError::NoSecret));
    }

    #[test]
    fn the_signature_covers_the_encoded_payload_not_the_json() {
        // The same JSON with the keys in another order is another encoded string.
        let sr = sign(b"s", PAYLOAD);
        let (sig, _) = sr.split_once('.').unwrap_or_default();
        let other = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"algorithm":"HMAC-SHA256","user_id":"218471","issued_at":1291836800}"#);
        assert_eq!(
            verify(&format!("{sig}.{other}"), &["s"]),
            Err(SignedRequestError::BadSignature)
        );
    }

    #[test]
    fn refusals_name_the_problem_without_echoing_input() {
        let cases = [
            ("", SignedRequestError::Empty),
            ("abc", SignedRequestError::NoDot),
            ("!!.e30", SignedRequestError::SignatureEncoding),
            ("AAAA.e30", SignedRequestError::SignatureLength(3)),
        ];
        for (input, want) in cases {
            assert_eq!(verify(input, &["s"]), Err(want));
        }
        let long = "A".repeat(MAX_LEN + 1);
        assert_eq!(
            verify(&long, &["s"]),
            Err(SignedRequestError::TooLong { len: MAX_LEN + 1 })
        );
        let secret_text = "very-secret-canary";
        let e = verify(&sign(b"x", PAYLOAD), &[secret_text]).unwrap_err();
        assert!(!e.to_string().contains(secret_text));
        assert!(!e.to_string().contains("218471"));
    }

    #[test]
    fn algorithm_and_user_id_are_checked_after_the_signature() {
        for (payload, want) in [
            (
                r#"{"user_id":"1","algorithm":"none"}"#,
                SignedRequestError::Algorithm,
            ),
            (
                r#"{"user_id":"1","algorithm":"HMAC-SHA1"}"#,
                SignedRequestError::Algorithm,
            ),
            (r#"{"user_id":"1"}"#, SignedRequestError::Algorithm),
            (r#"{"algorithm":"HMAC-SHA256"}"#, SignedRequestError::UserId),
            (
                r#"{"user_id":"","algorithm":"HMAC-SHA256"}"#,
                SignedRequestError::UserId,
            ),
            (
                r#"{"user_id":"1 2","algorithm":"HMAC-SHA256"}"#,
                SignedRequestError::UserId,
            ),
            (
                r#"{"user_id":-1,"algorithm":"HMAC-SHA256"}"#,
                SignedRequestError::UserId,
            ),
            (
                r#"{"user_id":"1","algorithm":"HMAC-SHA256","issued_at":"soon"}"#,
                SignedRequestError::Timestamp("issued_at"),
            ),
            (r#"[1,2]"#, SignedRequestError::PayloadNotJson),
            ("not json", SignedRequestError::PayloadNotJson),
        ] {
            assert_eq!(verify(&sign(b"s", payload), &["s"]), Err(want), "{payload}");
        }
        let numeric = sign(
            b"s",
            r#"{"user_id":17841400000000001,"algorithm":"hmac-sha256"}"#,
        );
        assert_eq!(
            verify(&numeric, &["s"]).map(|r| r.user_id),
            Ok("17841400000000001".to_owned())
        );
    }
}
