//! One error type that tells the caller what to do next.
//!
//! Graph errors are classified by `error.code` / `error_subcode` (never by HTTP status alone,
//! which Instagram does not keep consistent):
//!
//! | What to do | Variant | Codes |
//! | --- | --- | --- |
//! | retry later with backoff | [`Error::Transient`], [`Error::Network`] | 1, 2, 341, 368, -1, -2, HTTP 5xx, `is_transient: true`, I/O failures |
//! | slow down | [`Error::RateLimited`] | 4, 17, 32 (Pages API), 613, 80000–80014 (80002 for Instagram) |
//! | send the user through login again | [`Error::Reauth`] | 190 (any subcode), 102 |
//! | ask for more permissions | [`Error::MissingPermission`] | 3, 10, 200–299 |
//! | fix the app's access (tester or Advanced Access) | [`Error::AppNotApprovedForUser`] | 100 "Unsupported request - method type: get" |
//! | fix the request | [`Error::BadRequest`] | 100 (100/33: unknown object, see [`Error::is_unknown_object`]), 803 (alias), 2500 (unknown path), 506 and anything else unrecognised |
//! | publishing-specific | [`Error::Publishing`] | 9, 9004, 9007, 24, 25, 36000–36004, subcodes 2207xxx |
//! | code exchange failed | [`Error::OAuth`] | `api.instagram.com`'s flat `{error_type, code, error_message}` |
//!
//! No variant ever holds an access token, authorization code or client secret: messages are
//! taken from Instagram's `message` / `error_message`, with every secret sent in the request
//! scrubbed out, and transport errors are stripped of their URL.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::secrets::scrub;
use crate::usage::Usage;

