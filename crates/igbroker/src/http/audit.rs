use axum::Json;
use axum::extract::State;
use igbroker_core::ApiScope;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::http::auth::Caller;
use crate::http::extract::QueryParams;
use crate::http::openapi;
use crate::service::audit::AuditEntryView;
use crate::service::{accounts, audit};
use crate::state::AppState;
use crate::util::{Page, PageQuery, page, parse_rfc3339};

#[derive(Deserialize)]
pub struct AuditQuery {
    account_id: Option<String>,
    action: Option<String>,
    /// RFC 3339; entries at or after it.
    since: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// `GET /v1/audit`: entries oldest first, with a cursor to the next page.
#[utoipa::path(
    get,
    path = "/v1/audit",
    operation_id = "listAudit",
    tag = "audit",
    summary = "Read the tamper-evident audit log, oldest first (scope audit:read)",
    security(("api_key" = [])),
    params(("account_id" = Option<String>, Query, description = "Only this account's entries (required for keys limited to some apps)"), ("action" = Option<String>, Query, description = "Only this action, e.g. token.read"), ("since" = Option<String>, Query, description = "RFC 3339; entries at or after it"), ("limit" = Option<u32>, Query, description = "1 to 500, default 50"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses(
        (status = 200, description = "One page of entries", body = Page<AuditEntryView>),
        openapi::CommonErrors, openapi::NotFound,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<AuditQuery>,
) -> ApiResult<Json<Page<AuditEntryView>>> {
    caller.require(ApiScope::AuditRead)?;
    let limit = q.page.limit()?;
    let since = q.since.as_deref().map(parse_rfc3339).transpose()?;
    match (&q.account_id, caller.app_ids.is_empty()) {
        (Some(id), false) => {
            let acc = accounts::get(&state, id).await?;
            caller.require_app_of("account", id, &acc.app_id)?;
        }
        (None, false) => {
            return Err(ApiError::Forbidden(
                "this key is limited to some apps: pass account_id".into(),
            ));
        }
        (_, true) => {}
    }
    let after = match q.page.after()? {
        None => 0,
        Some(c) => c
            .parse::<i64>()
            .map_err(|_| ApiError::InvalidRequest("cursor is not one this API returned".into()))?,
    };
    let rows = state
        .store()
        .list_audit(
            q.account_id.as_deref(),
            q.action.as_deref(),
            since,
            after,
            limit + 1,
        )
        .await?;
    let (rows, next) = page(rows, limit, |r| r.seq.to_string());
    let data: Vec<AuditEntryView> = rows.iter().map(audit::view).collect();
    Ok(Json(Page {
        data,
        next_cursor: next,
    }))
}
