//! The dashboard under `/ui`: server-rendered pages (no script), signed in with an
//! admin API key or the admin password. Pages call the same service functions as
//! the HTTP API, and every change they make is audited with the signed-in actor.

mod accounts;
mod apps;
mod connect;
mod overview;
pub mod result;
pub mod session;
mod sign_in;
pub mod timeline;

use askama::Template;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(overview::page))
        .route("/ui/", get(overview::page))
        .route("/ui/static/app.css", get(stylesheet))
        .route("/ui/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/ui/sign-in/link/{secret}", get(sign_in::link))
        .route("/ui/sign-out", post(sign_in::sign_out))
        .route("/ui/accounts", get(accounts::list))
        .route("/ui/accounts/{id}", get(accounts::show))
        .route("/ui/accounts/{id}/refresh", post(accounts::refresh))
        .route(
            "/ui/accounts/{id}/revoke",
            get(accounts::confirm_revoke).post(accounts::revoke),
        )
        .route("/ui/accounts/{id}/reconnect", post(accounts::reconnect))
        .route("/ui/connect", get(connect::form).post(connect::start))
        .route("/ui/connect/{id}", get(connect::show))
        .route("/ui/apps", get(apps::list))
        .route("/ui/apps/{id}", get(apps::show))
        .layer(axum::middleware::from_fn(
            crate::http::browser_guard::page_headers,
        ))
}

async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../static/app.css"),
    )
        .into_response()
}

/// What the layout shows to a signed-in admin.
pub struct Chrome {
    pub actor: String,
    pub csrf: String,
    pub nav: &'static str,
}

impl Chrome {
    pub fn new(admin: &session::Admin, nav: &'static str) -> Option<Chrome> {
        Some(Chrome {
            actor: admin.actor.clone(),
            csrf: admin.csrf.clone(),
            nav,
        })
    }
}

#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage {
    title: String,
    message: String,
    chrome: Option<Chrome>,
    notice: Option<String>,
}

/// An error shown as a page, with the status the API would answer.
pub struct UiError(pub ApiError);

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError(e)
    }
}

impl From<crate::service::Error> for UiError {
    fn from(e: crate::service::Error) -> Self {
        UiError(e.into())
    }
}

impl From<igbroker_store::StoreError> for UiError {
    fn from(e: igbroker_store::StoreError) -> Self {
        UiError(e.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let message = match &self.0 {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "dashboard: internal error");
                "Something went wrong inside the broker; its log has the cause.".to_string()
            }
            other => other.to_string(),
        };
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::UNAUTHORIZED => "Sign-in refused",
            StatusCode::CONFLICT => "Not possible right now",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            s if s.is_client_error() => "That did not work",
            _ => "Something went wrong",
        };
        let page = ErrorPage {
            title: title.to_string(),
            message,
            chrome: None,
            notice: None,
        };
        let mut resp = (status, render(&page)).into_response();
        if let ApiError::RateLimited {
            retry_after_secs, ..
        } = &self.0
            && let Ok(v) = axum::http::HeaderValue::from_str(&retry_after_secs.to_string())
        {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        resp
    }
}

pub type UiResult<T = Response> = Result<T, UiError>;

/// A submitted form; a body that is not one answers as a page naming what was wrong.
pub struct UiForm<T>(pub T);

impl<S, T> FromRequest<S> for UiForm<T>
where
    axum::Form<T>: FromRequest<S, Rejection = FormRejection>,
    S: Send + Sync,
{
    type Rejection = UiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, UiError> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(UiForm(v)),
            Err(e) => Err(UiError(ApiError::InvalidRequest(format!(
                "the form sent is not one this page takes: {}",
                e.body_text()
            )))),
        }
    }
}

/// A page's query string, refused as a page like [`UiForm`].
pub struct UiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for UiQuery<T>
where
    T: Send,
    crate::http::extract::QueryParams<T>: FromRequestParts<S, Rejection = ApiError>,
    S: Send + Sync,
{
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, UiError> {
        crate::http::extract::QueryParams::<T>::from_request_parts(parts, state)
            .await
            .map(|q| UiQuery(q.0))
            .map_err(UiError)
    }
}

/// Renders a page; a template failure is an internal error, never a half page.
pub fn render<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "dashboard: template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><html lang=\"en\"><head><title>Error</title></head><body><main><h1>Error</h1><p>The page could not be drawn.</p></main></body></html>"),
            )
                .into_response()
        }
    }
}

/// A 303 to another dashboard page (after a form).
pub fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(axum::http::header::LOCATION, location.to_string())],
    )
        .into_response()
}

/// Dates as the tables show them: `2026-12-07 19:04 UTC`.
pub fn short_time(unix: Option<i64>) -> String {
    let Some(t) = unix else {
        return "—".into();
    };
    let full = crate::util::rfc3339(t);
    match (full.get(..10), full.get(11..16)) {
        (Some(d), Some(hm)) => format!("{d} {hm} UTC"),
        _ => full,
    }
}

/// A `<select>` option.
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}