/// Everything that can go wrong when talking to Instagram.
///
/// Prefer the helper methods ([`Error::is_transient`], [`Error::retry_after`],
/// [`Error::requires_reauth`]) over matching variants when only the decision matters: network
/// failures are [`Error::Network`], not [`Error::Transient`], yet both are transient.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Instagram failed in a way that a later retry, with backoff, is expected to fix.
    #[error("Instagram is temporarily unavailable{}: {message}", code_suffix(*code, *subcode))]
    Transient {
        /// Graph error code; `None` for an HTTP 5xx without a Graph error body.
        code: Option<i64>,
        /// Graph `error_subcode`.
        subcode: Option<i64>,
        /// Instagram's message (secrets scrubbed).
        message: String,
        /// HTTP status, `fbtrace_id`, usage headers, …
        details: Box<ErrorDetails>,
    },

    /// A rate limit was hit: wait `retry_after` (when Instagram says) before calling again.
    #[error("rate limited by Instagram{}{}: {message}", code_suffix(Some(*code), *subcode), retry_suffix(*retry_after))]
    RateLimited {
        /// 4, 17, 613, 800xx, or 429 for an HTTP 429 without a Graph error body.
        code: i64,
        /// Graph `error_subcode`.
        subcode: Option<i64>,
        /// From `estimated_time_to_regain_access` (sent in minutes) or a `Retry-After` header.
        retry_after: Option<Duration>,
        /// Instagram's message (secrets scrubbed).
        message: String,
        /// HTTP status, `fbtrace_id`, usage headers, …
        details: Box<ErrorDetails>,
    },

    /// The token no longer works; only a new login (authorization) fixes it.
    #[error("the account must authorize again ({reason}){}: {message}", code_suffix(Some(*code), *subcode))]
    Reauth {
        /// 190 or 102.
        code: i64,
        /// 463 expired, 460 password changed, 458 app removed, …
        subcode: Option<i64>,
        /// `subcode` in words.
        reason: ReauthReason,
        /// Instagram's message (secrets scrubbed).
        message: String,
        /// HTTP status, `fbtrace_id`, usage headers, …
        details: Box<ErrorDetails>,
    },

    /// The token lacks a permission; the user must grant it (re-consent).
    #[error("missing permission{}{}: {message}", permission.as_deref().map(|p| format!(" {p}")).unwrap_or_default(), code_suffix(Some(*code), None))]
    MissingPermission {
        /// 3, 10 or 200–299.
        code: i64,
        /// The permission named in the message, e.g. `instagram_business_manage_insights`.
        permission: Option<String>,
        /// Instagram's message (secrets scrubbed).
        message: String,
        /// HTTP status, `fbtrace_id`, usage headers, …
        details: Box<ErrorDetails>,
    },

    /// The app has Standard Access and this Instagram account is not one of its testers.
    ///
    /// Instagram lets such an account log in and exchange the code, with every permission
    /// granted, then answers every call on the Graph host with that token — long-lived
    /// exchange, refresh, `/me`, everything — with HTTP 400, code 100, `IGApiException`,
    /// "Unsupported request - method type: get". The token is not revoked and the request is
    /// not wrong: add the account as a tester of the app (App Dashboard > App roles), or
    /// obtain Advanced Access through App Review. (A token of the retired Basic Display API
    /// gets the same answer for a different reason.)
    #[error("the app is not approved for this Instagram account: with Standard Access it serves only the app's testers; add the account as a tester of the app or obtain Advanced Access{}: {message}", code_suffix(Some(*code), None))]
    AppNotApprovedForUser {
        /// 100.
        code: i64,
        /// Instagram's message.
        message: String,
        /// HTTP status, `fbtrace_id`, usage headers, …
        details: Box<ErrorDetails>,
    },

    /// The request itself is wrong (bad parameter, unknown field, object not found, …).
    #[error("Instagram rejected the request{}: {message}", code_suffix(Some(*code), *subcode))]
    BadRequest {
        /// 100 (with subcode 33 for an unknown object), 803 (alias), 2500 (unknown path
        /// components), 506, or any code this crate does not classify otherwise.
        code: i64,
        /// Graph `error_subcode`.
        subcode: Option<i64>,
        /// Instagram's message (secrets scrubbed).
        message: String,
        /// HTTP status, `fbtrace_id`, usage headers, …
        details: Box<ErrorDetails>,
    },

    /// Content publishing failed; `kind` says why and what helps.
    #[error("publishing failed ({kind}){}: {message}", code_suffix(*code, *subcode))]
    Publishing {
        /// What went wrong, derived from code and subcode or from the container's status.
        kind: PublishingErrorKind,
        /// Graph error code; `None` when the failure came from a container's `status_code`.
        code: Option<i64>,
        /// `error_subcode` (2207xxx), or the code in a container's `status` text.
        subcode: Option<i64>,
        /// The container involved, when known.
        container_id: Option<String>,
        /// Instagram's message (secrets scrubbed).
        message: String,
        /// HTTP status, `fbtrace_id`, usage headers, …
        details: Box<ErrorDetails>,
    },

    /// `api.instagram.com` rejected the code exchange, e.g. "Matching code was not found or was
    /// already used". Codes are single-use: never retry with the same code.
    #[error("Instagram OAuth error {code} ({error_type}): {message}")]
    OAuth {
        /// `error_type`, usually `OAuthException`.
        error_type: String,
        /// `code`, usually 400.
        code: i64,
        /// `error_message` (secrets scrubbed).
        message: String,
    },

    /// The request did not complete: connection, TLS, timeout or a broken body.
    ///
    /// Transient, but a `POST` may have taken effect before the answer was lost.
    #[error("network error ({kind}): {message}")]
    Network {
        /// Which stage failed.
        kind: NetworkErrorKind,
        /// The error chain as text (no URL, secrets scrubbed).
        message: String,
        /// The underlying error, stripped of its URL.
        #[source]
        source: reqwest::Error,
    },

    /// A successful response did not have the documented shape.
    #[error("could not decode Instagram's response (HTTP {status}): {message}")]
    Decode {
        /// HTTP status of the response.
        status: u16,
        /// What did not match (values redacted).
        message: String,
    },

    /// A response that is neither a success nor a recognisable error, e.g. a redirect (never
    /// followed) or an HTML error page.
    #[error("unexpected HTTP {status} from Instagram: {message}")]
    UnexpectedResponse {
        /// HTTP status.
        status: u16,
        /// A description; never the body or a `Location` header.
        message: String,
        /// Usage headers and other details.
        details: Box<ErrorDetails>,
    },

    /// [`crate::Config`] cannot be used.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },

    /// The request was refused before anything was sent.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },

    /// The redirect back from Instagram carried neither a code nor an error.
    #[error("invalid OAuth callback: {reason}")]
    InvalidCallback {
        /// What is wrong (the code itself is never included).
        reason: String,
    },

    /// Following `paging.next` failed (the URL was unusable or repeated itself).
    #[error("paging failed: {reason}")]
    Paging {
        /// What is wrong (the URL itself is never included).
        reason: String,
    },
}

/// Why a token stopped working (Graph code 190's `error_subcode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReauthReason {
    /// 463: the token's lifetime ran out (it can no longer be refreshed).
    Expired,
    /// 460: the user changed their password or Meta reset the session.
    PasswordChanged,
    /// 458: the user removed the app.
    AppRemoved,
    /// Any other subcode (459 checkpoint, 464, 467, 492, none, …) or code 102.
    Other,
}

impl ReauthReason {
    /// Maps a 190 subcode.
    pub fn from_subcode(subcode: Option<i64>) -> Self {
        match subcode {
            Some(463) => Self::Expired,
            Some(460) => Self::PasswordChanged,
            Some(458) => Self::AppRemoved,
            _ => Self::Other,
        }
    }
}

impl fmt::Display for ReauthReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Expired => "token expired",
            Self::PasswordChanged => "password changed",
            Self::AppRemoved => "app removed",
            Self::Other => "session invalid",
        })
    }
}

