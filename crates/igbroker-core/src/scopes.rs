use std::fmt;
use std::str::FromStr;

/// The permissions of Instagram API with Instagram Login (the Jan 2025 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InstagramScope {
    BusinessBasic,
    ContentPublish,
    ManageMessages,
    ManageComments,
    ManageInsights,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScopeError {
    #[error(
        "`{0}` is a retired Instagram scope name; use `instagram_{0}` (Instagram stopped accepting the old names on 2025-01-27)"
    )]
    Retired(String),
    #[error(
        "`{0}` is a scope of the Instagram Basic Display API, which Instagram shut down on 2024-12-04; use instagram_business_basic (and other instagram_business_* scopes)"
    )]
    BasicDisplay(String),
    #[error("`{0}` is not an Instagram Login scope; known scopes: {1}")]
    Unknown(String, &'static str),
    #[error("`{0}` is not an API key scope; known scopes: {1}")]
    UnknownApiScope(String, &'static str),
    #[error(
        "scope list must include instagram_business_basic: Instagram requires it for every call, refresh included"
    )]
    MissingBasic,
}

const KNOWN: &str = "instagram_business_basic, instagram_business_content_publish, instagram_business_manage_messages, instagram_business_manage_comments, instagram_business_manage_insights";

impl InstagramScope {
    pub const ALL: [InstagramScope; 5] = [
        InstagramScope::BusinessBasic,
        InstagramScope::ContentPublish,
        InstagramScope::ManageMessages,
        InstagramScope::ManageComments,
        InstagramScope::ManageInsights,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            InstagramScope::BusinessBasic => "instagram_business_basic",
            InstagramScope::ContentPublish => "instagram_business_content_publish",
            InstagramScope::ManageMessages => "instagram_business_manage_messages",
            InstagramScope::ManageComments => "instagram_business_manage_comments",
            InstagramScope::ManageInsights => "instagram_business_manage_insights",
        }
    }

    /// Parses a comma- or space-separated list as Instagram's authorize URL takes it.
    pub fn parse_list(s: &str) -> Result<Vec<InstagramScope>, ScopeError> {
        let mut out: Vec<InstagramScope> = Vec::new();
        for part in s.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
            let scope = part.parse()?;
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Parses what a user or an app registration asked for: basic is mandatory.
    pub fn parse_requested<S: AsRef<str>>(items: &[S]) -> Result<Vec<InstagramScope>, ScopeError> {
        let joined = items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(",");
        let list = Self::parse_list(&joined)?;
        if !list.contains(&InstagramScope::BusinessBasic) {
            return Err(ScopeError::MissingBasic);
        }
        Ok(list)
    }

    pub fn join(scopes: &[InstagramScope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl FromStr for InstagramScope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        for scope in Self::ALL {
            if scope.as_str() == s {
                return Ok(scope);
            }
        }
        if matches!(
            s,
            "business_basic"
                | "business_content_publish"
                | "business_manage_messages"
                | "business_manage_comments"
        ) {
            return Err(ScopeError::Retired(s.to_string()));
        }
        if matches!(
            s,
            "user_profile"
                | "user_media"
                | "instagram_graph_user_profile"
                | "instagram_graph_user_media"
        ) {
            return Err(ScopeError::BasicDisplay(s.to_string()));
        }
        Err(ScopeError::Unknown(s.chars().take(80).collect(), KNOWN))
    }
}

impl fmt::Display for InstagramScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiScope {
    Admin,
    AppsWrite,
    Connect,
    AccountsRead,
    AccountsWrite,
    TokensRead,
    Graph,
    Publish,
    AuditRead,
}

const KNOWN_API: &str = "admin, apps:write, connect, accounts:read, accounts:write, tokens:read, graph, publish, audit:read";

impl ApiScope {
    pub const ALL: [ApiScope; 9] = [
        ApiScope::Admin,
        ApiScope::AppsWrite,
        ApiScope::Connect,
        ApiScope::AccountsRead,
        ApiScope::AccountsWrite,
        ApiScope::TokensRead,
        ApiScope::Graph,
        ApiScope::Publish,
        ApiScope::AuditRead,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ApiScope::Admin => "admin",
            ApiScope::AppsWrite => "apps:write",
            ApiScope::Connect => "connect",
            ApiScope::AccountsRead => "accounts:read",
            ApiScope::AccountsWrite => "accounts:write",
            ApiScope::TokensRead => "tokens:read",
            ApiScope::Graph => "graph",
            ApiScope::Publish => "publish",
            ApiScope::AuditRead => "audit:read",
        }
    }

    pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Vec<ApiScope>, ScopeError> {
        let mut out = Vec::new();
        for item in items {
            for part in item
                .as_ref()
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                let s: ApiScope = part.parse()?;
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// `admin` implies every other scope.
    pub fn granted_by(self, held: &[ApiScope]) -> bool {
        held.contains(&ApiScope::Admin) || held.contains(&self)
    }
}

impl FromStr for ApiScope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| ScopeError::UnknownApiScope(s.chars().take(80).collect(), KNOWN_API))
    }
}

