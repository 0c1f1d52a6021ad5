//! `POST /v1/accounts/{id}/media` and the status URL of a publish request.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use igbroker_core::ApiScope;
use igbroker_store::PublishRequestRow;
use serde_json::Value;

use crate::error::{ApiError, ApiResult, ErrorBody, stored_error};
use crate::http::accounts::owned;
use crate::http::auth::Caller;
use crate::service::publish::{self, Answer};
use crate::state::AppState;
use crate::util::rfc3339;

/// The header that makes a retried request publish once.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The body of `POST /v1/accounts/{id}/media`: one of four kinds of post. Fields not listed
/// are refused; URLs must be https; a caption is at most 2,200 characters.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PublishBody {
    /// A feed image (JPEG).
    Image {
        image_url: String,
        caption: Option<String>,
        alt_text: Option<String>,
    },
    /// 2 to 10 images or videos.
    Carousel {
        children: Vec<CarouselChild>,
        caption: Option<String>,
    },
    /// A reel.
    Reel {
        video_url: String,
        caption: Option<String>,
        cover_url: Option<String>,
        share_to_feed: Option<bool>,
    },
    /// A story: exactly one of the two URLs.
    Story {
        image_url: Option<String>,
        video_url: Option<String>,
    },
}

/// One item of a carousel: exactly one of `image_url` and `video_url`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct CarouselChild {
    pub image_url: Option<String>,
    pub video_url: Option<String>,
    /// Images only.
    pub alt_text: Option<String>,
}

/// A publish request and what it came to.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PublishView {
    /// `in_progress`, `published` or `failed`.
    pub status: String,
    /// `image`, `carousel`, `reel` or `story`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The caller's Idempotency-Key, or the one the broker made up.
    pub idempotency_key: String,
    /// Where to ask for this request's state.
    pub status_url: String,
    /// The new media's id, once published.
    pub media_id: Option<String>,
    pub permalink: Option<String>,
    /// The container published (the carousel's, for a carousel).
    pub container_id: Option<String>,
    /// Why it failed, when `status` is `failed`.
    pub error: Option<PublishFailure>,
    pub created_at: String,
    pub updated_at: String,
}

/// The error a failed publish request answered.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PublishFailure {
    pub code: Option<String>,
    pub message: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/media",
    operation_id = "publishMedia",
    tag = "publishing",
    summary = "Publish an image, carousel, reel or story with the account's token, once per Idempotency-Key (scope publish)",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "The account id (`acc_…`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 200 letters, digits, `-`, `_`, `.` or `:`; a retry with the same key publishes nothing new"),
    ),
    request_body = PublishBody,
    responses(
        (status = 201, description = "Published", body = PublishView),
        (status = 200, description = "Published earlier under this Idempotency-Key (`Idempotent-Replayed: true`)", body = PublishView),
        (status = 202, description = "Still in progress; ask `status_url` (also in `Location`)", body = PublishView),
        (status = 400, description = "The body or the key is invalid; the message names the field", body = ErrorBody),
        (status = 401, description = "No API key, or one the broker does not know", body = ErrorBody),
        (status = 403, description = "The key lacks `publish`, or the account lacks instagram_business_content_publish", body = ErrorBody),
        (status = 404, description = "No such object, or one of another tenant's apps", body = ErrorBody),
        (status = 409, description = "The account's state forbids it, or the post may or may not be live (the message says which)", body = ErrorBody),
        (status = 422, description = "`publish_failed`: a container ended in ERROR or EXPIRED (Meta's subcode and what to fix); or the key was used with another body", body = ErrorBody),
        (status = 429, description = "The key's rate limit, or the account's 24-hour publishing allowance; wait `Retry-After` seconds", body = ErrorBody),
        (status = 500, description = "An internal failure, logged under the request id", body = ErrorBody),
        (status = 502, description = "Instagram failed or answered something unusable", body = ErrorBody),
        (status = 503, description = "The broker or its database cannot serve now; retry", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/media/requests/{key}",
    operation_id = "publishRequestStatus",
    tag = "publishing",
    summary = "The state of a publish request (scope publish)",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "The account id (`acc_…`)"),
        ("key" = String, Path, description = "The request's Idempotency-Key"),
    ),
    responses(
        (status = 200, description = "Published or failed (`error`)", body = PublishView),
        (status = 202, description = "Still in progress", body = PublishView),
        (status = 400, description = "The key is not a valid Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No API key, or one the broker does not know", body = ErrorBody),
        (status = 403, description = "The key lacks the scope, or is limited to other apps", body = ErrorBody),
        (status = 404, description = "No such request, account, or one of another tenant's apps", body = ErrorBody),
        (status = 429, description = "This key's rate limit; wait `Retry-After` seconds", body = ErrorBody),
        (status = 503, description = "The broker or its database cannot serve now; retry", body = ErrorBody),
    )
)]
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
fn view(state: &AppState, row: &PublishRequestRow) -> PublishView {
    PublishView {
        status: row.state.clone(),
        kind: row.kind.clone(),
        idempotency_key: row.idem_key.clone(),
        status_url: status_url(state, row),
        media_id: row.media_id.clone(),
        permalink: row.permalink.clone(),
        container_id: row.container_id.clone(),
        error: (row.state == "failed").then(|| PublishFailure {
            code: row.error_code.clone(),
            message: row.error_message.clone(),
        }),
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    }
}
