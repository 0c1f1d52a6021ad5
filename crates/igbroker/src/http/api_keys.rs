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
    /// This key's own request rate per second (default: `[limits] per_key_per_second`).
    rate_limit_per_second: Option<u32>,
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `caller` may see and revoke a key limited to `app_ids` (comma-joined).
fn manages(caller: &Caller, app_ids: &str) -> bool {
    let apps = split(app_ids);
    caller.reach().covers_apps(&apps)
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(ApiScope::Admin)?;
    // A key grants only what it holds: scopes it has, apps it reaches.
    let wanted_scopes =
        ApiScope::parse_list(&req.scopes).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    igbroker_core::key_policy::may_create(
        &caller.reach(),
        &igbroker_core::key_policy::KeyReach {
            scopes: &wanted_scopes,
            app_ids: &req.app_ids,
        },
    )
    .map_err(|e| ApiError::Forbidden(e.to_string()))?;
    if let Some(r) = req.rate_limit_per_second
        && !(1..=100_000).contains(&r)
    {
        return Err(ApiError::InvalidRequest(
            "rate_limit_per_second must be 1 to 100000".into(),
        ));
    }
    let (row, key) = api_keys::create(
        state.store(),
        &req.name,
        &req.scopes,
        &req.app_ids,
        state.now(),
    )
    .await?;
    if let Some(r) = req.rate_limit_per_second {
        state
            .store()
            .set_api_key_rate(&row.id, i64::from(r))
            .await?;
    }
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
    view["rate_limit_per_second"] = json!(req.rate_limit_per_second);
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(ApiScope::Admin)?;
    let limit = q.limit()?;
    // Keys outside the caller's apps are skipped; read on until the page is full, so a
    // limited key's pages are as long as anyone's.
    let mut after = q.after()?;
    let mut rows = Vec::new();
    loop {
        let batch = state.store().list_api_keys(after.as_deref(), 500).await?;
        let done = batch.len() < 500;
        after = batch.last().map(|r| r.id.clone());
        rows.extend(batch.into_iter().filter(|r| manages(&caller, &r.app_ids)));
        if done || rows.len() > limit as usize {
            break;
        }
    }
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
    // A key outside the caller's apps answers as a missing one.
    let Some((_, app_ids)) = state.store().api_key_reach(&id).await? else {
        return Err(ApiError::not_found("API key", &id));
    };
    if !manages(&caller, &app_ids) {
        return Err(ApiError::not_found("API key", &id));
    }
    if !state
        .store()
        .revoke_api_key_keeping_root(&id, state.now())
        .await?
    {
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
