//! Meta's callbacks: `POST /meta/deauthorize/{app_id}`, `POST /meta/data-deletion/{app_id}`
//! and the public status page of a deletion request. No API key: the `signed_request` is the
//! credential. Every refusal is 400 with the reason, and changes nothing.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{ACCEPT, CACHE_CONTROL};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use igbroker_store::DataDeletionRow;
use serde_json::json;

use crate::error::{ApiError, ErrorBody};
use crate::http::browser::html_escape;
use crate::service::meta;
use crate::state::AppState;
use crate::util::rfc3339;

/// A signed request is a few hundred bytes; the verifier refuses more than 8 KiB anyway.
const BODY_LIMIT: usize = 64 * 1024;

/// Bodies up to this size are read whole before an oversized one is refused: answering
/// before the client has finished sending makes the connection close mid-request, and the
/// caller would see a broken connection instead of the 400.
const READ_LIMIT: usize = 2 * 1024 * 1024;

/// Routes under `/meta`, with their own body limit so that an oversized body is a 400 like
/// every other refusal here.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/meta/deauthorize/{app_id}", post(deauthorize))
        .route("/meta/data-deletion/{app_id}", post(data_deletion))
        .route("/meta/data-deletion/status/{code}", get(status))
        .layer(DefaultBodyLimit::max(READ_LIMIT))
}

/// The `signed_request` form field of the body.
fn signed_request(body: Result<Bytes, BytesRejection>) -> Result<String, ApiError> {
    let body = body.map_err(|e| {
        ApiError::InvalidRequest(match e {
            BytesRejection::FailedToBufferBody(_) => format!(
                "the request body is larger than {} KiB or could not be read: Meta sends a form with one short signed_request field",
                BODY_LIMIT / 1024
            ),
            other => format!("the request body could not be read: {}", other.body_text()),
        })
    })?;
    if body.len() > BODY_LIMIT {
        return Err(ApiError::InvalidRequest(format!(
            "the request body is larger than {} KiB: Meta sends a form with one short signed_request field",
            BODY_LIMIT / 1024
        )));
    }
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).map_err(|_| {
        ApiError::InvalidRequest(
            "the body must be a form (application/x-www-form-urlencoded) with a signed_request field"
                .into(),
        )
    })?;
    let mut values = fields.into_iter().filter(|(k, _)| k == "signed_request");
    match (values.next(), values.next()) {
        (Some((_, v)), None) => Ok(v),
        (Some(_), Some(_)) => Err(ApiError::InvalidRequest(
            "the form has more than one signed_request field".into(),
        )),
        (None, _) => Err(ApiError::InvalidRequest(
            "signed_request is missing or empty: send it as the form field `signed_request`".into(),
        )),
    }
}

fn refused(kind: &'static str, e: ApiError) -> ApiError {
    metrics::counter!("igbroker_meta_callbacks_total", "kind" => kind, "result" => "refused")
        .increment(1);
    tracing::warn!(callback = kind, error = %e, "refused a Meta callback");
    e
}

#[utoipa::path(post, path = "/meta/deauthorize/{app_id}", operation_id = "metaDeauthorize", tag = "meta", summary = "Meta's deauthorize callback: the user removed the app",
    params(("app_id" = String, Path)),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`signed_request=…`"),
    responses(
        (status = 200, description = "`{\"received\": true}`", body = Object),
        (status = 400, description = "Missing, malformed or wrongly signed signed_request", body = ErrorBody),
    ))]
pub(crate) async fn deauthorize(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let kind = "deauthorize";
    let signed = signed_request(body).map_err(|e| refused(kind, e))?;
    let done = meta::deauthorize(&state, &app_id, &signed)
        .await
        .map_err(|e| refused(kind, e.into()))?;
    metrics::counter!("igbroker_meta_callbacks_total", "kind" => kind, "result" => "ok")
        .increment(1);
    tracing::info!(app_id = %app_id, revoked = done.revoked.len(), "Meta deauthorize callback");
    Ok(axum::Json(json!({"received": true})).into_response())
}

