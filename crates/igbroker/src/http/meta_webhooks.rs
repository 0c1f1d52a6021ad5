//! `GET|POST /meta/webhooks/{app_id}`: Meta's webhook callback for an app. The GET is the
//! App Dashboard's verification (the challenge is echoed when the verify token matches);
//! each POST is a signed notification, relayed to the service that owns the account.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiResult;
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
