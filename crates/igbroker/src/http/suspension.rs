//! `POST /v1/accounts/{id}/suspend` and `/resume` (scope `accounts:write`, audited): an
//! operator's hold on an account, the same one the anomaly detector places.

use axum::Json;
use axum::extract::{Path, State};
use igbroker_core::ApiScope;

use crate::error::ApiResult;
use crate::http::auth::Caller;
use crate::http::openapi;
use crate::service::accounts::{self, AccountView};
use crate::service::anomaly;
use crate::state::AppState;

async fn authorized(state: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    caller.require(ApiScope::AccountsWrite)?;
    let acc = accounts::get(state, id).await?;
    // Another tenant's account answers as a missing one, naming nothing of theirs.
    caller.require_app_of("account", id, &acc.app_id)?;
    Ok(())
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/suspend",
    operation_id = "suspendAccount",
    tag = "accounts",
    summary = "Hold the account: no token reads or refreshes until resumed (scope accounts:write)",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The account id (`acc_…`)")),
    responses(
        (status = 200, description = "The account", body = AccountView),
        openapi::CommonErrors, openapi::NotFound, openapi::Conflict,
    )
)]
pub async fn suspend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AccountView>> {
    authorized(&state, &caller, &id).await?;
    let acc = anomaly::suspend(&state, &id, &caller.actor()).await?;
    Ok(Json(AccountView::from_row(&acc, state.now())))
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/resume",
    operation_id = "resumeAccount",
    tag = "accounts",
    summary = "Lift a hold (scope accounts:write)",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The account id (`acc_…`)")),
    responses(
        (status = 200, description = "The account", body = AccountView),
        openapi::CommonErrors, openapi::NotFound, openapi::Conflict,
    )
)]
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AccountView>> {
    authorized(&state, &caller, &id).await?;
    let acc = anomaly::resume(&state, &id, &caller.actor()).await?;
    Ok(Json(AccountView::from_row(&acc, state.now())))
}
