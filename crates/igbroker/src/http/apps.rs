use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use igbroker_core::ApiScope;

use crate::error::{ApiError, ApiResult};
use crate::http::auth::Caller;
use crate::http::extract::{JsonBody, QueryParams};
use crate::http::openapi;
use crate::service::apps::{self, AppChanges, AppShown, AppView, NewApp};
use crate::service::instagram_webhooks::{self, AppUpdated};
use crate::state::AppState;
use crate::util::{Page, PageQuery, page};

#[utoipa::path(
    post,
    path = "/v1/apps",
    operation_id = "createApp",
    tag = "apps",
    summary = "Register an Instagram app (scope apps:write)",
    security(("api_key" = [])),
    request_body = NewApp,
    responses(
        (status = 201, description = "The app; its webhook secret is shown this once", body = AppShown),
        openapi::CommonErrors, openapi::Conflict,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewApp>,
) -> ApiResult<(StatusCode, Json<AppShown>)> {
    caller.require(ApiScope::AppsWrite)?;
    if !caller.app_ids.is_empty() {
        return Err(ApiError::Forbidden(
            "a key limited to some apps cannot register new ones".into(),
        ));
    }
    let (row, webhook_secret) = apps::create(&state, &caller.actor(), req).await?;
    Ok((
        StatusCode::CREATED,
        Json(AppShown {
            app: AppView::from_row(&row),
            webhook_secret,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/apps",
    operation_id = "listApps",
    tag = "apps",
    summary = "List apps (scope accounts:read or apps:write)",
    security(("api_key" = [])),
    params(("limit" = Option<u32>, Query, description = "1 to 500, default 50"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses(
        (status = 200, description = "One page of apps", body = Page<AppView>),
        openapi::CommonErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<Page<AppView>>> {
    caller
        .require(ApiScope::AccountsRead)
        .or_else(|_| caller.require(ApiScope::AppsWrite))?;
    let limit = q.limit()?;
    let only = (!caller.app_ids.is_empty()).then_some(caller.app_ids.as_slice());
    let rows = apps::list(&state, only, q.after()?.as_deref(), limit + 1).await?;
    let (rows, next) = page(rows, limit, |r| r.id.clone());
    let data: Vec<AppView> = rows.iter().map(AppView::from_row).collect();
    Ok(Json(Page {
        data,
        next_cursor: next,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/apps/{app_id}",
    operation_id = "getApp",
    tag = "apps",
    summary = "One app (scope accounts:read or apps:write)",
    security(("api_key" = [])),
    params(("app_id" = String, Path, description = "The app id (`app_…`)")),
    responses(
        (status = 200, description = "The app", body = AppView),
        openapi::CommonErrors, openapi::NotFound,
    )
)]
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

#[utoipa::path(
    patch,
    path = "/v1/apps/{app_id}",
    operation_id = "updateApp",
    tag = "apps",
    summary = "Change an app; absent fields stay (scope apps:write)",
    security(("api_key" = [])),
    params(("app_id" = String, Path, description = "The app id (`app_…`)")),
    request_body = AppChanges,
    responses(
        (status = 200, description = "The app; a rotated webhook secret is shown this once", body = AppUpdated),
        openapi::CommonErrors, openapi::NotFound, openapi::Conflict,
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<AppChanges>,
) -> ApiResult<Json<AppUpdated>> {
    caller.require(ApiScope::AppsWrite)?;
    caller.require_app(&id)?;
    Ok(Json(
        instagram_webhooks::update_app(&state, &caller.actor(), &id, req).await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/apps/{app_id}",
    operation_id = "deleteApp",
    tag = "apps",
    summary = "Delete an app without accounts (scope apps:write)",
    security(("api_key" = [])),
    params(("app_id" = String, Path, description = "The app id (`app_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        openapi::CommonErrors, openapi::NotFound, openapi::Conflict,
    )
)]
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
