//! Cursor paging: `{"data": [...], "paging": {"cursors": {...}, "next": "…"}}`.
//!
//! Real Instagram may put the caller's `access_token` into `paging.next`; such URLs are
//! stripped of it as soon as they are decoded, so a [`Page`] can be logged or handed on
//! safely. Following `next` re-adds the token the normal way, and only ever sends it to the
//! configured Graph origin.

use futures::StreamExt;
use futures::stream::{self, BoxStream, TryStreamExt};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use url::Url;

use crate::client::{Call, Client};
use crate::error::Error;
use crate::secrets::AccessToken;

/// Query parameters that must never survive in a paging URL.
const SECRET_PARAMS: &[&str] = &["access_token", "appsecret_proof", "client_secret"];

/// One page of an edge.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Page<T> {
    /// The items; a page may be empty and still have a `next`.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// Cursors and links; absent on edges that do not page.
    #[serde(default)]
    pub paging: Option<Paging>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self {
            data: Vec::new(),
            paging: None,
        }
    }
}

impl<T> Page<T> {
    /// The link to the next page; `None` means this is the last one.
    pub fn next_url(&self) -> Option<&str> {
        self.paging.as_ref()?.next.as_deref()
    }

    /// The `after` cursor, for callers that page with `after=` themselves.
    pub fn after_cursor(&self) -> Option<&str> {
        self.paging.as_ref()?.cursors.as_ref()?.after.as_deref()
    }
}

/// `paging` of a Graph edge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Paging {
    /// Opaque, non-durable cursors.
    #[serde(default)]
    pub cursors: Option<Cursors>,
    /// Link to the next page, without any access token.
    #[serde(default, deserialize_with = "paging_url")]
    pub next: Option<String>,
    /// Link to the previous page, without any access token.
    #[serde(default, deserialize_with = "paging_url")]
    pub previous: Option<String>,
}

/// `paging.cursors`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Cursors {
    /// Cursor of the first item of the page.
    #[serde(default)]
    pub before: Option<String>,
    /// Cursor of the last item of the page.
    #[serde(default)]
    pub after: Option<String>,
}

fn paging_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|u| strip_secret_params(&u)))
}

