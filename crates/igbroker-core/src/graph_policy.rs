//! Which Graph API calls the broker makes on a caller's behalf.
//!
//! The proxy holds tokens its callers may not read, so it works by allow-list: a node
//! (`me` or a numeric id), optionally one known edge, with GET, POST or DELETE. Token and
//! OAuth endpoints, and the parameters Graph treats as instructions rather than data
//! (`access_token`, `method`, `batch`, …), are refused before anything leaves the broker.
//! The scope a call needs follows from the method the broker will actually send, which is
//! the HTTP method, since `method=` overrides are refused.

use std::fmt;

use crate::scopes::{ApiScope, InstagramScope, required_for};

/// Edges of Instagram Login objects the proxy forwards.
pub const EDGES: &[&str] = &[
    "media",
    "children",
    "comments",
    "replies",
    "insights",
    "media_publish",
    "content_publishing_limit",
    "stories",
    "tags",
    "mentioned_media",
    "mentioned_comment",
    "live_media",
    "subscribed_apps",
    "messages",
    "conversations",
];

/// Parameters the broker sets itself or that change what Graph does with a call.
pub const RESERVED_PARAMS: &[&str] = &[
    "access_token",
    "appsecret_proof",
    "appsecret_time",
    "method",
    "batch",
    "callback",
    "jsonp",
    "suppress_http_code",
    "suppress_response_codes",
    "include_headers",
    "transport",
    "debug",
    "client_id",
    "client_secret",
    "grant_type",
    "redirect_uri",
    "code",
    "fb_exchange_token",
    "input_token",
];

/// Path segments that name token or OAuth endpoints, refused wherever they appear.
const TOKEN_ENDPOINTS: &[&str] = &[
    "access_token",
    "refresh_access_token",
    "oauth",
    "debug_token",
    "dialog",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphMethod {
    Get,
    Post,
    Delete,
}

impl GraphMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            GraphMethod::Get => "GET",
            GraphMethod::Post => "POST",
            GraphMethod::Delete => "DELETE",
        }
    }
}

/// A call the proxy may make, and what the caller and the account must hold for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphRoute {
    pub method: GraphMethod,
    /// Without version or surrounding slashes, e.g. `me` or `17841400000000001/media`.
    pub path: String,
    /// Scopes the account's token must carry.
    pub instagram_scopes: Vec<InstagramScope>,
    /// Scopes the API key must carry.
    pub api_scopes: Vec<ApiScope>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphRefusal {
    Method(String),
    Path(String),
    TokenEndpoint(String),
    Version,
    UnknownEdge(String),
    Reserved(String),
}

impl fmt::Display for GraphRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphRefusal::Method(m) => write!(
                f,
                "the Graph proxy sends GET, POST or DELETE only, not `{m}`"
            ),
            GraphRefusal::Path(p) => write!(
                f,
                "`{p}` is not a Graph API path like `me` or `17841400000000001/media`"
            ),
            GraphRefusal::TokenEndpoint(p) => write!(
                f,
                "`{p}` is a token or OAuth endpoint: the broker manages tokens itself and never proxies these (read a token with GET /v1/accounts/{{id}}/token and the tokens:read scope)"
            ),
            GraphRefusal::Version => f.write_str(
                "leave the version out of the path: the broker adds instagram.graph_version",
            ),
            GraphRefusal::UnknownEdge(e) => write!(
                f,
                "`{e}` is not a Graph edge the broker forwards; known edges: {}",
                EDGES.join(", ")
            ),
            GraphRefusal::Reserved(k) => write!(
                f,
                "the parameter `{k}` is reserved: the broker sets the token and the method itself, and does not forward `{}`",
                RESERVED_PARAMS.join("`, `")
            ),
        }
    }
}

impl std::error::Error for GraphRefusal {}

fn shown(s: &str) -> String {
    s.chars().take(80).collect()
}

