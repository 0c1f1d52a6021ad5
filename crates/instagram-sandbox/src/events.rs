//! User events driven from the control API, and the signed requests Meta sends apps:
//! `deauthorize` and `data_deletion` POST a `signed_request` to the app's callback URLs and
//! invalidate the user's tokens for that app (190/458 afterwards); `password_changed`
//! invalidates every token of the user (190/460); `comment` adds a comment to the user's media
//! and POSTs a webhook signed with `X-Hub-Signature-256` to subscribed apps.
//!
//! The `user_id` in signed requests is the app-scoped id (the one the code exchange returned):
//! Meta does not say which id Instagram-login callbacks carry.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Sandbox;
use crate::control::{body, find_user};
use crate::errors::ControlError;
use crate::ids::{hmac_sha256, new_object_id};
use crate::state::{Comment, Invalidation, pair_key};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EventKind {
    Deauthorize,
    PasswordChanged,
    DataDeletion,
    Comment,
}

#[derive(Debug, Deserialize)]
pub struct EventRequest {
    kind: EventKind,
    /// Limit a deauthorize / data deletion to one app (default: every app the user authorized).
    client_id: Option<String>,
    /// For `comment`: the media commented on (default: the user's newest post), the text and
    /// the commenter's username.
    media_id: Option<String>,
    text: Option<String>,
    from_username: Option<String>,
}

/// `{base64url(HMAC-SHA256(secret, payload_b64))}.{payload_b64}`, unpadded, as Meta signs.
pub fn signed_request(secret: &str, payload: &Value) -> String {
    let payload_b64 = URL_SAFE_NO_PAD.encode(payload.to_string());
    let sig = hmac_sha256(secret.as_bytes(), payload_b64.as_bytes());
    format!("{}.{payload_b64}", URL_SAFE_NO_PAD.encode(sig))
}

pub fn hub_signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), body))
    )
}

/// One outgoing request the event causes.
struct Delivery {
    client_id: String,
    url: String,
    secret: Option<String>,
    body: Delivered,
}

enum Delivered {
    Form(String),
    Webhook(Vec<u8>),
}