/// What went wrong while publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PublishingErrorKind {
    /// 9 / 2207042: the rolling 24 h post cap is used up; see `content_publishing_limit`.
    QuotaExceeded,
    /// 9007 / 2207027: the container is still processing; poll, then publish again.
    NotReady,
    /// 9004 / 2207052 / 2207003: Instagram could not fetch the media URL.
    DownloadFailed,
    /// 2207020 or status `EXPIRED`: containers live 24 h; create a new one.
    ContainerExpired,
    /// 24 / 2207008: the container id is unknown.
    ContainerNotFound,
    /// Container status `ERROR`.
    ContainerFailed,
    /// 25 / 2207050: the account may not publish.
    AccountRestricted,
    /// 2207051: Instagram suspects spam.
    SuspectedSpam,
    /// 36000–36004 and format subcodes: size, ratio or format not accepted.
    InvalidMedia,
    /// -1 / -2 and 2207001 / 2207032 / 2207053: Instagram-side failure; retry, usually with a
    /// new container.
    ServerError,
    /// The container did not finish within the polling budget.
    Timeout,
    /// Anything else.
    Other,
}

impl PublishingErrorKind {
    /// Classifies a Graph code / subcode pair (subcode first: it is more specific).
    pub fn from_codes(code: Option<i64>, subcode: Option<i64>) -> Self {
        match subcode {
            Some(2207042) => return Self::QuotaExceeded,
            Some(2207027) => return Self::NotReady,
            Some(2207003 | 2207052) => return Self::DownloadFailed,
            Some(2207020) => return Self::ContainerExpired,
            Some(2207008) => return Self::ContainerNotFound,
            Some(2207050) => return Self::AccountRestricted,
            Some(2207051) => return Self::SuspectedSpam,
            Some(2207001 | 2207032 | 2207053) => return Self::ServerError,
            Some(2207004 | 2207005 | 2207009 | 2207010 | 2207023 | 2207026 | 2207028) => {
                return Self::InvalidMedia;
            }
            _ => {}
        }
        match code {
            Some(9) => Self::QuotaExceeded,
            Some(9007) => Self::NotReady,
            Some(9004) => Self::DownloadFailed,
            Some(24) => Self::ContainerNotFound,
            Some(25) => Self::AccountRestricted,
            Some(36000..=36004) => Self::InvalidMedia,
            Some(-1 | -2) => Self::ServerError,
            _ => Self::Other,
        }
    }

    fn is_transient(self) -> bool {
        matches!(self, Self::NotReady | Self::ServerError | Self::Timeout)
    }
}

impl fmt::Display for PublishingErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::QuotaExceeded => "publishing quota exceeded",
            Self::NotReady => "media not ready",
            Self::DownloadFailed => "media download failed",
            Self::ContainerExpired => "container expired",
            Self::ContainerNotFound => "container not found",
            Self::ContainerFailed => "container failed",
            Self::AccountRestricted => "account restricted",
            Self::SuspectedSpam => "suspected spam",
            Self::InvalidMedia => "media not accepted",
            Self::ServerError => "Instagram server error",
            Self::Timeout => "container still processing",
            Self::Other => "other",
        })
    }
}

/// Which stage of an HTTP exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NetworkErrorKind {
    /// DNS, TCP or TLS connection setup.
    Connect,
    /// Connect or request timeout.
    Timeout,
    /// Reading the response body.
    Body,
    /// Anything else in sending the request.
    Request,
}

impl fmt::Display for NetworkErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Body => "body",
            Self::Request => "request",
        })
    }
}

/// The parts of a Graph error that callers rarely branch on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorDetails {
    /// HTTP status of the response.
    pub http_status: Option<u16>,
    /// `type`: `OAuthException`, `IGApiException`, …
    pub error_type: Option<String>,
    /// `fbtrace_id`, for Meta support; short-lived.
    pub fbtrace_id: Option<String>,
    /// `is_transient`, when Instagram sent it.
    pub is_transient: Option<bool>,
    /// `error_user_title` (secrets scrubbed).
    pub user_title: Option<String>,
    /// `error_user_msg` (secrets scrubbed).
    pub user_message: Option<String>,
    /// Usage headers of the failed response.
    pub usage: Usage,
}

