//! A typed client for the Instagram Platform ("Instagram API with Instagram Login").
//!
//! It covers the whole life of an Instagram user token and the Graph calls made with it:
//!
//! | Flow | Calls |
//! | --- | --- |
//! | login | [`Client::authorize_url`], [`parse_callback`] |
//! | tokens | [`Client::exchange_code`], [`Client::exchange_long_lived`], [`Client::refresh`] |
//! | profile | [`Client::me`], [`Client::user`] |
//! | media | [`Client::media_stream`], [`Client::media_page`], [`Client::media`], [`Client::media_children`], [`Client::stories_stream`] |
//! | publishing | [`Client::publish`], [`Client::publish_carousel`], [`Client::create_container`], [`Client::wait_for_container`], [`Client::publish_container`], [`Client::content_publishing_limit`] |
//! | insights | [`Client::user_insights`], [`Client::media_insights`] |
//! | comments | [`Client::comments_stream`], [`Client::reply_to_comment`], [`Client::hide_comment`], [`Client::delete_comment`] |
//! | webhooks | [`Client::subscribe_app`], [`Client::subscribed_apps`], [`Client::unsubscribe_app`] |
//! | anything else | [`Client::raw`] |
//!
//! Every failure is an [`Error`] that says what to do (retry, slow down, re-authorize, ask for
//! a permission, fix the request), and every response's usage headers are parsed into
//! [`Usage`]. Secrets ([`AccessToken`], [`AuthorizationCode`], [`ClientSecret`]) never appear
//! in `Debug` output, error text or log lines.
//!
//! # Connecting an account
//!
//! ```no_run
//! use instagram_api::{
//!     parse_callback, AppCredentials, AuthorizeRequest, Callback, Client, ClientSecret, Config,
//! };
//!
//! # async fn run(callback_url: url::Url) -> Result<(), instagram_api::Error> {
//! let client = Client::new(Config::default())?;
//! let app = AppCredentials { client_id: "990602627938098".into(), client_secret: ClientSecret::new("…") };
//! let redirect_uri = "https://broker.example.com/oauth/callback";
//!
//! // 1. Send the browser to Instagram.
//! let url = client.authorize_url(&AuthorizeRequest {
//!     client_id: app.client_id.clone(),
//!     redirect_uri: redirect_uri.into(),
//!     scopes: vec!["instagram_business_basic".into()],
//!     state: "random-csrf-value".into(),
//!     ..Default::default()
//! });
//! println!("open {url}");
//!
//! // 2. Instagram redirects back; exchange the code, then go long-lived.
//! match parse_callback(&callback_url)? {
//!     Callback::Code { code, .. } => {
//!         let short = client.exchange_code(&app, redirect_uri, &code).await?;
//!         let long = client.exchange_long_lived(&app.client_secret, &short.access_token).await?;
//!         let me = client.me(&long.access_token, &["user_id", "username"]).await?;
//!         println!("connected {:?}, token valid {} s", me.username, long.expires_in);
//!     }
//!     Callback::Denied { error_description, .. } => println!("denied: {error_description:?}"),
//! }
//! # Ok(()) }
//! ```
//!
//! # Against a local emulator
//!
//! [`Config::for_base_url`] points every endpoint at one origin, e.g. an `instagram-sandbox`
//! on loopback; the integration tests of this crate run every call that way.

#![warn(missing_docs)]

mod client;
mod config;
mod de;
mod error;
mod graph;
mod oauth;
mod paging;
mod raw;
mod secrets;
mod token;
mod usage;

pub use client::{Client, TokenPlacement};
pub use config::{Config, DEFAULT_GRAPH_VERSION};
pub use error::{Error, ErrorDetails, NetworkErrorKind, PublishingErrorKind, ReauthReason};
pub use graph::comments::{Comment, CommentAuthor, DEFAULT_COMMENT_FIELDS};
pub use graph::insights::{
    Breakdown, BreakdownResult, Insight, InsightValue, InsightsQuery, TotalValue, decode_insights,
};
pub use graph::media::{DEFAULT_CHILD_FIELDS, DEFAULT_MEDIA_FIELDS, Media, MediaQuery, Owner};
pub use graph::profile::{DEFAULT_PROFILE_FIELDS, Profile};
pub use graph::publish::{
    ContainerKind, ContainerRequest, ContainerStatus, ContainerStatusCode, MAX_CAROUSEL_ITEMS,
    PollOptions, Published, PublishingLimit, QuotaConfig,
};
pub use graph::subscriptions::SubscribedApp;
pub use oauth::{
    AppCredentials, AuthorizeRequest, Callback, ShortLivedToken, decode_short_lived_token,
    parse_callback, parse_callback_query,
};
pub use paging::{Cursors, Page, Paging};
pub use raw::{RawRequest, RawResponse};
pub use secrets::{AccessToken, AuthorizationCode, ClientSecret, appsecret_proof};
pub use token::{LongLivedToken, decode_long_lived_token};
pub use usage::{APP_USAGE_HEADER, AppUsage, BUSINESS_USAGE_HEADER, BusinessUsage, Usage};

/// Re-exported so callers can build [`RawRequest`]s without depending on `reqwest`.
pub use reqwest::Method;
/// Re-exported for [`Config`] and [`Client::authorize_url`].
pub use url::Url;
