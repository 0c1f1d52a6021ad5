//! `POST /_sandbox/seed`: many users, each already connected to an app with a
//! long-lived token, in one call. Load tests and benchmarks need thousands of
//! accounts; walking the consent page for each would measure the page, not them.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Sandbox;
use crate::control::{body, new_user};
use crate::errors::ControlError;
use crate::oauth::issue_token;
use crate::state::{SCOPE_BASIC, TokenKind};

/// The most users one call creates.
const MAX_SEED: usize = 50_000;

#[derive(Debug, Deserialize)]
pub struct SeedRequest {
    client_id: String,
    count: usize,
    /// Usernames are `{prefix}{n}`; default `seed_`.
    #[serde(default)]
    username_prefix: Option<String>,
    /// Comma-separated scopes granted (default the basic scope).
    #[serde(default)]
    scope: Option<String>,
    /// How long ago the tokens were issued (they expire 60 days after that).
    #[serde(default)]
    token_age_secs: Option<i64>,
}

pub async fn seed(
    State(sb): State<Sandbox>,
    b: Result<Json<SeedRequest>, JsonRejection>,
) -> Result<Json<Value>, ControlError> {
    let req = body(b)?;
    if req.count == 0 || req.count > MAX_SEED {
        return Err(ControlError::bad_request(format!("count: 1 to {MAX_SEED}")));
    }
    let prefix = req
        .username_prefix
        .clone()
        .unwrap_or_else(|| "seed_".into());
    if prefix.is_empty()
        || prefix.len() > 20
        || !prefix
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
    {
        return Err(ControlError::bad_request(
            "username_prefix: letters, digits, periods and underscores, 1 to 20 characters",
        ));
    }
    let scopes: Vec<String> = req
        .scope
        .as_deref()
        .unwrap_or(SCOPE_BASIC)
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let age = req.token_age_secs.unwrap_or(0).max(0);
    let now = sb.now();
    let issued = now - age;
    let out = sb.write(|st| {
        let app = st.apps.get(&req.client_id).ok_or_else(|| {
            ControlError::not_found(format!("no app with client_id {}", req.client_id))
        })?;
        let ttl = app.long_ttl();
        let mut data = Vec::with_capacity(req.count);
        for n in 0..req.count {
            let username = format!("{prefix}{n}");
            let user_id = match st.user_by_name(&username) {
                Some(u) => u.user_id.clone(),
                None => {
                    let user = new_user(&username, None, now);
                    let id = user.user_id.clone();
                    st.insert_user(user);
                    id
                }
            };
            let scoped = st.scoped_id(&req.client_id, &user_id);
            let token = issue_token(
                st,
                issued,
                &req.client_id,
                &user_id,
                TokenKind::Long,
                scopes.clone(),
                ttl,
            );
            data.push(json!({
                "username": username,
                "user_id": user_id,
                "id": scoped.to_string(),
                "access_token": token,
                "issued_at": issued,
                "expires_at": issued + ttl,
            }));
        }
        Ok::<_, ControlError>(data)
    })?;
    Ok(Json(json!({ "data": out })))
}

/// `GET /_sandbox/stats`: calls per route and HTTP status since the sandbox started.
pub async fn stats(State(sb): State<Sandbox>) -> Json<Value> {
    let counts = crate::lock(&sb.inner.calls).counts().clone();
    Json(json!({ "calls": counts }))
}
