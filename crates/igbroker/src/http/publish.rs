//! `POST /v1/accounts/{id}/media` and the status URL of a publish request.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use igbroker_core::ApiScope;
use igbroker_store::PublishRequestRow;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, stored_error};
use crate::http::accounts::owned;
use crate::http::auth::Caller;
use crate::service::publish::{self, Answer};
use crate::state::AppState;
use crate::util::rfc3339;

/// The header that makes a retried request publish once.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require(ApiScope::Publish)?;
    let acc = owned(&state, &caller, &id).await?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::InvalidRequest(format!(
            "the body must be a JSON object describing the post: {e}"
        ))
    })?;
    let post = publish::parse(&value)?;
    let key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::InvalidRequest("the Idempotency-Key header must be ASCII".into())
        })?),
    };
    let answer = publish::publish(&state, acc, &caller.actor(), key, post).await?;
    Ok(match answer {
        Answer::InProgress(row) => in_progress(&state, &row),
        Answer::Done { row, replayed } => {
            let mut r = match row.state.as_str() {
                "published" => {
                    let status = if replayed {
                        StatusCode::OK
                    } else {
                        StatusCode::CREATED
                    };
                    (status, Json(view(&state, &row))).into_response()
                }
                _ => stored_error(
                    row.error_code.as_deref().unwrap_or("upstream_error"),
                    row.error_message.as_deref().unwrap_or("publishing failed"),
                ),
            };
            if replayed {
                r.headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            r
        }
    })
}

pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    caller.require(ApiScope::Publish)?;
    let acc = owned(&state, &caller, &id).await?;
    let row = publish::status(&state, &acc, &key).await?;
    Ok(if row.state == "in_progress" {
        in_progress(&state, &row)
    } else {
        Json(view(&state, &row)).into_response()
    })
}

fn in_progress(state: &AppState, row: &PublishRequestRow) -> Response {
    let mut r = (StatusCode::ACCEPTED, Json(view(state, row))).into_response();
    if let Ok(v) = HeaderValue::from_str(&status_url(state, row)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    r
}

fn status_url(state: &AppState, row: &PublishRequestRow) -> String {
    format!(
        "{}/v1/accounts/{}/media/requests/{}",
        state.config().public_url.trim_end_matches('/'),
        row.account_id,
        row.idem_key
    )
}

/// A publish request as the API shows it.
fn view(state: &AppState, row: &PublishRequestRow) -> Value {
    let error = (row.state == "failed")
        .then(|| json!({"code": row.error_code, "message": row.error_message}));
    json!({
        "status": row.state,
        "type": row.kind,
        "idempotency_key": row.idem_key,
        "status_url": status_url(state, row),
        "media_id": row.media_id,
        "permalink": row.permalink,
        "container_id": row.container_id,
        "error": error,
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    })
}
