//! Content publishing: container → status polling → `media_publish`, plus the quota.

use std::fmt;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Deserializer};
use tokio::time::Instant;

use crate::client::Client;
use crate::error::{Error, PublishingErrorKind};
use crate::graph::IdOnly;
use crate::secrets::{AccessToken, scrub};

/// Most items a carousel may hold.
pub const MAX_CAROUSEL_ITEMS: usize = 10;

/// What kind of container a [`ContainerRequest`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContainerKind {
    /// A single feed image.
    Image,
    /// A reel (`media_type=REELS`).
    Reel,
    /// An image story (`media_type=STORIES`).
    StoryImage,
    /// A video story (`media_type=STORIES`).
    StoryVideo,
    /// An image inside a carousel (`is_carousel_item=true`).
    CarouselImage,
    /// A video inside a carousel (`media_type=VIDEO`, `is_carousel_item=true`).
    CarouselVideo,
    /// The carousel itself (`media_type=CAROUSEL`, `children=…`).
    Carousel,
}

/// Parameters of `POST /{ig-user-id}/media`, built from one constructor per kind plus
/// optional settings.
///
/// ```
/// use instagram_api::ContainerRequest;
///
/// let post = ContainerRequest::image("https://cdn.example.com/launch.jpg")
///     .caption("Launch day")
///     .alt_text("A rocket on the pad");
/// assert!(post.params().contains(&("image_url".into(), "https://cdn.example.com/launch.jpg".into())));
///
/// let reel = ContainerRequest::reel("https://cdn.example.com/clip.mp4").share_to_feed(true);
/// assert!(reel.params().contains(&("media_type".into(), "REELS".into())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRequest {
    kind: ContainerKind,
    params: Vec<(String, String)>,
}

impl ContainerRequest {
    fn new(kind: ContainerKind, params: &[(&str, &str)]) -> Self {
        Self {
            kind,
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// A single image post (JPEG at a public URL).
    pub fn image(image_url: impl AsRef<str>) -> Self {
        Self::new(ContainerKind::Image, &[("image_url", image_url.as_ref())])
    }

    /// A reel.
    pub fn reel(video_url: impl AsRef<str>) -> Self {
        Self::new(
            ContainerKind::Reel,
            &[("media_type", "REELS"), ("video_url", video_url.as_ref())],
        )
    }

    /// An image story.
    pub fn story_image(image_url: impl AsRef<str>) -> Self {
        Self::new(
            ContainerKind::StoryImage,
            &[("media_type", "STORIES"), ("image_url", image_url.as_ref())],
        )
    }

    /// A video story.
    pub fn story_video(video_url: impl AsRef<str>) -> Self {
        Self::new(
            ContainerKind::StoryVideo,
            &[("media_type", "STORIES"), ("video_url", video_url.as_ref())],
        )
    }

    /// An image to be placed in a carousel.
    pub fn carousel_image(image_url: impl AsRef<str>) -> Self {
        Self::new(
            ContainerKind::CarouselImage,
            &[
                ("image_url", image_url.as_ref()),
                ("is_carousel_item", "true"),
            ],
        )
    }

    /// A video to be placed in a carousel.
    pub fn carousel_video(video_url: impl AsRef<str>) -> Self {
        Self::new(
            ContainerKind::CarouselVideo,
            &[
                ("media_type", "VIDEO"),
                ("video_url", video_url.as_ref()),
                ("is_carousel_item", "true"),
            ],
        )
    }

    /// The carousel, from the container ids of its items (2 to 10).
    pub fn carousel<I, S>(children: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let children: Vec<String> = children
            .into_iter()
            .map(|c| c.as_ref().to_owned())
            .collect();
        Self::new(
            ContainerKind::Carousel,
            &[
                ("media_type", "CAROUSEL"),
                ("children", &children.join(",")),
            ],
        )
    }

    /// The caption (not for stories or carousel items).
    #[must_use]
    pub fn caption(self, caption: impl Into<String>) -> Self {
        self.param("caption", caption)
    }

    /// Alt text (images).
    #[must_use]
    pub fn alt_text(self, alt_text: impl Into<String>) -> Self {
        self.param("alt_text", alt_text)
    }

    /// Cover image of a reel.
    #[must_use]
    pub fn cover_url(self, url: impl Into<String>) -> Self {
        self.param("cover_url", url)
    }

    /// Frame (milliseconds) to use as a video's thumbnail.
    #[must_use]
    pub fn thumb_offset(self, millis: u64) -> Self {
        self.param("thumb_offset", millis.to_string())
    }

    /// Whether a reel also appears in the feed.
    #[must_use]
    pub fn share_to_feed(self, share: bool) -> Self {
        self.param("share_to_feed", share.to_string())
    }

    /// A location page id.
    #[must_use]
    pub fn location_id(self, id: impl Into<String>) -> Self {
        self.param("location_id", id)
    }

    /// Collaborator handles.
    #[must_use]
    pub fn collaborators<I, S>(self, usernames: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let list: Vec<String> = usernames
            .into_iter()
            .map(|u| u.as_ref().to_owned())
            .collect();
        self.param("collaborators", serde_json::Value::from(list).to_string())
    }

    /// Any other documented parameter (`user_tags`, `audio_name`, `product_tags`, …).
    /// Setting a name again replaces its value.
    #[must_use]
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.params.retain(|(k, _)| *k != name);
        self.params.push((name, value.into()));
        self
    }

    /// The kind chosen by the constructor.
    pub fn kind(&self) -> ContainerKind {
        self.kind
    }

    /// The parameters that will be sent.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    fn validate(&self) -> Result<(), Error> {
        if self
            .params
            .iter()
            .any(|(k, _)| k == "access_token" || k == "appsecret_proof")
        {
            return Err(Error::invalid_request("access_token is set by the client"));
        }
        if self.kind == ContainerKind::Carousel {
            let count = self
                .params
                .iter()
                .find(|(k, _)| k == "children")
                .map(|(_, v)| v.split(',').filter(|c| !c.trim().is_empty()).count())
                .unwrap_or(0);
            if !(2..=MAX_CAROUSEL_ITEMS).contains(&count) {
                return Err(Error::invalid_request(format!(
                    "a carousel needs 2 to {MAX_CAROUSEL_ITEMS} items, got {count}"
                )));
            }
        }
        Ok(())
    }
}

