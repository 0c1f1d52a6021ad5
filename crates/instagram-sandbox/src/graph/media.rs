//! IG media: the user's `/media` and `/stories` edges, the media node and its `children`.

use axum::http::Method;
use serde_json::{Value, json};

use super::paging::{PageArgs, page, paging, window};
use super::{Ctx, FieldSel, FieldVal, GraphResult, comments, default_fields, select};
use crate::errors::GraphError;
use crate::state::{Media, State, User};
use crate::timefmt::graph_timestamp;

fn in_feed(st: &State, id: &str) -> bool {
    st.media
        .get(id)
        .is_some_and(|m| !m.is_child && m.media_product_type != "STORY")
}

/// `media_count`, without building the list.
pub fn feed_count(st: &State, u: &User) -> usize {
    u.media.iter().filter(|id| in_feed(st, id)).count()
}

/// What `/media` lists: the user's feed and reels, newest first, without carousel items and
/// stories.
pub fn feed_ids(st: &State, u: &User) -> Vec<String> {
    u.media
        .iter()
        .rev()
        .filter(|id| in_feed(st, id))
        .cloned()
        .collect()
}

/// Stories stay visible for 24 hours.
fn story_ids(st: &State, u: &User, now: i64) -> Vec<String> {
    u.media
        .iter()
        .rev()
        .filter(|id| {
            st.media
                .get(*id)
                .is_some_and(|m| m.media_product_type == "STORY" && m.timestamp + 86_400 > now)
        })
        .cloned()
        .collect()
}

fn list(
    ctx: &Ctx<'_>,
    st: &State,
    u: &User,
    ids: Vec<String>,
    edge: &str,
    fields: Option<&[FieldSel]>,
    args: &PageArgs<'_>,
) -> GraphResult {
    let ids = filter_time(ctx, st, ids)?;
    let w = window(&ids, args)?;
    let sel = fields.map_or_else(|| default_fields(&["id"]), <[FieldSel]>::to_vec);
    let data = ids[w.start..w.end]
        .iter()
        .filter_map(|id| st.media.get(id))
        .map(|m| render(ctx, st, u, m, &sel))
        .collect::<Result<Vec<_>, _>>()?;
    let p = paging(ctx, &format!("/{}/{edge}", u.user_id), &ids, &w, fields);
    Ok(page(data, p))
}

/// `since` / `until` (unix seconds) narrow the list by timestamp.
fn filter_time(ctx: &Ctx<'_>, st: &State, ids: Vec<String>) -> Result<Vec<String>, GraphError> {
    let parse = |name: &str| -> Result<Option<i64>, GraphError> {
        ctx.param(name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    GraphError::param(format!("(#100) Param {name} must be a unix timestamp"))
                })
            })
            .transpose()
    };
    let (since, until) = (parse("since")?, parse("until")?);
    if since.is_none() && until.is_none() {
        return Ok(ids);
    }
    Ok(ids
        .into_iter()
        .filter(|id| {
            st.media.get(id).is_some_and(|m| {
                since.is_none_or(|s| m.timestamp >= s) && until.is_none_or(|u| m.timestamp <= u)
            })
        })
        .collect())
}

fn owner<'s>(ctx: &Ctx<'_>, st: &'s State) -> Result<&'s User, GraphError> {
    st.users
        .get(&ctx.rec.user_id)
        .ok_or_else(GraphError::unknown_token)
}

/// The caller's user and the media node `id` (an unknown id is Meta's "does not exist" error).
fn owner_and_media<'s>(
    ctx: &Ctx<'_>,
    st: &'s State,
    id: &str,
) -> Result<(&'s User, &'s Media), GraphError> {
    let u = owner(ctx, st)?;
    let m = st
        .media
        .get(id)
        .ok_or_else(|| GraphError::no_such_object(id))?;
    Ok((u, m))
}

/// `fields=media{…}` on the user node.
pub fn media_edge(ctx: &Ctx<'_>, st: &State, u: &User, f: &FieldSel) -> Result<Value, GraphError> {
    list(
        ctx,
        st,
        u,
        feed_ids(st, u),
        "media",
        f.sub.as_deref(),
        &PageArgs::from_field(f),
    )
}

pub fn list_user_media(ctx: &Ctx<'_>) -> GraphResult {
    let fields = ctx.fields()?;
    ctx.sb.read(|st| {
        let u = owner(ctx, st)?;
        list(
            ctx,
            st,
            u,
            feed_ids(st, u),
            "media",
            fields.as_deref(),
            &PageArgs::from_request(ctx),
        )
    })
}

pub fn list_stories(ctx: &Ctx<'_>) -> GraphResult {
    if *ctx.method() != Method::GET {
        return Err(GraphError::unsupported_method(ctx.method().as_str()));
    }
    let fields = ctx.fields()?;
    ctx.sb.read(|st| {
        let u = owner(ctx, st)?;
        list(
            ctx,
            st,
            u,
            story_ids(st, u, ctx.now),
            "stories",
            fields.as_deref(),
            &PageArgs::from_request(ctx),
        )
    })
}

