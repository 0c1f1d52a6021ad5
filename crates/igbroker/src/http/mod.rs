//! The broker's HTTP surface. Handlers parse (with the extractors of `extract`)
//! and authorise (`auth::Caller`), call one service function, and shape its
//! answer; the rules are in `service`, errors map once in `crate::error`.

pub mod accounts;
pub mod api_keys;
pub mod apps;
pub mod audit;
pub mod auth;
pub mod browser;
pub mod extract;
pub mod health;
pub mod request_id;
pub mod ui;

use std::time::Duration;

use axum::Router;
use axum::routing::{any, get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/apps", post(apps::create).get(apps::list))
        .route(
            "/apps/{app_id}",
            get(apps::show).patch(apps::update).delete(apps::delete),
        )
        .route("/connect-sessions", post(browser::create_session))
        .route("/connect-sessions/{id}", get(browser::show_session))
        .route("/accounts", get(accounts::list))
        .route("/accounts/import", post(accounts::import))
        .route(
            "/accounts/{id}",
            get(accounts::show).delete(accounts::revoke),
        )
        .route("/accounts/{id}/token", get(accounts::token))
        .route("/accounts/{id}/refresh", post(accounts::refresh))
        .route("/accounts/{id}/graph/{*path}", any(accounts::graph))
        .route("/audit", get(audit::list))
        .route("/api-keys", post(api_keys::create).get(api_keys::list))
        .route("/api-keys/{id}", axum::routing::delete(api_keys::revoke))
        .fallback(|| async {
            ApiError::NotFound {
                what: "route",
                id: "this /v1 path".into(),
            }
        });
    Router::new()
        .nest("/v1", v1)
        .route("/connect/{id}", get(browser::connect))
        .route(
            "/oauth/callback",
            get(browser::callback).layer(axum::middleware::from_fn(ui::security_headers)),
        )
        .merge(ui::router())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .layer(axum::middleware::from_fn(request_id::middleware))
        .layer(RequestBodyLimitLayer::new(1024 * 1024))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(120),
        ))
        .with_state(state)
}
