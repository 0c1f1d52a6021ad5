//! Graph API paths of graph.instagram.com (and the refusal of graph.facebook.com's).
//!
//! Every call: find the token (parameter or `Authorization` header), resolve it to its
//! record (or answer the 190 Meta would), count it against the app + user budget, then
//! dispatch on the node (`me`, a user, media, container or comment id) and edge.

mod comments;
mod fields;
mod insights;
mod media;
mod paging;
mod publish;
mod user;

use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::dispatch::RoutePath;
use crate::errors::GraphError;
use crate::oauth::{bearer, check_token, with_info, with_info_hashed};
use crate::params::ParsedRequest;
use crate::ratelimit::{self, Usage};
use crate::state::{RateLimit, State, TokenRecord};
use crate::{Sandbox, lock};

pub use fields::{FieldSel, fields_to_string, parse_fields};

/// Everything a Graph handler needs about the call it is answering.
pub struct Ctx<'a> {
    pub sb: &'a Sandbox,
    pub req: &'a ParsedRequest,
    pub route: &'a RoutePath,
    pub token: &'a str,
    pub rec: &'a TokenRecord,
    pub now: i64,
}

impl Ctx<'_> {
    pub fn method(&self) -> &Method {
        &self.req.method
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.req.params.nonempty(name)
    }

    pub fn fields(&self) -> Result<Option<Vec<FieldSel>>, GraphError> {
        match self.req.params.get("fields") {
            None => Ok(None),
            Some(f) if f.trim().is_empty() => Ok(None),
            Some(f) => parse_fields(f).map(Some).map_err(GraphError::param),
        }
    }

    pub fn require_scope(&self, scope: &str, err: GraphError) -> Result<(), GraphError> {
        if self.rec.has_scope(scope) {
            Ok(())
        } else {
            Err(err)
        }
    }

    /// `scheme://host` of this request, for paging URLs that must lead back here.
    pub fn origin(&self) -> String {
        let h = &self.req.headers;
        let host = h
            .get("x-forwarded-host")
            .or_else(|| h.get(axum::http::header::HOST))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1");
        let scheme = h
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("http");
        format!("{scheme}://{host}")
    }

    /// `/vNN.N` when the request named one, so paging URLs keep the caller's version.
    pub fn version_prefix(&self) -> String {
        self.route
            .version
            .as_ref()
            .map(|v| format!("/{v}"))
            .unwrap_or_default()
    }
}

pub type GraphResult = Result<Value, GraphError>;

/// graph.facebook.com does not accept Instagram-login tokens at all.
pub fn reject_fb(req: &ParsedRequest) -> Response {
    match bearer(req) {
        Some(token) => with_info(
            GraphError::cannot_parse_token().into_response(),
            None,
            None,
            Some(&token),
        ),
        None => GraphError::missing_token().into_response(),
    }
}

/// Standard Access serves only the app's testers. Meta lets anyone else log in and exchange
/// the code; every later call with that token fails with the wrong-method text. Checked per
/// call, so adding the account as a tester (or switching the app to Advanced) takes effect at
/// once, as on Meta.
pub fn check_approved(st: &State, rec: &TokenRecord, method: &Method) -> Result<(), GraphError> {
    let admitted = match (st.apps.get(&rec.client_id), st.users.get(&rec.user_id)) {
        (Some(app), Some(user)) => app.admits(&user.username),
        _ => true,
    };
    if admitted {
        Ok(())
    } else {
        Err(GraphError::not_approved_for_user(method.as_str()))
    }
}

pub fn handle(sb: &Sandbox, req: &ParsedRequest, route: &RoutePath) -> Response {
    let is_me = route.segs.first().is_some_and(|s| s == "me");
    let Some(token) = bearer(req) else {
        return if is_me {
            GraphError::missing_token_me().into_response()
        } else {
            GraphError::missing_token().into_response()
        };
    };
    let now = sb.now();
    let checked = sb.read(
        |st| -> Result<(String, TokenRecord, RateLimit), GraphError> {
            let (key, rec) = check_token(st, &token, now)?;
            check_approved(st, &rec, &req.method)?;
            let limit = st
                .apps
                .get(&rec.client_id)
                .map(|a| a.rate_limit.clone())
                .unwrap_or_default();
            Ok((key, rec, limit))
        },
    );
    let (key, rec, limit) = match checked {
        Ok(v) => v,
        Err(e) => return with_info(e.into_response(), None, None, Some(&token)),
    };

    let usage = {
        let key = ratelimit::bucket_key(&limit, &rec.client_id, &rec.user_id);
        lock(&sb.inner.rates).hit(&key, now, &limit)
    };
    let resp = if usage.throttled {
        ratelimit::throttled_error(limit.code).into_response()
    } else {
        let ctx = Ctx {
            sb,
            req,
            route,
            token: &token,
            rec: &rec,
            now,
        };
        match route_call(&ctx) {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => e.into_response(),
        }
    };
    finish(resp, usage, &rec, key)
}

fn finish(mut resp: Response, usage: Usage, rec: &TokenRecord, token_key: String) -> Response {
    ratelimit::usage_headers(resp.headers_mut(), usage, &rec.user_id);
    with_info_hashed(
        resp,
        Some(&rec.client_id),
        Some(&rec.user_id),
        Some(token_key),
    )
}

