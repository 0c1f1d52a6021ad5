//! Comment moderation: list, reply, hide, delete (`instagram_business_manage_comments`).

use futures::stream::BoxStream;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::Client;
use crate::error::Error;
use crate::graph::{IdOnly, fields_param};
use crate::paging::Page;
use crate::secrets::AccessToken;

/// Fields requested when the caller names none.
pub const DEFAULT_COMMENT_FIELDS: &str =
    "id,text,timestamp,username,like_count,hidden,parent_id,from";

/// A comment or a reply.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Comment {
    /// Comment id.
    #[serde(deserialize_with = "crate::de::id")]
    pub id: String,
    /// The text.
    #[serde(default)]
    pub text: Option<String>,
    /// ISO-8601 creation time.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Author's handle.
    #[serde(default)]
    pub username: Option<String>,
    /// The author.
    #[serde(default)]
    pub from: Option<CommentAuthor>,
    /// Likes.
    #[serde(default, deserialize_with = "crate::de::opt_u64")]
    pub like_count: Option<u64>,
    /// Whether the comment is hidden.
    #[serde(default)]
    pub hidden: Option<bool>,
    /// For replies, the comment replied to.
    #[serde(default, deserialize_with = "crate::de::opt_id")]
    pub parent_id: Option<String>,
    /// Replies, when requested as the `replies{…}` field.
    #[serde(default)]
    pub replies: Option<Page<Comment>>,
    /// Any other field that was requested.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `from` of a comment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CommentAuthor {
    /// App-scoped id of the author.
    #[serde(deserialize_with = "crate::de::id")]
    pub id: String,
    /// Author's handle.
    #[serde(default)]
    pub username: Option<String>,
}

impl Client {
    /// Every comment on a media object (`GET /{media-id}/comments`), page by page.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/doc_sandbox.rs"));
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let sb = doc_sandbox::start().await;
    /// # let client = sb.client.clone();
    /// # let token = sb.token().await;
    /// # let (media_id, _) = sb.comment().await;
    /// use futures::TryStreamExt;
    ///
    /// let comments: Vec<_> = client.comments_stream(&token, &media_id, &[]).try_collect().await?;
    /// assert_eq!(comments.len(), 1);
    /// for c in comments.iter().filter(|c| c.text.as_deref().is_some_and(|t| t.contains("spam"))) {
    ///     client.hide_comment(&token, &c.id, true).await?;
    /// }
    /// if let Some(first) = comments.first() {
    ///     let reply_id = client.reply_to_comment(&token, &first.id, "Thanks!").await?;
    ///     client.delete_comment(&token, &reply_id).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn comments_stream(
        &self,
        token: &AccessToken,
        media_id: &str,
        fields: &[&str],
    ) -> BoxStream<'static, Result<Comment, Error>> {
        let first = self
            .graph_url(&[media_id, "comments"])
            .map(|u| (u, vec![fields_param(fields, DEFAULT_COMMENT_FIELDS)]));
        self.paginate(token, first)
    }

    /// One page of comments; continue with [`Client::next_page`].
    pub async fn comments_page(
        &self,
        token: &AccessToken,
        media_id: &str,
        fields: &[&str],
        limit: Option<u32>,
    ) -> Result<Page<Comment>, Error> {
        let mut params = vec![fields_param(fields, DEFAULT_COMMENT_FIELDS)];
        if let Some(l) = limit {
            params.push(("limit".into(), l.to_string()));
        }
        self.graph(
            "comments_page",
            Method::GET,
            token,
            &[media_id, "comments"],
            params,
        )
        .await
    }

    /// Every reply to a comment (`GET /{comment-id}/replies`).
    pub fn replies_stream(
        &self,
        token: &AccessToken,
        comment_id: &str,
        fields: &[&str],
    ) -> BoxStream<'static, Result<Comment, Error>> {
        let first = self
            .graph_url(&[comment_id, "replies"])
            .map(|u| (u, vec![fields_param(fields, DEFAULT_COMMENT_FIELDS)]));
        self.paginate(token, first)
    }

    /// `POST /{comment-id}/replies?message=…` — returns the new comment's id.
    pub async fn reply_to_comment(
        &self,
        token: &AccessToken,
        comment_id: &str,
        message: &str,
    ) -> Result<String, Error> {
        let params = vec![("message".to_owned(), message.to_owned())];
        let created: IdOnly = self
            .graph(
                "reply_to_comment",
                Method::POST,
                token,
                &[comment_id, "replies"],
                params,
            )
            .await?;
        Ok(created.id)
    }

    /// `POST /{media-id}/comments?message=…` — a top-level comment; returns its id.
    pub async fn comment_on_media(
        &self,
        token: &AccessToken,
        media_id: &str,
        message: &str,
    ) -> Result<String, Error> {
        let params = vec![("message".to_owned(), message.to_owned())];
        let created: IdOnly = self
            .graph(
                "comment_on_media",
                Method::POST,
                token,
                &[media_id, "comments"],
                params,
            )
            .await?;
        Ok(created.id)
    }

    /// `POST /{comment-id}?hide=true|false`.
    pub async fn hide_comment(
        &self,
        token: &AccessToken,
        comment_id: &str,
        hide: bool,
    ) -> Result<(), Error> {
        let params = vec![("hide".to_owned(), hide.to_string())];
        self.graph_success("hide_comment", Method::POST, token, &[comment_id], params)
            .await
    }

    /// `DELETE /{comment-id}`.
    pub async fn delete_comment(&self, token: &AccessToken, comment_id: &str) -> Result<(), Error> {
        self.graph_success(
            "delete_comment",
            Method::DELETE,
            token,
            &[comment_id],
            Vec::new(),
        )
        .await
    }
}
