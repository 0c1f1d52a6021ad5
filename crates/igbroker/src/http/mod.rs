//! The broker's HTTP surface. Handlers parse (with the extractors of `extract`)
//! and authorise (`auth::Caller`), call one service function, and shape its
//! answer; the rules are in `service`, errors map once in `crate::error`.

pub mod accounts;
pub mod api_keys;
pub mod apps;
pub mod audit;
pub mod auth;
pub mod browser;
pub mod browser_guard;
pub mod extract;
pub mod health;
pub mod meta;
pub mod meta_webhooks;
pub mod openapi;
pub mod publish;
pub mod request_id;
pub mod suspension;
pub mod ui;

use axum::Router;
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let limits = state.config().limits.clone();
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
        .route("/accounts/{id}/suspend", post(suspension::suspend))
        .route("/accounts/{id}/resume", post(suspension::resume))
        .route(
            "/accounts/{id}/graph/{*path}",
            get(accounts::graph_get)
                .post(accounts::graph_post)
                .delete(accounts::graph_delete),
        )
        .route("/accounts/{id}/media", post(publish::create))
        .route("/accounts/{id}/media/requests/{key}", get(publish::status))
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
            get(browser::callback).layer(axum::middleware::from_fn(browser_guard::page_headers)),
        )
        .merge(ui::router())
        .route(
            "/meta/webhooks/{app_id}",
            get(meta_webhooks::verify).post(meta_webhooks::notify),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::document))
        .layer(axum::middleware::from_fn_with_state(
            limits.max_json_depth,
            json_depth,
        ))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        // Meta's callbacks refuse an oversized body with a 400 of their own.
        .merge(meta::routes())
        .layer(axum::middleware::from_fn(track))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            in_flight,
        ))
        .layer(axum::middleware::from_fn(browser_guard::security_headers))
        .layer(axum::middleware::from_fn(request_id::middleware))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .with_state(state)
}

/// Counts and times every request by method, route template (`/v1/accounts/{id}`, never
/// the id itself) and status: `igbroker_http_requests_total`,
/// `igbroker_http_request_duration_seconds`.
async fn track(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().as_str().to_string();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("igbroker_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("igbroker_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

/// At most `[limits] max_in_flight` requests run at once; more are answered 503 at once
/// rather than queued. Health checks are exempt, so an overloaded broker still says so.
async fn in_flight(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = req.uri().path();
    if path == "/healthz" || path == "/readyz" {
        return next.run(req).await;
    }
    match state.limiter().enter() {
        Some(_permit) => next.run(req).await,
        None => {
            let mut r = axum::response::IntoResponse::into_response(ApiError::Unavailable(
                "the broker is at its limit of requests in flight; retry shortly".into(),
            ));
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
            r
        }
    }
}

/// Refuses JSON bodies nested deeper than `[limits] max_json_depth` before any parser
/// walks them. The body is already capped by the body limit.
async fn json_depth(
    axum::extract::State(max): axum::extract::State<usize>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let is_json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !is_json {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => {
            return (
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                ApiError::InvalidRequest("the request body is too large or was cut off".into()),
            )
                .into_response();
        }
    };
    if crate::limits::json_too_deep(&bytes, max) {
        return ApiError::InvalidRequest(format!("the JSON body nests deeper than {max} levels"))
            .into_response();
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}
