//! Connect sessions and the two routes a browser visits: the connect link and
//! Instagram's redirect back.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, REFERRER_POLICY};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use igbroker_core::ApiScope;

use crate::error::ApiResult;
use crate::http::auth::Caller;
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
    caller.require_app(&row.app_id)?;
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
    Ok(redirect(&location))
}

pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<CallbackQuery>,
) -> ApiResult<Response> {
    let outcome = connect::handle_callback(&state, q).await?;
    Ok(match outcome.redirect_location() {
        Some(loc) => redirect(&loc),
        None => crate::http::ui::result::page(&state, &headers, &outcome).await,
    })
}
