//! Publishing through the broker: an image, a carousel, a reel or a story, with the
//! account's token, once per Idempotency-Key.
//!
//! Each request is a row of `publish_requests` keyed by the account and the key, inserted
//! with its audit entry before anything reaches Instagram. The attempt that inserted it
//! holds a lease (renewed at every step, on the broker's clock) and works in a task of its
//! own, so a caller that gives up does not stop it; a retry of the same key is answered
//! from the row: the result, the stored failure, or "still in progress". An attempt whose
//! replica died is taken over when its lease runs out, from scratch while no
//! `media_publish` was sent, and never repeated once one may have been.

use std::time::Duration;

use igbroker_core::InstagramScope;
use igbroker_core::secrets::{random_token, sha256_hex};
use igbroker_store::{AccountRow, PublishAttempt, PublishOutcome, PublishRequestRow};
use instagram_api::{AccessToken, ContainerRequest, ContainerStatusCode, PublishingErrorKind};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use crate::service::error::{Error, Result};
use crate::service::{accounts, audit, graph, refresh, upstream_budget};
use crate::state::AppState;

/// Instagram's longest caption.
pub const MAX_CAPTION_CHARS: usize = 2200;
/// Longest media URL the broker passes on.
pub const MAX_URL_LEN: usize = 2048;
/// Longest Idempotency-Key.
pub const MAX_KEY_LEN: usize = 200;
/// How long an attempt holds a request without renewing (clock seconds).
const LEASE_SECS: i64 = 600;
/// Polling a container: first pause, longest pause, and the most time it may take
/// (clock seconds). Meta suggests about once a minute for up to five minutes; images
/// usually finish within seconds, so the first polls come sooner.
const POLL_FIRST_SECS: i64 = 1;
const POLL_MAX_SECS: i64 = 30;
const POLL_BUDGET_SECS: i64 = 900;

/// One item of a carousel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Image {
        url: String,
        alt_text: Option<String>,
    },
    Video {
        url: String,
    },
}

/// A validated publish request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Post {
    Image {
        url: String,
        caption: Option<String>,
        alt_text: Option<String>,
    },
    Carousel {
        items: Vec<Item>,
        caption: Option<String>,
    },
    Reel {
        url: String,
        caption: Option<String>,
        cover_url: Option<String>,
        share_to_feed: Option<bool>,
    },
    Story(Item),
}

impl Post {
    pub fn kind(&self) -> &'static str {
        match self {
            Post::Image { .. } => "image",
            Post::Carousel { .. } => "carousel",
            Post::Reel { .. } => "reel",
            Post::Story(_) => "story",
        }
    }

    /// The request as stored for comparison: one canonical text per meaning.
    fn canonical(&self) -> String {
        let item = |i: &Item| match i {
            Item::Image { url, alt_text } => json!({"image_url": url, "alt_text": alt_text}),
            Item::Video { url } => json!({"video_url": url}),
        };
        let v = match self {
            Post::Image {
                url,
                caption,
                alt_text,
            } => {
                json!({"type": "image", "image_url": url, "caption": caption, "alt_text": alt_text})
            }
            Post::Carousel { items, caption } => json!({"type": "carousel", "caption": caption,
                "children": items.iter().map(item).collect::<Vec<_>>()}),
            Post::Reel {
                url,
                caption,
                cover_url,
                share_to_feed,
            } => json!({"type": "reel", "video_url": url, "caption": caption,
                "cover_url": cover_url, "share_to_feed": share_to_feed}),
            Post::Story(i) => json!({"type": "story", "item": item(i)}),
        };
        v.to_string()
    }
}

/// What a request's key is bound to: the same post, whatever the spelling of its JSON.
pub fn body_hash(post: &Post) -> String {
    sha256_hex(&post.canonical())
}

