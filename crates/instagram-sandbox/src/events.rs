//! User events driven from the control API, and the signed requests Meta sends apps:
//! `deauthorize` and `data_deletion` POST a `signed_request` to the app's callback URLs and
//! invalidate the user's tokens for that app (190/458 afterwards); `password_changed`
//! invalidates every token of the user (190/460); `comment` adds a comment (or, with
//! `parent_id`, a reply) to the user's media, `mention` reports the account @mentioned in
//! someone's comment, and `story_insights` reports a story's metrics: each POSTs a webhook
//! signed with `X-Hub-Signature-256` to the apps subscribed to that field (see `webhooks`).
//!
//! `from.self_ig_scoped_id` of a comment is the commenter's id as the receiving app sees it
//! (each app its own), so a payload is built per app.
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

use crate::control::{body, find_user};
use crate::errors::ControlError;
use crate::ids::{hmac_sha256, new_object_id};
use crate::state::{Comment, Invalidation, pair_key};
use crate::{Sandbox, webhooks};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EventKind {
    Deauthorize,
    PasswordChanged,
    DataDeletion,
    Comment,
    Mention,
    StoryInsights,
}

#[derive(Debug, Deserialize)]
pub struct EventRequest {
    kind: EventKind,
    /// Limit a deauthorize / data deletion to one app (default: every app the user authorized).
    client_id: Option<String>,
    /// For `comment`: the media commented on (default: the user's newest post), the text and
    /// the commenter's username. For `story_insights`: the story (default: the newest).
    media_id: Option<String>,
    /// For `comment`: make it a reply to this comment (on the same media).
    parent_id: Option<String>,
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
                let parent = match &req.parent_id {
                    None => None,
                    Some(p) => Some(
                        st.comments
                            .get(p)
                            .filter(|c| {
                                st.media.get(&c.media_id).is_some_and(|m| m.owner == user.user_id)
                            })
                            .cloned()
                            .ok_or_else(|| {
                                ControlError::not_found(format!("no comment {p} on this user's media"))
                            })?,
                    ),
                };
                let media_id = match (&parent, &req.media_id) {
                    (Some(p), _) => p.media_id.clone(),
                    (None, Some(m)) => st
                        .media
                        .get(m)
                        .filter(|m| m.owner == user.user_id)
                        .map(|m| m.id.clone())
                        .ok_or_else(|| ControlError::not_found(format!("no media {m} of this user")))?,
                    (None, None) => crate::graph::newest_media(st, &user)
                        .ok_or_else(|| ControlError::bad_request("the user has no media to comment on"))?,
                };
                let from_username = req.from_username.clone().unwrap_or_else(|| "sandbox_fan".into());
                let from_id = commenter_id(st, &from_username);
                let text = req.text.clone().unwrap_or_else(|| "Nice!".into());
                let comment_id = new_object_id();
                let seq = st.next_comment_seq();
                let parent_id = parent.map(|p| p.id);
                st.comments.insert(
                    comment_id.clone(),
                    Comment {
                        id: comment_id.clone(),
                        media_id: media_id.clone(),
                        parent_id: parent_id.clone(),
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
                extra = json!({ "comment_id": comment_id, "media_id": media_id, "parent_id": parent_id });
                for app in webhooks::recipients(st, &user.user_id, "comments") {
                    let scoped = st.scoped_id(&app.client_id, &from_id);
                    let mut value = json!({
                        "id": comment_id,
                        "from": {
                            "id": from_id,
                            "username": from_username,
                            "self_ig_scoped_id": scoped.to_string(),
                        },
                        "text": text,
                        "media": { "id": media_id, "media_product_type": product },
                    });
                    if let (Some(p), Some(o)) = (&parent_id, value.as_object_mut()) {
                        o.insert("parent_id".into(), json!(p));
                    }
                    deliveries.push(webhook(&app, webhooks::change_payload(&user.user_id, now, "comments", value)));
                }
            }
            EventKind::Mention => {
                // The mention sits in someone else's comment on their own media.
                let from_username = req.from_username.clone().unwrap_or_else(|| "sandbox_fan".into());
                let media_id = st
                    .user_by_name(&from_username)
                    .and_then(|u| crate::graph::newest_media(st, u))
                    .unwrap_or_else(new_object_id);
                let comment_id = new_object_id();
                extra = json!({ "comment_id": comment_id, "media_id": media_id });
                let value = json!({ "media_id": media_id, "comment_id": comment_id });
                for app in webhooks::recipients(st, &user.user_id, "mentions") {
                    deliveries.push(webhook(&app, webhooks::change_payload(&user.user_id, now, "mentions", value.clone())));
                }
            }
            EventKind::StoryInsights => {
                let story = match &req.media_id {
                    Some(m) => st.media.get(m).filter(|m| m.owner == user.user_id && m.media_product_type == "STORY"),
                    None => user
                        .media
                        .iter()
                        .rev()
                        .filter_map(|id| st.media.get(id))
                        .find(|m| m.media_product_type == "STORY"),
                }
                .map(|m| m.id.clone())
                .ok_or_else(|| ControlError::not_found("no story of this user: publish one with media_type=STORIES first"))?;
                let value = story_metrics(&story);
                extra = json!({ "media_id": story });
                for app in webhooks::recipients(st, &user.user_id, "story_insights") {
                    deliveries.push(webhook(&app, webhooks::change_payload(&user.user_id, now, "story_insights", value.clone())));
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
            EventKind::Mention => "mention",
            EventKind::StoryInsights => "story_insights",
        }
    }
}

/// The commenter's id: the same for every comment under one username.
fn commenter_id(st: &crate::state::State, username: &str) -> String {
    st.user_by_name(username)
        .map(|u| u.user_id.clone())
        .or_else(|| {
            st.comments
                .values()
                .find(|c| c.username == username)
                .map(|c| c.from_id.clone())
        })
        .unwrap_or_else(new_object_id)
}

/// A story's metrics as the `story_insights` webhook reports them; deterministic per story.
fn story_metrics(media_id: &str) -> Value {
    let seed = crate::ids::sha256(media_id);
    let n = |i: usize, m: u64| u64::from(seed[i]) % m;
    let reach = 20 + n(0, 200);
    json!({
        "media_id": media_id,
        "exits": n(1, 10),
        "replies": n(2, 5),
        "reach": reach,
        "taps_forward": n(3, 40),
        "taps_back": n(4, 10),
        "impressions": reach + n(5, 50),
    })
}

fn webhook(app: &crate::state::App, payload: Value) -> Delivery {
    Delivery {
        client_id: app.client_id.clone(),
        url: app.webhook_url.clone().unwrap_or_default(),
        secret: app.secret.clone(),
        body: Delivered::Webhook(payload.to_string().into_bytes()),
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