/// Removes token-bearing query parameters from a URL. Text that is not a URL is dropped
/// entirely: it cannot be followed, and it cannot be checked for secrets either.
pub(crate) fn strip_secret_params(raw: &str) -> String {
    let Ok(mut url) = Url::parse(raw) else {
        return String::new();
    };
    if url
        .query_pairs()
        .any(|(k, _)| SECRET_PARAMS.contains(&k.as_ref()))
    {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !SECRET_PARAMS.contains(&k.as_ref()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    url.to_string()
}

/// Applies [`strip_secret_params`] to every `paging.next` / `paging.previous` in a body,
/// including those of expanded edges (`children{…}`, `comments{…}`).
pub(crate) fn strip_paging_tokens(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(paging)) = map.get_mut("paging") {
                for key in ["next", "previous"] {
                    if let Some(Value::String(u)) = paging.get_mut(key) {
                        *u = strip_secret_params(u);
                    }
                }
            }
            for v in map.values_mut() {
                strip_paging_tokens(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_paging_tokens),
        _ => {}
    }
}

impl Client {
    /// Fetches the page after `page`, or `None` when `page` is the last one.
    ///
    /// The `next` link is re-based onto the configured Graph URL when it names another host
    /// (a sandbox may hard-code Instagram's), so the token never goes anywhere else.
    pub async fn next_page<T: DeserializeOwned>(
        &self,
        token: &AccessToken,
        page: &Page<T>,
    ) -> Result<Option<Page<T>>, Error> {
        let Some(next) = page.next_url() else {
            return Ok(None);
        };
        let url = self.resolve_next(next)?;
        self.fetch_page(token, url).await.map(Some)
    }

    pub(crate) async fn fetch_page<T: DeserializeOwned>(
        &self,
        token: &AccessToken,
        url: Url,
    ) -> Result<Page<T>, Error> {
        // The link carries its own query (fields, limit, after); nothing is added but auth.
        let reply = self
            .send(Call::graph(
                "next_page",
                Method::GET,
                url,
                token,
                Vec::new(),
            ))
            .await?;
        reply.decode(&[token.expose_secret()])
    }

    pub(crate) fn resolve_next(&self, next: &str) -> Result<Url, Error> {
        let next = Url::parse(&strip_secret_params(next))
            .map_err(|_| Error::paging("paging.next is not a URL"))?;
        let base = &self.config().graph_url;
        if next.scheme() == base.scheme()
            && next.host() == base.host()
            && next.port_or_known_default() == base.port_or_known_default()
        {
            return Ok(next);
        }
        let mut rebased = base.clone();
        let prefix = base.path().trim_end_matches('/');
        rebased.set_path(&format!("{prefix}{}", next.path()));
        rebased.set_query(next.query());
        tracing::debug!("paging.next named another host; rebased onto graph_url");
        Ok(rebased)
    }

    /// Streams every item of an edge, following `paging.next` until it is absent. Stops
    /// with [`Error::Paging`] if a link repeats itself. Boxed so that callers can use
    /// `next()` without pinning.
    pub(crate) fn paginate<T>(
        &self,
        token: &AccessToken,
        first: Result<(Url, Vec<(String, String)>), Error>,
    ) -> BoxStream<'static, Result<T, Error>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        enum State {
            First(Url, Vec<(String, String)>),
            Next(Url),
            Done,
        }
        let client = self.clone();
        let token = token.clone();
        let start = match first {
            Ok((url, params)) => Ok(State::First(url, params)),
            Err(e) => Err(e),
        };
        let pages = stream::try_unfold(Some(start), move |state| {
            let client = client.clone();
            let token = token.clone();
            async move {
                let state = match state {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(s)) => s,
                };
                let (page, current): (Page<T>, Option<Url>) = match state {
                    State::Done => return Ok(None),
                    State::First(url, params) => {
                        let call = Call::graph("page", Method::GET, url, &token, params);
                        let reply = client.send(call).await?;
                        (reply.decode(&[token.expose_secret()])?, None)
                    }
                    State::Next(url) => (client.fetch_page(&token, url.clone()).await?, Some(url)),
                };
                // A bad link ends the stream with an error, but only after this page's items.
                let next = match page.next_url() {
                    None => Ok(State::Done),
                    Some(n) => client.resolve_next(n).and_then(|url| {
                        if current.as_ref() == Some(&url) {
                            Err(Error::paging("paging.next points at the same page again"))
                        } else {
                            Ok(State::Next(url))
                        }
                    }),
                };
                Ok(Some((page.data, Some(next))))
            }
        });
        pages
            .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn decoding_strips_tokens_from_links() {
        let page: Page<Value> = serde_json::from_str(
            r#"{"data":[],"paging":{"next":"https://graph.instagram.com/v25.0/1/media?access_token=IGAAsecret&after=X&limit=2","previous":"https://graph.instagram.com/v25.0/1/media?access_token=IGAAsecret"}}"#,
        )
        .unwrap();
        assert_eq!(
            page.next_url(),
            Some("https://graph.instagram.com/v25.0/1/media?after=X&limit=2")
        );
        assert_eq!(
            page.paging.unwrap().previous.as_deref(),
            Some("https://graph.instagram.com/v25.0/1/media")
        );
    }

    #[test]
    fn nested_paging_in_raw_bodies_is_stripped() {
        let mut v: Value = serde_json::from_str(
            r#"{"data":[{"children":{"data":[],"paging":{"next":"https://h/x?access_token=T&a=1"}}}]}"#,
        )
        .unwrap();
        strip_paging_tokens(&mut v);
        assert_eq!(
            v["data"][0]["children"]["paging"]["next"],
            "https://h/x?a=1"
        );
    }

    #[test]
    fn foreign_next_is_rebased() {
        let client = Client::new(Config::for_base_url(
            "http://127.0.0.1:7/pre".parse().unwrap(),
        ))
        .unwrap();
        let url = client
            .resolve_next("https://graph.instagram.com/v25.0/1/media?after=X")
            .unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:7/pre/v25.0/1/media?after=X");
        let url = client
            .resolve_next("http://127.0.0.1:7/pre/v25.0/1/media?after=Y")
            .unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:7/pre/v25.0/1/media?after=Y");
        assert!(client.resolve_next("not a url").is_err());
    }
}
