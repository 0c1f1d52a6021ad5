use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use igbroker_core::ApiScope;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::http::auth::Caller;
use crate::http::extract::{JsonBody, QueryParams};
use crate::service::apps::{self, AppChanges, AppView, NewApp};
use crate::service::instagram_webhooks;
use crate::state::AppState;
use crate::util::{PageQuery, page};

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewApp>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(ApiScope::AppsWrite)?;
    if !caller.app_ids.is_empty() {
        return Err(ApiError::Forbidden(
            "a key limited to some apps cannot register new ones".into(),
        ));
    }
    let (row, webhook_secret) = apps::create(&state, &caller.actor(), req).await?;
    Ok((
        StatusCode::CREATED,
        Json(apps::shown_once(&row, webhook_secret)?),
    ))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<Value>> {
    caller
        .require(ApiScope::AccountsRead)
        .or_else(|_| caller.require(ApiScope::AppsWrite))?;
    let limit = q.limit()?;
    let only = (!caller.app_ids.is_empty()).then_some(caller.app_ids.as_slice());
    let rows = apps::list(&state, only, q.after()?.as_deref(), limit + 1).await?;
    let (rows, next) = page(rows, limit, |r| r.id.clone());
    let data: Vec<AppView> = rows.iter().map(AppView::from_row).collect();
    Ok(Json(json!({"data": data, "next_cursor": next})))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AppView>> {
    caller
        .require(ApiScope::AccountsRead)
        .or_else(|_| caller.require(ApiScope::AppsWrite))?;
    caller.require_app(&id)?;
    let row = apps::get(&state, &id).await?;
    Ok(Json(AppView::from_row(&row)))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<AppChanges>,
) -> ApiResult<Json<Value>> {
    caller.require(ApiScope::AppsWrite)?;
    caller.require_app(&id)?;
    Ok(Json(
        instagram_webhooks::update_app(&state, &caller.actor(), &id, req).await?,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(ApiScope::AppsWrite)?;
    caller.require_app(&id)?;
    apps::delete(&state, &caller.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
