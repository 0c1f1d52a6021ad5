use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use igbroker_core::ApiScope;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::http::auth::Caller;
use crate::http::extract::{JsonBody, QueryParams};
use crate::http::openapi;
use crate::service::api_keys::{self, ApiKeyView};
use crate::state::AppState;
use crate::util::{Page, PageQuery, page, split_list};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewKey {
    name: String,
    scopes: Vec<String>,
    #[serde(default)]
    app_ids: Vec<String>,
    /// This key's own request rate per second (default: `[limits] per_key_per_second`).
    rate_limit_per_second: Option<u32>,
}

/// A new key: `key` is its secret, shown this once and stored only as a hash.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ApiKeyCreated {
    #[serde(flatten)]
    pub view: ApiKeyView,
    pub key: String,
    pub rate_limit_per_second: Option<u32>,
}

/// Whether `caller` may see and revoke a key limited to `app_ids` (comma-joined).
fn manages(caller: &Caller, app_ids: &str) -> bool {
    let apps = split_list(app_ids);
    caller.reach().covers_apps(&apps)
}

#[utoipa::path(
    post,
    path = "/v1/api-keys",
    operation_id = "createApiKey",
    tag = "api-keys",
    summary = "Create an API key no wider than the caller's (scope admin)",
    security(("api_key" = [])),
    request_body = NewKey,
    responses(
        (status = 201, description = "The key; `key` is shown this once", body = ApiKeyCreated),
        openapi::CommonErrors,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewKey>,
) -> ApiResult<(StatusCode, Json<ApiKeyCreated>)> {
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
    let (row, key) = api_keys::create(
        state.store(),
        &caller.actor(),
        api_keys::NewKey {
            name: &req.name,
            scopes: &req.scopes,
            app_ids: &req.app_ids,
            rate_limit_per_second: req.rate_limit_per_second,
        },
        state.now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyCreated {
            view: ApiKeyView::from_row(&row),
            key,
            rate_limit_per_second: req.rate_limit_per_second,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/api-keys",
    operation_id = "listApiKeys",
    tag = "api-keys",
    summary = "List the keys the caller manages (scope admin)",
    security(("api_key" = [])),
    params(("limit" = Option<u32>, Query, description = "1 to 500, default 50"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses(
        (status = 200, description = "One page of keys, never their secrets", body = Page<ApiKeyView>),
        openapi::CommonErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<Page<ApiKeyView>>> {
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
    Ok(Json(Page {
        data,
        next_cursor: next,
    }))
}

#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    operation_id = "revokeApiKey",
    tag = "api-keys",
    summary = "Revoke a key (scope admin)",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The key id (`key_…`)")),
    responses(
        (status = 204, description = "Revoked"),
        openapi::CommonErrors, openapi::NotFound, openapi::Conflict,
    )
)]
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
    api_keys::revoke(state.store(), &caller.actor(), &id, true, state.now()).await?;
    // Refused here at once; other replicas within `api_key_cache_ttl`.
    state.api_keys().forget_id(&id);
    Ok(StatusCode::NO_CONTENT)
}
