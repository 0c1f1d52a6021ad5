//! Redirect URIs and return URLs: checked once, then stored and sent exactly.

use url::Url;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("{what} `{given}` is not an absolute URL: {reason}")]
    NotAbsolute {
        what: &'static str,
        given: String,
        reason: String,
    },
    #[error("{what} `{given}` must use http or https")]
    Scheme { what: &'static str, given: String },
    #[error("{what} `{given}` must not contain a #fragment")]
    Fragment { what: &'static str, given: String },
    #[error(
        "return_url `{given}` does not lie on any of the app's return_origins ({origins}); add its origin to the app"
    )]
    NotAllowedOrigin { given: String, origins: String },
}

fn check(what: &'static str, s: &str) -> Result<Url, UrlError> {
    let given: String = s.chars().take(200).collect();
    let url = Url::parse(s).map_err(|e| UrlError::NotAbsolute {
        what,
        given: given.clone(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(UrlError::Scheme { what, given });
    }
    if url.fragment().is_some() || s.contains('#') {
        return Err(UrlError::Fragment { what, given });
    }
    Ok(url)
}

/// Instagram compares the redirect URI byte for byte, so we keep the caller's
/// string, not `Url`'s normalised form.
pub fn validate_redirect_uri(s: &str) -> Result<String, UrlError> {
    check("redirect_uri", s)?;
    Ok(s.to_string())
}

/// An origin as `scheme://host[:port]`, the only form return_origins hold.
pub fn normalize_origin(s: &str) -> Result<String, UrlError> {
    let url = check("return origin", s)?;
    Ok(url.origin().ascii_serialization())
}

pub fn check_return_url(s: &str, origins: &[String]) -> Result<String, UrlError> {
    let url = check("return_url", s)?;
    let origin = url.origin().ascii_serialization();
    if origins.contains(&origin) {
        Ok(s.to_string())
    } else {
        Err(UrlError::NotAllowedOrigin {
            given: s.chars().take(200).collect(),
            origins: if origins.is_empty() {
                "none registered".into()
            } else {
                origins.join(", ")
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_kept_verbatim() {
        assert_eq!(
            validate_redirect_uri("https://a.example/cb/").as_deref(),
            Ok("https://a.example/cb/")
        );
        assert!(validate_redirect_uri("/cb").is_err());
        assert!(validate_redirect_uri("ftp://a.example/cb").is_err());
        assert!(validate_redirect_uri("https://a.example/cb#x").is_err());
    }

    #[test]
    fn return_urls_must_be_on_a_registered_origin() {
        let origins = vec![normalize_origin("https://app.example/").unwrap_or_default()];
        assert!(check_return_url("https://app.example/done?x=1", &origins).is_ok());
        let e = check_return_url("https://evil.example/done", &origins).unwrap_err();
        assert!(e.to_string().contains("return_origins"));
    }
}
