//! Comments on the user's media: list, create, replies, hide, delete.

use axum::http::Method;
use serde_json::{Value, json};

use super::paging::{PageArgs, page, paging, window};
use super::{Ctx, FieldSel, FieldVal, GraphResult, default_fields, select};
use crate::errors::GraphError;
use crate::ids::new_object_id;
use crate::state::{Comment, SCOPE_COMMENTS, State};
use crate::timefmt::graph_timestamp;

const DEFAULT: [&str; 3] = ["id", "text", "timestamp"];

fn need_scope(ctx: &Ctx<'_>, write: bool) -> Result<(), GraphError> {
    let err = if write {
        GraphError::permission_200(SCOPE_COMMENTS)
    } else {
        GraphError::permission_10()
    };
    ctx.require_scope(SCOPE_COMMENTS, err)
}

/// Newest first.
fn ids_of(st: &State, media_id: &str, parent: Option<&str>) -> Vec<String> {
    let mut v: Vec<&Comment> = st
        .comments
        .values()
        .filter(|c| c.media_id == media_id && c.parent_id.as_deref() == parent)
        .collect();
    v.sort_by(|a, b| b.timestamp.cmp(&a.timestamp).then(b.seq.cmp(&a.seq)));
    v.into_iter().map(|c| c.id.clone()).collect()
}

fn list(
    ctx: &Ctx<'_>,
    st: &State,
    media_id: &str,
    parent: Option<&str>,
    fields: Option<&[FieldSel]>,
    args: &PageArgs<'_>,
) -> GraphResult {
    let ids = ids_of(st, media_id, parent);
    let w = window(&ids, args)?;
    let sel = fields.map_or_else(|| default_fields(&DEFAULT), <[FieldSel]>::to_vec);
    let data = ids[w.start..w.end]
        .iter()
        .filter_map(|id| st.comments.get(id))
        .map(|c| render(ctx, st, c, &sel))
        .collect::<Result<Vec<_>, _>>()?;
    let edge = match parent {
        Some(p) => format!("/{p}/replies"),
        None => format!("/{media_id}/comments"),
    };
    Ok(page(data, paging(ctx, &edge, &ids, &w, fields)))
}

/// `fields=comments{…}` on a media node.
pub fn comments_edge(
    ctx: &Ctx<'_>,
    st: &State,
    media_id: &str,
    f: &FieldSel,
) -> Result<Value, GraphError> {
    need_scope(ctx, false)?;
    list(
        ctx,
        st,
        media_id,
        None,
        f.sub.as_deref(),
        &PageArgs::from_field(f),
    )
}

fn create(ctx: &Ctx<'_>, media_id: &str, parent: Option<&str>) -> GraphResult {
    need_scope(ctx, true)?;
    let text = ctx
        .param("message")
        .ok_or_else(|| GraphError::param("The parameter message is required"))?
        .to_owned();
    if text.chars().count() > 2200 {
        return Err(GraphError::param("(#100) The comment is too long"));
    }
    let now = ctx.now;
    ctx.sb.write(|st| {
        let enabled = st.media.get(media_id).is_some_and(|m| m.is_comment_enabled);
        if !enabled {
            return Err(GraphError::param(
                "(#100) Comments are disabled for this media",
            ));
        }
        let username = st
            .users
            .get(&ctx.rec.user_id)
            .map(|u| u.username.clone())
            .unwrap_or_default();
        let id = new_object_id();
        let seq = st.next_comment_seq();
        st.comments.insert(
            id.clone(),
            Comment {
                id: id.clone(),
                media_id: media_id.to_owned(),
                parent_id: parent.map(str::to_owned),
                from_id: ctx.rec.user_id.clone(),
                username,
                text,
                timestamp: now,
                hidden: false,
                like_count: 0,
                seq,
            },
        );
        Ok(json!({ "id": id }))
    })
}

pub fn media_comments(ctx: &Ctx<'_>, media_id: &str) -> GraphResult {
    match *ctx.method() {
        Method::GET => {
            need_scope(ctx, false)?;
            let fields = ctx.fields()?;
            ctx.sb.read(|st| {
                list(
                    ctx,
                    st,
                    media_id,
                    None,
                    fields.as_deref(),
                    &PageArgs::from_request(ctx),
                )
            })
        }
        Method::POST => create(ctx, media_id, None),
        ref m => Err(GraphError::unsupported_method(m.as_str())),
    }
}

pub fn replies(ctx: &Ctx<'_>, comment_id: &str) -> GraphResult {
    let media_id = ctx
        .sb
        .read(|st| st.comments.get(comment_id).map(|c| c.media_id.clone()))
        .ok_or_else(|| GraphError::no_such_object(comment_id))?;
    match *ctx.method() {
        Method::GET => {
            need_scope(ctx, false)?;
            let fields = ctx.fields()?;
            ctx.sb.read(|st| {
                list(
                    ctx,
                    st,
                    &media_id,
                    Some(comment_id),
                    fields.as_deref(),
                    &PageArgs::from_request(ctx),
                )
            })
        }
        Method::POST => create(ctx, &media_id, Some(comment_id)),
        ref m => Err(GraphError::unsupported_method(m.as_str())),
    }
}

pub fn comment_node(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    match *ctx.method() {
        Method::GET => {
            need_scope(ctx, false)?;
            let fields = ctx.fields()?.unwrap_or_else(|| default_fields(&DEFAULT));
            ctx.sb.read(|st| {
                let c = st
                    .comments
                    .get(id)
                    .ok_or_else(|| GraphError::no_such_object(id))?;
                render(ctx, st, c, &fields)
            })
        }
        Method::POST => {
            need_scope(ctx, true)?;
            let hide = match ctx.param("hide") {
                Some("true") => true,
                Some("false") => false,
                _ => return Err(GraphError::param("(#100) Param hide must be a boolean")),
            };
            ctx.sb.write(|st| {
                if let Some(c) = st.comments.get_mut(id) {
                    c.hidden = hide;
                }
            });
            Ok(json!({ "success": true }))
        }
        Method::DELETE => {
            need_scope(ctx, true)?;
            ctx.sb.write(|st| {
                st.comments.remove(id);
                st.comments
                    .retain(|_, c| c.parent_id.as_deref() != Some(id));
            });
            Ok(json!({ "success": true }))
        }
        ref m => Err(GraphError::unsupported_method(m.as_str())),
    }
}

fn render(ctx: &Ctx<'_>, st: &State, c: &Comment, fields: &[FieldSel]) -> GraphResult {
    select(fields, "IGComment", |f| {
        Ok(match f.name.as_str() {
            "id" => FieldVal::Val(json!(c.id)),
            "text" => FieldVal::Val(json!(c.text)),
            "timestamp" => FieldVal::Val(json!(graph_timestamp(c.timestamp))),
            "username" => FieldVal::Val(json!(c.username)),
            "from" => FieldVal::Val(json!({ "id": c.from_id, "username": c.username })),
            "like_count" => FieldVal::Val(json!(c.like_count)),
            "hidden" => FieldVal::Val(json!(c.hidden)),
            "media" => FieldVal::Val(json!({ "id": c.media_id })),
            "parent_id" => c
                .parent_id
                .as_ref()
                .map_or(FieldVal::Absent, |p| FieldVal::Val(json!(p))),
            "replies" => FieldVal::Val(list(
                ctx,
                st,
                &c.media_id,
                Some(&c.id),
                f.sub.as_deref(),
                &PageArgs::from_field(f),
            )?),
            _ => FieldVal::Unknown,
        })
    })
}
