//! Instagram's webhooks, relayed to the service that owns each account.
//!
//! Meta calls one callback URL per app (`/meta/webhooks/{app_id}`): a verification GET when
//! the URL is saved in the App Dashboard, then signed POSTs. Each POST is checked against the
//! app's Instagram App Secret over the raw body before anything is parsed; each entry names
//! the Instagram professional account (`entry[].id`, the `user_id` of `/me`), which maps to
//! the broker's accounts of that app; each change becomes one `instagram.webhook` event in the
//! owning service's signed outbox, naming the broker's account and end user. Entries of
//! accounts the broker does not hold are counted and dropped.

use hmac::{KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header Meta signs event notifications with.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The event type the owning service receives for each relayed change.
pub const EVENT_TYPE: &str = "instagram.webhook";
/// Larger bodies are refused before the signature is computed.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Why a POST's signature was refused. None of these say what the right signature would be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request has no X-Hub-Signature-256 header; Meta signs every event notification")]
    Missing,
    #[error("X-Hub-Signature-256 must be `sha256=` followed by 64 hex digits")]
    Malformed,
    #[error(
        "X-Hub-Signature-256 does not match the body: it was not signed with this app's Instagram App Secret"
    )]
    Mismatch,
}

/// Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>` in constant
/// time (`Mac::verify_slice`).
pub fn verify_signature(
    app_secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.map(str::trim).ok_or(SignatureError::Missing)?;
    let hex_sig = header
        .strip_prefix("sha256=")
        .or_else(|| header.strip_prefix("SHA256="))
        .ok_or(SignatureError::Malformed)?;
    if hex_sig.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let sig = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(app_secret)
        .map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| SignatureError::Mismatch)
}

/// What a verification GET should be answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// 200 with this body (the challenge, echoed).
    Accept(String),
    /// 403: the verify token is not this app's.
    WrongToken,
    /// 400: not a subscription verification at all.
    NotAVerification(&'static str),
}

/// Meta's handshake: `hub.mode=subscribe`, `hub.verify_token` equal to the app's (compared in
/// constant time), `hub.challenge` echoed back as the body.
pub fn verification(
    mode: Option<&str>,
    challenge: Option<&str>,
    token: Option<&str>,
    expected_token: Option<&str>,
) -> Verification {
    if mode != Some("subscribe") {
        return Verification::NotAVerification("hub.mode must be `subscribe`");
    }
    let Some(challenge) = challenge.filter(|c| !c.is_empty() && c.len() <= 256) else {
        return Verification::NotAVerification("hub.challenge is missing");
    };
    let (Some(token), Some(expected)) = (token, expected_token) else {
        return Verification::WrongToken;
    };
    // Digests first, so the comparison neither stops early nor reveals the length.
    let a = Sha256::digest(token.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    if bool::from(a.as_slice().ct_eq(b.as_slice())) {
        Verification::Accept(challenge.to_string())
    } else {
        Verification::WrongToken
    }
}

/// One change of one entry, ready to be relayed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The Instagram professional account id (`entry[].id`), as a string.
    pub ig_user_id: String,
    pub object: String,
    pub time: Option<i64>,
    pub field: String,
    pub value: Value,
}

/// Why a signed body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body has no `entry` list")]
    NoEntries,
}

/// The changes of a notification, in order. Meta's single-object form
/// (`{"object", "entry": [...]}`) and the array form its Instagram examples print are both
/// read; messaging entries (`entry[].messaging[]`) become one `messages` change per item.
/// Entries without an account id are skipped.
pub fn changes(body: &[u8]) -> Result<Vec<Change>, PayloadError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        // serde's message names a line and column, never the body's content.
        PayloadError::NotJson(format!("line {} column {}", e.line(), e.column()))
    })?;
    let notifications: Vec<&Value> = match &v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::new();
    let mut saw_entries = false;
    for n in notifications {
        let object = n
            .get("object")
            .and_then(Value::as_str)
            .unwrap_or("instagram")
            .to_string();
        let Some(entries) = n.get("entry").and_then(Value::as_array) else {
            continue;
        };
        saw_entries = true;
        for entry in entries {
            let Some(ig_user_id) = id_string(entry.get("id")) else {
                continue;
            };
            let time = entry.get("time").and_then(Value::as_i64);
            for c in entry
                .get("changes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push(Change {
                    ig_user_id: ig_user_id.clone(),
                    object: object.clone(),
                    time,
                    field: c
                        .get("field")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown")
                        .to_string(),
                    value: c.get("value").cloned().unwrap_or(Value::Null),
                });
            }
            for m in entry
                .get("messaging")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push(Change {
                    ig_user_id: ig_user_id.clone(),
                    object: object.clone(),
                    time,
                    field: "messages".to_string(),
                    value: m.clone(),
                });
            }
        }
    }
    if !saw_entries {
        return Err(PayloadError::NoEntries);
    }
    Ok(out)
}

