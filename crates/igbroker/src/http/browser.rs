//! Connect sessions and the two routes a browser visits: the connect link and
//! Instagram's redirect back.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, LOCATION, REFERRER_POLICY};
use axum::response::{Html, IntoResponse, Response};
use igbroker_core::ApiScope;

use crate::error::ApiResult;
use crate::http::auth::Caller;
use crate::http::browser_guard;
use crate::http::extract::{JsonBody, QueryParams};
use crate::service::connect::{self, CallbackQuery, NewSession, SessionView};
use crate::state::AppState;

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
