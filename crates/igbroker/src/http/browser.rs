//! Connect sessions and the two routes a browser visits: the connect link and
//! Instagram's redirect back.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, LOCATION, REFERRER_POLICY};
use axum::response::{Html, IntoResponse, Response};
use igbroker_core::ApiScope;

use crate::error::{ApiResult, ErrorBody};
use crate::http::auth::Caller;
use crate::http::browser_guard;
use crate::http::extract::{JsonBody, QueryParams};
use crate::http::openapi;
use crate::service::connect::{self, CallbackQuery, NewSession, SessionView};
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/v1/connect-sessions",
    operation_id = "createConnectSession",
    tag = "connect",
    summary = "Start connecting an account: answers the link to send the end user (scope connect)",
    security(("api_key" = [])),
    request_body = NewSession,
    responses(
        (status = 201, description = "The session with its connect_url", body = SessionView),
        openapi::CommonErrors, openapi::NotFound,
    )
)]
pub async fn create_session(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewSession>,
) -> ApiResult<(StatusCode, Json<SessionView>)> {
    caller.require(ApiScope::Connect)?;
    caller.require_app(&req.app_id)?;
    let row = connect::create(&state, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(SessionView::from_row(&state, &row)),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/connect-sessions/{id}",
    operation_id = "getConnectSession",
    tag = "connect",
    summary = "Where a connect session stands (scope connect or accounts:read)",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The session id (`cs_…`)")),
    responses(
        (status = 200, description = "The session", body = SessionView),
        openapi::CommonErrors, openapi::NotFound,
    )
)]
pub async fn show_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionView>> {
    caller
        .require(ApiScope::Connect)
        .or_else(|_| caller.require(ApiScope::AccountsRead))?;
    let row = connect::get(&state, &id).await?;
    caller.require_app_of("connect session", &id, &row.app_id)?;
    Ok(Json(SessionView::from_row(&state, &row)))
}

fn redirect(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [
            (LOCATION, location.to_string()),
            (CACHE_CONTROL, "no-store".to_string()),
            // The authorize URL carries the state; keep it out of Referer headers.
            (REFERRER_POLICY, "no-referrer".to_string()),
        ],
    )
        .into_response()
}

#[utoipa::path(get, path = "/connect/{id}", operation_id = "openConnectLink", tag = "browser", summary = "The connect link an end user opens: redirects to Instagram's consent page",
    params(("id" = String, Path, description = "The connect session id")),
    responses(
        (status = 302, description = "To Instagram's authorize URL; sets the browser-binding cookie"),
        (status = 400, description = "The session expired or was used", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
    ))]
pub async fn connect(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let location = connect::authorize_redirect(&state, &id).await?;
    let session = connect::get(&state, &id).await?;
    let cookie = browser_guard::bind_browser(&state, &id, session.expires_at).await?;
    let mut resp = redirect(&location);
    if let Ok(v) = axum::http::HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(axum::http::header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[utoipa::path(get, path = "/oauth/callback", operation_id = "oauthCallback", tag = "browser", summary = "Instagram's redirect back with a code or a denial",
    params(
        ("state" = Option<String>, Query, description = "The single-use CSRF state"),
        ("code" = Option<String>, Query, description = "The authorization code"),
        ("error" = Option<String>, Query, description = "Set when the user denied"),
        ("error_reason" = Option<String>, Query),
        ("error_description" = Option<String>, Query),
    ),
    responses(
        (status = 302, description = "To the session's return_url with the outcome"),
        (status = 200, description = "The broker's result page when there is no return_url", content_type = "text/html", body = String),
        (status = 400, description = "Unknown, expired or reused state; or another browser", body = ErrorBody),
    ))]
pub async fn callback(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    QueryParams(q): QueryParams<CallbackQuery>,
) -> ApiResult<Response> {
    // Only the browser that opened the connect link may finish it: a consent page
    // completed elsewhere (a link sent to a victim, say) is refused.
    if let Some(raw) = q.state.as_deref().filter(|s| !s.is_empty())
        && !browser_guard::same_browser(&state, &headers, raw).await?
    {
        return Ok(wrong_browser_page());
    }
    let outcome = connect::handle_callback(&state, q).await?;
    Ok(match outcome.redirect_location() {
        Some(loc) => redirect(&loc),
        None => crate::http::ui::result::page(&state, &headers, &outcome).await,
    })
}

fn wrong_browser_page() -> Response {
    let body = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Start again from the app</title><link rel=\"stylesheet\" href=\"/ui/static/app.css\"></head>\
         <body class=\"result\"><main id=\"main\" class=\"result-card\">\
         <h1>Start again from the app</h1>\
         <p>This Instagram connection was started in another browser (or its cookie was removed), \
         so it cannot be finished here. Nothing was connected.</p>\
         <p>Go back to the app that sent you and start again from there, in this browser.</p>\
         <p class=\"meta\">status <code id=\"status\">wrong_browser</code></p></main></body></html>";
    (
        StatusCode::BAD_REQUEST,
        [(CACHE_CONTROL, "no-store")],
        Html(body),
    )
        .into_response()
}

/// Escapes text for HTML written by hand (the Meta callbacks' pages).
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