/// Ids arrive as strings, occasionally as numbers; 17-digit ids fit a u64 exactly.
fn id_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

/// The `data` of the event the owning service receives.
pub fn event_data(
    account_id: &str,
    app_id: &str,
    end_user: &str,
    username: Option<&str>,
    change: &Change,
) -> Value {
    let mut d = Map::new();
    d.insert("account_id".into(), json!(account_id));
    d.insert("app_id".into(), json!(app_id));
    d.insert(
        "end_user".into(),
        if end_user.is_empty() {
            Value::Null
        } else {
            json!(end_user)
        },
    );
    d.insert("ig_user_id".into(), json!(change.ig_user_id));
    d.insert("username".into(), json!(username));
    d.insert("object".into(), json!(change.object));
    d.insert("field".into(), json!(change.field));
    d.insert("time".into(), json!(change.time));
    d.insert("value".into(), change.value.clone());
    Value::Object(d)
}

/// The webhook fields an account can be subscribed to with the scopes it granted.
pub fn subscribable_fields(scopes: &str) -> Vec<&'static str> {
    let has = |s: &str| scopes.split([',', ' ']).any(|x| x.trim() == s);
    let mut fields = Vec::new();
    if has("instagram_business_manage_comments") {
        fields.extend(["comments", "mentions"]);
    }
    if has("instagram_business_manage_messages") {
        fields.push("messages");
    }
    if has("instagram_business_basic") {
        fields.push("story_insights");
    }
    fields
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_are_checked_over_the_raw_body() {
        let body = br#"{"object":"instagram","entry":[]}"#;
        let good = sign(b"app-secret", body);
        assert_eq!(verify_signature(b"app-secret", body, Some(&good)), Ok(()));
        assert_eq!(
            verify_signature(b"other-secret", body, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        // The same JSON re-serialised is another body.
        let spaced = br#"{"object": "instagram", "entry": []}"#;
        assert_eq!(
            verify_signature(b"app-secret", spaced, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"app-secret", body, None),
            Err(SignatureError::Missing)
        );
        for bad in ["sha1=abc", "sha256=zz", "sha256=", &good[..good.len() - 2]] {
            assert_eq!(
                verify_signature(b"app-secret", body, Some(bad)),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn verification_echoes_the_challenge_only_for_the_right_token() {
        assert_eq!(
            verification(
                Some("subscribe"),
                Some("1158201444"),
                Some("vt"),
                Some("vt")
            ),
            Verification::Accept("1158201444".into())
        );
        assert_eq!(
            verification(Some("subscribe"), Some("1"), Some("vx"), Some("vt")),
            Verification::WrongToken
        );
        assert_eq!(
            verification(Some("subscribe"), Some("1"), Some("vt"), None),
            Verification::WrongToken
        );
        assert!(matches!(
            verification(Some("unsubscribe"), Some("1"), Some("vt"), Some("vt")),
            Verification::NotAVerification(_)
        ));
        assert!(matches!(
            verification(Some("subscribe"), None, Some("vt"), Some("vt")),
            Verification::NotAVerification(_)
        ));
    }

    #[test]
    fn changes_of_both_forms_and_messaging() {
        let single = br#"{"object":"instagram","entry":[{"id":"17841400000000001","time":1714651200,
            "changes":[{"field":"comments","value":{"id":"1","text":"hi"}},{"field":"mentions","value":{"media_id":"2"}}]}]}"#;
        let c = changes(single).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].ig_user_id, "17841400000000001");
        assert_eq!(c[0].field, "comments");
        assert_eq!(c[1].field, "mentions");
        assert_eq!(c[0].time, Some(1_714_651_200));

        let array = br#"[{"object":"instagram","entry":[{"id":17841400000000002,"time":1,
            "messaging":[{"sender":{"id":"9"},"message":{"text":"yo"}}]}]}]"#;
        let c = changes(array).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].ig_user_id, "17841400000000002");
        assert_eq!(c[0].field, "messages");

        assert!(matches!(
            changes(b"not json"),
            Err(PayloadError::NotJson(_))
        ));
        assert_eq!(
            changes(br#"{"object":"instagram"}"#),
            Err(PayloadError::NoEntries)
        );
    }

    #[test]
    fn fields_follow_the_granted_scopes() {
        assert_eq!(
            subscribable_fields("instagram_business_basic"),
            vec!["story_insights"]
        );
        assert_eq!(
            subscribable_fields("instagram_business_basic,instagram_business_manage_comments"),
            vec!["comments", "mentions", "story_insights"]
        );
    }
}