#[utoipa::path(post, path = "/meta/data-deletion/{app_id}", operation_id = "metaDataDeletion", tag = "meta", summary = "Meta's data-deletion callback: answers a status URL and confirmation code",
    params(("app_id" = String, Path)),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`signed_request=…`"),
    responses(
        (status = 200, description = "`{\"url\", \"confirmation_code\"}`", body = Object),
        (status = 400, description = "Missing, malformed or wrongly signed signed_request", body = ErrorBody),
    ))]
pub(crate) async fn data_deletion(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let kind = "data_deletion";
    let signed = signed_request(body).map_err(|e| refused(kind, e))?;
    let row = meta::data_deletion(&state, &app_id, &signed)
        .await
        .map_err(|e| refused(kind, e.into()))?;
    metrics::counter!("igbroker_meta_callbacks_total", "kind" => kind, "result" => "ok")
        .increment(1);
    tracing::info!(app_id = %app_id, accounts = row.accounts_deleted, "Meta data-deletion callback");
    Ok(axum::Json(json!({
        "url": meta::status_url(&state.config().public_url, &row.code),
        "confirmation_code": row.code,
    }))
    .into_response())
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

fn status_json(row: &DataDeletionRow) -> serde_json::Value {
    json!({
        "confirmation_code": row.code,
        "status": if row.completed_at.is_some() { "completed" } else { "in_progress" },
        "requested_at": rfc3339(row.requested_at),
        "completed_at": row.completed_at.map(rfc3339),
        "deleted": meta::deleted_in_words(row),
    })
}

fn status_html(row: &DataDeletionRow) -> String {
    let when = |t: i64| html_escape(&rfc3339(t).replace('T', " ").replace('Z', " UTC"));
    let state_line = match row.completed_at {
        Some(done) => format!(
            "<p>Status: <strong id=\"status\">completed</strong> on {}.</p>",
            when(done)
        ),
        None => "<p>Status: <strong id=\"status\">in progress</strong>.</p>".to_owned(),
    };
    let items: String = meta::deleted_in_words(row)
        .iter()
        .map(|w| format!("<li>{}</li>", html_escape(w)))
        .collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Data deletion request</title></head><body>\
         <h1>Your data deletion request</h1>\
         <p>Confirmation code <code id=\"code\">{}</code></p>\
         <p>We received your request on {}.</p>{state_line}\
         <h2>What was deleted</h2><ul>{items}</ul>\
         <p>Records of the requests themselves are kept without anything that identifies you.</p>\
         </body></html>",
        html_escape(&row.code),
        when(row.requested_at),
    )
}

#[utoipa::path(get, path = "/meta/data-deletion/status/{code}", operation_id = "dataDeletionStatus", tag = "meta", summary = "The public status of a data-deletion request (HTML, or JSON with Accept: application/json)",
    params(("code" = String, Path, description = "The confirmation code")),
    responses(
        (status = 200, description = "The request's status", body = Object),
        (status = 404, description = "No such request"),
    ))]
pub(crate) async fn status(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    let json = wants_json(&headers);
    match meta::deletion_status(&state, &code).await {
        Ok(row) if json => (
            StatusCode::OK,
            [(CACHE_CONTROL, "no-store")],
            axum::Json(status_json(&row)),
        )
            .into_response(),
        Ok(row) => (
            StatusCode::OK,
            [(CACHE_CONTROL, "no-store")],
            Html(status_html(&row)),
        )
            .into_response(),
        Err(e) if json => ApiError::from(e).into_response(),
        Err(_) => (
            StatusCode::NOT_FOUND,
            Html(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Not found</title></head><body>\
                 <h1>No such request</h1><p>Check the confirmation code you were given.</p></body></html>"
                    .to_owned(),
            ),
        )
            .into_response(),
    }
}