/// Reads a request body, naming the field that is wrong.
pub fn parse(body: &Value) -> Result<Post> {
    let Value::Object(obj) = body else {
        return Err(invalid(
            "the body must be a JSON object with a `type` of image, carousel, reel or story",
        ));
    };
    let kind = match obj.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(invalid(
                "type must be a string: image, carousel, reel or story",
            ));
        }
        None => {
            return Err(invalid("type is required: image, carousel, reel or story"));
        }
    };
    let allowed: &[&str] = match kind {
        "image" => &["type", "image_url", "caption", "alt_text"],
        "carousel" => &["type", "children", "caption"],
        "reel" => &["type", "video_url", "caption", "cover_url", "share_to_feed"],
        "story" => &["type", "image_url", "video_url"],
        other => {
            return Err(invalid(format!(
                "type `{}` is not one of image, carousel, reel or story",
                shown(other)
            )));
        }
    };
    only(obj, allowed, "", kind)?;
    Ok(match kind {
        "image" => Post::Image {
            url: url(obj, "image_url", "")?,
            caption: caption(obj)?,
            alt_text: text(obj, "alt_text", "", 1000)?,
        },
        "carousel" => {
            let children = match obj.get("children") {
                Some(Value::Array(a)) => a,
                Some(_) => return Err(invalid("children must be an array of 2 to 10 items")),
                None => return Err(invalid("children is required: 2 to 10 items")),
            };
            if !(2..=instagram_api::MAX_CAROUSEL_ITEMS).contains(&children.len()) {
                return Err(invalid(format!(
                    "children must hold 2 to {} items, not {}",
                    instagram_api::MAX_CAROUSEL_ITEMS,
                    children.len()
                )));
            }
            let mut items = Vec::with_capacity(children.len());
            for (i, c) in children.iter().enumerate() {
                let at = format!("children[{i}].");
                let Value::Object(c) = c else {
                    return Err(invalid(format!(
                        "children[{i}] must be an object with image_url or video_url"
                    )));
                };
                only(
                    c,
                    &["image_url", "video_url", "alt_text"],
                    &at,
                    "carousel item",
                )?;
                items.push(
                    match (c.contains_key("image_url"), c.contains_key("video_url")) {
                        (true, false) => Item::Image {
                            url: url(c, "image_url", &at)?,
                            alt_text: text(c, "alt_text", &at, 1000)?,
                        },
                        (false, true) if !c.contains_key("alt_text") => Item::Video {
                            url: url(c, "video_url", &at)?,
                        },
                        (false, true) => {
                            return Err(invalid(format!("{at}alt_text is for images only")));
                        }
                        _ => {
                            return Err(invalid(format!(
                                "children[{i}] needs exactly one of image_url or video_url"
                            )));
                        }
                    },
                );
            }
            Post::Carousel {
                items,
                caption: caption(obj)?,
            }
        }
        "reel" => Post::Reel {
            url: url(obj, "video_url", "")?,
            caption: caption(obj)?,
            cover_url: match obj.get("cover_url") {
                None | Some(Value::Null) => None,
                Some(_) => Some(url(obj, "cover_url", "")?),
            },
            share_to_feed: match obj.get("share_to_feed") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => return Err(invalid("share_to_feed must be true or false")),
            },
        },
        _ => match (obj.contains_key("image_url"), obj.contains_key("video_url")) {
            (true, false) => Post::Story(Item::Image {
                url: url(obj, "image_url", "")?,
                alt_text: None,
            }),
            (false, true) => Post::Story(Item::Video {
                url: url(obj, "video_url", "")?,
            }),
            _ => {
                return Err(invalid(
                    "a story needs exactly one of image_url or video_url",
                ));
            }
        },
    })
}

fn invalid(m: impl Into<String>) -> Error {
    Error::Invalid(m.into())
}

/// A caller's text, shortened and without control characters, for an error message.
fn shown(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(40).collect()
}

