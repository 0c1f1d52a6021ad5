//! Dashboard sign-in: an admin API key or the configured admin password opens a
//! server-side session. The cookie holds a random secret; the database holds only
//! its SHA-256, so every replica recognises it and a database leak signs nobody in.
//! Each form carries a CSRF token derived from that secret.

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use igbroker_core::ApiScope;
use igbroker_core::secrets::{random_token, sha256_hex};
use igbroker_store::UiSessionRow;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// How long a one-time sign-in link (the demo prints one) stays usable.
pub const LINK_TTL_SECS: i64 = 15 * 60;
/// How long the sign-in form's CSRF cookie lives.
const PRE_TTL_SECS: i64 = 30 * 60;

/// The cookie's name: with `Secure`, the `__Host-` prefix also pins it to this host and path.
pub fn cookie_name(state: &AppState) -> &'static str {
    if secure(state) {
        "__Host-igb_session"
    } else {
        "igb_session"
    }
}

fn pre_cookie_name(state: &AppState) -> &'static str {
    if secure(state) {
        "__Host-igb_signin"
    } else {
        "igb_signin"
    }
}

/// Cookies are `Secure` when the broker is served over https.
pub fn secure(state: &AppState) -> bool {
    state.config().public_url.starts_with("https://")
}

fn cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    // The value is hex or empty, the rest is ASCII: always a valid header.
    HeaderValue::from_str(&text)
        .unwrap_or_else(|_| HeaderValue::from_static("igb_session=; Max-Age=0"))
}

pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session (or of a sign-in form): bound to its secret, which a
/// page of another site can neither read (HttpOnly) nor send (SameSite=Strict).
pub fn csrf_for(secret: &str) -> String {
    sha256_hex(&format!("igbroker-ui-csrf\0{secret}"))
}

fn csrf_matches(secret: &str, given: &str) -> bool {
    csrf_for(secret).as_bytes().ct_eq(given.as_bytes()).into()
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Who the audit log names: `ui:admin` or `ui:api_key:key_…`.
    pub actor: String,
    pub csrf: String,
    secret: String,
}

impl Admin {
    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, given: &str) -> Result<(), ApiError> {
        if csrf_matches(&self.secret, given) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this form is stale or came from another site (CSRF token mismatch); reload the page and try again".into(),
            ))
        }
    }

    pub fn session_hash(&self) -> String {
        sha256_hex(&self.secret)
    }
}

/// Not signed in: pages send the browser to the sign-in form.
pub struct SignInRequired;

impl IntoResponse for SignInRequired {
    fn into_response(self) -> Response {
        (StatusCode::SEE_OTHER, [(LOCATION, "/ui/sign-in")]).into_response()
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(secret) = read_cookie(&parts.headers, cookie_name(state)) else {
            return Err(SignInRequired.into_response());
        };
        match state
            .store()
            .find_ui_session(&sha256_hex(secret), state.now())
            .await
        {
            Ok(Some(row)) => Ok(Admin {
                actor: row.actor,
                csrf: csrf_for(secret),
                secret: secret.to_string(),
            }),
            Ok(None) => Err(SignInRequired.into_response()),
            Err(e) => Err(super::UiError::from(ApiError::from(e)).into_response()),
        }
    }
}

/// What the sign-in form may carry.
pub enum Credential<'a> {
    ApiKey(&'a str),
    Password(&'a str),
}

/// Checks a credential; the answer names the actor and, for a key, its id. A key must hold
/// `admin` for every app: the dashboard shows and changes everything.
pub async fn authenticate(
    state: &AppState,
    cred: Credential<'_>,
) -> Result<(String, Option<String>), ApiError> {
    let refused = || {
        ApiError::Unauthorized(
            "sign-in refused: use an API key with the `admin` scope for every app, or the admin password".into(),
        )
    };
    match cred {
        Credential::ApiKey(key) => {
            let row = state
                .store()
                .find_api_key(&sha256_hex(key.trim()))
                .await?
                .ok_or_else(refused)?;
            let scopes = ApiScope::parse_list(&[row.scopes.as_str()])
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            if !scopes.contains(&ApiScope::Admin) || !row.app_ids.trim().is_empty() {
                return Err(refused());
            }
            Ok((format!("ui:api_key:{}", row.id), Some(row.id)))
        }
        Credential::Password(pw) => {
            let hash = state.config().ui.admin_password_hash.trim();
            if hash.is_empty() {
                return Err(ApiError::Unauthorized(
                    "no admin password is configured (ui.admin_password_hash); sign in with an admin API key".into(),
                ));
            }
            let parsed = PasswordHash::new(hash)
                .map_err(|_| ApiError::Internal("ui.admin_password_hash is not valid".into()))?;
            Argon2::default()
                .verify_password(pw.as_bytes(), &parsed)
                .map_err(|_| refused())?;
            Ok(("ui:admin".to_string(), None))
        }
    }
}

/// Opens a session: stores its hash and answers the `Set-Cookie` header.
pub async fn open(
    state: &AppState,
    actor: &str,
    api_key_id: Option<String>,
) -> Result<HeaderValue, ApiError> {
    let secret = random_token();
    let now = state.now();
    let ttl = i64::try_from(state.config().ui.session_ttl.as_secs()).unwrap_or(43_200);
    if let Err(e) = state.store().prune_ui_sessions(now).await {
        tracing::warn!(error = %e, "could not prune expired dashboard sessions");
    }
    state
        .store()
        .insert_ui_session(&UiSessionRow {
            id_hash: sha256_hex(&secret),
            kind: "session".into(),
            actor: actor.to_string(),
            api_key_id,
            created_at: now,
            expires_at: now + ttl,
        })
        .await?;
    Ok(cookie(state, cookie_name(state), &secret, ttl))
}

pub fn clear(state: &AppState) -> HeaderValue {
    cookie(state, cookie_name(state), "", 0)
}

/// A one-time link that opens a session as `actor` (the demo prints one).
pub async fn create_link(state: &AppState, actor: &str) -> Result<String, ApiError> {
    let secret = random_token();
    let now = state.now();
    state
        .store()
        .insert_ui_session(&UiSessionRow {
            id_hash: sha256_hex(&secret),
            kind: "link".into(),
            actor: actor.to_string(),
            api_key_id: None,
            created_at: now,
            expires_at: now + LINK_TTL_SECS,
        })
        .await?;
    Ok(format!(
        "{}/ui/sign-in/link/{secret}",
        state.config().public_url.trim_end_matches('/')
    ))
}

/// The sign-in form's own CSRF pair: a cookie secret and the token the form carries.
pub struct PreSession {
    pub csrf: String,
    pub set_cookie: Option<HeaderValue>,
}

pub fn pre_session(state: &AppState, headers: &HeaderMap) -> PreSession {
    match read_cookie(headers, pre_cookie_name(state)) {
        Some(secret) => PreSession {
            csrf: csrf_for(secret),
            set_cookie: None,
        },
        None => {
            let secret = random_token();
            PreSession {
                csrf: csrf_for(&secret),
                set_cookie: Some(cookie(state, pre_cookie_name(state), &secret, PRE_TTL_SECS)),
            }
        }
    }
}

pub fn check_pre_csrf(state: &AppState, headers: &HeaderMap, given: &str) -> Result<(), ApiError> {
    match read_cookie(headers, pre_cookie_name(state)) {
        Some(secret) if csrf_matches(secret, given) => Ok(()),
        _ => Err(ApiError::Forbidden(
            "the sign-in form is stale or came from another site (CSRF token mismatch); reload it and try again".into(),
        )),
    }
}