impl Error {
    /// True when repeating the same request later may succeed without any change: transient
    /// Graph errors, rate limits (after [`Error::retry_after`]), network failures, and
    /// publishing states such as "not ready yet".
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transient { .. } | Self::RateLimited { .. } => true,
            Self::Network { .. } => true,
            Self::Publishing {
                kind,
                code,
                details,
                ..
            } => {
                kind.is_transient()
                    || matches!(code, Some(-1 | -2))
                    || details.is_transient == Some(true)
            }
            Self::UnexpectedResponse { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The Graph (or OAuth) error code, when the response carried one.
    pub fn graph_code(&self) -> Option<i64> {
        match self {
            Self::Transient { code, .. } | Self::Publishing { code, .. } => *code,
            Self::RateLimited { code, details, .. } => {
                // An HTTP 429 without a body is reported as code 429 but is not a Graph code.
                if details.error_type.is_none() && *code == 429 {
                    None
                } else {
                    Some(*code)
                }
            }
            Self::Reauth { code, .. }
            | Self::MissingPermission { code, .. }
            | Self::AppNotApprovedForUser { code, .. }
            | Self::BadRequest { code, .. }
            | Self::OAuth { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The Graph `error_subcode`, when present.
    pub fn subcode(&self) -> Option<i64> {
        match self {
            Self::Transient { subcode, .. }
            | Self::RateLimited { subcode, .. }
            | Self::Reauth { subcode, .. }
            | Self::BadRequest { subcode, .. }
            | Self::Publishing { subcode, .. } => *subcode,
            _ => None,
        }
    }

    /// Usage headers of the response that failed, when there was a response.
    pub fn usage(&self) -> Option<&Usage> {
        self.details().map(|d| &d.usage)
    }

    /// HTTP status, `fbtrace_id` and the rest, for errors that came from a response.
    pub fn details(&self) -> Option<&ErrorDetails> {
        match self {
            Self::Transient { details, .. }
            | Self::RateLimited { details, .. }
            | Self::Reauth { details, .. }
            | Self::MissingPermission { details, .. }
            | Self::AppNotApprovedForUser { details, .. }
            | Self::BadRequest { details, .. }
            | Self::Publishing { details, .. }
            | Self::UnexpectedResponse { details, .. } => Some(details),
            _ => None,
        }
    }

    /// HTTP status of the failed response.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Decode { status, .. } | Self::UnexpectedResponse { status, .. } => Some(*status),
            Self::OAuth { .. } => None,
            _ => self.details().and_then(|d| d.http_status),
        }
    }

    /// How long to wait before retrying, when known: the rate-limit estimate, or the usage
    /// headers' `estimated_time_to_regain_access` on any other error.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => self.usage().and_then(Usage::regain_access_in),
        }
    }

    /// True for [`Error::Reauth`]: the stored token is dead.
    pub fn requires_reauth(&self) -> bool {
        matches!(self, Self::Reauth { .. })
    }

    /// True when the object named in the path does not exist for this token: an unknown id
    /// or another account's object (100 with subcode 33, "Unsupported get request. Object
    /// with ID '…' does not exist…"), or an alias that does not exist (803).
    pub fn is_unknown_object(&self) -> bool {
        matches!(
            self,
            Self::BadRequest {
                code: 100,
                subcode: Some(33),
                ..
            } | Self::BadRequest { code: 803, .. }
        )
    }

    /// Rebuilds a Graph error envelope (`{"error": {...}}`) from a Graph error, e.g. for a
    /// proxy that forwards Instagram's answer. Messages are the scrubbed ones.
    pub fn to_graph_envelope(&self) -> Option<Value> {
        let (code, subcode, message) = match self {
            Self::Transient {
                code,
                subcode,
                message,
                ..
            } => ((*code)?, *subcode, message),
            Self::Publishing {
                code,
                subcode,
                message,
                ..
            } => ((*code)?, *subcode, message),
            Self::RateLimited {
                code,
                subcode,
                message,
                ..
            }
            | Self::Reauth {
                code,
                subcode,
                message,
                ..
            }
            | Self::BadRequest {
                code,
                subcode,
                message,
                ..
            } => (*code, *subcode, message),
            Self::MissingPermission { code, message, .. }
            | Self::AppNotApprovedForUser { code, message, .. } => (*code, None, message),
            _ => return None,
        };
        let details = self.details()?;
        details.error_type.as_ref()?;
        let mut e = Map::new();
        e.insert("message".into(), Value::from(message.as_str()));
        if let Some(t) = &details.error_type {
            e.insert("type".into(), Value::from(t.as_str()));
        }
        e.insert("code".into(), Value::from(code));
        if let Some(s) = subcode {
            e.insert("error_subcode".into(), Value::from(s));
        }
        if let Some(t) = details.is_transient {
            e.insert("is_transient".into(), Value::from(t));
        }
        if let Some(t) = &details.user_title {
            e.insert("error_user_title".into(), Value::from(t.as_str()));
        }
        if let Some(t) = &details.user_message {
            e.insert("error_user_msg".into(), Value::from(t.as_str()));
        }
        if let Some(t) = &details.fbtrace_id {
            e.insert("fbtrace_id".into(), Value::from(t.as_str()));
        }
        let mut outer = Map::new();
        outer.insert("error".into(), Value::Object(e));
        Some(Value::Object(outer))
    }

