//! Content publishing: media containers, their status, `media_publish`, and the rolling
//! 24-hour cap reported by `content_publishing_limit`.
//!
//! A container is IN_PROGRESS for a processing time counted on the sandbox clock, then
//! FINISHED; publishing makes it PUBLISHED; a `container_error` fault makes it end in ERROR;
//! unpublished containers are EXPIRED after 24 hours. Media URLs are never fetched.

use axum::http::Method;
use serde_json::json;

use super::{Ctx, FieldVal, GraphResult, default_fields, select};
use crate::errors::{GraphError, IGAPI};
use crate::faults::FaultKind;
use crate::ids::new_object_id;
use crate::state::{Container, ContainerState, ContainerStatus, Media, SCOPE_PUBLISH, State};
use crate::{control, lock};

/// Seconds of sandbox clock a container spends IN_PROGRESS.
pub const IMAGE_PROCESSING_SECS: i64 = 3;
pub const VIDEO_PROCESSING_SECS: i64 = 10;
pub const MAX_CONTAINERS_PER_DAY: usize = 400;
pub const QUOTA_DURATION: i64 = 86_400;

pub const STANDALONE_VIDEO: &str = "(#100) The media_type VIDEO is no longer supported for a single feed video: publish it with media_type=REELS. VIDEO is valid only for carousel items (is_carousel_item=true).";

fn need_publish(ctx: &Ctx<'_>) -> Result<(), GraphError> {
    ctx.require_scope(SCOPE_PUBLISH, GraphError::permission_200(SCOPE_PUBLISH))
}

fn media_url(ctx: &Ctx<'_>, name: &str) -> Result<String, GraphError> {
    let raw = ctx
        .param(name)
        .ok_or_else(|| GraphError::param(format!("The parameter {name} is required")))?;
    match url::Url::parse(raw.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(raw.trim().to_owned()),
        _ => Err(GraphError::new(
            IGAPI,
            9004,
            "Media download has failed. The media URI doesn't meet our requirements.",
        )
        .subcode(2_207_052)
        .user(
            "Media download has failed",
            "The media could not be fetched from this URI. Please check that the URI is valid and publicly reachable.",
        )),
    }
}

pub fn create_container(ctx: &Ctx<'_>) -> GraphResult {
    need_publish(ctx)?;
    let is_item = ctx.param("is_carousel_item") == Some("true");
    let requested = ctx.param("media_type").map(str::to_ascii_uppercase);
    let caption = ctx.param("caption").map(str::to_owned);
    if caption.as_ref().is_some_and(|c| c.chars().count() > 2200) {
        return Err(GraphError::param(
            "(#100) The caption must be at most 2200 characters",
        ));
    }
    if ctx.param("upload_type") == Some("resumable") && ctx.param("video_url").is_none() {
        return Err(GraphError::param("The parameter video_url is required"));
    }
    let (media_type, url, processing) = match requested.as_deref() {
        None | Some("IMAGE") => ("IMAGE", media_url(ctx, "image_url")?, IMAGE_PROCESSING_SECS),
        Some("VIDEO") if is_item => ("VIDEO", media_url(ctx, "video_url")?, VIDEO_PROCESSING_SECS),
        // Standalone feed videos stopped working in November 2023: single videos are reels.
        Some("VIDEO") => return Err(GraphError::param(STANDALONE_VIDEO)),
        Some("REELS") if !is_item => ("REELS", media_url(ctx, "video_url")?, VIDEO_PROCESSING_SECS),
        Some("STORIES") if !is_item => {
            if ctx.param("video_url").is_some() {
                (
                    "STORIES",
                    media_url(ctx, "video_url")?,
                    VIDEO_PROCESSING_SECS,
                )
            } else {
                (
                    "STORIES",
                    media_url(ctx, "image_url")?,
                    IMAGE_PROCESSING_SECS,
                )
            }
        }
        Some("CAROUSEL") if !is_item => ("CAROUSEL", String::new(), IMAGE_PROCESSING_SECS),
        Some(other) => {
            return Err(GraphError::param(format!(
                "(#100) Param media_type must be one of {{VIDEO, REELS, STORIES, CAROUSEL}} for this container, got {other}"
            )));
        }
    };
    let children: Vec<String> = if media_type == "CAROUSEL" {
        let raw = ctx
            .param("children")
            .ok_or_else(|| GraphError::param("The parameter children is required"))?;
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        Vec::new()
    };
    if media_type == "CAROUSEL" && !(2..=10).contains(&children.len()) {
        return Err(GraphError::param(
            "(#100) A carousel must have between 2 and 10 children",
        ));
    }

    let route = ctx.route.normalized();
    let failure = lock(&ctx.sb.inner.faults)
        .take("POST", &route, &[FaultKind::ContainerError])
        .into_iter()
        .next()
        .map(|f| f.spec.subcode.unwrap_or(2_207_026));
    let now = ctx.now;
    let owner = ctx.rec.user_id.clone();
    ctx.sb.write(|st| {
        let recent = st
            .containers
            .values()
            .filter(|c| c.owner == owner && c.created_at + QUOTA_DURATION > now)
            .count();
        if recent >= MAX_CONTAINERS_PER_DAY {
            return Err(GraphError::new(
                IGAPI,
                9,
                "(#9) Application request limit reached: at most 400 containers per account in 24 hours",
            )
            .transient(true));
        }
        let mut ready_at = now + processing;
        for child in &children {
            let c = st
                .containers
                .get(child)
                .filter(|c| c.owner == owner && c.is_carousel_item)
                .ok_or_else(|| {
                    GraphError::param(format!(
                        "(#100) The carousel child {child} is not a carousel item container of this account"
                    ))
                })?;
            if matches!(
                c.status_at(now),
                ContainerStatus::Error | ContainerStatus::Expired | ContainerStatus::Published
            ) {
                return Err(GraphError::param(format!(
                    "(#100) The carousel child {child} cannot be used: it is {}",
                    c.status_at(now).code()
                )));
            }
            ready_at = ready_at.max(c.ready_at);
        }
        let id = new_object_id();
        st.containers.insert(
            id.clone(),
            Container {
                id: id.clone(),
                owner: owner.clone(),
                client_id: ctx.rec.client_id.clone(),
                media_type: media_type.to_owned(),
                is_carousel_item: is_item,
                children: children.clone(),
                caption: caption.clone(),
                media_url: url.clone(),
                alt_text: ctx.param("alt_text").map(str::to_owned),
                created_at: now,
                ready_at,
                state: failure.map_or(ContainerState::Pending, |subcode| ContainerState::Error {
                    subcode,
                }),
            },
        );
        Ok(json!({ "id": id }))
    })
}

