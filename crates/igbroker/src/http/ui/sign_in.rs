//! The sign-in form, one-time sign-in links, and signing out.

use askama::Template;
use std::net::IpAddr;
use std::time::Instant;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::session::{self, Admin};
use super::{Chrome, UiForm, UiQuery, UiResult, render, see_other};
use crate::error::ApiError;
use crate::limits::retry_after_secs;
use crate::service::Error;
use crate::service::sign_in::{self, Credential};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "ui/signin.html")]
struct SignInPage {
    title: String,
    chrome: Option<Chrome>,
    notice: Option<String>,
    csrf: String,
    error: Option<String>,
    password_enabled: bool,
}

fn sign_in_page(state: &AppState, headers: &HeaderMap, error: Option<String>) -> Response {
    let pre = session::pre_session(state, headers);
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let page = SignInPage {
        title: "Sign in".into(),
        chrome: None,
        notice: None,
        csrf: pre.csrf,
        error,
        password_enabled: !state.config().ui.admin_password_hash.trim().is_empty(),
    };
    let mut resp = (status, render(&page)).into_response();
    if let Some(c) = pre.set_cookie {
        resp.headers_mut().append(SET_COOKIE, c);
    }
    resp
}

/// The address a sign-in comes from: wrong keys, passwords and links count against it
/// as wrong API keys do, so the form is no way around the API's slowdown.
pub struct Peer(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(crate::listener::peer_ip(&parts.extensions)))
    }
}

impl Peer {
    fn check(&self, state: &AppState) -> Result<(), ApiError> {
        match self
            .0
            .and_then(|ip| state.limiter().auth_blocked(ip, Instant::now()))
        {
            Some(wait) => Err(ApiError::RateLimited {
                message: "too many failed sign-ins from this address; wait a little and check the key or password".into(),
                retry_after_secs: retry_after_secs(wait),
            }),
            None => Ok(()),
        }
    }

    fn failed(&self, state: &AppState) {
        if let Some(ip) = self.0 {
            state.limiter().auth_failed(ip, Instant::now());
        }
    }
}

pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    sign_in_page(&state, &headers, None)
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    password: String,
}

pub async fn submit(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    UiForm(f): UiForm<SignInForm>,
) -> UiResult {
    session::check_pre_csrf(&state, &headers, &f.csrf)?;
    peer.check(&state)?;
    let cred = match (f.api_key.trim(), f.password.as_str()) {
        (key, _) if !key.is_empty() => Credential::ApiKey(key),
        (_, pw) if !pw.is_empty() => Credential::Password(pw),
        _ => {
            return Ok(sign_in_page(
                &state,
                &headers,
                Some("Enter an admin API key or the admin password.".into()),
            ));
        }
    };
    let who = match sign_in::authenticate(&state, cred).await {
        Ok(v) => v,
        Err(Error::Unauthorized(message)) => {
            tracing::info!("dashboard sign-in refused");
            peer.failed(&state);
            return Ok(sign_in_page(&state, &headers, Some(message)));
        }
        Err(e) => return Err(e.into()),
    };
    let opened = sign_in::open(&state, who).await?;
    let mut resp = see_other("/ui");
    resp.headers_mut()
        .append(SET_COOKIE, session::session_cookie(&state, &opened));
    Ok(resp)
}

#[derive(Deserialize, Default)]
pub struct LinkQuery {
    #[serde(default)]
    next: Option<String>,
}

/// Where a sign-in may lead: a dashboard page, never another site.
fn local_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if (n == "/ui" || n.starts_with("/ui/"))
                && !n.contains("//")
                && !n.contains('\\')
                && n.chars().all(|c| c.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/ui",
    }
}

/// A one-time link (the demo prints one): opens a session, then the page it names.
pub async fn link(
    State(state): State<AppState>,
    peer: Peer,
    Path(secret): Path<String>,
    UiQuery(q): UiQuery<LinkQuery>,
) -> UiResult {
    peer.check(&state)?;
    let opened = match sign_in::open_by_link(&state, &secret).await {
        Ok(o) => o,
        Err(e @ Error::Unauthorized(_)) => {
            peer.failed(&state);
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    let mut resp = see_other(local_next(q.next.as_deref()));
    resp.headers_mut()
        .append(SET_COOKIE, session::session_cookie(&state, &opened));
    Ok(resp)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn sign_out(
    State(state): State<AppState>,
    admin: Admin,
    UiForm(f): UiForm<CsrfForm>,
) -> UiResult {
    admin.check_csrf(&f.csrf)?;
    admin.sign_out(&state).await?;
    let mut resp = see_other("/ui/sign-in");
    resp.headers_mut()
        .append(SET_COOKIE, session::clear(&state));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::local_next;

    #[test]
    fn a_sign_in_leads_only_to_dashboard_pages() {
        assert_eq!(local_next(Some("/ui/connect")), "/ui/connect");
        for hostile in [
            "https://evil.example/ui",
            "//evil.example",
            "/ui//evil.example",
            "/ui/\\evil",
            "/uix",
            "/ui/a b",
        ] {
            assert_eq!(local_next(Some(hostile)), "/ui", "{hostile}");
        }
        assert_eq!(local_next(None), "/ui");
    }
}
