use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .store()
        .ping()
        .await
        .map_err(|_| ApiError::Unavailable("the database does not answer".into()))?;
    Ok(Json(
        json!({"status": "ready", "database": state.store().backend().name()}),
    ))
}

/// Prometheus exposition (no API key: counts and outcomes only, no ids).
pub async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    use secrecy::ExposeSecret as _;
    // Empty (the default) means no token is needed.
    if let Some(expected) = &state.config().metrics.bearer_token
        && !expected.expose_secret().is_empty()
    {
        let expected = expected.expose_secret();
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let same: bool =
            subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected.as_bytes()).into();
        if !same {
            return Err(ApiError::Unauthorized(
                "GET /metrics needs `Authorization: Bearer <metrics.bearer_token>`".into(),
            ));
        }
    }
    let body = crate::telemetry::render(&state).await?;
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    ))
}