pub fn node(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    match *ctx.method() {
        Method::GET => {
            let fields = ctx.fields()?.unwrap_or_else(|| default_fields(&["id"]));
            ctx.sb.read(|st| {
                let (u, m) = owner_and_media(ctx, st, id)?;
                render(ctx, st, u, m, &fields)
            })
        }
        // `POST /{media-id}?comment_enabled=false` turns comments off.
        Method::POST => {
            let enabled = match ctx.param("comment_enabled") {
                Some("true") => true,
                Some("false") => false,
                _ => {
                    return Err(GraphError::param(
                        "(#100) Param comment_enabled must be a boolean",
                    ));
                }
            };
            ctx.require_scope(
                crate::state::SCOPE_COMMENTS,
                GraphError::permission_200(crate::state::SCOPE_COMMENTS),
            )?;
            ctx.sb.write(|st| {
                if let Some(m) = st.media.get_mut(id) {
                    m.is_comment_enabled = enabled;
                }
            });
            Ok(json!({ "success": true }))
        }
        ref m => Err(GraphError::unsupported_method(m.as_str())),
    }
}

pub fn children(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    if *ctx.method() != Method::GET {
        return Err(GraphError::unsupported_method(ctx.method().as_str()));
    }
    let fields = ctx.fields()?.unwrap_or_else(|| default_fields(&["id"]));
    ctx.sb.read(|st| {
        let (u, m) = owner_and_media(ctx, st, id)?;
        children_of(ctx, st, u, m, &fields)
    })
}

fn children_of(ctx: &Ctx<'_>, st: &State, u: &User, m: &Media, fields: &[FieldSel]) -> GraphResult {
    let data = m
        .children
        .iter()
        .filter_map(|c| st.media.get(c))
        .map(|c| render(ctx, st, u, c, fields))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "data": data }))
}

pub fn render(ctx: &Ctx<'_>, st: &State, u: &User, m: &Media, fields: &[FieldSel]) -> GraphResult {
    select(fields, "Media", |f| {
        Ok(match f.name.as_str() {
            "id" => FieldVal::Val(json!(m.id)),
            "caption" => m
                .caption
                .as_ref()
                .map_or(FieldVal::Absent, |c| FieldVal::Val(json!(c))),
            "media_type" => FieldVal::Val(json!(m.media_type)),
            "media_product_type" => FieldVal::Val(json!(m.media_product_type)),
            "media_url" => {
                let url = if m.media_type == "CAROUSEL_ALBUM" {
                    m.children
                        .first()
                        .and_then(|c| st.media.get(c))
                        .map_or_else(|| m.media_url.clone(), |c| c.media_url.clone())
                } else {
                    m.media_url.clone()
                };
                FieldVal::Val(json!(url))
            }
            "thumbnail_url" => m
                .thumbnail_url
                .as_ref()
                .map_or(FieldVal::Absent, |t| FieldVal::Val(json!(t))),
            "alt_text" => m
                .alt_text
                .as_ref()
                .map_or(FieldVal::Absent, |t| FieldVal::Val(json!(t))),
            "permalink" => FieldVal::Val(json!(if m.media_product_type == "STORY" {
                format!("https://www.instagram.com/stories/{}/{}/", u.username, m.id)
            } else if m.media_product_type == "REELS" {
                format!("https://www.instagram.com/reel/{}/", m.shortcode)
            } else {
                format!("https://www.instagram.com/p/{}/", m.shortcode)
            })),
            "shortcode" => FieldVal::Val(json!(m.shortcode)),
            "timestamp" => FieldVal::Val(json!(graph_timestamp(m.timestamp))),
            "username" => FieldVal::Val(json!(u.username)),
            "like_count" => FieldVal::Val(json!(m.like_count)),
            "comments_count" => FieldVal::Val(json!(
                st.comments.values().filter(|c| c.media_id == m.id).count()
            )),
            "is_comment_enabled" => FieldVal::Val(json!(m.is_comment_enabled)),
            "is_shared_to_feed" if m.media_product_type == "REELS" => FieldVal::Val(json!(true)),
            "is_shared_to_feed" => FieldVal::Absent,
            "owner" => FieldVal::Val(json!({ "id": m.owner })),
            "children" if m.media_type == "CAROUSEL_ALBUM" => {
                let sub = f.sub.clone().unwrap_or_else(|| default_fields(&["id"]));
                FieldVal::Val(children_of(ctx, st, u, m, &sub)?)
            }
            "children" => FieldVal::Absent,
            "comments" => FieldVal::Val(comments::comments_edge(ctx, st, &m.id, f)?),
            _ => FieldVal::Unknown,
        })
    })
}
