//! A typed client for the `/_sandbox/…` control API, so tests and demos drive a sandbox by
//! name (create an app, a user, consent, move the clock, add a fault, read the call log)
//! instead of posting hand-written JSON. Every method returns the sandbox's error answer as
//! [`ControlClientError::Status`], with the message the sandbox gave.
//!
//! ```no_run
//! # async fn demo() -> Result<(), instagram_sandbox::control_client::ControlClientError> {
//! use instagram_sandbox::control_client::{AppSpec, ControlClient, FaultSpec, UserSpec};
//! let sb = ControlClient::new("http://127.0.0.1:9000");
//! let app = sb.create_app(&AppSpec::redirecting_to("http://127.0.0.1:8080/oauth/callback")).await?;
//! sb.create_user(&UserSpec::named("shop_one")).await?;
//! sb.add_fault(&FaultSpec::latency("/refresh_access_token", 200)).await?;
//! sb.advance_clock(86_400).await?;
//! # let _ = app; Ok(()) }
//! ```

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::faults::{FaultKind, FaultSpec, Phase};
pub use crate::state::{Access, ExchangeShape, RefreshMode, YoungRefresh};

/// What went wrong talking to the control API.
#[derive(Debug, thiserror::Error)]
pub enum ControlClientError {
    #[error("sandbox control request {what} failed: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("sandbox control request {what} answered {status}: {body}")]
    Status {
        what: String,
        status: StatusCode,
        body: Value,
    },
}

impl ControlClientError {
    /// The HTTP status the sandbox answered with, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::Http { .. } => None,
        }
    }
}

type Result<T> = std::result::Result<T, ControlClientError>;

/// `POST /_sandbox/apps`. Fields left `None` take the sandbox's defaults.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub testers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_mode: Option<RefreshMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_shape: Option<ExchangeShape>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub young_refresh: Option<YoungRefresh>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ttl_secs: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deauthorize_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_deletion_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_calls: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_window_secs: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_code: Option<i64>,
    /// Whether a failed code exchange still uses up the code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_exchange_burns_code: Option<bool>,
}

impl AppSpec {
    /// An app with one OAuth redirect URI and every other field at its default.
    pub fn redirecting_to(redirect_uri: impl Into<String>) -> Self {
        Self {
            redirect_uris: vec![redirect_uri.into()],
            ..Self::default()
        }
    }

    /// The app `client_id` (posting it again updates the app, keeping its secret).
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Where the sandbox sends Meta's deauthorize and data-deletion callbacks for this app.
    pub fn with_meta_callbacks(
        mut self,
        deauthorize_url: impl Into<String>,
        data_deletion_url: impl Into<String>,
    ) -> Self {
        self.deauthorize_url = Some(deauthorize_url.into());
        self.data_deletion_url = Some(data_deletion_url.into());
        self
    }

    /// A Standard Access app: only `testers` (usernames) may authorize it.
    pub fn standard_access(mut self, testers: &[&str]) -> Self {
        self.access = Some(Access::Standard);
        self.testers = testers.iter().map(|t| (*t).to_owned()).collect();
        self
    }
}

/// `POST /_sandbox/apps/{client_id}/webhooks`: the App Dashboard's webhook subscription. The
/// sandbox verifies `callback_url` with `verify_token` first, as Meta does.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookSubscription {
    pub callback_url: String,
    pub verify_token: String,
    /// `comments`, `mentions`, `story_insights`, …
    pub fields: Vec<String>,
}

impl WebhookSubscription {
    pub fn new(
        callback_url: impl Into<String>,
        verify_token: impl Into<String>,
        fields: &[&str],
    ) -> Self {
        Self {
            callback_url: callback_url.into(),
            verify_token: verify_token.into(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        }
    }
}

/// The sandbox's answer to `POST /_sandbox/apps`; `client_secret` is present when the call
/// set or generated one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxApp {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// Every other field, as the sandbox reported it.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `POST /_sandbox/users`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UserSpec {
    pub username: String,
    /// `BUSINESS` or `MEDIA_CREATOR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_type: Option<String>,
    pub media_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub followers_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biography: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_quota_total: Option<u32>,
}

impl UserSpec {
    pub fn named(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            ..Self::default()
        }
    }

    pub fn with_media(mut self, media_count: u32) -> Self {
        self.media_count = media_count;
        self
    }
}

/// A sandbox user as the control API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxUser {
    /// The Instagram user id (the same as `user_id`).
    pub id: String,
    pub user_id: String,
    pub username: String,
    /// The app-scoped id per client id, once the user authorized that app.
    #[serde(default)]
    pub scoped_ids: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `POST /_sandbox/authorize`: the consent screen's answer without a browser.