    /// Classifies a failed response obtained some other way (another HTTP stack, a recorded
    /// fixture): the same rules [`crate::Client`] applies to its own responses.
    ///
    /// ```
    /// use instagram_api::{Error, ReauthReason, Usage};
    ///
    /// let body = br#"{"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190,"error_subcode":463}}"#;
    /// let err = Error::from_response(400, body, Usage::default());
    /// assert!(matches!(err, Error::Reauth { reason: ReauthReason::Expired, .. }));
    /// ```
    pub fn from_response(http_status: u16, body: &[u8], usage: Usage) -> Self {
        let body = serde_json::from_slice::<Value>(body).ok();
        let ctx = ResponseContext {
            http_status,
            usage,
            retry_after_header: None,
            secrets: &[],
        };
        classify_error_body(body.as_ref(), ctx)
    }

    pub(crate) fn invalid_config(reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_request(reason: impl Into<String>) -> Self {
        Self::InvalidRequest {
            reason: reason.into(),
        }
    }

    pub(crate) fn paging(reason: impl Into<String>) -> Self {
        Self::Paging {
            reason: reason.into(),
        }
    }

    /// Wraps a transport error, dropping its URL (Instagram puts tokens in query strings).
    pub(crate) fn network(err: reqwest::Error, secrets: &[&str]) -> Self {
        let err = err.without_url();
        let kind = if err.is_timeout() {
            NetworkErrorKind::Timeout
        } else if err.is_connect() {
            NetworkErrorKind::Connect
        } else if err.is_body() || err.is_decode() {
            NetworkErrorKind::Body
        } else {
            NetworkErrorKind::Request
        };
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        Self::Network {
            kind,
            message: scrub(&message, secrets),
            source: err,
        }
    }

    pub(crate) fn decode(status: u16, err: &serde_json::Error, secrets: &[&str]) -> Self {
        Self::Decode {
            status,
            message: scrub(&redact_json_error(err), secrets),
        }
    }

    /// A Publishing error that did not come from a Graph error body.
    pub(crate) fn publishing(
        kind: PublishingErrorKind,
        subcode: Option<i64>,
        container_id: Option<String>,
        message: String,
    ) -> Self {
        Self::Publishing {
            kind,
            code: None,
            subcode,
            container_id,
            message,
            details: Box::default(),
        }
    }
}

fn code_suffix(code: Option<i64>, subcode: Option<i64>) -> String {
    match (code, subcode) {
        (Some(c), Some(s)) => format!(" (code {c}, subcode {s})"),
        (Some(c), None) => format!(" (code {c})"),
        (None, Some(s)) => format!(" (subcode {s})"),
        (None, None) => String::new(),
    }
}

fn retry_suffix(retry_after: Option<Duration>) -> String {
    retry_after
        .map(|d| format!(", retry in {}s", d.as_secs()))
        .unwrap_or_default()
}

/// serde_json quotes offending string values in its messages ("invalid type: string
/// \"…\""); those values could be anything the server sent, so they are cut out.
fn redact_json_error(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let mut out = String::with_capacity(text.len());
    let mut in_quotes = false;
    for c in text.chars() {
        if c == '"' {
            if in_quotes {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            in_quotes = !in_quotes;
        } else if !in_quotes {
            out.push(c);
        }
    }
    out
}

/// Everything known about a failed response besides its body.
pub(crate) struct ResponseContext<'a> {
    pub http_status: u16,
    pub usage: Usage,
    pub retry_after_header: Option<Duration>,
    pub secrets: &'a [&'a str],
}

/// A parsed Graph `error` object.
#[derive(Debug, Default)]
pub(crate) struct GraphErrorBody {
    pub message: String,
    pub error_type: Option<String>,
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    pub is_transient: Option<bool>,
    pub user_title: Option<String>,
    pub user_message: Option<String>,
    pub fbtrace_id: Option<String>,
}

impl GraphErrorBody {
    /// Reads `{"error": {...}}`; `None` when the body is not a Graph error envelope.
    pub fn from_envelope(body: &Value) -> Option<Self> {
        let Value::Object(e) = body.get("error")? else {
            return None;
        };
        Some(Self {
            message: str_field(e, "message").unwrap_or_default(),
            error_type: str_field(e, "type"),
            code: e.get("code").and_then(int),
            subcode: e.get("error_subcode").and_then(int),
            is_transient: e.get("is_transient").and_then(|v| match v {
                Value::Bool(b) => Some(*b),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }),
            user_title: str_field(e, "error_user_title"),
            user_message: str_field(e, "error_user_msg"),
            fbtrace_id: str_field(e, "fbtrace_id"),
        })
    }
}

