//! Any Graph call, untyped: what a proxy needs.

use reqwest::Method;
use serde_json::Value;

use crate::client::{Call, Client};
use crate::error::Error;
use crate::secrets::AccessToken;
use crate::usage::Usage;

/// Parameters that the client sets itself and a caller must not smuggle in.
const RESERVED_PARAMS: &[&str] = &["access_token", "appsecret_proof"];

/// A Graph call described by method, path and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    /// `GET`, `POST` or `DELETE`.
    pub method: Method,
    /// Path below the version, e.g. `me/media` or `17895695668004550/insights`. A leading
    /// `vNN.N/` segment overrides the configured version.
    pub path: String,
    /// Query parameters for GET/DELETE, form fields for POST. Never `access_token`.
    pub params: Vec<(String, String)>,
}

impl RawRequest {
    /// A `GET` with the given parameters.
    pub fn get(path: impl Into<String>, params: Vec<(String, String)>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            params,
        }
    }

    /// A `POST` with the given form fields.
    pub fn post(path: impl Into<String>, params: Vec<(String, String)>) -> Self {
        Self {
            method: Method::POST,
            path: path.into(),
            params,
        }
    }

    /// A `DELETE`.
    pub fn delete(path: impl Into<String>, params: Vec<(String, String)>) -> Self {
        Self {
            method: Method::DELETE,
            path: path.into(),
            params,
        }
    }
}

/// A successful (2xx) Graph answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RawResponse {
    /// HTTP status (2xx; failures come back as [`Error`]).
    pub status: u16,
    /// The JSON body (`null` when empty). Access tokens are removed from every
    /// `paging.next` / `paging.previous` link.
    pub body: Value,
    /// Usage headers of the answer.
    pub usage: Usage,
}

impl Client {
    /// Makes any Graph call with the token and returns the JSON as it came.
    ///
    /// Graph errors are classified into [`Error`] like everywhere else;
    /// [`Error::to_graph_envelope`] rebuilds Instagram's error body for forwarding.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/doc_sandbox.rs"));
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let sb = doc_sandbox::start().await;
    /// # let client = sb.client.clone();
    /// # let token = sb.token().await;
    /// use instagram_api::RawRequest;
    ///
    /// let params = vec![("fields".into(), "id,caption".into()), ("limit".into(), "3".into())];
    /// let resp = client.raw(&token, RawRequest::get("me/media", params)).await?;
    /// assert_eq!(resp.status, 200);
    /// assert_eq!(resp.body["data"].as_array().map(Vec::len), Some(3));
    /// assert!(resp.usage.app.is_some()); // X-App-Usage, parsed
    /// # Ok(()) }
    /// ```
    pub async fn raw(&self, token: &AccessToken, req: RawRequest) -> Result<RawResponse, Error> {
        if !matches!(req.method, Method::GET | Method::POST | Method::DELETE) {
            return Err(Error::invalid_request(
                "Graph calls use GET, POST or DELETE",
            ));
        }
        let segments = split_path(&req.path)?;
        if let Some((k, _)) = req
            .params
            .iter()
            .find(|(k, _)| RESERVED_PARAMS.contains(&k.as_str()))
        {
            return Err(Error::invalid_request(format!(
                "parameter {k} is set by the client"
            )));
        }
        let url = self.graph_url(&segments)?;
        let reply = self
            .send(Call::graph("raw", req.method, url, token, req.params))
            .await?;
        let mut body = reply.body;
        crate::paging::strip_paging_tokens(&mut body);
        Ok(RawResponse {
            status: reply.status,
            body,
            usage: reply.usage,
        })
    }
}

/// Splits `me/media` into segments, refusing anything that could leave the Graph path or
/// smuggle a query string.
fn split_path(path: &str) -> Result<Vec<&str>, Error> {
    let path = path.trim_matches('/');
    if path.is_empty() {
        return Err(Error::invalid_request("empty Graph path"));
    }
    if path.contains(['?', '#', '\\']) || path.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid_request(
            "Graph path must not contain a query, fragment, backslash or whitespace",
        ));
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == ".." || s.contains('%'))
    {
        return Err(Error::invalid_request(
            "Graph path has an empty, relative or encoded segment",
        ));
    }
    Ok(segments)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(split_path("/me/media/").unwrap(), ["me", "media"]);
        for bad in [
            "",
            "/",
            "me?x=1",
            "me#x",
            "../x",
            "me//media",
            "me/%2e%2e",
            "me media",
        ] {
            assert!(split_path(bad).is_err(), "{bad}");
        }
    }
}
