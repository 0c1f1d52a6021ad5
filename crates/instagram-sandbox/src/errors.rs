//! The three error shapes the sandbox speaks: Graph's `{"error":{…}}` envelope, the flat
//! envelope of `api.instagram.com/oauth/access_token`, and the control API's own JSON errors,
//! plus the library's `SandboxError`.

use std::path::PathBuf;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::ids::new_fbtrace_id;
use crate::timefmt::facebook_session_time;

/// Failures of the library entry points (startup and state file), never of a request.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot access the sandbox state at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the sandbox state file {path} cannot be read: {message}")]
    CorruptState { path: PathBuf, message: String },
    #[error("the sandbox secret key {path} is invalid: {message}")]
    BadKey { path: PathBuf, message: String },
}

pub const OAUTH: &str = "OAuthException";
pub const IGAPI: &str = "IGApiException";

/// A Graph API error as graph.instagram.com sends it.
#[derive(Debug, Clone)]
pub struct GraphError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub code: i64,
    pub subcode: Option<i64>,
    pub is_transient: bool,
    pub user_title: Option<String>,
    pub user_msg: Option<String>,
}

impl GraphError {
    pub fn new(kind: &'static str, code: i64, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind,
            code,
            subcode: None,
            is_transient: false,
            user_title: None,
            user_msg: None,
        }
    }

    pub fn subcode(mut self, subcode: i64) -> Self {
        self.subcode = Some(subcode);
        self
    }

    pub fn transient(mut self, yes: bool) -> Self {
        self.is_transient = yes;
        self
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn user(mut self, title: impl Into<String>, msg: impl Into<String>) -> Self {
        self.user_title = Some(title.into());
        self.user_msg = Some(msg.into());
        self
    }

    /// Code 100: a missing, malformed or unsupported parameter.
    pub fn param(message: impl Into<String>) -> Self {
        Self::new(IGAPI, 100, message)
    }

    pub fn missing_token() -> Self {
        Self::new(
            OAUTH,
            104,
            "An access token is required to request this resource.",
        )
    }

    pub fn missing_token_me() -> Self {
        Self::new(
            IGAPI,
            2500,
            "An active access token must be used to query information about the current user.",
        )
    }

    /// A string that is not a token this host could ever have issued.
    pub fn cannot_parse_token() -> Self {
        Self::new(
            OAUTH,
            190,
            "Invalid OAuth access token - Cannot parse access token",
        )
    }

    /// A well-formed Instagram token the sandbox does not know.
    pub fn unknown_token() -> Self {
        Self::new(IGAPI, 190, "Invalid OAuth 2.0 Access Token")
    }

    pub fn expired(expired_at: i64, now: i64) -> Self {
        Self::new(
            OAUTH,
            190,
            format!(
                "Error validating access token: Session has expired on {}. The current time is {}.",
                facebook_session_time(expired_at),
                facebook_session_time(now)
            ),
        )
        .subcode(463)
    }

    pub fn password_changed() -> Self {
        Self::new(
            OAUTH,
            190,
            "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.",
        )
        .subcode(460)
    }

    pub fn deauthorized(client_id: &str) -> Self {
        Self::new(
            OAUTH,
            190,
            format!("Error validating access token: The user has not authorized application {client_id}."),
        )
        .subcode(458)
    }

    /// An id that does not exist, or belongs to another account: 100 with subcode 33 and
    /// Meta's "Unsupported get request. Object with ID …" text.
    pub fn no_such_object(id: &str) -> Self {
        Self::no_such_object_for("GET", id)
    }

    /// Like [`GraphError::no_such_object`], with the request's method in the text
    /// ("Unsupported post request. …").
    pub fn no_such_object_for(method: &str, id: &str) -> Self {
        Self::new(
            IGAPI,
            100,
            format!(
                "Unsupported {} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation",
                method.to_ascii_lowercase()
            ),
        )
        .subcode(33)
    }

    /// 803 is for aliases (a name where an id belongs), never for unknown numeric ids.
    pub fn unknown_alias(alias: &str) -> Self {
        Self::new(
            IGAPI,
            803,
            format!("(#803) Some of the aliases you requested do not exist: {alias}"),
        )
    }

    /// An edge the node does not have, or segments after the edge.
    pub fn unknown_path(rest: &[String]) -> Self {
        Self::new(
            IGAPI,
            2500,
            format!("Unknown path components: /{}", rest.join("/")),
        )
    }

    /// What every graph.instagram.com call answers when the token belongs to an account that
    /// is not a tester of a Standard Access app: login and the code exchange worked, nothing
    /// after them does. The text is the wrong-method text, for the method actually used.
    pub fn not_approved_for_user(method: &str) -> Self {
        Self::unsupported_method(method)
    }

    pub fn unsupported_method(method: &str) -> Self {
        Self::new(
            IGAPI,
            100,
            format!(
                "Unsupported request - method type: {}",
                method.to_ascii_lowercase()
            ),
        )
    }

    pub fn unsupported_get_root() -> Self {
        Self::new(IGAPI, 100, "Unsupported get request.")
    }

    pub fn nonexisting_field(field: &str, node_type: &str) -> Self {
        Self::param(format!(
            "(#100) Tried accessing nonexisting field ({field}) on node type ({node_type})"
        ))
    }

    /// Code 10: the token was not granted the permission this read needs.
    pub fn permission_10() -> Self {
        Self::new(
            IGAPI,
            10,
            "(#10) Application does not have permission for this action",
        )
    }

    /// Code 200: the token was not granted the permission this write needs.
    pub fn permission_200(scope: &str) -> Self {
        Self::new(
            IGAPI,
            200,
            format!("(#200) Requires {scope} permission to manage the object"),
        )
    }

    pub fn body(&self) -> Value {
        let mut err = json!({
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "is_transient": self.is_transient,
            "fbtrace_id": new_fbtrace_id(),
        });
        if let Some(obj) = err.as_object_mut() {
            if let Some(sub) = self.subcode {
                obj.insert("error_subcode".into(), json!(sub));
            }
            if let Some(t) = &self.user_title {
                obj.insert("error_user_title".into(), json!(t));
            }
            if let Some(m) = &self.user_msg {
                obj.insert("error_user_msg".into(), json!(m));
            }
        }
        json!({ "error": err })
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let body = self.body();
        let trace = body
            .pointer("/error/fbtrace_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut resp = (self.status, axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&trace) {
            headers.insert(HeaderName::from_static("x-fb-trace-id"), v);
        }
        if self.code == 190 {
            // Graph names the failing token in this header too; clients such as the PHP SDK read it.
            let challenge = format!(
                "OAuth \"Facebook Platform\" \"invalid_token\" \"{}\"",
                self.message.replace('"', "'")
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

/// The flat envelope of `api.instagram.com`: `{error_type, code: 400, error_message}`.
#[derive(Debug, Clone)]
pub struct FlatError {
    pub message: String,
}

impl FlatError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    pub fn body(&self) -> Value {
        json!({ "error_type": OAUTH, "code": 400, "error_message": self.message })
    }
}

impl IntoResponse for FlatError {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, axum::Json(self.body())).into_response()
    }
}

/// Errors of the `/_sandbox/` control API: `{"error": {"message": …}}`.
#[derive(Debug, Clone)]
pub struct ControlError {
    pub status: StatusCode,
    pub message: String,
}

impl ControlError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({ "error": { "message": self.message } })),
        )
            .into_response()
    }
}