/// Classifies a body that did not decode as a success, in this order: Graph envelope,
/// api.instagram.com's flat envelope, an OAuth 2.0 `{error, error_description}` body, and
/// finally the HTTP status alone.
pub(crate) fn classify_error_body(body: Option<&Value>, ctx: ResponseContext<'_>) -> Error {
    if let Some(body) = body {
        if let Some(graph) = GraphErrorBody::from_envelope(body) {
            return classify_graph(graph, ctx);
        }
        if let Value::Object(map) = body {
            if map.contains_key("error_message") || map.contains_key("error_type") {
                return Error::OAuth {
                    error_type: scrub(
                        &str_field(map, "error_type").unwrap_or_else(|| "OAuthException".into()),
                        ctx.secrets,
                    ),
                    code: map
                        .get("code")
                        .and_then(int)
                        .unwrap_or(i64::from(ctx.http_status)),
                    message: scrub(
                        &str_field(map, "error_message").unwrap_or_default(),
                        ctx.secrets,
                    ),
                };
            }
            if let Some(Value::String(error)) = map.get("error") {
                return Error::OAuth {
                    error_type: scrub(error, ctx.secrets),
                    code: i64::from(ctx.http_status),
                    message: scrub(
                        &str_field(map, "error_description").unwrap_or_default(),
                        ctx.secrets,
                    ),
                };
            }
        }
    }
    classify_status(ctx)
}

fn classify_status(ctx: ResponseContext<'_>) -> Error {
    let status = ctx.http_status;
    let details = Box::new(ErrorDetails {
        http_status: Some(status),
        usage: ctx.usage,
        ..ErrorDetails::default()
    });
    match status {
        429 => Error::RateLimited {
            code: 429,
            subcode: None,
            retry_after: ctx
                .retry_after_header
                .or_else(|| details.usage.regain_access_in()),
            message: "HTTP 429 Too Many Requests".into(),
            details,
        },
        500..=599 => Error::Transient {
            code: None,
            subcode: None,
            message: format!("HTTP {status} without a Graph error body"),
            details,
        },
        300..=399 => Error::UnexpectedResponse {
            status,
            message: "redirect not followed".into(),
            details,
        },
        _ => Error::UnexpectedResponse {
            status,
            message: "response is not a recognised Instagram error".into(),
            details,
        },
    }
}

/// The heart of the classification; see the table in the module docs.
pub(crate) fn classify_graph(e: GraphErrorBody, ctx: ResponseContext<'_>) -> Error {
    let message = scrub(&e.message, ctx.secrets);
    let user_message = e.user_message.as_deref().map(|m| scrub(m, ctx.secrets));
    let details = Box::new(ErrorDetails {
        http_status: Some(ctx.http_status),
        error_type: e.error_type.as_deref().map(|t| scrub(t, ctx.secrets)),
        fbtrace_id: e.fbtrace_id.as_deref().map(|t| scrub(t, ctx.secrets)),
        is_transient: e.is_transient,
        user_title: e.user_title.as_deref().map(|m| scrub(m, ctx.secrets)),
        user_message: user_message.clone(),
        usage: ctx.usage,
    });
    let subcode = e.subcode;
    let Some(code) = e.code else {
        // An envelope without a code: fall back on what the status and flag say.
        return if e.is_transient == Some(true) || ctx.http_status >= 500 {
            Error::Transient {
                code: None,
                subcode,
                message,
                details,
            }
        } else {
            Error::BadRequest {
                code: 0,
                subcode,
                message,
                details,
            }
        };
    };

    if code == 190 || code == 102 {
        let mut reason = if code == 190 {
            ReauthReason::from_subcode(subcode)
        } else {
            ReauthReason::Other
        };
        if reason == ReauthReason::Other && subcode.is_none() && message.contains("has expired") {
            reason = ReauthReason::Expired;
        }
        return Error::Reauth {
            code,
            subcode,
            reason,
            message,
            details,
        };
    }
    if is_publishing_code(code) || subcode.is_some_and(|s| (2207000..=2207999).contains(&s)) {
        return Error::Publishing {
            kind: PublishingErrorKind::from_codes(Some(code), subcode),
            code: Some(code),
            subcode,
            container_id: None,
            message,
            details,
        };
    }
    if matches!(code, 4 | 17 | 32 | 613) || (80000..=80014).contains(&code) {
        let retry_after = details.usage.regain_access_in().or(ctx.retry_after_header);
        return Error::RateLimited {
            code,
            subcode,
            retry_after,
            message,
            details,
        };
    }
    if code == 100 && subcode.is_none() && is_not_approved_message(&message) {
        return Error::AppNotApprovedForUser {
            code,
            message,
            details,
        };
    }
    if matches!(code, 1 | 2 | 341 | 368 | -1 | -2) || e.is_transient == Some(true) {
        return Error::Transient {
            code: Some(code),
            subcode,
            message,
            details,
        };
    }
    if code == 3 || code == 10 || (200..=299).contains(&code) {
        let permission =
            permission_in(&message).or_else(|| user_message.as_deref().and_then(permission_in));
        return Error::MissingPermission {
            code,
            permission,
            message,
            details,
        };
    }
    Error::BadRequest {
        code,
        subcode,
        message,
        details,
    }
}

