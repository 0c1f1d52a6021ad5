use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations", summary = "Liveness: the process answers",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations", summary = "Readiness: the database answers",
    responses(
        (status = 200, description = "Ready, with the database kind", body = Object),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    ))]
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
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations", summary = "Prometheus metrics (optionally behind `[metrics] bearer_token`)",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 401, description = "`[metrics] bearer_token` is set and was not given", body = ErrorBody),
    ))]
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
