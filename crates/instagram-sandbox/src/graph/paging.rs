//! Cursor paging as Graph does it: `limit`, `after`, `before`, and a `paging` object whose
//! `next` / `previous` URLs lead back to this host and carry the access token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::{Ctx, FieldSel, fields_to_string};
use crate::errors::GraphError;

pub const DEFAULT_LIMIT: usize = 25;
pub const MAX_LIMIT: usize = 100;

pub fn cursor(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("QVFI:{id}"))
}

fn uncursor(c: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(c.trim_end_matches('=')).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("QVFI:")
        .map(str::to_owned)
}

/// Where a page starts and ends, and its requested size.
pub struct Window {
    pub start: usize,
    pub end: usize,
    pub limit: usize,
}

pub struct PageArgs<'a> {
    pub limit: Option<&'a str>,
    pub after: Option<&'a str>,
    pub before: Option<&'a str>,
}

impl<'a> PageArgs<'a> {
    pub fn from_request(ctx: &'a Ctx<'_>) -> Self {
        Self {
            limit: ctx.param("limit"),
            after: ctx.param("after"),
            before: ctx.param("before"),
        }
    }

    /// For an expanded edge (`media.limit(5){…}`).
    pub fn from_field(f: &'a FieldSel) -> Self {
        Self {
            limit: f.arg("limit"),
            after: f.arg("after"),
            before: f.arg("before"),
        }
    }
}

/// Picks the window of `ids` (already in display order) the arguments ask for.
pub fn window(ids: &[String], args: &PageArgs<'_>) -> Result<Window, GraphError> {
    let limit = match args.limit {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .trim()
            .parse::<usize>()
            .map_err(|_| GraphError::param("(#100) Param limit must be a positive integer"))?
            .clamp(1, MAX_LIMIT),
    };
    let find = |c: &str| -> Result<usize, GraphError> {
        let id = uncursor(c).ok_or_else(|| GraphError::param("(#100) Invalid cursor"))?;
        // A cursor to an item that has since gone: start from the end, as Graph does
        // with stale cursors (they are not durable).
        Ok(ids.iter().position(|i| *i == id).unwrap_or(ids.len()))
    };
    if let Some(after) = args.after {
        let pos = find(after)?;
        let start = (pos + 1).min(ids.len());
        return Ok(Window {
            start,
            end: (start + limit).min(ids.len()),
            limit,
        });
    }
    if let Some(before) = args.before {
        let end = find(before)?.min(ids.len());
        return Ok(Window {
            start: end.saturating_sub(limit),
            end,
            limit,
        });
    }
    Ok(Window {
        start: 0,
        end: limit.min(ids.len()),
        limit,
    })
}

/// The `paging` object; `edge_path` is e.g. `/17841…/media`.
pub fn paging(
    ctx: &Ctx<'_>,
    edge_path: &str,
    ids: &[String],
    w: &Window,
    fields: Option<&[FieldSel]>,
) -> Option<Value> {
    if w.start >= w.end {
        return None;
    }
    let first = &ids[w.start];
    let last = &ids[w.end - 1];
    let mut p = Map::new();
    p.insert(
        "cursors".into(),
        json!({ "before": cursor(first), "after": cursor(last) }),
    );
    let url = |key: &str, c: &str| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("access_token", ctx.token);
        if let Some(f) = fields {
            q.append_pair("fields", &fields_to_string(f));
        }
        q.append_pair("limit", &w.limit.to_string());
        q.append_pair(key, c);
        format!(
            "{}{}{}?{}",
            ctx.origin(),
            ctx.version_prefix(),
            edge_path,
            q.finish()
        )
    };
    if w.end < ids.len() {
        p.insert("next".into(), json!(url("after", &cursor(last))));
    }
    if w.start > 0 {
        p.insert("previous".into(), json!(url("before", &cursor(first))));
    }
    Some(Value::Object(p))
}

/// `{"data": [...], "paging": {...}}`.
pub fn page(data: Vec<Value>, paging: Option<Value>) -> Value {
    match paging {
        Some(p) => json!({ "data": data, "paging": p }),
        None => json!({ "data": data }),
    }
}