/// Instagram's answer to a non-tester of a Standard Access app, on every GET. Meta gives a
/// wrong-method request the same text; the client's typed calls always use the right method,
/// so on a GET this text means the account is not served.
fn is_not_approved_message(message: &str) -> bool {
    message
        .trim()
        .trim_end_matches('.')
        .eq_ignore_ascii_case("Unsupported request - method type: get")
}

fn is_publishing_code(code: i64) -> bool {
    matches!(code, 9 | 9004 | 9007 | 24 | 25) || (36000..=36004).contains(&code)
}

/// Finds a permission name like `instagram_business_manage_insights` in an error message.
fn permission_in(message: &str) -> Option<String> {
    const PREFIXES: &[&str] = &[
        "instagram_",
        "pages_",
        "business_",
        "ads_",
        "user_",
        "publish_",
    ];
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|w| {
            w.contains('_')
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && PREFIXES
                    .iter()
                    .any(|p| w.starts_with(p) && w.len() > p.len())
        })
        .map(str::to_owned)
}

fn str_field(map: &Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Codes arrive as numbers, occasionally as numeric strings.
fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ctx(status: u16) -> ResponseContext<'static> {
        ResponseContext {
            http_status: status,
            usage: Usage::default(),
            retry_after_header: None,
            secrets: &[],
        }
    }

    fn graph(code: i64, subcode: Option<i64>, msg: &str) -> GraphErrorBody {
        GraphErrorBody {
            message: msg.into(),
            code: Some(code),
            subcode,
            error_type: Some("IGApiException".into()),
            ..Default::default()
        }
    }

    #[test]
    fn codes_map_to_actions() {
        let c = |code, sub| classify_graph(graph(code, sub, "m"), ctx(400));
        for code in [1, 2, 341, 368, -1, -2] {
            assert!(matches!(c(code, None), Error::Transient { .. }), "{code}");
        }
        for code in [4, 17, 32, 613, 80002] {
            assert!(matches!(c(code, None), Error::RateLimited { .. }), "{code}");
        }
        for (sub, reason) in [
            (Some(463), ReauthReason::Expired),
            (Some(460), ReauthReason::PasswordChanged),
            (Some(458), ReauthReason::AppRemoved),
            (Some(467), ReauthReason::Other),
            (None, ReauthReason::Other),
        ] {
            assert!(matches!(c(190, sub), Error::Reauth { reason: r, .. } if r == reason));
        }
        assert!(matches!(
            c(102, None),
            Error::Reauth {
                reason: ReauthReason::Other,
                ..
            }
        ));
        for code in [10, 200, 299, 3] {
            assert!(
                matches!(c(code, None), Error::MissingPermission { .. }),
                "{code}"
            );
        }
        for code in [100, 803, 506, 2500, 12345] {
            assert!(matches!(c(code, None), Error::BadRequest { .. }), "{code}");
        }
        assert!(c(100, Some(33)).is_unknown_object());
        assert!(c(803, None).is_unknown_object());
        assert!(!c(100, None).is_unknown_object());
        assert!(!c(2500, None).is_unknown_object());
        for (code, sub, kind) in [
            (9, Some(2207042), PublishingErrorKind::QuotaExceeded),
            (9007, Some(2207027), PublishingErrorKind::NotReady),
            (9004, Some(2207052), PublishingErrorKind::DownloadFailed),
            (24, Some(2207008), PublishingErrorKind::ContainerNotFound),
            (25, Some(2207050), PublishingErrorKind::AccountRestricted),
            (36000, Some(2207004), PublishingErrorKind::InvalidMedia),
            (36003, None, PublishingErrorKind::InvalidMedia),
            (-2, Some(2207020), PublishingErrorKind::ContainerExpired),
            (-1, Some(2207001), PublishingErrorKind::ServerError),
            (4, Some(2207051), PublishingErrorKind::SuspectedSpam),
        ] {
            assert!(
                matches!(c(code, sub), Error::Publishing { kind: k, .. } if k == kind),
                "{code}"
            );
        }
        assert!(c(9007, Some(2207027)).is_transient());
        assert!(c(-1, Some(2207001)).is_transient());
        assert!(!c(9, Some(2207042)).is_transient());
    }

    #[test]
    fn unsupported_get_is_app_not_approved_but_other_methods_are_not() {
        let c = |msg: &str| classify_graph(graph(100, None, msg), ctx(400));
        let e = c("Unsupported request - method type: get");
        assert!(
            matches!(e, Error::AppNotApprovedForUser { code: 100, .. }),
            "{e:?}"
        );
        assert!(!e.is_transient() && !e.requires_reauth());
        assert_eq!(e.graph_code(), Some(100));
        let text = e.to_string();
        assert!(
            text.contains("tester") && text.contains("Advanced Access"),
            "{text}"
        );
        assert!(matches!(
            c("Unsupported request - method type: post"),
            Error::BadRequest { .. }
        ));
        assert!(matches!(
            classify_graph(
                graph(
                    100,
                    Some(33),
                    "Unsupported get request. Object with ID '1' does not exist"
                ),
                ctx(400)
            ),
            Error::BadRequest { .. }
        ));
    }

    #[test]
    fn is_transient_flag_wins_over_unknown_code() {
        let mut g = graph(100, None, "m");
        g.is_transient = Some(true);
        let e = classify_graph(g, ctx(400));
        assert!(matches!(
            e,
            Error::Transient {
                code: Some(100),
                ..
            }
        ));
        assert!(e.is_transient());
    }

    #[test]
    fn expiry_without_subcode_is_expired() {
        let e = classify_graph(
            graph(
                190,
                None,
                "Error validating access token: Session has expired on Thursday",
            ),
            ctx(400),
        );
        assert!(matches!(
            e,
            Error::Reauth {
                reason: ReauthReason::Expired,
                ..
            }
        ));
    }

    #[test]
    fn rate_limit_uses_minutes_from_usage() {
        let usage = Usage::parse(
            None,
            Some(r#"{"1":[{"type":"instagram","estimated_time_to_regain_access":3}]}"#),
        );
        let e = classify_graph(
            graph(80002, None, "too many calls"),
            ResponseContext {
                http_status: 400,
                usage,
                retry_after_header: Some(Duration::from_secs(5)),
                secrets: &[],
            },
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(180)));
        assert_eq!(e.graph_code(), Some(80002));
    }

    #[test]
    fn permission_is_named() {
        let e = classify_graph(
            graph(
                200,
                None,
                "(#200) Requires instagram_business_manage_insights permission to manage the object",
            ),
            ctx(403),
        );
        assert!(
            matches!(e, Error::MissingPermission { permission: Some(ref p), .. } if p == "instagram_business_manage_insights")
        );
        let e = classify_graph(
            graph(
                10,
                None,
                "(#10) Application does not have permission for this action",
            ),
            ctx(403),
        );
        assert!(matches!(
            e,
            Error::MissingPermission {
                permission: None,
                ..
            }
        ));
    }

    #[test]
    fn flat_and_oauth2_bodies() {
        let body: Value = serde_json::from_str(r#"{"error_type":"OAuthException","code":400,"error_message":"Matching code was not found or was already used"}"#).unwrap();
        let e = classify_error_body(Some(&body), ctx(400));
        assert!(
            matches!(e, Error::OAuth { code: 400, ref error_type, .. } if error_type == "OAuthException")
        );
        let body: Value =
            serde_json::from_str(r#"{"error":"invalid_grant","error_description":"bad"}"#).unwrap();
        assert!(matches!(
            classify_error_body(Some(&body), ctx(400)),
            Error::OAuth { .. }
        ));
    }

    #[test]
    fn bare_statuses() {
        assert!(matches!(
            classify_error_body(None, ctx(503)),
            Error::Transient { code: None, .. }
        ));
        let e = classify_error_body(None, ctx(429));
        assert!(matches!(e, Error::RateLimited { code: 429, .. }));
        assert_eq!(e.graph_code(), None);
        assert!(matches!(
            classify_error_body(None, ctx(302)),
            Error::UnexpectedResponse { status: 302, .. }
        ));
        assert!(!classify_error_body(None, ctx(404)).is_transient());
    }

    #[test]
    fn secrets_are_scrubbed_from_messages() {
        let mut g = graph(100, None, "bad token SECRETVALUE123");
        g.user_message = Some("SECRETVALUE123".into());
        let e = classify_graph(
            g,
            ResponseContext {
                http_status: 400,
                usage: Usage::default(),
                retry_after_header: None,
                secrets: &["SECRETVALUE123"],
            },
        );
        assert!(!format!("{e} {e:?}").contains("SECRETVALUE123"));
    }

    #[test]
    fn envelope_round_trip() {
        let body: Value = serde_json::from_str(r#"{"error":{"message":"Invalid OAuth 2.0 Access Token","type":"IGApiException","code":190,"error_subcode":463,"fbtrace_id":"AbC"}}"#).unwrap();
        let e = classify_error_body(Some(&body), ctx(400));
        assert_eq!(e.to_graph_envelope().unwrap(), body);
    }

    #[test]
    fn json_error_values_are_redacted() {
        let err = serde_json::from_str::<u64>(r#""IGAAsecret""#).unwrap_err();
        let text = redact_json_error(&err);
        assert!(!text.contains("IGAAsecret"), "{text}");
        assert!(text.contains("invalid type"), "{text}");
    }
}