#[derive(Debug, Clone, Serialize)]
pub struct Consent {
    pub client_id: String,
    pub redirect_uri: String,
    /// Comma-separated, as the authorize URL carries it.
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `allow` or `deny`.
    pub decision: String,
    /// A subset of `scope` the user keeps (default: all of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted_scopes: Option<String>,
}

impl Consent {
    /// The consent asked for by an authorize URL (`/oauth/authorize?client_id=…&…`), answered
    /// `decision` (`allow` or `deny`) as `username`.
    pub fn for_authorize_url(authorize_url: &str, username: &str, decision: &str) -> Option<Self> {
        let url = url::Url::parse(authorize_url).ok()?;
        let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        Some(Self {
            client_id: q.get("client_id")?.clone(),
            redirect_uri: q.get("redirect_uri")?.clone(),
            scope: q.get("scope").cloned().unwrap_or_default(),
            state: q.get("state").cloned(),
            username: Some(username.to_owned()),
            decision: decision.to_owned(),
            granted_scopes: None,
        })
    }
}

/// The sandbox clock.
#[derive(Debug, Clone, Deserialize)]
pub struct ClockState {
    pub now: String,
    pub now_unix: i64,
    pub offset_secs: i64,
}

/// One entry of `GET /_sandbox/calls`.
#[derive(Debug, Clone, Deserialize)]
pub struct Call {
    pub seq: u64,
    pub at: String,
    pub method: String,
    pub path: String,
    pub route: String,
    pub status: u16,
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    /// SHA-256 (hex) of the access token the call carried.
    #[serde(default)]
    pub token_sha256: Option<String>,
}

/// Filters of `GET /_sandbox/calls`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallsQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Unix seconds or RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<u64>,
}

impl CallsQuery {
    pub fn path(path: impl Into<String>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::default()
        }
    }
}

/// `POST /_sandbox/seed`: many users with long-lived tokens at once.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SeedSpec {
    pub client_id: String,
    pub count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username_prefix: Option<String>,
    /// Comma-separated scopes granted (default the basic scope).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// How long ago the tokens were issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_age_secs: Option<i64>,
}

