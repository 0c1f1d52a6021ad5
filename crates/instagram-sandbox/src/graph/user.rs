//! The IG user node (`/me`, `/{ig-user-id}`) and its `subscribed_apps` edge.

use axum::http::Method;
use serde_json::{Value, json};

use super::{Ctx, FieldSel, FieldVal, GraphResult, default_fields, media, select};
use crate::errors::GraphError;
use crate::state::{SCOPE_COMMENTS, SCOPE_MESSAGES, State, User, pair_key};

pub fn node(ctx: &Ctx<'_>) -> GraphResult {
    if *ctx.method() != Method::GET {
        return Err(GraphError::unsupported_method(ctx.method().as_str()));
    }
    let fields = ctx.fields()?.unwrap_or_else(|| default_fields(&["id"]));
    ctx.sb.read(|st| {
        let user = st
            .users
            .get(&ctx.rec.user_id)
            .ok_or_else(GraphError::unknown_token)?;
        let scoped = st
            .peek_scoped_id(&ctx.rec.client_id, &ctx.rec.user_id)
            .ok_or_else(GraphError::unknown_token)?;
        select(&fields, "User", |f| user_field(ctx, st, user, scoped, f))
    })
}

fn user_field(
    ctx: &Ctx<'_>,
    st: &State,
    u: &User,
    scoped: u64,
    f: &FieldSel,
) -> Result<FieldVal, GraphError> {
    Ok(FieldVal::Val(match f.name.as_str() {
        "id" => json!(scoped.to_string()),
        "user_id" => json!(u.user_id),
        "username" => json!(u.username),
        "name" => json!(u.name),
        "account_type" => json!(u.account_type),
        "profile_picture_url" => json!(u.profile_picture_url),
        "followers_count" => json!(u.followers_count),
        "follows_count" => json!(u.follows_count),
        "media_count" => json!(media::feed_count(st, u)),
        "biography" => json!(u.biography),
        "website" => json!(u.website),
        "media" => media::media_edge(ctx, st, u, f)?,
        _ => return Ok(FieldVal::Unknown),
    }))
}

fn field_scope(field: &str) -> Option<&'static str> {
    match field {
        "comments" | "live_comments" | "mentions" => Some(SCOPE_COMMENTS),
        "messages"
        | "messaging_postbacks"
        | "messaging_seen"
        | "messaging_referral"
        | "message_reactions"
        | "messaging_optins"
        | "messaging_handover"
        | "standby" => Some(SCOPE_MESSAGES),
        "story_insights" => Some(crate::state::SCOPE_BASIC),
        _ => None,
    }
}

/// `me/subscribed_apps`: which webhook fields this app receives for this account.
pub fn subscribed_apps(ctx: &Ctx<'_>) -> GraphResult {
    let key = pair_key(&ctx.rec.client_id, &ctx.rec.user_id);
    match *ctx.method() {
        Method::GET => Ok(ctx.sb.read(|st| {
            let data: Vec<Value> = st
                .subscriptions
                .get(&key)
                .map(|fields| vec![json!({ "id": ctx.rec.client_id, "subscribed_fields": fields })])
                .unwrap_or_default();
            json!({ "data": data })
        })),
        Method::POST => {
            let raw = ctx
                .param("subscribed_fields")
                .ok_or_else(|| GraphError::param("The parameter subscribed_fields is required"))?;
            let fields: Vec<String> = raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            for f in &fields {
                let scope = field_scope(f).ok_or_else(|| {
                    GraphError::param(format!(
                        "(#100) Param subscribed_fields must be one of {{comments, live_comments, mentions, messages, message_reactions, messaging_postbacks, messaging_seen, messaging_referral, messaging_optins, messaging_handover, standby, story_insights}} - got \"{f}\""
                    ))
                })?;
                ctx.require_scope(scope, GraphError::permission_200(scope))?;
            }
            ctx.sb.write(|st| st.subscriptions.insert(key, fields));
            Ok(json!({ "success": true }))
        }
        Method::DELETE => {
            ctx.sb.write(|st| st.subscriptions.remove(&key));
            Ok(json!({ "success": true }))
        }
        ref m => Err(GraphError::unsupported_method(m.as_str())),
    }
}