fn only(obj: &Map<String, Value>, allowed: &[&str], at: &str, what: &str) -> Result<()> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(format!(
            "{at}{} is not a field of {what}; the fields are {}",
            shown(k),
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn url(obj: &Map<String, Value>, name: &str, at: &str) -> Result<String> {
    let raw = match obj.get(name) {
        Some(Value::String(s)) => s.trim(),
        Some(_) => {
            return Err(invalid(format!(
                "{at}{name} must be a string (an https URL)"
            )));
        }
        None => return Err(invalid(format!("{at}{name} is required (an https URL)"))),
    };
    if raw.len() > MAX_URL_LEN {
        return Err(invalid(format!(
            "{at}{name} is longer than {MAX_URL_LEN} characters"
        )));
    }
    let parsed = url::Url::parse(raw).map_err(|_| {
        invalid(format!(
            "{at}{name} is not a URL; give the https address of the file"
        ))
    })?;
    if parsed.scheme() != "https" {
        return Err(invalid(format!(
            "{at}{name} must be an https URL (Instagram downloads the file from it), not {}",
            shown(parsed.scheme())
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("{at}{name} has no host")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(format!(
            "{at}{name} must not carry a user name or password"
        )));
    }
    Ok(parsed.to_string())
}

fn text(obj: &Map<String, Value>, name: &str, at: &str, max: usize) -> Result<Option<String>> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.chars().count() > max {
                return Err(invalid(format!(
                    "{at}{name} is longer than Instagram's {max} characters"
                )));
            }
            if s.chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
            {
                return Err(invalid(format!("{at}{name} contains control characters")));
            }
            Ok(Some(s.clone()))
        }
        Some(_) => Err(invalid(format!("{at}{name} must be a string"))),
    }
}

fn caption(obj: &Map<String, Value>) -> Result<Option<String>> {
    text(obj, "caption", "", MAX_CAPTION_CHARS)
}

/// Checks an `Idempotency-Key` header value.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.len() > MAX_KEY_LEN
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return Err(invalid(format!(
            "the Idempotency-Key header must be 1 to {MAX_KEY_LEN} letters, digits, `-`, `_`, `.` or `:` (a UUID is a good choice)"
        )));
    }
    Ok(())
}

/// What a publish request came to, as far as this call knows.
pub enum Answer {
    /// Published or failed for good; `replayed` when an earlier request with the same key
    /// did the work.
    Done {
        row: PublishRequestRow,
        replayed: bool,
    },
    /// Still being worked on (by this or another replica).
    InProgress(PublishRequestRow),
}