impl fmt::Display for ApiScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_in_both_separators_and_dedupe() {
        let l = InstagramScope::parse_list(
            "instagram_business_basic instagram_business_content_publish,instagram_business_basic",
        )
        .unwrap_or_default();
        assert_eq!(
            l,
            vec![
                InstagramScope::BusinessBasic,
                InstagramScope::ContentPublish
            ]
        );
    }

    #[test]
    fn retired_names_are_refused_with_the_new_name() {
        let e = InstagramScope::parse_list("business_basic").unwrap_err();
        assert!(e.to_string().contains("instagram_business_basic"));
        assert!(matches!(
            InstagramScope::parse_list("email"),
            Err(ScopeError::Unknown(..))
        ));
    }

    #[test]
    fn basic_is_mandatory_for_requests() {
        assert_eq!(
            InstagramScope::parse_requested(&["instagram_business_content_publish"]),
            Err(ScopeError::MissingBasic)
        );
    }

    #[test]
    fn admin_grants_everything() {
        assert!(ApiScope::Graph.granted_by(&[ApiScope::Admin]));
        assert!(!ApiScope::Graph.granted_by(&[ApiScope::TokensRead]));
        assert!(ApiScope::parse_list(&["root"]).is_err());
    }
}

/// The Instagram scopes a Graph call needs, so that the broker can refuse a call
/// the account was never granted before it reaches Instagram.
pub fn required_for(method: &str, path: &str) -> Vec<InstagramScope> {
    let path = path.trim_matches('/').to_ascii_lowercase();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let has = |name: &str| segments.contains(&name);
    let write = !method.eq_ignore_ascii_case("GET");
    let mut need = vec![InstagramScope::BusinessBasic];
    if has("insights") {
        need.push(InstagramScope::ManageInsights);
    }
    if has("media_publish")
        || has("content_publishing_limit")
        || (write && segments.last() == Some(&"media"))
    {
        need.push(InstagramScope::ContentPublish);
    }
    if has("comments") || has("replies") || (write && segments.len() == 1 && segments[0] != "me") {
        need.push(InstagramScope::ManageComments);
    }
    if has("messages") || has("conversations") {
        need.push(InstagramScope::ManageMessages);
    }
    need.sort();
    need.dedup();
    need
}

#[cfg(test)]
mod required_tests {
    use super::*;

    #[test]
    fn basic_display_scopes_are_named_as_such() {
        let e = "user_profile".parse::<InstagramScope>().unwrap_err();
        assert_eq!(e, ScopeError::BasicDisplay("user_profile".into()));
        assert!(e.to_string().contains("2024-12-04"));
    }

    #[test]
    fn calls_map_to_the_scopes_instagram_checks() {
        assert_eq!(
            required_for("GET", "me"),
            vec![InstagramScope::BusinessBasic]
        );
        assert!(required_for("GET", "/17841/insights").contains(&InstagramScope::ManageInsights));
        assert!(required_for("POST", "me/media").contains(&InstagramScope::ContentPublish));
        assert!(!required_for("GET", "me/media").contains(&InstagramScope::ContentPublish));
        assert!(
            required_for("POST", "1789/media_publish").contains(&InstagramScope::ContentPublish)
        );
        assert!(required_for("GET", "1789/comments").contains(&InstagramScope::ManageComments));
        assert!(required_for("POST", "1789").contains(&InstagramScope::ManageComments));
    }
}