fn status_text(c: &Container, status: ContainerStatus) -> String {
    match (status, &c.state) {
        (ContainerStatus::InProgress, _) => "In Progress: Media is still being processed.".into(),
        (ContainerStatus::Finished, _) => {
            "Finished: Media has been uploaded and it is ready to be published.".into()
        }
        (ContainerStatus::Published, _) => {
            "Published: Media has been successfully published.".into()
        }
        (ContainerStatus::Error, ContainerState::Error { subcode }) => {
            format!("Error: Media upload has failed with error code {subcode}")
        }
        (ContainerStatus::Error, _) => "Error: Media upload has failed".into(),
        (ContainerStatus::Expired, _) => {
            "Expired: The media was not published within 24 hours of its creation.".into()
        }
    }
}

pub fn container_node(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    if *ctx.method() != Method::GET {
        return Err(GraphError::unsupported_method(ctx.method().as_str()));
    }
    let fields = ctx.fields()?.unwrap_or_else(|| default_fields(&["id"]));
    ctx.sb.read(|st| {
        let c = st
            .containers
            .get(id)
            .ok_or_else(|| GraphError::no_such_object(id))?;
        let status = c.status_at(ctx.now);
        select(&fields, "ShadowIGMediaBuilder", |f| {
            Ok(match f.name.as_str() {
                "id" => FieldVal::Val(json!(c.id)),
                "status_code" => FieldVal::Val(json!(status.code())),
                "status" => FieldVal::Val(json!(status_text(c, status))),
                "copyright_check_status" if c.media_type != "IMAGE" => FieldVal::Val(json!({
                    "status": if status == ContainerStatus::InProgress { "in_progress" } else { "completed" },
                    "matches_found": false,
                })),
                "copyright_check_status" => FieldVal::Absent,
                _ => FieldVal::Unknown,
            })
        })
    })
}

fn not_ready() -> GraphError {
    GraphError::new(IGAPI, 9007, "Media ID is not available")
        .subcode(2_207_027)
        .transient(true)
        .user(
            "Media not ready for publishing",
            "The media is not ready for publishing, please wait for a moment",
        )
}

fn quota_usage(st: &State, owner: &str, since: i64) -> usize {
    st.publishes
        .get(owner)
        .map_or(0, |v| v.iter().filter(|t| **t >= since).count())
}

fn quota_total(st: &State, owner: &str) -> u32 {
    st.users.get(owner).map_or(100, |u| u.publish_quota_total)
}

