//! The sign-in form, one-time sign-in links, and signing out.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::session::{self, Admin, Credential};
use super::{Chrome, UiResult, render, see_other};
use crate::error::ApiError;
use crate::service::audit;
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
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> UiResult {
    session::check_pre_csrf(&state, &headers, &f.csrf)?;
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
    let (actor, key_id) = match session::authenticate(&state, cred).await {
        Ok(v) => v,
        Err(ApiError::Unauthorized(message)) => {
            tracing::info!("dashboard sign-in refused");
            return Ok(sign_in_page(&state, &headers, Some(message)));
        }
        Err(e) => return Err(e.into()),
    };
    let cookie = session::open(&state, &actor, key_id).await?;
    audit::record(&state, &actor, "ui.signed_in", None, None, json!({})).await?;
    let mut resp = see_other("/ui");
    resp.headers_mut().append(SET_COOKIE, cookie);
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
    Path(secret): Path<String>,
    Query(q): Query<LinkQuery>,
) -> UiResult {
    let hash = igbroker_core::secrets::sha256_hex(&secret);
    let Some(row) = state.store().take_ui_link(&hash, state.now()).await? else {
        return Err(ApiError::Unauthorized(
            "this sign-in link was already used or has expired; sign in with an admin API key"
                .into(),
        )
        .into());
    };
    let cookie = session::open(&state, &row.actor, None).await?;
    audit::record(
        &state,
        &row.actor,
        "ui.signed_in",
        None,
        None,
        json!({"via": "one-time link"}),
    )
    .await?;
    let mut resp = see_other(local_next(q.next.as_deref()));
    resp.headers_mut().append(SET_COOKIE, cookie);
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
    Form(f): Form<CsrfForm>,
) -> UiResult {
    admin.check_csrf(&f.csrf)?;
    state
        .store()
        .delete_ui_session(&admin.session_hash())
        .await?;
    audit::record(&state, &admin.actor, "ui.signed_out", None, None, json!({})).await?;
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
