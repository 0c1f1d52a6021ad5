//! `GET|POST /meta/webhooks/{app_id}`: Meta's webhook callback for an app. The GET is the
//! App Dashboard's verification (the challenge is echoed when the verify token matches);
//! each POST is a signed notification, relayed to the service that owns the account.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{ApiResult, ErrorBody};
use crate::service::instagram_webhooks::{self, RelayReport, SIGNATURE_HEADER, Verification};
use crate::state::AppState;

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

#[utoipa::path(get, path = "/meta/webhooks/{app_id}", operation_id = "verifyMetaWebhook", tag = "meta", summary = "Meta's webhook verification: echoes hub.challenge when hub.verify_token matches",
    params(
        ("app_id" = String, Path),
        ("hub.mode" = Option<String>, Query), ("hub.challenge" = Option<String>, Query), ("hub.verify_token" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "The challenge", content_type = "text/plain", body = String),
        (status = 400, description = "Not a verification request", content_type = "text/plain", body = String),
        (status = 403, description = "Wrong verify token", content_type = "text/plain", body = String),
        (status = 404, description = "No such app", body = ErrorBody),
    ))]
pub async fn verify(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let get = |k: &str| q.get(k).map(String::as_str);
    let answer = instagram_webhooks::verify(
        &state,
        &app_id,
        get("hub.mode"),
        get("hub.challenge"),
        get("hub.verify_token"),
    )
    .await?;
    Ok(match answer {
        Verification::Accept(challenge) => text(StatusCode::OK, challenge),
        Verification::WrongToken => text(
            StatusCode::FORBIDDEN,
            "hub.verify_token does not match this app's verify token".into(),
        ),
        Verification::NotAVerification(why) => text(StatusCode::BAD_REQUEST, why.into()),
    })
}

#[utoipa::path(post, path = "/meta/webhooks/{app_id}", operation_id = "receiveMetaWebhook", tag = "meta", summary = "A signed Instagram webhook notification, relayed to the owning service",
    params(("app_id" = String, Path), ("X-Hub-Signature-256" = String, Header, description = "`sha256=` HMAC of the body with the app secret")),
    request_body(content = Object, description = "Meta's notification"),
    responses(
        (status = 200, description = "What the notification became", body = RelayReport),
        (status = 400, description = "Bad signature or body", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
    ))]
pub async fn notify(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<RelayReport>> {
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    Ok(Json(
        instagram_webhooks::relay(&state, &app_id, signature, &body).await?,
    ))
}
