//! Followable pages: `paging.next` / `paging.previous` of a proxied answer become links
//! to the broker's own Graph route, which the caller follows with its API key. Nothing of
//! Instagram's link survives but its cursor: not the host, not the token, not a parameter
//! the allow-list would refuse.

use serde_json::Value;

/// Longest cursor the broker passes on; Instagram's are a few hundred characters.
pub const MAX_CURSOR_LEN: usize = 1024;

/// Parameters never copied into a link (the cursor is set afresh; the rest are secrets).
const DROPPED: &[&str] = &[
    "after",
    "before",
    "access_token",
    "appsecret_proof",
    "client_secret",
    "code",
];

/// Whether a caller's `after` / `before` value looks like a cursor: Graph's are
/// base64url text. Anything else is refused before a call is made.
pub fn is_cursor(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_CURSOR_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'.'))
}

/// The request whose answer is being rewritten.
pub struct Origin<'a> {
    /// `public_url`, without a trailing slash.
    pub public_url: &'a str,
    pub account_id: &'a str,
    /// The Graph path the caller asked for, e.g. `me/media`.
    pub path: &'a str,
    pub params: &'a [(String, String)],
}

/// Rewrites every paging link of `body`. The top-level links repeat the caller's own
/// request (path and parameters) with Instagram's cursor; links of expanded edges
/// (`children{…}`) keep Instagram's path, and are removed when the allow-list would refuse
/// it. A link without a usable cursor is removed: a caller can follow nothing else.
pub fn rewrite(body: &mut Value, origin: &Origin<'_>) {
    if let Some(Value::Object(paging)) = body.get_mut("paging") {
        for (key, cursor_name) in [("next", "after"), ("previous", "before")] {
            let Some(Value::String(link)) = paging.get(key) else {
                continue;
            };
            match cursor_of(link, cursor_name) {
                Some(cursor) => {
                    let mut params: Vec<(String, String)> = origin
                        .params
                        .iter()
                        .filter(|(k, _)| !DROPPED.contains(&k.as_str()))
                        .cloned()
                        .collect();
                    params.push((cursor_name.to_string(), cursor));
                    paging.insert(
                        key.into(),
                        Value::String(broker_link(origin, origin.path, &params)),
                    );
                }
                None => {
                    paging.remove(key);
                }
            }
        }
    }
    if let Value::Object(map) = body {
        for (k, v) in map.iter_mut() {
            if k != "paging" {
                rewrite_nested(v, origin);
            }
        }
    }
}

fn rewrite_nested(value: &mut Value, origin: &Origin<'_>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(paging)) = map.get_mut("paging") {
                for key in ["next", "previous"] {
                    let Some(Value::String(link)) = paging.get(key) else {
                        continue;
                    };
                    match nested_link(link, origin) {
                        Some(l) => paging.insert(key.into(), Value::String(l)),
                        None => paging.remove(key),
                    };
                }
            }
            for (k, v) in map.iter_mut() {
                if k != "paging" {
                    rewrite_nested(v, origin);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_nested(v, origin)),
        _ => {}
    }
}

/// The cursor `name` of an Instagram link, when it is one the broker would accept.
fn cursor_of(link: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(link).ok()?;
    let cursor = url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())?;
    is_cursor(&cursor).then_some(cursor)
}

/// An expanded edge's link, re-pointed at the broker when its path and parameters pass
/// the allow-list.
fn nested_link(link: &str, origin: &Origin<'_>) -> Option<String> {
    let url = url::Url::parse(link).ok()?;
    let mut segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    if segments.first().is_some_and(|s| is_version(s)) {
        segments.remove(0);
    }
    let path = segments.join("/");
    let params: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !DROPPED.contains(&k.as_ref()) || k == "after" || k == "before")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if params
        .iter()
        .any(|(k, v)| (k == "after" || k == "before") && !is_cursor(v))
    {
        return None;
    }
    igbroker_core::graph_policy::check("GET", &path, params.iter().map(|(k, _)| k.as_str()))
        .ok()?;
    Some(broker_link(origin, &path, &params))
}

fn is_version(seg: &str) -> bool {
    seg.strip_prefix('v').is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    })
}

fn broker_link(origin: &Origin<'_>, path: &str, params: &[(String, String)]) -> String {
    let encoded_path: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect())
        .collect();
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    let query = q.finish();
    let account: String =
        url::form_urlencoded::byte_serialize(origin.account_id.as_bytes()).collect();
    let base = format!(
        "{}/v1/accounts/{account}/graph/{}",
        origin.public_url.trim_end_matches('/'),
        encoded_path.join("/")
    );
    if query.is_empty() {
        base
    } else {
        format!("{base}?{query}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn origin(params: &[(String, String)]) -> Origin<'_> {
        Origin {
            public_url: "https://broker.example/",
            account_id: "acc_1",
            path: "me/media",
            params,
        }
    }

    #[test]
    fn top_level_links_repeat_the_request_with_the_cursor() {
        let params = vec![
            ("fields".to_string(), "id,caption".to_string()),
            ("limit".to_string(), "25".to_string()),
            ("after".to_string(), "OLD".to_string()),
        ];
        let mut body = json!({"data": [], "paging": {
            "cursors": {"after": "QVFIOjE"},
            "next": "https://graph.instagram.com/v24.0/1784/media?access_token=IGAAsecret&limit=25&after=QVFIOjE",
            "previous": "https://graph.instagram.com/v24.0/1784/media?before=QVFIOjA&access_token=IGAAsecret"
        }});
        rewrite(&mut body, &origin(&params));
        assert_eq!(
            body["paging"]["next"],
            "https://broker.example/v1/accounts/acc_1/graph/me/media?fields=id%2Ccaption&limit=25&after=QVFIOjE"
        );
        assert_eq!(
            body["paging"]["previous"],
            "https://broker.example/v1/accounts/acc_1/graph/me/media?fields=id%2Ccaption&limit=25&before=QVFIOjA"
        );
        let text = body.to_string();
        assert!(
            !text.contains("IGAA") && !text.contains("graph.instagram.com"),
            "{text}"
        );
    }

    #[test]
    fn links_without_a_usable_cursor_are_removed() {
        let mut body = json!({"paging": {
            "next": "https://graph.instagram.com/v24.0/1784/media?after=..%2F..%2Foauth",
            "previous": "not a url"
        }});
        rewrite(&mut body, &origin(&[]));
        assert_eq!(body["paging"], json!({}));
    }

    #[test]
    fn nested_links_keep_their_path_when_allowed() {
        let mut body = json!({"data": [{"children": {"data": [], "paging": {
            "next": "https://graph.instagram.com/v24.0/179/children?access_token=T&after=QUE"
        }}}, {"x": {"paging": {"next": "https://graph.instagram.com/oauth/access_token?after=QUE"}}}]});
        rewrite(&mut body, &origin(&[]));
        assert_eq!(
            body["data"][0]["children"]["paging"]["next"],
            "https://broker.example/v1/accounts/acc_1/graph/179/children?after=QUE"
        );
        assert!(body["data"][1]["x"]["paging"].get("next").is_none());
    }

    #[test]
    fn cursors() {
        assert!(is_cursor("QVFIUkZA3Y2t0d3pQ-_="));
        for bad in ["", "a/b", "a&access_token=x", "a b", "%2e", "a?b"] {
            assert!(!is_cursor(bad), "{bad}");
        }
        assert!(!is_cursor(&"a".repeat(MAX_CURSOR_LEN + 1)));
    }
}