/// One seeded user and its long-lived token.
#[derive(Debug, Clone, Deserialize)]
pub struct Seeded {
    pub username: String,
    pub user_id: String,
    /// The app-scoped id the Graph API shows for this user.
    pub id: String,
    pub access_token: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// `POST /_sandbox/users/{id}/events`: what happens to a user on Instagram's side.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UserEvent {
    /// The user removes an app (every app it authorized when `client_id` is `None`).
    Deauthorize {
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    PasswordChanged,
    DataDeletion {
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    Comment {
        #[serde(skip_serializing_if = "Option::is_none")]
        media_id: Option<String>,
        /// Makes the comment a reply to this comment (on the same media).
        #[serde(skip_serializing_if = "Option::is_none")]
        parent_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        from_username: Option<String>,
    },
    /// Another account mentions the user in a comment.
    Mention {
        #[serde(skip_serializing_if = "Option::is_none")]
        media_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        from_username: Option<String>,
    },
    /// A story's insights at its end (default: the user's newest story).
    StoryInsights {
        #[serde(skip_serializing_if = "Option::is_none")]
        media_id: Option<String>,
    },
}

impl UserEvent {
    /// A comment with `text` on the user's newest post, from `from_username`.
    pub fn comment(text: impl Into<String>, from_username: impl Into<String>) -> Self {
        Self::Comment {
            media_id: None,
            parent_id: None,
            text: Some(text.into()),
            from_username: Some(from_username.into()),
        }
    }

    /// The user removes the app `client_id`.
    pub fn deauthorize(client_id: impl Into<String>) -> Self {
        Self::Deauthorize {
            client_id: Some(client_id.into()),
        }
    }

    /// The user asks the app `client_id` to delete their data.
    pub fn data_deletion(client_id: impl Into<String>) -> Self {
        Self::DataDeletion {
            client_id: Some(client_id.into()),
        }
    }
}

impl FaultSpec {
    /// A fault of `kind` on `path` with every option at its default.
    pub fn on(path: &str, kind: FaultKind) -> Self {
        Self {
            path: path.to_owned(),
            method: None,
            kind,
            status: None,
            code: None,
            subcode: None,
            is_transient: None,
            message: None,
            latency_ms: None,
            count: None,
            probability: None,
            phase: Phase::Before,
        }
    }

    /// Every call to `path` waits `ms` before it is answered.
    pub fn latency(path: &str, ms: u64) -> Self {
        Self {
            latency_ms: Some(ms),
            ..Self::on(path, FaultKind::Latency)
        }
    }

    /// Calls to `path` answer this HTTP status.
    pub fn status(path: &str, status: u16) -> Self {
        Self {
            status: Some(status),
            ..Self::on(path, FaultKind::Status)
        }
    }

    /// Calls to `path` answer a Graph error with this code.
    pub fn graph_error(path: &str, code: i64) -> Self {
        Self {
            code: Some(code),
            ..Self::on(path, FaultKind::GraphError)
        }
    }

    /// Calls to `path` have their connection dropped.
    pub fn reset(path: &str) -> Self {
        Self::on(path, FaultKind::Reset)
    }

    /// Publishing containers created by calls to `path` end in `ERROR`.
    pub fn container_error(path: &str) -> Self {
        Self::on(path, FaultKind::ContainerError)
    }

    /// Marks a `graph_error` answer `is_transient: true`.
    pub fn transient(mut self) -> Self {
        self.is_transient = Some(true);
        self
    }

    /// The HTTP status of a `graph_error` answer (default: the one Instagram uses for `code`).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Only the next `count` matching calls.
    pub fn times(mut self, count: u32) -> Self {
        self.count = Some(count);
        self
    }

    /// Fires on each matching call with this probability (0 to 1) instead of by count.
    pub fn with_probability(mut self, probability: f64) -> Self {
        self.probability = Some(probability);
        self
    }

    /// Only calls with this HTTP method.
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    /// Fire after the call took effect (the answer is lost, not the call).
    pub fn after(mut self) -> Self {
        self.phase = Phase::After;
        self
    }
}

/// A client of one sandbox's control API.
#[derive(Debug, Clone)]
pub struct ControlClient {
    base: String,
    http: reqwest::Client,
}

impl ControlClient {
    /// `base` is the sandbox's URL (`http://127.0.0.1:PORT`), without `/_sandbox`.
    pub fn new(base: impl Into<String>) -> Self {
        Self::with_http(base, reqwest::Client::new())
    }

    pub fn with_http(base: impl Into<String>, http: reqwest::Client) -> Self {
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
            http,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: Option<&CallsQuery>,
        body: Option<&(dyn erased::Body + Sync)>,
    ) -> Result<T> {
        let what = format!("{method} /_sandbox{path}");
        let mut req = self
            .http
            .request(method, format!("{}/_sandbox{path}", self.base));
        if let Some(q) = query {
            req = req.query(q);
        }
        if let Some(b) = body {
            req = req.json(&b.to_value());
        }
        let resp = req
            .send()
            .await
            .map_err(|source| ControlClientError::Http {
                what: what.clone(),
                source,
            })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ControlClientError::Http {
                what: what.clone(),
                source,
            })?;
        let body: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if !status.is_success() {
            return Err(ControlClientError::Status { what, status, body });
        }
        serde_json::from_value(body.clone()).map_err(|e| ControlClientError::Status {
            what: format!("{what} (unexpected answer: {e})"),
            status,
            body,
        })
    }

    pub async fn health(&self) -> Result<Value> {
        self.call(Method::GET, "/health", None, None).await
    }

    pub async fn create_app(&self, spec: &AppSpec) -> Result<SandboxApp> {
        self.call(Method::POST, "/apps", None, Some(spec)).await
    }

    /// Every registered app.
    pub async fn apps(&self) -> Result<Vec<SandboxApp>> {
        Ok(self
            .call::<Data<SandboxApp>>(Method::GET, "/apps", None, None)
            .await?
            .data)
    }

    pub async fn app(&self, client_id: &str) -> Result<SandboxApp> {
        self.call(Method::GET, &format!("/apps/{client_id}"), None, None)
            .await
    }

    /// Subscribes the app to Instagram's webhooks; the sandbox verifies the callback URL first
    /// and refuses the subscription when the verification fails.
    pub async fn subscribe_webhooks(
        &self,
        client_id: &str,
        subscription: &WebhookSubscription,
    ) -> Result<Value> {
        self.call(
            Method::POST,
            &format!("/apps/{client_id}/webhooks"),
            None,
            Some(subscription),
        )
        .await
    }

    /// The app's saved webhook subscription (`callback_url`, `fields`).
    pub async fn webhook_subscription(&self, client_id: &str) -> Result<Value> {
        self.call(
            Method::GET,
            &format!("/apps/{client_id}/webhooks"),
            None,
            None,
        )
        .await
    }

    pub async fn create_user(&self, spec: &UserSpec) -> Result<SandboxUser> {
        self.call(Method::POST, "/users", None, Some(spec)).await
    }

    pub async fn users(&self) -> Result<Vec<SandboxUser>> {
        Ok(self
            .call::<Data<SandboxUser>>(Method::GET, "/users", None, None)
            .await?
            .data)
    }

    /// One user by its Instagram user id or username.
    pub async fn user(&self, id_or_username: &str) -> Result<SandboxUser> {
        self.call(Method::GET, &format!("/users/{id_or_username}"), None, None)
            .await
    }

    /// The user named `username`, if there is one.
    pub async fn user_named(&self, username: &str) -> Result<Option<SandboxUser>> {
        Ok(self
            .users()
            .await?
            .into_iter()
            .find(|u| u.username == username))
    }

    /// Answers a consent; returns the redirect location (callback URL with `code` or `error`).
    pub async fn authorize(&self, consent: &Consent) -> Result<String> {
        #[derive(Deserialize)]
        struct Location {
            location: String,
        }
        let l: Location = self
            .call(Method::POST, "/authorize", None, Some(consent))
            .await?;
        Ok(l.location)
    }

    pub async fn clock(&self) -> Result<ClockState> {
        self.call(Method::GET, "/clock", None, None).await
    }

    /// Moves the clock `secs` ahead (negative: back).
    pub async fn advance_clock(&self, secs: i64) -> Result<ClockState> {
        self.call(
            Method::POST,
            "/clock",
            None,
            Some(&serde_json::json!({ "advance_secs": secs })),
        )
        .await
    }

    /// Adds a fault; returns its id.
    pub async fn add_fault(&self, spec: &FaultSpec) -> Result<String> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let id: Id = self.call(Method::POST, "/faults", None, Some(spec)).await?;
        Ok(id.id)
    }

