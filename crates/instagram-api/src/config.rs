//! Where the client sends its requests and how long it waits.

use std::time::Duration;

use url::Url;

use crate::error::Error;

/// Endpoints, Graph version and timeouts.
///
/// [`Config::default`] targets the real Instagram Platform. Point the three URLs at any server
/// that speaks the same protocol (such as `instagram-sandbox`) to run against it instead; a
/// path prefix in a URL is kept (`http://127.0.0.1:9000/_fb` works as a Graph base).
///
/// ```
/// use instagram_api::Config;
///
/// let real = Config::default();
/// assert_eq!(real.graph_url.as_str(), "https://graph.instagram.com/");
///
/// let local = Config::for_base_url("http://127.0.0.1:9000".parse()?);
/// assert_eq!(local.token_url.as_str(), "http://127.0.0.1:9000/oauth/access_token");
/// # Ok::<(), url::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The login and consent page (`GET`, the user's browser goes there).
    pub authorize_url: Url,
    /// The code exchange (`POST`, `api.instagram.com`).
    pub token_url: Url,
    /// The Graph host; `access_token` and `refresh_access_token` hang directly off it.
    pub graph_url: Url,
    /// Prefix of versioned Graph paths, e.g. `v24.0`. Empty means "no prefix": Instagram then
    /// uses the version selected in the App Dashboard.
    pub graph_version: String,
    /// Limit for establishing a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Limit for a whole request, from sending to the last byte of the body.
    pub request_timeout: Duration,
}

/// Graph API version used when none is configured.
pub const DEFAULT_GRAPH_VERSION: &str = "v24.0";

impl Default for Config {
    fn default() -> Self {
        Self {
            authorize_url: static_url("https://www.instagram.com/oauth/authorize"),
            token_url: static_url("https://api.instagram.com/oauth/access_token"),
            graph_url: static_url("https://graph.instagram.com"),
            graph_version: DEFAULT_GRAPH_VERSION.to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// A configuration that serves every Instagram host from one origin, the layout of
    /// `instagram-sandbox`: `{base}/oauth/authorize`, `{base}/oauth/access_token` and the Graph
    /// paths directly under `{base}`.
    pub fn for_base_url(base: Url) -> Self {
        let mut base = base;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let join = |p: &str| base.join(p).unwrap_or_else(|_| base.clone());
        Self {
            authorize_url: join("oauth/authorize"),
            token_url: join("oauth/access_token"),
            graph_url: base.clone(),
            ..Self::default()
        }
    }

    /// Checks what [`crate::Client::new`] relies on.
    pub fn validate(&self) -> Result<(), Error> {
        for (name, url) in [
            ("authorize_url", &self.authorize_url),
            ("token_url", &self.token_url),
            ("graph_url", &self.graph_url),
        ] {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(Error::invalid_config(format!(
                    "{name} must be an http(s) URL"
                )));
            }
            if url.cannot_be_a_base() || url.host().is_none() {
                return Err(Error::invalid_config(format!("{name} must have a host")));
            }
            // Credentials in a base URL would end up in every request and every log line.
            if !url.username().is_empty() || url.password().is_some() {
                return Err(Error::invalid_config(format!(
                    "{name} must not contain credentials"
                )));
            }
            if url.fragment().is_some() {
                return Err(Error::invalid_config(format!(
                    "{name} must not have a fragment"
                )));
            }
        }
        if self.graph_url.query().is_some() || self.token_url.query().is_some() {
            return Err(Error::invalid_config(
                "token_url and graph_url must not have a query string",
            ));
        }
        if !self.graph_version.is_empty() && !is_version_segment(&self.graph_version) {
            return Err(Error::invalid_config(
                "graph_version must look like v24.0 (or be empty)",
            ));
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(Error::invalid_config("timeouts must be greater than zero"));
        }
        Ok(())
    }
}

/// `vNN` or `vNN.N`, the only shape Graph accepts as a version prefix.
pub(crate) fn is_version_segment(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else {
        return false;
    };
    let mut parts = rest.splitn(2, '.');
    let major = parts.next().unwrap_or_default();
    let minor_ok = parts
        .next()
        .is_none_or(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()));
    !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()) && minor_ok
}

// Literals only; `default_points_at_instagram` proves they parse.
#[allow(clippy::expect_used)]
fn static_url(s: &'static str) -> Url {
    Url::parse(s).expect("constant URL parses")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_points_at_instagram() {
        let c = Config::default();
        assert_eq!(
            c.authorize_url.as_str(),
            "https://www.instagram.com/oauth/authorize"
        );
        assert_eq!(
            c.token_url.as_str(),
            "https://api.instagram.com/oauth/access_token"
        );
        assert_eq!(c.graph_url.as_str(), "https://graph.instagram.com/");
        assert_eq!(c.graph_version, "v24.0");
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn base_url_keeps_prefix() {
        let c = Config::for_base_url(Url::parse("http://127.0.0.1:9/x").unwrap());
        assert_eq!(
            c.authorize_url.as_str(),
            "http://127.0.0.1:9/x/oauth/authorize"
        );
        assert_eq!(c.graph_url.as_str(), "http://127.0.0.1:9/x/");
    }

    #[test]
    fn version_shapes() {
        assert!(is_version_segment("v24.0"));
        assert!(is_version_segment("v9"));
        assert!(!is_version_segment("24.0"));
        assert!(!is_version_segment("v24."));
        assert!(!is_version_segment("v"));
        assert!(!is_version_segment("vx.0"));
    }

    #[test]
    fn rejects_bad_config() {
        let bad = [
            Config {
                graph_version: "latest".into(),
                ..Config::default()
            },
            Config {
                request_timeout: Duration::ZERO,
                ..Config::default()
            },
            Config {
                token_url: Url::parse("ftp://example.com/").unwrap(),
                ..Config::default()
            },
            Config {
                graph_url: Url::parse("https://u:p@example.com/").unwrap(),
                ..Config::default()
            },
            Config {
                graph_url: Url::parse("https://example.com/?x=1").unwrap(),
                ..Config::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
        let unversioned = Config {
            graph_version: String::new(),
            ..Config::default()
        };
        assert!(unversioned.validate().is_ok());
    }
}
