use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use igbroker_core::ApiScope;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::http::auth::Caller;
use crate::http::extract::{JsonBody, QueryParams};
use crate::service::api_keys::{self, ApiKeyView};
use crate::service::audit;
use crate::state::AppState;
use crate::util::{PageQuery, page};

#[derive(Deserialize)]
pub struct NewKey {
    name: String,
    scopes: Vec<String>,
    #[serde(default)]
    app_ids: Vec<String>,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(ApiScope::Admin)?;
    let (row, key) = api_keys::create(
        state.store(),
        &req.name,
        &req.scopes,
        &req.app_ids,
        state.now(),
    )
    .await?;
    audit::record(
        &state,
        &caller.actor(),
        "api_key.created",
        None,
        None,
        json!({"key_id": row.id}),
    )
    .await?;
    let mut view = serde_json::to_value(ApiKeyView::from_row(&row))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    view["key"] = Value::String(key);
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(ApiScope::Admin)?;
    let limit = q.limit()?;
    let rows = state
        .store()
        .list_api_keys(q.after()?.as_deref(), limit + 1)
        .await?;
    let (rows, next) = page(rows, limit, |r| r.id.clone());
    let data: Vec<ApiKeyView> = rows.iter().map(ApiKeyView::from_row).collect();
    Ok(Json(json!({"data": data, "next_cursor": next})))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(ApiScope::Admin)?;
    if !state.store().revoke_api_key(&id, state.now()).await? {
        return Err(ApiError::not_found("API key", &id));
    }
    audit::record(
        &state,
        &caller.actor(),
        "api_key.revoked",
        None,
        None,
        json!({"key_id": id}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