fn is_version(seg: &str) -> bool {
    let Some(rest) = seg.strip_prefix(['v', 'V']) else {
        return false;
    };
    !rest.is_empty()
        && rest.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// The parameter name as Graph would read it: `access_token[]` and `ACCESS_TOKEN` alike.
fn param_base(key: &str) -> String {
    key.split('[')
        .next()
        .unwrap_or(key)
        .trim()
        .to_ascii_lowercase()
}

/// Decides whether a proxied call may go out, from its HTTP method, its path after
/// `/graph/` and the names of every parameter in its query, form or JSON body.
pub fn check<'a>(
    method: &str,
    path: &str,
    param_keys: impl IntoIterator<Item = &'a str>,
) -> Result<GraphRoute, GraphRefusal> {
    let method = match method.to_ascii_uppercase().as_str() {
        "GET" => GraphMethod::Get,
        "POST" => GraphMethod::Post,
        "DELETE" => GraphMethod::Delete,
        _ => return Err(GraphRefusal::Method(shown(method))),
    };
    let p = path.trim_matches('/');
    if p.is_empty()
        || p.len() > 512
        || !p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b))
    {
        return Err(GraphRefusal::Path(shown(path)));
    }
    let segments: Vec<&str> = p.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return Err(GraphRefusal::Path(shown(path)));
    }
    // Token endpoints first, so that a versioned `v24.0/refresh_access_token` is named for
    // what it is rather than for its version.
    if segments
        .iter()
        .any(|s| TOKEN_ENDPOINTS.contains(&s.to_ascii_lowercase().as_str()))
    {
        return Err(GraphRefusal::TokenEndpoint(shown(p)));
    }
    if segments.first().is_some_and(|s| is_version(s)) {
        return Err(GraphRefusal::Version);
    }
    let node = segments[0];
    let node_ok = node == "me" || node.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !node_ok || segments.len() > 2 {
        return Err(GraphRefusal::Path(shown(p)));
    }
    if let Some(edge) = segments.get(1)
        && !EDGES.contains(edge)
    {
        return Err(GraphRefusal::UnknownEdge(shown(edge)));
    }
    for key in param_keys {
        let base = param_base(key);
        if RESERVED_PARAMS.contains(&base.as_str()) {
            return Err(GraphRefusal::Reserved(shown(key)));
        }
    }
    let instagram_scopes = required_for(method.as_str(), p);
    let mut api_scopes = vec![ApiScope::Graph];
    if method != GraphMethod::Get && instagram_scopes.contains(&InstagramScope::ContentPublish) {
        api_scopes.push(ApiScope::Publish);
    }
    Ok(GraphRoute {
        method,
        path: p.to_string(),
        instagram_scopes,
        api_scopes,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn none() -> Vec<&'static str> {
        Vec::new()
    }

    #[test]
    fn objects_and_known_edges_pass() {
        let r = check("GET", "/me/", ["fields"]).unwrap();
        assert_eq!(r.path, "me");
        assert_eq!(r.api_scopes, vec![ApiScope::Graph]);
        assert!(check("get", "17841400000000001/media", none()).is_ok());
        assert!(check("DELETE", "17900000000000001", none()).is_ok());
        let r = check("POST", "me/media_publish", ["creation_id"]).unwrap();
        assert_eq!(r.api_scopes, vec![ApiScope::Graph, ApiScope::Publish]);
        assert!(r.instagram_scopes.contains(&InstagramScope::ContentPublish));
    }

    #[test]
    fn token_endpoints_are_refused_with_or_without_version() {
        for p in [
            "refresh_access_token",
            "access_token",
            "oauth/access_token",
            "v24.0/refresh_access_token",
            "v21.0/oauth/access_token",
            "/v24.0/access_token/",
            "OAuth/Access_Token",
            "me/access_token",
            "debug_token",
        ] {
            for m in ["GET", "POST"] {
                assert!(
                    matches!(check(m, p, none()), Err(GraphRefusal::TokenEndpoint(_))),
                    "{m} {p}"
                );
            }
        }
    }

    #[test]
    fn anything_outside_the_allow_list_is_refused() {
        assert_eq!(check("GET", "v24.0/me", none()), Err(GraphRefusal::Version));
        assert!(matches!(
            check("GET", "me/permissions", none()),
            Err(GraphRefusal::UnknownEdge(_))
        ));
        for p in [
            "",
            "/",
            "me/../x",
            "me//media",
            "app",
            "me/media/extra",
            "a b",
        ] {
            assert!(
                matches!(check("GET", p, none()), Err(GraphRefusal::Path(_))),
                "{p:?}"
            );
        }
        assert!(matches!(
            check("PUT", "me", none()),
            Err(GraphRefusal::Method(_))
        ));
    }

    #[test]
    fn reserved_parameters_are_refused_in_any_spelling() {
        for k in [
            "access_token",
            "ACCESS_TOKEN",
            "access_token[]",
            "method",
            "batch",
            "callback",
            "suppress_http_code",
            "appsecret_proof",
            "grant_type",
        ] {
            assert!(
                matches!(check("GET", "me", [k]), Err(GraphRefusal::Reserved(_))),
                "{k}"
            );
        }
        // The refusal names the parameter, and a clear way forward.
        let e = check("GET", "me/media_publish", ["method"]).unwrap_err();
        assert!(e.to_string().contains("`method`"), "{e}");
    }

    #[test]
    fn the_publish_scope_follows_the_method_sent() {
        // `?method=post` cannot turn a GET into a publish: it is refused outright.
        assert!(check("GET", "me/media_publish", ["method"]).is_err());
        let r = check("GET", "me/content_publishing_limit", none()).unwrap();
        assert_eq!(r.api_scopes, vec![ApiScope::Graph]);
        let r = check("POST", "me/media", ["image_url"]).unwrap();
        assert!(r.api_scopes.contains(&ApiScope::Publish));
    }
}
