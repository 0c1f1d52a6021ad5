//! Media: the `/media` edge (paged), single media objects, carousel children, stories.

use futures::TryStreamExt;
use futures::stream::BoxStream;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::Client;
use crate::error::Error;
use crate::graph::fields_param;
use crate::paging::Page;
use crate::secrets::AccessToken;

/// Fields requested when the caller names none.
pub const DEFAULT_MEDIA_FIELDS: &str = "id,caption,media_type,media_product_type,media_url,permalink,thumbnail_url,timestamp,username,like_count,comments_count";

/// Fields requested for carousel children when the caller names none.
pub const DEFAULT_CHILD_FIELDS: &str = "id,media_type,media_url,thumbnail_url,permalink,timestamp";

/// An Instagram media object. Fields are present only when requested.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Media {
    /// Media id.
    #[serde(deserialize_with = "crate::de::id")]
    pub id: String,
    /// Caption text.
    #[serde(default)]
    pub caption: Option<String>,
    /// `IMAGE`, `VIDEO` or `CAROUSEL_ALBUM` (a reel is `VIDEO`).
    #[serde(default)]
    pub media_type: Option<String>,
    /// `FEED`, `REELS`, `STORY` or `AD`.
    #[serde(default)]
    pub media_product_type: Option<String>,
    /// The media file (absent for some copyrighted videos).
    #[serde(default)]
    pub media_url: Option<String>,
    /// Link on instagram.com.
    #[serde(default)]
    pub permalink: Option<String>,
    /// Video thumbnail.
    #[serde(default)]
    pub thumbnail_url: Option<String>,
    /// Short code from the permalink.
    #[serde(default)]
    pub shortcode: Option<String>,
    /// ISO-8601 creation time, e.g. `2026-05-02T10:15:00+0000`.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Owner's handle.
    #[serde(default)]
    pub username: Option<String>,
    /// Alt text (images).
    #[serde(default)]
    pub alt_text: Option<String>,
    /// Likes (excluding ad surfaces).
    #[serde(default, deserialize_with = "crate::de::opt_u64")]
    pub like_count: Option<u64>,
    /// Comments (excluding ad surfaces).
    #[serde(default, deserialize_with = "crate::de::opt_u64")]
    pub comments_count: Option<u64>,
    /// Whether comments are enabled.
    #[serde(default)]
    pub is_comment_enabled: Option<bool>,
    /// The owning account.
    #[serde(default)]
    pub owner: Option<Owner>,
    /// Carousel items, when requested as the `children{…}` field.
    #[serde(default)]
    pub children: Option<Page<Media>>,
    /// Any other field that was requested.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `owner` of a media object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Owner {
    /// Professional account id.
    #[serde(deserialize_with = "crate::de::id")]
    pub id: String,
}

/// Parameters of the `/media` edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaQuery {
    /// Fields to request; empty means [`DEFAULT_MEDIA_FIELDS`].
    pub fields: Vec<String>,
    /// Page size.
    pub limit: Option<u32>,
    /// Only media created at or after this Unix time.
    pub since: Option<i64>,
    /// Only media created before this Unix time.
    pub until: Option<i64>,
}

impl MediaQuery {
    fn params(&self) -> Vec<(String, String)> {
        let fields: Vec<&str> = self.fields.iter().map(String::as_str).collect();
        let mut p = vec![fields_param(&fields, DEFAULT_MEDIA_FIELDS)];
        if let Some(l) = self.limit {
            p.push(("limit".into(), l.to_string()));
        }
        if let Some(s) = self.since {
            p.push(("since".into(), s.to_string()));
        }
        if let Some(u) = self.until {
            p.push(("until".into(), u.to_string()));
        }
        p
    }
}

impl Client {
    /// One page of `GET /{ig-user-id}/media`; continue with [`Client::next_page`].
    pub async fn media_page(
        &self,
        token: &AccessToken,
        ig_user_id: &str,
        query: &MediaQuery,
    ) -> Result<Page<Media>, Error> {
        self.graph(
            "media_page",
            Method::GET,
            token,
            &[ig_user_id, "media"],
            query.params(),
        )
        .await
    }

    /// Every media item of an account, newest first, fetched page by page as the stream is
    /// polled (it follows `paging.next` until Instagram stops sending one).
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/doc_sandbox.rs"));
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let sb = doc_sandbox::start().await;
    /// # let client = sb.client.clone();
    /// # let token = sb.token().await;
    /// use futures::TryStreamExt;
    /// use instagram_api::MediaQuery;
    ///
    /// let query = MediaQuery { limit: Some(5), ..Default::default() };
    /// let mut media = client.media_stream(&token, "me", &query);
    /// let mut count = 0;
    /// while let Some(item) = media.try_next().await? {
    ///     assert!(item.caption.is_some());
    ///     count += 1;
    /// }
    /// assert_eq!(count, 12); // three pages of five, five and two
    /// # Ok(()) }
    /// ```
    pub fn media_stream(
        &self,
        token: &AccessToken,
        ig_user_id: &str,
        query: &MediaQuery,
    ) -> BoxStream<'static, Result<Media, Error>> {
        let first = self
            .graph_url(&[ig_user_id, "media"])
            .map(|u| (u, query.params()));
        self.paginate(token, first)
    }

    /// `GET /{media-id}?fields=…`. Empty `fields` requests [`DEFAULT_MEDIA_FIELDS`].
    pub async fn media(
        &self,
        token: &AccessToken,
        media_id: &str,
        fields: &[&str],
    ) -> Result<Media, Error> {
        let params = vec![fields_param(fields, DEFAULT_MEDIA_FIELDS)];
        self.graph("media", Method::GET, token, &[media_id], params)
            .await
    }

    /// `GET /{media-id}/children` — the items of a carousel (all pages).
    pub async fn media_children(
        &self,
        token: &AccessToken,
        media_id: &str,
        fields: &[&str],
    ) -> Result<Vec<Media>, Error> {
        let first = self
            .graph_url(&[media_id, "children"])
            .map(|u| (u, vec![fields_param(fields, DEFAULT_CHILD_FIELDS)]));
        self.paginate(token, first).try_collect().await
    }

    /// `GET /{ig-user-id}/stories` — the account's live stories (not part of `/media`).
    pub fn stories_stream(
        &self,
        token: &AccessToken,
        ig_user_id: &str,
        fields: &[&str],
    ) -> BoxStream<'static, Result<Media, Error>> {
        let first = self
            .graph_url(&[ig_user_id, "stories"])
            .map(|u| (u, vec![fields_param(fields, DEFAULT_MEDIA_FIELDS)]));
        self.paginate(token, first)
    }
}
