//! The one mapping from failures to HTTP: every error answers
//! `{"error": {"code", "message", "request_id"}}` and 500s stay opaque.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use igbroker_core::{AccountStatus, ApiScope};

use crate::http::request_id;
use crate::service;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("this API key lacks the `{0}` scope; create a key with it (or `admin`)")]
    MissingScope(ApiScope),
    #[error("{0}")]
    MissingInstagramScope(String),
    #[error("{what} `{id}` does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidState(String),
    #[error(
        "this state was already used with another authorization code; start a new connect session"
    )]
    StateUsed,
    #[error(
        "the token is younger than the minimum age Instagram requires before a refresh; try again after {ready_at}"
    )]
    TokenTooYoung { ready_at: String },
    #[error("{message}")]
    AccountNotActive {
        status: AccountStatus,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// 422: well-formed but not doable as asked.
    #[error("{0}")]
    Unprocessable(String),
    /// 422: Instagram could not make a post of the media.
    #[error("{0}")]
    PublishFailed(String),
    #[error("the Instagram user who logged in is not the one this account belongs to")]
    AccountMismatch,
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// Standard Access and a non-tester: a configuration problem of the app (409).
    #[error("{0}")]
    AppNotApprovedForUser(String),
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::MissingScope(_) | ApiError::MissingInstagramScope(_) => "missing_scope",
            ApiError::NotFound { .. } => "not_found",
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::InvalidState(_) => "invalid_state",
            ApiError::StateUsed => "state_used",
            ApiError::TokenTooYoung { .. } => "token_too_young",
            ApiError::AccountNotActive { status, .. } => status.as_str(),
            ApiError::Conflict(_) => "conflict",
            ApiError::Unprocessable(_) => "invalid_request",
            ApiError::PublishFailed(_) => "publish_failed",
            ApiError::AccountMismatch => "account_mismatch",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::AppNotApprovedForUser(_) => crate::service::error::APP_NOT_APPROVED_CODE,
            ApiError::Upstream(_) => "upstream_error",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_)
            | ApiError::MissingScope(_)
            | ApiError::MissingInstagramScope(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::InvalidRequest(_) | ApiError::InvalidState(_) | ApiError::StateUsed => {
                StatusCode::BAD_REQUEST
            }
            ApiError::TokenTooYoung { .. }
            | ApiError::AccountNotActive { .. }
            | ApiError::Conflict(_)
            | ApiError::AccountMismatch
            | ApiError::AppNotApprovedForUser(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) | ApiError::PublishFailed(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn not_found(what: &'static str, id: &str) -> Self {
        ApiError::NotFound {
            what,
            id: id.chars().take(80).collect(),
        }
    }

    pub fn not_active(status: AccountStatus) -> Self {
        let message = match status {
            AccountStatus::ReauthRequired => {
                "the account must be connected again (create a connect session with its account_id)"
                    .to_string()
            }
            AccountStatus::Revoked => "the account was revoked; its token is destroyed".to_string(),
            AccountStatus::Suspended => "the account is suspended".to_string(),
            AccountStatus::Active => "the account is active".to_string(),
        };
        ApiError::AccountNotActive { status, message }
    }
}

/// The one mapping from the broker's rules to HTTP.
impl From<service::Error> for ApiError {
    fn from(e: service::Error) -> Self {
        use service::Error as E;
        match e {
            E::NotFound { what, id } => ApiError::NotFound { what, id },
            E::Invalid(m) => ApiError::InvalidRequest(m),
            E::InvalidState(m) => ApiError::InvalidState(m),
            E::StateUsed => ApiError::StateUsed,
            E::Conflict(m) => ApiError::Conflict(m),
            E::Unprocessable(m) => ApiError::Unprocessable(m),
            E::PublishFailed(m) => ApiError::PublishFailed(m),
            E::Unauthorized(m) => ApiError::Unauthorized(m),
            E::NotActive(status) => ApiError::not_active(status),
            E::TooYoung { ready_at } => ApiError::TokenTooYoung {
                ready_at: crate::util::rfc3339(ready_at),
            },
            E::AccountMismatch => ApiError::AccountMismatch,
            E::MissingInstagramScope(m) => ApiError::MissingInstagramScope(m),
            E::RateLimited {
                message,
                retry_after_secs,
            } => ApiError::RateLimited {
                message,
                retry_after_secs,
            },
            e @ E::AppNotApprovedForUser { .. } => ApiError::AppNotApprovedForUser(e.to_string()),
            e @ E::Upstream { .. } => ApiError::Upstream(e.to_string()),
            E::UpstreamRefused(m) => ApiError::Upstream(m),
            E::Unavailable(m) => ApiError::Unavailable(m),
            E::Store(igbroker_store::StoreError::Unreachable { .. }) => {
                ApiError::Unavailable("the database is unreachable".into())
            }
            E::Store(igbroker_store::StoreError::Conflict(m)) => ApiError::Conflict(m),
            E::Store(other) => ApiError::Internal(other.to_string()),
            // An operator's mistake (a key missing from this replica's ring), not a bug: say
            // which key, so the fix is obvious; the message names a version, never material.
            E::Vault(e @ igbroker_vault::VaultError::UnknownKeyVersion(v)) => {
                tracing::error!(key_version = v, error = %e, "cannot decrypt a stored secret");
                ApiError::Unavailable(format!(
                    "this record was encrypted with key v{v}, which the key ring does not hold; \
                     the broker's operator must add that key (`igbroker keys status` lists what is missing)"
                ))
            }
            E::Vault(other) => ApiError::Internal(format!("vault: {other}")),
            E::Internal(m) => ApiError::Internal(m),
        }
    }
}

/// Handlers and extractors that read the store directly go through the same mapping.
impl From<igbroker_store::StoreError> for ApiError {
    fn from(e: igbroker_store::StoreError) -> Self {
        service::Error::from(e).into()
    }
}

/// Every error the API answers, whatever the route.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `unauthorized`, `forbidden`, `missing_scope`, `not_found`,
    /// `invalid_request`, `invalid_state`, `state_used`, `token_too_young`, `reauth_required`,
    /// `revoked`, `suspended`, `conflict`, `account_mismatch`, `rate_limited`,
    /// `app_not_approved_for_user`, `publish_failed`, `upstream_error`, `unavailable`, `internal`.
    #[schema(example = "not_found")]
    pub code: &'static str,
    /// A sentence for people: what was wrong and what to do.
    pub message: String,
    /// Quote it when asking the broker's operator; their logs carry it.
    pub request_id: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = request_id::current();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(request_id = %request_id, error = %detail, "internal error");
                "internal error; the broker logged the cause under this request_id".to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
                request_id,
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let ApiError::RateLimited {
            retry_after_secs, ..
        } = &self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// An error answer stored earlier by its code (a publish request that failed), replayed
/// in the one error shape with the status that code has.
pub fn stored_error(code: &str, message: &str) -> Response {
    let request_id = request_id::current();
    let status = match code {
        "not_found" => StatusCode::NOT_FOUND,
        "invalid_request" => StatusCode::BAD_REQUEST,
        "missing_scope" | "forbidden" => StatusCode::FORBIDDEN,
        "publish_failed" => StatusCode::UNPROCESSABLE_ENTITY,
        "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
        "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "internal" => StatusCode::INTERNAL_SERVER_ERROR,
        "upstream_error" => StatusCode::BAD_GATEWAY,
        // conflict, reauth_required, revoked, suspended, app_not_approved_for_user, …
        _ => StatusCode::CONFLICT,
    };
    let body =
        serde_json::json!({"error": {"code": code, "message": message, "request_id": request_id}});
    (status, Json(body)).into_response()
}
