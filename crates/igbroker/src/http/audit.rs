use axum::Json;
use axum::extract::State;
use igbroker_core::ApiScope;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::http::auth::Caller;
use crate::http::extract::QueryParams;
use crate::service::{accounts, audit};
use crate::state::AppState;
use crate::util::{PageQuery, page, parse_rfc3339};

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
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<AuditQuery>,
) -> ApiResult<Json<Value>> {
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
    let data: Vec<Value> = rows.iter().map(audit::view).collect();
    Ok(Json(json!({"data": data, "next_cursor": next})))
}