    /// The faults in force, each as the sandbox shows it (its `id` and its spec).
    pub async fn faults(&self) -> Result<Vec<Value>> {
        Ok(self
            .call::<Data<Value>>(Method::GET, "/faults", None, None)
            .await?
            .data)
    }

    pub async fn remove_fault(&self, id: &str) -> Result<()> {
        self.call::<Value>(Method::DELETE, &format!("/faults/{id}"), None, None)
            .await
            .map(drop)
    }

    pub async fn clear_faults(&self) -> Result<()> {
        self.call::<Value>(Method::DELETE, "/faults", None, None)
            .await
            .map(drop)
    }

    pub async fn calls(&self, query: &CallsQuery) -> Result<Vec<Call>> {
        Ok(self
            .call::<Data<Call>>(Method::GET, "/calls", Some(query), None)
            .await?
            .data)
    }

    /// The calls made to one path (normalised as the sandbox matches it).
    pub async fn calls_to(&self, path: &str) -> Result<Vec<Call>> {
        self.calls(&CallsQuery::path(path)).await
    }

    pub async fn clear_calls(&self) -> Result<()> {
        self.call::<Value>(Method::DELETE, "/calls", None, None)
            .await
            .map(drop)
    }

    pub async fn reset_rate_limits(&self) -> Result<()> {
        self.call::<Value>(Method::POST, "/reset-rate-limits", None, None)
            .await
            .map(drop)
    }

    pub async fn seed(&self, spec: &SeedSpec) -> Result<Vec<Seeded>> {
        Ok(self
            .call::<Data<Seeded>>(Method::POST, "/seed", None, Some(spec))
            .await?
            .data)
    }

    /// Calls per route and HTTP status since the sandbox started.
    pub async fn stats(&self) -> Result<BTreeMap<String, BTreeMap<u16, u64>>> {
        #[derive(Deserialize)]
        struct Stats {
            calls: BTreeMap<String, BTreeMap<u16, u64>>,
        }
        Ok(self
            .call::<Stats>(Method::GET, "/stats", None, None)
            .await?
            .calls)
    }

    /// Makes `event` happen to the user `user_id` (its Instagram user id or username); returns the
    /// sandbox's account of what it did (callbacks sent, tokens invalidated).
    pub async fn user_event(&self, user_id: &str, event: &UserEvent) -> Result<Value> {
        self.call(
            Method::POST,
            &format!("/users/{user_id}/events"),
            None,
            Some(event),
        )
        .await
    }
}

#[derive(Deserialize)]
struct Data<T> {
    data: Vec<T>,
}

/// Request bodies of different types through one private `call`.
mod erased {
    pub trait Body {
        fn to_value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Body for T {
        fn to_value(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}