/// Publishes `post` on `acc` (a row the caller may use), once per `key`.
pub async fn publish(
    state: &AppState,
    acc: AccountRow,
    actor: &str,
    key: Option<&str>,
    post: Post,
) -> Result<Answer> {
    let acc = refresh::usable(state, acc).await?;
    if !acc.scopes.contains(&InstagramScope::ContentPublish) {
        return Err(Error::MissingInstagramScope(format!(
            "account {} was not granted instagram_business_content_publish, which publishing needs; create a connect session with account_id and that scope so the user can grant it",
            acc.id
        )));
    }
    let key = match key {
        Some(k) => {
            check_key(k)?;
            k.to_string()
        }
        None => format!("auto-{}", random_token()),
    };
    let body_hash = body_hash(&post);
    let now = state.now();
    let lease = random_token();
    let row = PublishRequestRow {
        account_id: acc.id.clone(),
        idem_key: key.clone(),
        body_hash: body_hash.clone(),
        kind: post.kind().to_string(),
        state: "in_progress".into(),
        stage: "containers".into(),
        lease_token: lease.clone(),
        lease_until: now + LEASE_SECS,
        container_id: None,
        media_id: None,
        permalink: None,
        error_code: None,
        error_message: None,
        created_at: now,
        updated_at: now,
    };
    let mut tx = state.store().begin().await?;
    let inserted = tx.insert_publish_request(&row).await?;
    if inserted {
        tx.append_audit(&[audit::entry(
            state,
            actor,
            "media.publish_started",
            Some(&acc.id),
            Some(&acc.app_id),
            json!({"kind": post.kind(), "idempotency_key": key}),
        )])
        .await?;
        tx.commit().await?;
    } else {
        drop(tx);
        let existing = state
            .store()
            .publish_request(&acc.id, &key)
            .await?
            .ok_or_else(|| {
                Error::Conflict("the request changed meanwhile; send it again".into())
            })?;
        if existing.body_hash != body_hash {
            return Err(Error::Unprocessable(
                "this Idempotency-Key was already used with a different body; send the original body again, or use a new key for a new post".into(),
            ));
        }
        if existing.state != "in_progress" {
            return Ok(Answer::Done {
                row: existing,
                replayed: true,
            });
        }
        if existing.lease_until >= now {
            return Ok(Answer::InProgress(existing));
        }
        // The attempt's replica went away. Take it over, unless it may have published.
        let mut tx = state.store().begin().await?;
        if !tx
            .take_over_publish_request(
                &PublishAttempt {
                    account_id: &acc.id,
                    idem_key: &key,
                    lease_token: &lease,
                },
                now + LEASE_SECS,
                now,
            )
            .await?
        {
            return Ok(Answer::InProgress(existing));
        }
        tx.commit().await?;
        if existing.stage == "publishing" {
            let e = Error::Conflict(
                "the attempt that handled this request stopped after sending media_publish, so the post may or may not be live; look at the account's recent media before publishing it again with a new Idempotency-Key".into(),
            );
            let work = Work {
                state: state.clone(),
                acc,
                actor: actor.to_string(),
                key,
                lease,
            };
            let row = work.fail(e).await?;
            return Ok(if row.state == "in_progress" {
                Answer::InProgress(row)
            } else {
                Answer::Done {
                    row,
                    replayed: false,
                }
            });
        }
    }
    let work = Work {
        state: state.clone(),
        acc,
        actor: actor.to_string(),
        key: key.clone(),
        lease,
    };
    let account_id = work.acc.id.clone();
    let task = tokio::spawn(async move { work.run(post).await });
    // Real time, not the clock's: this bounds an HTTP answer, not a step of the work.
    match tokio::time::timeout(state.config().publish.wait, task).await {
        // An attempt that lost its lease to another reads the request as that one left it.
        Ok(Ok(Ok(row))) if row.state == "in_progress" => Ok(Answer::InProgress(row)),
        Ok(Ok(result)) => result.map(|row| Answer::Done {
            row,
            replayed: false,
        }),
        Ok(Err(join)) => Err(Error::Internal(format!("the publish task failed: {join}"))),
        Err(_) => {
            let row = state
                .store()
                .publish_request(&account_id, &key)
                .await?
                .ok_or_else(|| Error::Internal("a publish request vanished".into()))?;
            Ok(Answer::InProgress(row))
        }
    }
}

/// A request's state, for its status URL.
pub async fn status(state: &AppState, acc: &AccountRow, key: &str) -> Result<PublishRequestRow> {
    check_key(key)?;
    state
        .store()
        .publish_request(&acc.id, key)
        .await?
        .ok_or_else(|| Error::not_found("publish request", key))
}

struct Work {
    state: AppState,
    acc: AccountRow,
    actor: String,
    key: String,
    lease: String,
}

/// A failure while publishing, and whether the key may simply be sent again.
struct Failure {
    error: Error,
    /// Nothing was published and nothing will be: the row is forgotten so a retry works.
    retryable: bool,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            retryable: false,
        }
    }
}