pub fn publish(ctx: &Ctx<'_>) -> GraphResult {
    if *ctx.method() != Method::POST {
        return Err(GraphError::unsupported_method(ctx.method().as_str()));
    }
    need_publish(ctx)?;
    let creation_id = ctx
        .param("creation_id")
        .ok_or_else(|| GraphError::param("The parameter creation_id is required"))?
        .to_owned();
    let now = ctx.now;
    let owner = ctx.rec.user_id.clone();
    ctx.sb.write(|st| {
        let c = st
            .containers
            .get(&creation_id)
            .filter(|c| c.owner == owner)
            .cloned()
            .ok_or_else(|| {
                GraphError::param(format!(
                    "(#100) Param creation_id {creation_id} is not a media container of this account"
                ))
            })?;
        if c.is_carousel_item {
            return Err(GraphError::param(
                "(#100) A carousel item can only be published as part of its carousel",
            ));
        }
        match c.status_at(now) {
            ContainerStatus::InProgress => return Err(not_ready()),
            ContainerStatus::Error => {
                return Err(GraphError::new(IGAPI, -1, "Media upload has failed")
                    .subcode(2_207_032)
                    .user(
                        "Create media failed",
                        "The media container failed; create a new one and try again.",
                    ));
            }
            ContainerStatus::Expired => {
                return Err(GraphError::new(
                    IGAPI,
                    -2,
                    "The media you are trying to access has expired. Please try to upload again.",
                )
                .subcode(2_207_020));
            }
            ContainerStatus::Published => {
                return Err(GraphError::new(IGAPI, 506, "(#506) Duplicate post: this container has already been published"));
            }
            ContainerStatus::Finished => {}
        }
        let total = quota_total(st, &owner);
        if quota_usage(st, &owner, now - QUOTA_DURATION) >= total as usize {
            return Err(GraphError::new(
                IGAPI,
                9,
                "Application request limit reached",
            )
            .subcode(2_207_042)
            .user(
                "Max posts reached",
                format!("You have reached the maximum of {total} posts that can be published in 24 hours."),
            ));
        }
        let media_id = materialise(st, &c, now);
        if let Some(cont) = st.containers.get_mut(&creation_id) {
            cont.state = ContainerState::Published {
                media_id: media_id.clone(),
            };
        }
        st.publishes.entry(owner.clone()).or_default().push(now);
        Ok(json!({ "id": media_id }))
    })
}

/// Turns a finished container (and a carousel's children) into media of its owner.
fn materialise(st: &mut State, c: &Container, now: i64) -> String {
    let make = |id: String, c: &Container, child: bool| -> Media {
        let (media_type, product) = match c.media_type.as_str() {
            "VIDEO" | "REELS" => ("VIDEO", "REELS"),
            "CAROUSEL" => ("CAROUSEL_ALBUM", "FEED"),
            "STORIES" if c.media_url.ends_with(".mp4") || c.media_url.ends_with(".mov") => {
                ("VIDEO", "STORY")
            }
            "STORIES" => ("IMAGE", "STORY"),
            _ => ("IMAGE", "FEED"),
        };
        let media_type = if child && c.media_type == "VIDEO" {
            "VIDEO"
        } else {
            media_type
        };
        let product = if child { "FEED" } else { product };
        Media {
            media_url: format!("https://scontent.sandbox.invalid/media/{id}.jpg"),
            thumbnail_url: (media_type == "VIDEO")
                .then(|| format!("https://scontent.sandbox.invalid/media/{id}_thumb.jpg")),
            id,
            owner: c.owner.clone(),
            caption: if child { None } else { c.caption.clone() },
            media_type: media_type.to_owned(),
            media_product_type: product.to_owned(),
            alt_text: c.alt_text.clone(),
            shortcode: control::shortcode(),
            timestamp: now,
            like_count: 0,
            children: Vec::new(),
            is_child: child,
            is_comment_enabled: true,
        }
    };
    let mut child_ids = Vec::new();
    for child in &c.children {
        if let Some(cc) = st.containers.get(child).cloned() {
            let id = new_object_id();
            st.media.insert(id.clone(), make(id.clone(), &cc, true));
            child_ids.push(id);
        }
    }
    let id = new_object_id();
    let mut m = make(id.clone(), c, false);
    m.children.clone_from(&child_ids);
    st.media.insert(id.clone(), m);
    if let Some(u) = st.users.get_mut(&c.owner) {
        u.media.extend(child_ids);
        u.media.push(id.clone());
    }
    id
}

pub fn limit(ctx: &Ctx<'_>) -> GraphResult {
    if *ctx.method() != Method::GET {
        return Err(GraphError::unsupported_method(ctx.method().as_str()));
    }
    need_publish(ctx)?;
    let since = match ctx.param("since") {
        None => ctx.now - QUOTA_DURATION,
        Some(s) => {
            let t = s
                .trim()
                .parse::<i64>()
                .map_err(|_| GraphError::param("(#100) Param since must be a unix timestamp"))?;
            if t < ctx.now - QUOTA_DURATION {
                return Err(GraphError::param(
                    "(#100) Param since must be no more than 24 hours in the past",
                ));
            }
            t
        }
    };
    let fields = ctx
        .fields()?
        .unwrap_or_else(|| default_fields(&["quota_usage"]));
    let owner = &ctx.rec.user_id;
    let item = ctx.sb.read(|st| {
        let usage = quota_usage(st, owner, since);
        let total = quota_total(st, owner);
        let mut out = serde_json::Map::new();
        for f in &fields {
            match f.name.as_str() {
                "quota_usage" => out.insert("quota_usage".into(), json!(usage)),
                // `config` is the older name; Meta's current sample asks for `rate_limit_settings`.
                name @ ("config" | "rate_limit_settings") => out.insert(
                    name.into(),
                    json!({ "quota_total": total, "quota_duration": QUOTA_DURATION }),
                ),
                other => {
                    return Err(GraphError::nonexisting_field(
                        other,
                        "ContentPublishingLimitResponse",
                    ));
                }
            };
        }
        Ok(serde_json::Value::Object(out))
    })?;
    Ok(json!({ "data": [item] }))
}