/// What a path's first segment names.
pub enum Node {
    User,
    Media(String),
    Container(String),
    Comment(String),
}

/// Resolves a node id as seen by this token. Other users' objects do not exist for it: an
/// unknown or foreign id is 100/33, a name where an id belongs (an alias) is 803.
fn resolve_node(
    st: &State,
    rec: &TokenRecord,
    method: &Method,
    id: &str,
) -> Result<Node, GraphError> {
    if id == "me" || id == rec.user_id {
        return Ok(Node::User);
    }
    if let Ok(n) = id.parse::<u64>()
        && st.peek_scoped_id(&rec.client_id, &rec.user_id) == Some(n)
    {
        return Ok(Node::User);
    }
    if let Some(m) = st.media.get(id)
        && m.owner == rec.user_id
    {
        return Ok(Node::Media(id.to_owned()));
    }
    if let Some(c) = st.containers.get(id)
        && c.owner == rec.user_id
    {
        return Ok(Node::Container(id.to_owned()));
    }
    if let Some(c) = st.comments.get(id)
        && st
            .media
            .get(&c.media_id)
            .is_some_and(|m| m.owner == rec.user_id)
    {
        return Ok(Node::Comment(id.to_owned()));
    }
    if id.bytes().all(|b| b.is_ascii_digit()) {
        Err(GraphError::no_such_object_for(method.as_str(), id))
    } else {
        Err(GraphError::unknown_alias(id))
    }
}

fn route_call(ctx: &Ctx<'_>) -> GraphResult {
    let segs = &ctx.route.segs;
    let Some(first) = segs.first() else {
        return Err(GraphError::unsupported_get_root());
    };
    let node = ctx
        .sb
        .read(|st| resolve_node(st, ctx.rec, ctx.method(), first))?;
    match (node, segs.get(1).map(String::as_str), segs.len()) {
        (_, _, n) if n > 2 => Err(GraphError::unknown_path(&segs[2..])),
        (Node::User, None, _) => user::node(ctx),
        (Node::User, Some("media"), _) => match *ctx.method() {
            Method::POST => publish::create_container(ctx),
            Method::GET => media::list_user_media(ctx),
            ref m => Err(GraphError::unsupported_method(m.as_str())),
        },
        (Node::User, Some("media_publish"), _) => publish::publish(ctx),
        (Node::User, Some("content_publishing_limit"), _) => publish::limit(ctx),
        (Node::User, Some("insights"), _) => insights::user_insights(ctx),
        (Node::User, Some("subscribed_apps"), _) => user::subscribed_apps(ctx),
        (Node::User, Some("stories"), _) => media::list_stories(ctx),
        (Node::User, Some(_), _) => Err(GraphError::unknown_path(&segs[1..])),
        (Node::Media(id), None, _) => media::node(ctx, &id),
        (Node::Media(id), Some("children"), _) => media::children(ctx, &id),
        (Node::Media(id), Some("insights"), _) => insights::media_insights(ctx, &id),
        (Node::Media(id), Some("comments"), _) => comments::media_comments(ctx, &id),
        (Node::Media(_), Some(_), _) => Err(GraphError::unknown_path(&segs[1..])),
        (Node::Container(id), None, _) => publish::container_node(ctx, &id),
        (Node::Container(_), Some(_), _) => Err(GraphError::unknown_path(&segs[1..])),
        (Node::Comment(id), None, _) => comments::comment_node(ctx, &id),
        (Node::Comment(id), Some("replies"), _) => comments::replies(ctx, &id),
        (Node::Comment(_), Some(_), _) => Err(GraphError::unknown_path(&segs[1..])),
    }
}

/// One field of a node: a value, a field the node has but not for this object (omitted,
/// as Graph omits a missing caption), or a field the node type does not have.
pub enum FieldVal {
    Val(Value),
    Absent,
    Unknown,
}

/// Picks the requested fields from a node, failing on the first one the node type lacks.
/// `id` is always present, as on Graph.
pub fn select(
    fields: &[FieldSel],
    node_type: &str,
    mut get: impl FnMut(&FieldSel) -> Result<FieldVal, GraphError>,
) -> GraphResult {
    let mut out = Map::new();
    for f in fields {
        match get(f)? {
            FieldVal::Val(v) => {
                out.insert(f.name.clone(), v);
            }
            FieldVal::Absent => {}
            FieldVal::Unknown => return Err(GraphError::nonexisting_field(&f.name, node_type)),
        }
    }
    if !out.contains_key("id") {
        let id = FieldSel {
            name: "id".into(),
            sub: None,
            args: Vec::new(),
        };
        if let FieldVal::Val(v) = get(&id)? {
            out.insert("id".into(), v);
        }
    }
    Ok(Value::Object(out))
}

/// A field list from names, for defaults.
pub fn default_fields(names: &[&str]) -> Vec<FieldSel> {
    names
        .iter()
        .map(|n| FieldSel {
            name: (*n).to_owned(),
            sub: None,
            args: Vec::new(),
        })
        .collect()
}

/// The user's newest feed post, for events that need one.
pub fn newest_media(st: &State, u: &crate::state::User) -> Option<String> {
    media::feed_ids(st, u).into_iter().next()
}
