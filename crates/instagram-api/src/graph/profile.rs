//! `GET /me` and `GET /{ig-user-id}`.

use reqwest::Method;
use serde::Deserialize;

use crate::client::Client;
use crate::error::Error;
use crate::graph::fields_param;
use crate::secrets::AccessToken;

/// Fields requested when the caller names none.
pub const DEFAULT_PROFILE_FIELDS: &str = "id,user_id,username,name,account_type,profile_picture_url,followers_count,follows_count,media_count";

/// An Instagram professional account as `/me` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Profile {
    /// App-scoped id (what the code exchange calls `user_id`). Graph always sends it; empty
    /// only if a server does not.
    #[serde(default, deserialize_with = "crate::de::id")]
    pub id: String,
    /// The professional account id (`17841…`), used for `/{ig-user-id}/…` edges and webhooks.
    #[serde(default, deserialize_with = "crate::de::opt_id")]
    pub user_id: Option<String>,
    /// Handle.
    #[serde(default)]
    pub username: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// `BUSINESS` or `MEDIA_CREATOR` (casing varies between sources; compare case-insensitively).
    #[serde(default)]
    pub account_type: Option<String>,
    /// Profile picture URL.
    #[serde(default)]
    pub profile_picture_url: Option<String>,
    /// Followers.
    #[serde(default, deserialize_with = "crate::de::opt_u64")]
    pub followers_count: Option<u64>,
    /// Accounts followed.
    #[serde(default, deserialize_with = "crate::de::opt_u64")]
    pub follows_count: Option<u64>,
    /// Media published.
    #[serde(default, deserialize_with = "crate::de::opt_u64")]
    pub media_count: Option<u64>,
}

impl Client {
    /// `GET /{version}/me?fields=…` — the token's own account; also the liveness probe for a
    /// token. Empty `fields` requests [`DEFAULT_PROFILE_FIELDS`].
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/doc_sandbox.rs"));
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let sb = doc_sandbox::start().await;
    /// # let client = sb.client.clone();
    /// # let token = sb.token().await;
    /// let me = client.me(&token, &["user_id", "username"]).await?;
    /// assert_eq!(me.username.as_deref(), Some("acme_shop"));
    /// assert!(me.user_id.is_some()); // the professional account id, for /{ig-user-id}/… calls
    /// # Ok(()) }
    /// ```
    pub async fn me(&self, token: &AccessToken, fields: &[&str]) -> Result<Profile, Error> {
        self.user(token, "me", fields).await
    }

    /// `GET /{version}/{ig-user-id}?fields=…`.
    pub async fn user(
        &self,
        token: &AccessToken,
        ig_user_id: &str,
        fields: &[&str],
    ) -> Result<Profile, Error> {
        let params = vec![fields_param(fields, DEFAULT_PROFILE_FIELDS)];
        self.graph("profile", Method::GET, token, &[ig_user_id], params)
            .await
    }
}