/// `status_code` of a container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ContainerStatusCode {
    /// Still processing.
    InProgress,
    /// Ready to publish.
    Finished,
    /// Already published.
    Published,
    /// Failed; `status` names the error code.
    Error,
    /// Not published within 24 hours.
    Expired,
    /// A value this crate does not know.
    Other(String),
}

impl ContainerStatusCode {
    /// Parses the wire value.
    pub fn parse(s: &str) -> Self {
        match s {
            "IN_PROGRESS" => Self::InProgress,
            "FINISHED" => Self::Finished,
            "PUBLISHED" => Self::Published,
            "ERROR" => Self::Error,
            "EXPIRED" => Self::Expired,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ContainerStatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Finished => "FINISHED",
            Self::Published => "PUBLISHED",
            Self::Error => "ERROR",
            Self::Expired => "EXPIRED",
            Self::Other(s) => s,
        })
    }
}

impl<'de> Deserialize<'de> for ContainerStatusCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self::parse(&s))
    }
}

/// `GET /{container-id}?fields=id,status_code,status`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContainerStatus {
    /// Container id.
    #[serde(default, deserialize_with = "crate::de::id")]
    pub id: String,
    /// Machine-readable state.
    #[serde(default)]
    pub status_code: Option<ContainerStatusCode>,
    /// Human-readable state, e.g. "Error: Media upload has failed with error code 2207026".
    #[serde(default)]
    pub status: Option<String>,
}

impl ContainerStatus {
    /// The error code named in `status` (`… error code 2207026`).
    pub fn error_code(&self) -> Option<i64> {
        let status = self.status.as_deref()?;
        let digits: String = status
            .rsplit(|c: char| !c.is_ascii_digit())
            .find(|w| !w.is_empty())?
            .to_owned();
        digits.parse().ok()
    }
}

/// How [`Client::wait_for_container`] polls.
///
/// Meta suggests polling about once a minute for up to five minutes; the default starts
/// faster (most images finish within seconds) and backs off to that pace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollOptions {
    /// First pause between polls.
    pub initial_interval: Duration,
    /// Longest pause between polls.
    pub max_interval: Duration,
    /// Each pause is this many times the previous one (capped by `max_interval`).
    pub multiplier: u32,
    /// Give up (with [`PublishingErrorKind::Timeout`]) after this long.
    pub timeout: Duration,
}

