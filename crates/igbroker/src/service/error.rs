//! What can go wrong in the broker's rules, independent of who asked. HTTP maps
//! it once (`impl From<Error> for ApiError` in `crate::error`), the CLI once
//! (`crate::cli::fail`).

use igbroker_core::AccountStatus;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} `{id}` does not exist")]
    NotFound { what: &'static str, id: String },
    /// The request itself is wrong; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// A connect `state` that is unknown, expired or absent.
    #[error("{0}")]
    InvalidState(String),
    #[error(
        "this state was already used with another authorization code; start a new connect session"
    )]
    StateUsed,
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but it cannot be done as asked (an Idempotency-Key reused with
    /// another body).
    #[error("{0}")]
    Unprocessable(String),
    /// Instagram could not make a post of the media; the message names Meta's subcode and
    /// what to change.
    #[error("{0}")]
    PublishFailed(String),
    /// A credential was refused (a dashboard sign-in); the message says what is accepted.
    #[error("{0}")]
    Unauthorized(String),
    #[error("{}", not_active_message(*.0))]
    NotActive(AccountStatus),
    #[error(
        "the token is younger than the minimum age Instagram requires before a refresh; try again after {}",
        crate::util::rfc3339(*ready_at)
    )]
    TooYoung { ready_at: i64 },
    #[error("the Instagram user who logged in is not the one this account belongs to")]
    AccountMismatch,
    /// The account lacks an Instagram permission the call needs.
    #[error("{0}")]
    MissingInstagramScope(String),
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// Instagram refused or failed `step`.
    #[error("Instagram refused the {step}: {source}")]
    Upstream {
        step: &'static str,
        source: instagram_api::Error,
    },
    /// The app has Standard Access and the Instagram account is not one of its testers:
    /// Instagram let it log in, then refuses every call with its token. Not a bad request,
    /// not a revoked token: the app's configuration must change.
    #[error("Instagram refused the {step}: {APP_NOT_APPROVED}")]
    AppNotApprovedForUser { step: &'static str },
    /// Instagram answered, but not with what the broker needed.
    #[error("{0}")]
    UpstreamRefused(String),
    /// Busy or stopping: retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] igbroker_store::StoreError),
    #[error(transparent)]
    Vault(#[from] igbroker_vault::VaultError),
    /// A broken invariant: a bug, not the caller's fault.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_found(what: &'static str, id: &str) -> Self {
        Error::NotFound {
            what,
            id: id.chars().take(80).collect(),
        }
    }

    /// Wraps a failure of Instagram at `step`; a Standard Access refusal gets its own kind.
    pub fn upstream(step: &'static str) -> impl FnOnce(instagram_api::Error) -> Error {
        move |source| match source {
            instagram_api::Error::AppNotApprovedForUser { .. } => {
                Error::AppNotApprovedForUser { step }
            }
            source => Error::Upstream { step, source },
        }
    }

    /// The stable code callers match on, the same in JSON answers and CLI messages.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::Invalid(_) => "invalid_request",
            Error::InvalidState(_) => "invalid_state",
            Error::StateUsed => "state_used",
            Error::Conflict(_) => "conflict",
            Error::Unprocessable(_) => "invalid_request",
            Error::PublishFailed(_) => "publish_failed",
            Error::Unauthorized(_) => "unauthorized",
            Error::NotActive(status) => status.as_str(),
            Error::TooYoung { .. } => "token_too_young",
            Error::AccountMismatch => "account_mismatch",
            Error::MissingInstagramScope(_) => "missing_scope",
            Error::RateLimited { .. } => "rate_limited",
            Error::AppNotApprovedForUser { .. } => APP_NOT_APPROVED_CODE,
            Error::Upstream { .. } | Error::UpstreamRefused(_) => "upstream_error",
            Error::Unavailable(_) => "unavailable",
            Error::Store(igbroker_store::StoreError::Unreachable { .. }) => "unavailable",
            Error::Store(igbroker_store::StoreError::Conflict(_)) => "conflict",
            Error::Vault(igbroker_vault::VaultError::UnknownKeyVersion(_)) => "unavailable",
            Error::Store(_) | Error::Vault(_) | Error::Internal(_) => "internal",
        }
    }
}

/// The code of [`Error::AppNotApprovedForUser`], also a connect session's `error`.
pub const APP_NOT_APPROVED_CODE: &str = "app_not_approved_for_user";

/// What to do about [`Error::AppNotApprovedForUser`]: the two fixes, in one sentence.
pub const APP_NOT_APPROVED: &str = "the app has Standard Access, which serves only the Instagram accounts added to the app as testers, and this account is not one of them; add the account as an Instagram tester of the app (App Dashboard > App roles > Roles, then accept the invitation in Instagram) or obtain Advanced Access for the app through App Review, then connect the account again";

/// A longer explanation of an error code a connect session can end with, when there is one.
pub fn describe_code(code: &str) -> Option<&'static str> {
    (code == APP_NOT_APPROVED_CODE).then_some(APP_NOT_APPROVED)
}

fn not_active_message(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::ReauthRequired => {
            "the account must be connected again (create a connect session with its account_id)"
        }
        AccountStatus::Revoked => "the account was revoked; its token is destroyed",
        AccountStatus::Suspended => "the account is suspended",
        AccountStatus::Active => "the account is active",
    }
}
