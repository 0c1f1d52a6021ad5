//! `POST /v1/accounts/{id}/suspend` and `/resume` (scope `accounts:write`, audited): an
//! operator's hold on an account, the same one the anomaly detector places.

use axum::Json;
use axum::extract::{Path, State};
use igbroker_core::ApiScope;

use crate::error::ApiResult;
use crate::http::auth::Caller;
use crate::service::accounts::{self, AccountView};
use crate::service::anomaly;
use crate::state::AppState;

async fn authorized(state: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    caller.require(ApiScope::AccountsWrite)?;
    let acc = accounts::get(state, id).await?;
    caller.require_app(&acc.app_id)?;
    Ok(())
}

pub async fn suspend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AccountView>> {
    authorized(&state, &caller, &id).await?;
    let acc = anomaly::suspend(&state, &id, &caller.actor()).await?;
    Ok(Json(AccountView::from_row(&acc, state.now())))
}

pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AccountView>> {
    authorized(&state, &caller, &id).await?;
    let acc = anomaly::resume(&state, &id, &caller.actor()).await?;
    Ok(Json(AccountView::from_row(&acc, state.now())))
}