impl Work {
    fn attempt(&self) -> PublishAttempt<'_> {
        PublishAttempt {
            account_id: &self.acc.id,
            idem_key: &self.key,
            lease_token: &self.lease,
        }
    }

    /// The whole flow; Ok with the finished row, or Err when the request was forgotten
    /// and may be sent again.
    async fn run(self, post: Post) -> Result<PublishRequestRow> {
        match self.steps(&post).await {
            Ok((media_id, permalink)) => self.succeed(&post, &media_id, permalink.as_deref()).await,
            Err(Failure {
                error,
                retryable: true,
            }) => self.forget(error).await,
            Err(Failure { error, .. }) => self.fail(error).await,
        }
    }

    async fn steps(&self, post: &Post) -> Result<(String, Option<String>), Failure> {
        // Instagram's rate-limit budgets hold a publish like any call that can wait; the
        // request is forgotten, so the same Idempotency-Key may be sent again later.
        upstream_budget::admit(&self.state, &self.acc)
            .await
            .map_err(|error| Failure {
                error,
                retryable: true,
            })?;
        let secret = accounts::open_token(&self.state, &self.acc)?;
        let token = AccessToken::new(secret.expose_secret().to_string());
        let client = self.state.instagram();
        let user = self.acc.ig_user_id.as_str();
        let limit = match client.content_publishing_limit(&token, user, None).await {
            Ok(l) => l,
            Err(e) => return Err(self.upstream(e, true).await),
        };
        if limit.remaining() == Some(0) {
            let total = limit.settings().and_then(|s| s.quota_total).unwrap_or(0);
            return Err(Failure {
                error: Error::RateLimited {
                    message: format!(
                        "the account has published its {total} posts allowed in 24 hours (Instagram's content_publishing_limit); try again once its oldest post of the window is more than 24 hours old"
                    ),
                    retry_after_secs: 3600,
                },
                retryable: true,
            });
        }
        let container = match post {
            Post::Carousel { items, caption } => {
                let mut children = Vec::with_capacity(items.len());
                for item in items {
                    let req = match item {
                        Item::Image { url, alt_text } => {
                            let r = ContainerRequest::carousel_image(url);
                            match alt_text {
                                Some(a) => r.alt_text(a),
                                None => r,
                            }
                        }
                        Item::Video { url } => ContainerRequest::carousel_video(url),
                    };
                    children.push(self.create(&token, &req).await?);
                }
                for child in &children {
                    self.wait_finished(&token, child).await?;
                }
                let mut req = ContainerRequest::carousel(&children);
                if let Some(c) = caption {
                    req = req.caption(c);
                }
                self.create(&token, &req).await?
            }
            Post::Image {
                url,
                caption,
                alt_text,
            } => {
                let mut req = ContainerRequest::image(url);
                if let Some(c) = caption {
                    req = req.caption(c);
                }
                if let Some(a) = alt_text {
                    req = req.alt_text(a);
                }
                self.create(&token, &req).await?
            }
            Post::Reel {
                url,
                caption,
                cover_url,
                share_to_feed,
            } => {
                let mut req = ContainerRequest::reel(url);
                if let Some(c) = caption {
                    req = req.caption(c);
                }
                if let Some(c) = cover_url {
                    req = req.cover_url(c);
                }
                if let Some(s) = share_to_feed {
                    req = req.share_to_feed(*s);
                }
                self.create(&token, &req).await?
            }
            Post::Story(Item::Image { url, .. }) => {
                self.create(&token, &ContainerRequest::story_image(url))
                    .await?
            }
            Post::Story(Item::Video { url }) => {
                self.create(&token, &ContainerRequest::story_video(url))
                    .await?
            }
        };
        self.wait_finished(&token, &container).await?;
        self.advance("publishing", Some(&container)).await?;
        let media_id = self.publish_when_ready(&token, &container).await?;
        // The post is live whatever happens now; a permalink that cannot be read is left out.
        let permalink = match client.media(&token, &media_id, &["permalink"]).await {
            Ok(m) => m.permalink,
            Err(e) => {
                tracing::warn!(account_id = %self.acc.id, error = %e, "published, but the permalink could not be read");
                None
            }
        };
        Ok((media_id, permalink))
    }

    async fn create(&self, token: &AccessToken, req: &ContainerRequest) -> Result<String, Failure> {
        let id = match self
            .state
            .instagram()
            .create_container(token, &self.acc.ig_user_id, req)
            .await
        {
            Ok(id) => id,
            Err(e) => return Err(self.upstream(e, true).await),
        };
        self.advance("containers", Some(&id)).await?;
        Ok(id)
    }

    /// Polls a container with backoff on the broker's clock until it is FINISHED.
    async fn wait_finished(&self, token: &AccessToken, container: &str) -> Result<(), Failure> {
        let client = self.state.instagram();
        let deadline = self.state.now() + POLL_BUDGET_SECS;
        let mut pause = POLL_FIRST_SECS;
        loop {
            match client.container_status(token, container).await {
                Ok(s) => match s.status_code {
                    Some(ContainerStatusCode::Finished | ContainerStatusCode::Published) => {
                        return Ok(());
                    }
                    Some(ContainerStatusCode::Error) => {
                        return Err(Failure::from(container_failed(
                            "ERROR",
                            s.error_code(),
                            s.status.as_deref(),
                        )));
                    }
                    Some(ContainerStatusCode::Expired) => {
                        return Err(Failure::from(container_failed(
                            "EXPIRED",
                            s.error_code(),
                            s.status.as_deref(),
                        )));
                    }
                    _ => {}
                },
                Err(e) if e.is_transient() => {
                    tracing::debug!(error = %e, "container poll failed; retrying");
                    if let Some(wait) = e.retry_after() {
                        pause = pause.max(i64::try_from(wait.as_secs()).unwrap_or(POLL_MAX_SECS));
                    }
                }
                Err(e) => return Err(self.upstream(e, true).await),
            }
            if self.state.now() + pause > deadline {
                return Err(Failure {
                    error: Error::UpstreamRefused(format!(
                        "Instagram was still processing container {container} after {} minutes; send the request again later with a new Idempotency-Key",
                        POLL_BUDGET_SECS / 60
                    )),
                    retryable: false,
                });
            }
            self.sleep(pause).await;
            self.advance("containers", None).await?;
            pause = (pause * 2).min(POLL_MAX_SECS);
        }
    }

    /// `media_publish`, repeated only while Instagram says the container is not ready
    /// (nothing was published then). Any other failure after sending it is final.
    async fn publish_when_ready(
        &self,
        token: &AccessToken,
        container: &str,
    ) -> Result<String, Failure> {
        let deadline = self.state.now() + POLL_BUDGET_SECS;
        let mut pause = POLL_FIRST_SECS;
        loop {
            match self
                .state
                .instagram()
                .publish_container(token, &self.acc.ig_user_id, container)
                .await
            {
                Ok(id) => return Ok(id),
                Err(instagram_api::Error::Publishing {
                    kind: PublishingErrorKind::NotReady,
                    ..
                }) if self.state.now() + pause < deadline => {
                    self.sleep(pause).await;
                    self.advance("publishing", None).await?;
                    pause = (pause * 2).min(POLL_MAX_SECS);
                }
                Err(
                    e @ (instagram_api::Error::Network { .. }
                    | instagram_api::Error::UnexpectedResponse { .. }),
                ) => {
                    return Err(Failure::from(Error::Conflict(format!(
                        "media_publish was sent but its answer was lost ({e}), so the post may or may not be live; look at the account's recent media before publishing it again with a new Idempotency-Key"
                    ))));
                }
                Err(e) => return Err(self.upstream(e, false).await),
            }
        }
    }

    /// Waits `secs` on the broker's clock: a clock that is moved (the demo, the tests)
    /// wakes the wait early.
    async fn sleep(&self, secs: i64) {
        let until = self.state.now() + secs;
        loop {
            let left = until - self.state.now();
            if left <= 0 {
                return;
            }
            let step = u64::try_from(left.saturating_mul(1000))
                .unwrap_or(100)
                .min(100);
            tokio::time::sleep(Duration::from_millis(step)).await;
        }
    }

    /// Renews the lease and records progress; a lost lease stops the work.
    async fn advance(&self, stage: &str, container: Option<&str>) -> Result<(), Failure> {
        let now = self.state.now();
        let held = self
            .state
            .store()
            .advance_publish_request(&self.attempt(), stage, container, now + LEASE_SECS, now)
            .await
            .map_err(Error::from)?;
        if held {
            Ok(())
        } else {
            Err(Failure::from(Error::Conflict(
                "another attempt took this publish request over; ask its status URL for the result"
                    .into(),
            )))
        }
    }

    /// An Instagram failure; `before_publish` when no media_publish was sent, so that a
    /// passing failure (rate limit, outage) lets the caller send the same key again.
    async fn upstream(&self, e: instagram_api::Error, before_publish: bool) -> Failure {
        // A throttling answer holds the app or account for every replica, as for the proxy.
        if let Err(err) = upstream_budget::observe(
            &self.state,
            &self.acc,
            &[],
            e.usage(),
            graph::throttling(&e),
        )
        .await
        {
            tracing::warn!(error = %err, "could not record Instagram's usage report");
        }
        if let instagram_api::Error::Publishing {
            kind,
            subcode,
            message,
            ..
        } = &e
        {
            match kind {
                PublishingErrorKind::QuotaExceeded => {
                    return Failure {
                        error: Error::RateLimited {
                            message: "Instagram refused the post: the account reached its posts allowed in 24 hours; try again later".into(),
                            retry_after_secs: 3600,
                        },
                        retryable: before_publish,
                    };
                }
                PublishingErrorKind::NotReady | PublishingErrorKind::Timeout => {}
                _ => {
                    return Failure::from(Error::PublishFailed(format!(
                        "Instagram refused the media{}: {}. {}",
                        subcode
                            .map(|s| format!(" (Meta's subcode {s})"))
                            .unwrap_or_default(),
                        message,
                        fix(*kind, *subcode)
                    )));
                }
            }
        }
        let retryable = before_publish && e.is_transient();
        Failure {
            error: graph::map_graph_error(&self.state, &self.acc, e).await,
            retryable,
        }
    }

    async fn succeed(
        &self,
        post: &Post,
        media_id: &str,
        permalink: Option<&str>,
    ) -> Result<PublishRequestRow> {
        let now = self.state.now();
        let mut tx = self.state.store().begin().await?;
        let held = tx
            .finish_publish_request(
                &self.attempt(),
                &PublishOutcome::Published {
                    media_id,
                    permalink,
                },
                now,
            )
            .await?;
        if !held {
            return Err(Error::Conflict(
                "another attempt took this publish request over; ask its status URL for the result"
                    .into(),
            ));
        }
        tx.append_audit(&[audit::entry(
            &self.state,
            &self.actor,
            "media.published",
            Some(&self.acc.id),
            Some(&self.acc.app_id),
            json!({"kind": post.kind(), "idempotency_key": self.key}),
        )])
        .await?;
        tx.commit().await?;
        self.reread().await
    }

    async fn fail(&self, error: Error) -> Result<PublishRequestRow> {
        let code = error.code();
        // Kept for every retry of the key to read: an internal failure is stored without
        // its cause, which goes to the log.
        let message = if code == "internal" {
            tracing::error!(account_id = %self.acc.id, error = %error, "publishing failed");
            "internal error while publishing; the broker logged the cause".to_string()
        } else {
            error.to_string()
        };
        let now = self.state.now();
        let mut tx = self.state.store().begin().await?;
        let held = tx
            .finish_publish_request(
                &self.attempt(),
                &PublishOutcome::Failed {
                    code,
                    message: &message,
                },
                now,
            )
            .await?;
        if held {
            tx.append_audit(&[audit::entry(
                &self.state,
                &self.actor,
                "media.publish_failed",
                Some(&self.acc.id),
                Some(&self.acc.app_id),
                json!({"idempotency_key": self.key, "code": code}),
            )])
            .await?;
            tx.commit().await?;
        }
        self.reread().await
    }

    /// Forgets the request (nothing was published), so the same key may be sent again,
    /// and reports why.
    async fn forget(&self, error: Error) -> Result<PublishRequestRow> {
        let mut tx = self.state.store().begin().await?;
        if tx.delete_publish_request(&self.attempt()).await? {
            tx.append_audit(&[audit::entry(
                &self.state,
                &self.actor,
                "media.publish_failed",
                Some(&self.acc.id),
                Some(&self.acc.app_id),
                json!({"idempotency_key": self.key, "code": error.code(), "retryable": true}),
            )])
            .await?;
            tx.commit().await?;
        }
        Err(error)
    }

    async fn reread(&self) -> Result<PublishRequestRow> {
        self.state
            .store()
            .publish_request(&self.acc.id, &self.key)
            .await?
            .ok_or_else(|| Error::Internal("a publish request vanished".into()))
    }
}