pub async fn user_event(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
    b: Result<Json<EventRequest>, JsonRejection>,
) -> Result<Json<Value>, ControlError> {
    let req = body(b)?;
    let now = sb.now();
    let (user_id, invalidated, deliveries, extra) = sb.write(|st| {
        let user = find_user(st, &id)
            .cloned()
            .ok_or_else(|| ControlError::not_found(format!("no sandbox user {id}")))?;
        let mut deliveries = Vec::new();
        let mut invalidated = 0usize;
        let mut extra = json!({});
        match req.kind {
            EventKind::PasswordChanged => {
                for t in st.tokens.values_mut().filter(|t| t.user_id == user.user_id) {
                    if t.invalidated.is_none() && t.expires_at > now {
                        invalidated += 1;
                    }
                    t.invalidated = Some(Invalidation::PasswordChanged);
                }
            }
            EventKind::Deauthorize | EventKind::DataDeletion => {
                let mut apps: Vec<String> = st
                    .tokens
                    .values()
                    .filter(|t| t.user_id == user.user_id)
                    .map(|t| t.client_id.clone())
                    .collect();
                apps.sort();
                apps.dedup();
                if let Some(c) = &req.client_id {
                    if !st.apps.contains_key(c) {
                        return Err(ControlError::not_found(format!("no app with client_id {c}")));
                    }
                    apps = vec![c.clone()];
                }
                for client_id in apps {
                    for t in st
                        .tokens
                        .values_mut()
                        .filter(|t| t.user_id == user.user_id && t.client_id == client_id)
                    {
                        if t.invalidated.is_none() && t.expires_at > now {
                            invalidated += 1;
                        }
                        t.invalidated = Some(Invalidation::Deauthorized);
                    }
                    st.subscriptions.remove(&pair_key(&client_id, &user.user_id));
                    let scoped = st.scoped_id(&client_id, &user.user_id);
                    let Some(app) = st.apps.get(&client_id) else { continue };
                    let (url, payload) = if req.kind == EventKind::Deauthorize {
                        (
                            app.deauthorize_url.clone(),
                            json!({ "user_id": scoped.to_string(), "algorithm": "HMAC-SHA256", "issued_at": now }),
                        )
                    } else {
                        (
                            app.data_deletion_url.clone(),
                            json!({ "user_id": scoped.to_string(), "algorithm": "HMAC-SHA256", "issued_at": now, "expires": now + 3600 }),
                        )
                    };
                    if let Some(url) = url {
                        let form = app.secret.as_deref().map(|s| {
                            url::form_urlencoded::Serializer::new(String::new())
                                .append_pair("signed_request", &signed_request(s, &payload))
                                .finish()
                        });
                        deliveries.push(Delivery {
                            client_id: client_id.clone(),
                            url,
                            secret: app.secret.clone(),
                            body: Delivered::Form(form.unwrap_or_default()),
                        });
                    }
                }
            }
            EventKind::Comment => {
                let media_id = match &req.media_id {
                    Some(m) => st
                        .media
                        .get(m)
                        .filter(|m| m.owner == user.user_id)
                        .map(|m| m.id.clone())
                        .ok_or_else(|| ControlError::not_found(format!("no media {m} of this user")))?,
                    None => crate::graph::newest_media(st, &user)
                        .ok_or_else(|| ControlError::bad_request("the user has no media to comment on"))?,
                };
                let from_username = req.from_username.clone().unwrap_or_else(|| "sandbox_fan".into());
                let from_id = st
                    .comments
                    .values()
                    .find(|c| c.username == from_username)
                    .map_or_else(new_object_id, |c| c.from_id.clone());
                let text = req.text.clone().unwrap_or_else(|| "Nice!".into());
                let comment_id = new_object_id();
                let seq = st.next_comment_seq();
                st.comments.insert(
                    comment_id.clone(),
                    Comment {
                        id: comment_id.clone(),
                        media_id: media_id.clone(),
                        parent_id: None,
                        from_id: from_id.clone(),
                        username: from_username.clone(),
                        text: text.clone(),
                        timestamp: now,
                        hidden: false,
                        like_count: 0,
                        seq,
                    },
                );
                let product = st
                    .media
                    .get(&media_id)
                    .map_or_else(|| "FEED".to_owned(), |m| m.media_product_type.clone());
                let payload = json!({
                    "object": "instagram",
                    "entry": [{
                        "id": user.user_id,
                        "time": now,
                        "changes": [{
                            "field": "comments",
                            "value": {
                                "id": comment_id,
                                "from": { "id": from_id, "username": from_username },
                                "text": text,
                                "media": { "id": media_id, "media_product_type": product },
                            },
                        }],
                    }],
                });
                extra = json!({ "comment_id": comment_id, "media_id": media_id });
                let bytes = payload.to_string().into_bytes();
                for (key, fields) in &st.subscriptions {
                    let Some((client_id, uid)) = key.split_once(':') else { continue };
                    if uid != user.user_id || !fields.iter().any(|f| f == "comments") {
                        continue;
                    }
                    let Some(app) = st.apps.get(client_id) else { continue };
                    if let Some(url) = &app.webhook_url {
                        deliveries.push(Delivery {
                            client_id: client_id.to_owned(),
                            url: url.clone(),
                            secret: app.secret.clone(),
                            body: Delivered::Webhook(bytes.clone()),
                        });
                    }
                }
            }
        }
        Ok((user.user_id, invalidated, deliveries, extra))
    })?;

    let mut results = Vec::new();
    for d in deliveries {
        results.push(deliver(&sb, d).await);
    }
    let mut out = json!({
        "kind": req.kind_name(),
        "user_id": user_id,
        "invalidated_tokens": invalidated,
        "deliveries": results,
    });
    if let (Some(o), Some(e)) = (out.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    Ok(Json(out))
}

impl EventRequest {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            EventKind::Deauthorize => "deauthorize",
            EventKind::PasswordChanged => "password_changed",
            EventKind::DataDeletion => "data_deletion",
            EventKind::Comment => "comment",
        }
    }
}

async fn deliver(sb: &Sandbox, d: Delivery) -> Value {
    let Some(secret) = d.secret else {
        return json!({
            "client_id": d.client_id, "url": d.url,
            "error": "the app secret is not available (state restored without its key): register the app again with its secret",
        });
    };
    let request = match d.body {
        Delivered::Form(form) => sb
            .inner
            .http
            .post(&d.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form),
        Delivered::Webhook(bytes) => sb
            .inner
            .http
            .post(&d.url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", hub_signature(&secret, &bytes))
            .body(bytes),
    };
    match request.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
            json!({ "client_id": d.client_id, "url": d.url, "status": status, "response": body })
        }
        // reqwest errors can embed the URL but never the body, so no secret leaks here.
        Err(e) => json!({ "client_id": d.client_id, "url": d.url, "error": e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_request_verifies_like_metas_sample_code() {
        let payload =
            json!({"user_id":"218471","algorithm":"HMAC-SHA256","issued_at":1_291_836_800});
        let sr = signed_request("secret", &payload);
        let (sig, body) = sr.split_once('.').unwrap_or_default();
        assert!(!sig.contains('=') && !body.contains('='));
        let expected = hmac_sha256(b"secret", body.as_bytes());
        assert_eq!(
            URL_SAFE_NO_PAD.decode(sig).unwrap_or_default(),
            expected.to_vec()
        );
        let decoded: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(decoded, payload);
    }
}
