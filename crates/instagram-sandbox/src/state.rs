//! What the sandbox remembers: apps, users, the hashes of codes and tokens it issued, media,
//! containers, comments and webhook subscriptions. Everything here is serialisable because it
//! is also the state file; nothing here is a plaintext token, code or secret.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

pub const SCOPE_BASIC: &str = "instagram_business_basic";
pub const SCOPE_PUBLISH: &str = "instagram_business_content_publish";
pub const SCOPE_MESSAGES: &str = "instagram_business_manage_messages";
pub const SCOPE_COMMENTS: &str = "instagram_business_manage_comments";
pub const SCOPE_INSIGHTS: &str = "instagram_business_manage_insights";

/// The current Instagram-login scopes. The pre-2025 `business_*` names are deliberately
/// absent: after their cut-off they grant nothing, so the sandbox rejects them as unknown.
pub const KNOWN_SCOPES: [&str; 5] = [
    SCOPE_BASIC,
    SCOPE_PUBLISH,
    SCOPE_MESSAGES,
    SCOPE_COMMENTS,
    SCOPE_INSIGHTS,
];

pub const CODE_TTL_SECS: i64 = 3600;
pub const SHORT_TOKEN_TTL_SECS: i64 = 3600;
pub const LONG_TOKEN_TTL_SECS: i64 = 5_184_000;
pub const MIN_REFRESH_AGE_SECS: i64 = 86_400;
pub const CONTAINER_TTL_SECS: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    #[default]
    Advanced,
    Standard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RefreshMode {
    #[default]
    Same,
    New,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeShape {
    #[default]
    Flat,
    Data,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum YoungRefresh {
    #[default]
    Error,
    Noop,
}

/// The Business-Use-Case budget of one app + user pair. Meta's real budget is
/// `4800 × impressions` per rolling 24 h; the sandbox uses a fixed, configurable count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub calls: u32,
    pub window_secs: i64,
    /// Which throttling error is answered once the budget is spent: 4, 17, 32, 613 or 80002.
    pub code: i64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            calls: 4800,
            window_secs: 86_400,
            code: 80002,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    pub client_id: String,
    pub name: String,
    /// Hex SHA-256 of the client secret, for verification.
    pub secret_hash: String,
    /// The secret sealed under the sandbox key, because callbacks must be signed with it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_sealed: Option<String>,
    /// The plaintext secret, in memory only.
    #[serde(skip)]
    pub secret: Option<String>,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub access: Access,
    #[serde(default)]
    pub testers: Vec<String>,
    #[serde(default)]
    pub refresh_mode: RefreshMode,
    #[serde(default)]
    pub exchange_shape: ExchangeShape,
    #[serde(default)]
    pub young_refresh: YoungRefresh,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ttl_secs: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deauthorize_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_deletion_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// The webhook fields the app subscribed to (`POST /_sandbox/apps/{id}/webhooks`). Empty
    /// with a `webhook_url` set directly: every field.
    #[serde(default)]
    pub webhook_fields: Vec<String>,
    /// Whether a failed code exchange spends the code (Meta's behaviour is unknown).
    #[serde(default)]
    pub failed_exchange_burns_code: bool,
    #[serde(default)]
    pub rate_limit: RateLimit,
    pub created_at: i64,
}

impl App {
    pub fn long_ttl(&self) -> i64 {
        self.token_ttl_secs
            .filter(|t| *t > 0)
            .unwrap_or(LONG_TOKEN_TTL_SECS)
    }

    /// Whether the app's webhook subscription covers `field`.
    pub fn wants_field(&self, field: &str) -> bool {
        self.webhook_url.is_some()
            && (self.webhook_fields.is_empty() || self.webhook_fields.iter().any(|f| f == field))
    }

    pub fn admits(&self, username: &str) -> bool {
        self.access == Access::Advanced || self.testers.iter().any(|t| t == username)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// The professional account id (`17841…`).
    pub user_id: String,
    pub username: String,
    pub name: String,
    pub account_type: String,
    pub profile_picture_url: String,
    pub followers_count: u64,
    pub follows_count: u64,
    #[serde(default)]
    pub biography: String,
    #[serde(default)]
    pub website: String,
    /// Posts allowed per rolling 24 h (`content_publishing_limit.config.quota_total`).
    pub publish_quota_total: u32,
    /// Media ids, oldest first.
    #[serde(default)]
    pub media: Vec<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Short,
    Long,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalidation {
    PasswordChanged,
    Deauthorized,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub client_id: String,
    pub user_id: String,
    pub kind: TokenKind,
    pub scopes: Vec<String>,
    /// The last successful issue or refresh: the 24-hour minimum age counts from here.
    pub issued_at: i64,
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidated: Option<Invalidation>,
}

impl TokenRecord {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeRecord {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Media {
    pub id: String,
    pub owner: String,
    pub caption: Option<String>,
    pub media_type: String,
    pub media_product_type: String,
    pub media_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_text: Option<String>,
    pub shortcode: String,
    pub timestamp: i64,
    pub like_count: u64,
    /// Carousel children, in order.
    #[serde(default)]
    pub children: Vec<String>,
    /// Carousel items are reachable through their album only, not through `/media`.
    #[serde(default)]
    pub is_child: bool,
    #[serde(default = "yes")]
    pub is_comment_enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ContainerState {
    Pending,
    Error { subcode: i64 },
    Published { media_id: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub owner: String,
    pub client_id: String,
    /// `IMAGE` when the request named no media_type, else `VIDEO`, `REELS`, `STORIES`, `CAROUSEL`.
    pub media_type: String,
    pub is_carousel_item: bool,
    pub children: Vec<String>,
    pub caption: Option<String>,
    pub media_url: String,
    pub alt_text: Option<String>,
    pub created_at: i64,
    /// Processing ends at this sandbox time.
    pub ready_at: i64,
    pub state: ContainerState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerStatus {
    InProgress,
    Finished,
    Published,
    Error,
    Expired,
}

impl ContainerStatus {
    pub fn code(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Finished => "FINISHED",
            Self::Published => "PUBLISHED",
            Self::Error => "ERROR",
            Self::Expired => "EXPIRED",
        }
    }
}

impl Container {
    pub fn status_at(&self, now: i64) -> ContainerStatus {
        match &self.state {
            ContainerState::Published { .. } => ContainerStatus::Published,
            // A failing upload still looks like processing until processing would have ended.
            ContainerState::Error { .. } if now < self.ready_at => ContainerStatus::InProgress,
            ContainerState::Error { .. } => ContainerStatus::Error,
            ContainerState::Pending if now >= self.created_at + CONTAINER_TTL_SECS => {
                ContainerStatus::Expired
            }
            ContainerState::Pending if now < self.ready_at => ContainerStatus::InProgress,
            ContainerState::Pending => ContainerStatus::Finished,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comment {
    pub id: String,
    pub media_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub from_id: String,
    pub username: String,
    pub text: String,
    pub timestamp: i64,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub like_count: u64,
    /// Creation order, which breaks ties between comments made in the same second.
    #[serde(default)]
    pub seq: u64,
}

/// The whole persisted state. Maps are keyed by ids or by hex SHA-256 digests.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub format: u32,
    #[serde(default)]
    pub clock_offset_secs: i64,
    #[serde(default)]
    pub apps: BTreeMap<String, App>,
    /// Keyed by professional id.
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    /// `"{client_id}:{professional id}"` → the app-scoped id.
    #[serde(default)]
    pub scoped_ids: BTreeMap<String, u64>,
    #[serde(default)]
    pub codes: HashMap<String, CodeRecord>,
    #[serde(default)]
    pub tokens: HashMap<String, TokenRecord>,
    #[serde(default)]
    pub media: HashMap<String, Media>,
    #[serde(default)]
    pub containers: HashMap<String, Container>,
    #[serde(default)]
    pub comments: BTreeMap<String, Comment>,
    /// Publish times per professional id, for the rolling 24 h cap.
    #[serde(default)]
    pub publishes: HashMap<String, Vec<i64>>,
    /// `"{client_id}:{professional id}"` → subscribed webhook fields.
    #[serde(default)]
    pub subscriptions: BTreeMap<String, Vec<String>>,
    /// Username → professional id, rebuilt on load (`reindex`).
    #[serde(skip)]
    usernames: HashMap<String, String>,
    /// Every app-scoped id handed out, so a new one is unique without a scan.
    #[serde(skip)]
    scoped_taken: HashSet<u64>,
}

pub fn pair_key(client_id: &str, user_id: &str) -> String {
    format!("{client_id}:{user_id}")
}

impl State {
    pub fn user_by_name(&self, username: &str) -> Option<&User> {
        self.usernames
            .get(username)
            .and_then(|id| self.users.get(id))
    }

    pub fn insert_user(&mut self, user: User) {
        self.usernames
            .insert(user.username.clone(), user.user_id.clone());
        self.users.insert(user.user_id.clone(), user);
    }

    /// Rebuilds the in-memory indexes after the state was read from disk.
    pub fn reindex(&mut self) {
        self.usernames = self
            .users
            .values()
            .map(|u| (u.username.clone(), u.user_id.clone()))
            .collect();
        self.scoped_taken = self.scoped_ids.values().copied().collect();
    }

    /// The app-scoped id of a user as seen by one app, allocated on first sight.
    pub fn scoped_id(&mut self, client_id: &str, user_id: &str) -> u64 {
        let key = pair_key(client_id, user_id);
        if let Some(id) = self.scoped_ids.get(&key) {
            return *id;
        }
        let mut id = crate::ids::new_scoped_id();
        while !self.scoped_taken.insert(id) {
            id = crate::ids::new_scoped_id();
        }
        self.scoped_ids.insert(key, id);
        id
    }

    pub fn next_comment_seq(&self) -> u64 {
        self.comments.values().map(|c| c.seq).max().unwrap_or(0) + 1
    }

    pub fn peek_scoped_id(&self, client_id: &str, user_id: &str) -> Option<u64> {
        self.scoped_ids.get(&pair_key(client_id, user_id)).copied()
    }

    /// Drops what can no longer matter, so a long-running sandbox's state stays small: codes an
    /// hour past their expiry, and tokens a year past theirs (until then they still answer 463).
    pub fn prune(&mut self, now: i64) {
        self.codes.retain(|_, c| c.expires_at + CODE_TTL_SECS > now);
        self.tokens.retain(|_, t| t.expires_at + 365 * 86_400 > now);
        // Containers matter for 24 h; a week keeps their status visible to late pollers.
        self.containers
            .retain(|_, c| c.created_at + 7 * 86_400 > now);
        for times in self.publishes.values_mut() {
            times.retain(|t| *t + 86_400 > now);
        }
    }
}