/// A container that ended in ERROR or EXPIRED, with Meta's subcode and what to do.
fn container_failed(status: &str, subcode: Option<i64>, text: Option<&str>) -> Error {
    let kind = if status == "EXPIRED" {
        PublishingErrorKind::ContainerExpired
    } else {
        match PublishingErrorKind::from_codes(None, subcode) {
            PublishingErrorKind::Other => PublishingErrorKind::ContainerFailed,
            k => k,
        }
    };
    let said = text
        .map(|t| format!(" (Instagram said: {})", shown_long(t)))
        .unwrap_or_default();
    let code = subcode
        .map(|s| format!(" with Meta's subcode {s}"))
        .unwrap_or_default();
    Error::PublishFailed(format!(
        "the media container ended in {status}{code}{said}. {}",
        fix(kind, subcode)
    ))
}

fn shown_long(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(300).collect()
}

/// One sentence saying what to change, by the kind of publishing failure.
fn fix(kind: PublishingErrorKind, subcode: Option<i64>) -> String {
    let again = "then send the request again with a new Idempotency-Key";
    match kind {
        PublishingErrorKind::DownloadFailed => format!(
            "Instagram could not download the media: make each URL a public https address that serves the file itself (no sign-in, no redirect to a page), {again}"
        ),
        PublishingErrorKind::InvalidMedia => format!(
            "Instagram did not accept the file's format, size or shape: images must be JPEG up to 8 MB with an aspect ratio from 4:5 to 1.91:1, videos MP4 or MOV (H.264 or HEVC with AAC audio) within the length the post type allows; convert the file, {again}"
        ),
        PublishingErrorKind::ContainerExpired => format!(
            "a container must be published within 24 hours of its creation; {again}"
        ),
        PublishingErrorKind::AccountRestricted => {
            "Instagram does not let this account publish at the moment; the account's owner must resolve the restriction in the Instagram app".into()
        }
        PublishingErrorKind::SuspectedSpam => format!(
            "Instagram took the post for spam; change the caption or media, {again}"
        ),
        PublishingErrorKind::ServerError => format!(
            "Instagram failed on its side while processing the media; wait a little, {again}"
        ),
        _ => format!(
            "Instagram could not process the media{}; check that each URL serves the file you mean in a supported format, {again}",
            subcode
                .map(|s| format!(" (look up subcode {s} in Meta's error code reference)"))
                .unwrap_or_default()
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn err(v: Value) -> String {
        parse(&v).unwrap_err().to_string()
    }

    #[test]
    fn bodies_name_the_wrong_field() {
        let child = json!({"image_url": "https://cdn.example/a.jpg"});
        let eleven: Vec<Value> = (0..11).map(|_| child.clone()).collect();
        assert!(err(json!({"type": "carousel", "children": eleven})).contains("children"));
        assert!(
            err(json!({"type": "image", "image_url": "http://cdn.example/a.jpg"}))
                .contains("image_url must be an https URL")
        );
        assert!(
            err(json!({"type": "image", "image_url": "https://x/a.jpg", "caption": "a".repeat(2201)}))
                .contains("caption")
        );
        assert!(err(json!({"type": "gif"})).contains("type"));
        assert!(
            err(json!({"type": "carousel", "children": [child, {"video_url": "ftp://x/v.mp4"}]}))
                .contains("children[1].video_url")
        );
        assert!(
            err(json!({"type": "story", "image_url": "https://x/a", "video_url": "https://x/b"}))
                .contains("exactly one")
        );
        assert!(
            err(json!({"type": "reel", "video_url": "https://x/v.mp4", "access_token": "x"}))
                .contains("access_token is not a field")
        );
    }

    #[test]
    fn the_same_meaning_hashes_the_same() {
        let a = parse(&json!({"type": "image", "image_url": "https://x/a.jpg", "caption": "hi"}))
            .unwrap();
        let b = parse(&json!({"caption": "hi", "image_url": " https://x/a.jpg", "type": "image"}))
            .unwrap();
        assert_eq!(a.canonical(), b.canonical());
        let c = parse(&json!({"type": "image", "image_url": "https://x/a.jpg", "caption": "ho"}))
            .unwrap();
        assert_ne!(a.canonical(), c.canonical());
    }

    #[test]
    fn keys() {
        assert!(check_key("6f1c-9a_b.c:1").is_ok());
        for bad in ["", "a/b", "a b", "ключ"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
        assert!(check_key(&"a".repeat(MAX_KEY_LEN + 1)).is_err());
    }
}