impl Default for PollOptions {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(60),
            multiplier: 2,
            timeout: Duration::from_secs(300),
        }
    }
}

/// The result of a complete publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The container that was published.
    pub container_id: String,
    /// The new media id.
    pub media_id: String,
}

/// `GET /{ig-user-id}/content_publishing_limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PublishingLimit {
    /// Posts published in the current window.
    #[serde(default, deserialize_with = "crate::de::opt_u64")]
    pub quota_usage: Option<u64>,
    /// The window and its cap, under its older name (`fields=…,config`).
    #[serde(default)]
    pub config: Option<QuotaConfig>,
    /// The window and its cap (`fields=…,rate_limit_settings`, what this client asks for).
    #[serde(default)]
    pub rate_limit_settings: Option<QuotaConfig>,
}

impl PublishingLimit {
    /// The window and its cap, whichever name Instagram answered with.
    pub fn settings(&self) -> Option<&QuotaConfig> {
        self.rate_limit_settings.as_ref().or(self.config.as_ref())
    }

    /// Posts still allowed in the window, when both numbers are known.
    pub fn remaining(&self) -> Option<u64> {
        Some(
            self.settings()?
                .quota_total?
                .saturating_sub(self.quota_usage?),
        )
    }
}

/// `rate_limit_settings` (formerly `config`) of the publishing limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct QuotaConfig {
    /// Posts allowed per window (documented as 100, 50 or 25; read it, do not assume).
    #[serde(default, deserialize_with = "crate::de::opt_u64")]
    pub quota_total: Option<u64>,
    /// Window length in seconds (86400).
    #[serde(default, deserialize_with = "crate::de::opt_u64")]
    pub quota_duration: Option<u64>,
}

#[derive(Deserialize)]
struct LimitEnvelope {
    #[serde(default)]
    data: Vec<PublishingLimit>,
}

impl Client {
    /// `POST /{ig-user-id}/media` — creates a container and returns its id.
    pub async fn create_container(
        &self,
        token: &AccessToken,
        ig_user_id: &str,
        request: &ContainerRequest,
    ) -> Result<String, Error> {
        request.validate()?;
        let created: IdOnly = self
            .graph(
                "create_container",
                Method::POST,
                token,
                &[ig_user_id, "media"],
                request.params.clone(),
            )
            .await?;
        Ok(created.id)
    }

    /// `GET /{container-id}?fields=id,status_code,status`.
    pub async fn container_status(
        &self,
        token: &AccessToken,
        container_id: &str,
    ) -> Result<ContainerStatus, Error> {
        let params = vec![("fields".to_owned(), "id,status_code,status".to_owned())];
        let mut status: ContainerStatus = self
            .graph(
                "container_status",
                Method::GET,
                token,
                &[container_id],
                params,
            )
            .await?;
        if status.id.is_empty() {
            container_id.clone_into(&mut status.id);
        }
        Ok(status)
    }

