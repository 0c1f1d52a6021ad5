//! The dashboard's cookies: the session cookie (its secret opens a session kept by
//! `service::sign_in`), the sign-in form's own CSRF cookie, and the CSRF token every
//! form carries, derived from the cookie's secret.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use igbroker_core::secrets::{random_token, sha256_hex};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::service::sign_in;
use crate::state::AppState;
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

pub fn cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
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

    /// Ends this session everywhere, audited.
    pub async fn sign_out(&self, state: &AppState) -> Result<(), crate::service::Error> {
        sign_in::close(state, &self.secret, &self.actor).await
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
        match sign_in::find(state, secret).await {
            Ok(Some(actor)) => Ok(Admin {
                actor,
                csrf: csrf_for(secret),
                secret: secret.to_string(),
            }),
            Ok(None) => Err(SignInRequired.into_response()),
            Err(e) => Err(super::UiError::from(ApiError::from(e)).into_response()),
        }
    }
}

/// The `Set-Cookie` of a session just opened.
pub fn session_cookie(state: &AppState, opened: &sign_in::Opened) -> HeaderValue {
    cookie(state, cookie_name(state), &opened.secret, opened.ttl_secs)
}

pub fn clear(state: &AppState) -> HeaderValue {
    cookie(state, cookie_name(state), "", 0)
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