    /// Polls a container until it is `FINISHED` (or `PUBLISHED`), backing off between polls.
    ///
    /// `ERROR` and `EXPIRED` end the wait with [`Error::Publishing`]; transient errors and
    /// rate limits while polling are waited out until `options.timeout`.
    pub async fn wait_for_container(
        &self,
        token: &AccessToken,
        container_id: &str,
        options: &PollOptions,
    ) -> Result<ContainerStatus, Error> {
        let deadline = Instant::now() + options.timeout;
        let mut interval = options.initial_interval;
        loop {
            let mut pause = interval;
            match self.container_status(token, container_id).await {
                Ok(status) => match &status.status_code {
                    Some(ContainerStatusCode::Finished | ContainerStatusCode::Published) => {
                        return Ok(status);
                    }
                    Some(ContainerStatusCode::Error) => {
                        let subcode = status.error_code();
                        let kind = match subcode {
                            Some(_) => match PublishingErrorKind::from_codes(None, subcode) {
                                PublishingErrorKind::Other => PublishingErrorKind::ContainerFailed,
                                k => k,
                            },
                            None => PublishingErrorKind::ContainerFailed,
                        };
                        let message = status.status.as_deref().unwrap_or("container status ERROR");
                        let message = scrub(message, &[token.expose_secret()]);
                        return Err(Error::publishing(
                            kind,
                            subcode,
                            Some(container_id.to_owned()),
                            message,
                        ));
                    }
                    Some(ContainerStatusCode::Expired) => {
                        let message = status
                            .status
                            .as_deref()
                            .unwrap_or("container status EXPIRED");
                        let message = scrub(message, &[token.expose_secret()]);
                        return Err(Error::publishing(
                            PublishingErrorKind::ContainerExpired,
                            None,
                            Some(container_id.to_owned()),
                            message,
                        ));
                    }
                    _ => {}
                },
                Err(e) if e.is_transient() => {
                    if let Some(wait) = e.retry_after() {
                        pause = pause.max(wait);
                    }
                    // Out of budget: the caller learns why polling failed, not just that it did.
                    if Instant::now() + pause > deadline {
                        return Err(e);
                    }
                    tracing::debug!(error = %e, "container poll failed; retrying");
                    tokio::time::sleep(pause).await;
                    interval = interval
                        .saturating_mul(options.multiplier.max(1))
                        .min(options.max_interval);
                    continue;
                }
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::publishing(
                    PublishingErrorKind::Timeout,
                    None,
                    Some(container_id.to_owned()),
                    format!(
                        "container not finished after {} s",
                        options.timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            interval = interval
                .saturating_mul(options.multiplier.max(1))
                .min(options.max_interval);
        }
    }

    /// `POST /{ig-user-id}/media_publish?creation_id=…` — publishes a finished container and
    /// returns the media id.
    ///
    /// Not retried here on network errors: the post may already be live.
    pub async fn publish_container(
        &self,
        token: &AccessToken,
        ig_user_id: &str,
        container_id: &str,
    ) -> Result<String, Error> {
        let params = vec![("creation_id".to_owned(), container_id.to_owned())];
        let published: IdOnly = self
            .graph(
                "media_publish",
                Method::POST,
                token,
                &[ig_user_id, "media_publish"],
                params,
            )
            .await
            .map_err(|e| with_container(e, container_id))?;
        Ok(published.id)
    }

    /// The whole flow for one image, reel or story: create the container, wait until it is
    /// finished, publish. A "not ready" answer (9007) from `media_publish` is retried within
    /// the polling budget.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/doc_sandbox.rs"));
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let sb = doc_sandbox::start().await;
    /// # let client = sb.client.clone();
    /// # let token = sb.token().await;
    /// # sb.keep_clock_moving();
    /// use std::time::Duration;
    /// use instagram_api::{ContainerRequest, PollOptions};
    ///
    /// let limit = client.content_publishing_limit(&token, "me", None).await?;
    /// assert_ne!(limit.remaining(), Some(0));
    ///
    /// let post = ContainerRequest::image("https://cdn.example.com/launch.jpg").caption("Launch day");
    /// let poll = PollOptions { initial_interval: Duration::from_millis(100), ..Default::default() };
    /// let done = client.publish(&token, "me", &post, &poll).await?;
    ///
    /// let media = client.media(&token, &done.media_id, &["caption"]).await?;
    /// assert_eq!(media.caption.as_deref(), Some("Launch day"));
    /// # Ok(()) }
    /// ```
    pub async fn publish(
        &self,
        token: &AccessToken,
        ig_user_id: &str,
        request: &ContainerRequest,
        options: &PollOptions,
    ) -> Result<Published, Error> {
        let container_id = self.create_container(token, ig_user_id, request).await?;
        self.finish_and_publish(token, ig_user_id, container_id, options)
            .await
    }

    /// The whole flow for a carousel: create every item, wait for each, create the carousel
    /// container, wait, publish.
    pub async fn publish_carousel(
        &self,
        token: &AccessToken,
        ig_user_id: &str,
        items: &[ContainerRequest],
        caption: Option<&str>,
        options: &PollOptions,
    ) -> Result<Published, Error> {
        if !(2..=MAX_CAROUSEL_ITEMS).contains(&items.len()) {
            return Err(Error::invalid_request(format!(
                "a carousel needs 2 to {MAX_CAROUSEL_ITEMS} items, got {}",
                items.len()
            )));
        }
        if let Some(bad) = items.iter().find(|i| {
            !matches!(
                i.kind,
                ContainerKind::CarouselImage | ContainerKind::CarouselVideo
            )
        }) {
            return Err(Error::invalid_request(format!(
                "carousel items must be carousel_image or carousel_video, got {:?}",
                bad.kind
            )));
        }
        let mut children = Vec::with_capacity(items.len());
        for item in items {
            children.push(self.create_container(token, ig_user_id, item).await?);
        }
        for child in &children {
            self.wait_for_container(token, child, options).await?;
        }
        let mut carousel = ContainerRequest::carousel(&children);
        if let Some(c) = caption {
            carousel = carousel.caption(c);
        }
        let container_id = self.create_container(token, ig_user_id, &carousel).await?;
        self.finish_and_publish(token, ig_user_id, container_id, options)
            .await
    }

    async fn finish_and_publish(
        &self,
        token: &AccessToken,
        ig_user_id: &str,
        container_id: String,
        options: &PollOptions,
    ) -> Result<Published, Error> {
        let deadline = Instant::now() + options.timeout;
        self.wait_for_container(token, &container_id, options)
            .await?;
        let mut pause = options.initial_interval;
        loop {
            match self
                .publish_container(token, ig_user_id, &container_id)
                .await
            {
                Ok(media_id) => {
                    return Ok(Published {
                        container_id,
                        media_id,
                    });
                }
                Err(Error::Publishing {
                    kind: PublishingErrorKind::NotReady,
                    ..
                }) if Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = pause
                        .saturating_mul(options.multiplier.max(1))
                        .min(options.max_interval);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `GET /{ig-user-id}/content_publishing_limit?fields=quota_usage,rate_limit_settings[&since=…]` —
    /// how many posts the rolling 24-hour window still allows.
    pub async fn content_publishing_limit(
        &self,
        token: &AccessToken,
        ig_user_id: &str,
        since: Option<i64>,
    ) -> Result<PublishingLimit, Error> {
        let mut params = vec![(
            "fields".to_owned(),
            "quota_usage,rate_limit_settings".to_owned(),
        )];
        if let Some(s) = since {
            params.push(("since".to_owned(), s.to_string()));
        }
        let envelope: LimitEnvelope = self
            .graph(
                "content_publishing_limit",
                Method::GET,
                token,
                &[ig_user_id, "content_publishing_limit"],
                params,
            )
            .await?;
        envelope
            .data
            .into_iter()
            .next()
            .ok_or_else(|| Error::Decode {
                status: 200,
                message: "content_publishing_limit: empty data".into(),
            })
    }
}

/// Attaches the container id to a publishing error that came from a Graph error body.
fn with_container(e: Error, id: &str) -> Error {
    match e {
        Error::Publishing {
            kind,
            code,
            subcode,
            container_id: None,
            message,
            details,
        } => Error::Publishing {
            kind,
            code,
            subcode,
            container_id: Some(id.to_owned()),
            message,
            details,
        },
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_error_code() {
        let s: ContainerStatus = serde_json::from_str(
            r#"{"status_code":"ERROR","status":"Error: Media upload has failed with error code 2207026","id":"1"}"#,
        )
        .unwrap();
        assert_eq!(s.status_code, Some(ContainerStatusCode::Error));
        assert_eq!(s.error_code(), Some(2207026));
        let s: ContainerStatus =
            serde_json::from_str(r#"{"status_code":"SOMETHING_NEW"}"#).unwrap();
        assert_eq!(
            s.status_code,
            Some(ContainerStatusCode::Other("SOMETHING_NEW".into()))
        );
        assert_eq!(s.error_code(), None);
    }

    #[test]
    fn carousel_needs_two_to_ten() {
        assert!(ContainerRequest::carousel(["1"]).validate().is_err());
        assert!(ContainerRequest::carousel(["1", "2"]).validate().is_ok());
        assert!(
            ContainerRequest::carousel((0..11).map(|i| i.to_string()))
                .validate()
                .is_err()
        );
        assert!(
            ContainerRequest::image("x")
                .param("access_token", "t")
                .validate()
                .is_err()
        );
    }

    #[test]
    fn params_replace() {
        let r = ContainerRequest::image("a").caption("one").caption("two");
        assert_eq!(r.params().iter().filter(|(k, _)| k == "caption").count(), 1);
        assert!(r.params().contains(&("caption".into(), "two".into())));
    }

    #[test]
    fn limit_remaining() {
        let l: LimitEnvelope = serde_json::from_str(
            r#"{"data":[{"quota_usage":2,"config":{"quota_total":50,"quota_duration":86400}}]}"#,
        )
        .unwrap();
        assert_eq!(l.data[0].remaining(), Some(48));
    }
}
