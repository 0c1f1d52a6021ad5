//! The HTTP client and the one place where requests are sent and answers classified.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, redirect};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;
use url::Url;

use crate::config::{Config, is_version_segment};
use crate::error::{Error, GraphErrorBody, ResponseContext, classify_error_body, classify_graph};
use crate::paging::strip_paging_tokens;
use crate::secrets::{AccessToken, ClientSecret, appsecret_proof, scrub};
use crate::usage::Usage;

/// Bodies larger than this are refused rather than buffered: no Instagram answer comes close.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How the access token travels on Graph calls.
///
/// The token endpoints (`access_token`, `refresh_access_token`) always take it as a query
/// parameter, as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenPlacement {
    /// `Authorization: Bearer …` — keeps the token out of URLs (and so out of proxy logs).
    #[default]
    Header,
    /// `access_token=…` in the query string (GET/DELETE) or form body (POST).
    Query,
}

/// A client for the Instagram Platform. Cheap to clone; clones share one connection pool.
///
/// Redirects are never followed (a redirect could carry a token to another host), and the
/// connect and request timeouts come from [`Config`].
///
/// ```
/// use instagram_api::{Client, Config};
///
/// let client = Client::new(Config::default())?;
/// assert_eq!(client.config().graph_version, "v24.0");
/// # Ok::<(), instagram_api::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<Config>,
    appsecret: Option<Arc<ClientSecret>>,
    token_placement: TokenPlacement,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("appsecret_proof", &self.appsecret.is_some())
            .field("token_placement", &self.token_placement)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client; fails when the configuration is unusable.
    pub fn new(config: Config) -> Result<Self, Error> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("instagram-api/", env!("CARGO_PKG_VERSION")))
            // Connections are kept and reused (HTTP/1.1 keep-alive, or HTTP/2 when the
            // server offers it through ALPN): a call does not pay for a handshake.
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::invalid_config(format!("HTTP client: {}", e.without_url())))?;
        Ok(Self {
            http,
            config: Arc::new(config),
            appsecret: None,
            token_placement: TokenPlacement::default(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sends `appsecret_proof` (HMAC of the token with this secret) on every Graph call.
    /// Only needed against `graph.facebook.com` apps that require it.
    #[must_use]
    pub fn with_appsecret_proof(mut self, secret: ClientSecret) -> Self {
        self.appsecret = Some(Arc::new(secret));
        self
    }

    /// Chooses how the token is sent on Graph calls (default: the `Authorization` header).
    #[must_use]
    pub fn with_token_placement(mut self, placement: TokenPlacement) -> Self {
        self.token_placement = placement;
        self
    }

    /// `{graph_url}/{version}/{segments…}`; a first segment that is itself a version replaces
    /// the configured one.
    pub(crate) fn graph_url(&self, segments: &[&str]) -> Result<Url, Error> {
        let versioned = segments.first().is_some_and(|s| is_version_segment(s));
        let version = (!versioned && !self.config.graph_version.is_empty())
            .then_some(self.config.graph_version.as_str());
        self.join(
            &self.config.graph_url,
            version.into_iter().chain(segments.iter().copied()),
        )
    }

    /// `{graph_url}/{segments…}` without a version (the token endpoints).
    pub(crate) fn graph_url_unversioned(&self, segments: &[&str]) -> Result<Url, Error> {
        self.join(&self.config.graph_url, segments.iter().copied())
    }

    fn join<'s>(&self, base: &Url, segments: impl Iterator<Item = &'s str>) -> Result<Url, Error> {
        let mut url = base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| Error::invalid_config("graph_url cannot be a base URL"))?;
            path.pop_if_empty();
            for s in segments {
                if s.is_empty() || s == "." || s == ".." {
                    return Err(Error::invalid_request("empty or relative path segment"));
                }
                path.push(s);
            }
        }
        Ok(url)
    }

    /// A versioned Graph call with the token; returns the decoded success body.
    pub(crate) async fn graph<T: DeserializeOwned>(
        &self,
        op: &'static str,
        method: Method,
        token: &AccessToken,
        segments: &[&str],
        params: Vec<(String, String)>,
    ) -> Result<T, Error> {
        let url = self.graph_url(segments)?;
        let reply = self
            .send(Call::graph(op, method, url, token, params))
            .await?;
        reply.decode(&[token.expose_secret()])
    }

    /// A versioned Graph call whose answer is `{"success": true}`.
    pub(crate) async fn graph_success(
        &self,
        op: &'static str,
        method: Method,
        token: &AccessToken,
        segments: &[&str],
        params: Vec<(String, String)>,
    ) -> Result<(), Error> {
        let url = self.graph_url(segments)?;
        self.send(Call::graph(op, method, url, token, params))
            .await?
            .success(op)
    }

    /// Sends a call and sorts the answer into a [`Reply`] (2xx JSON) or a classified [`Error`].
    pub(crate) async fn send(&self, call: Call<'_>) -> Result<Reply, Error> {
        let secrets = call.secrets();
        // INFO, so that the call is a span of the request's trace wherever the server's log
        // filter (INFO by default) lets spans through; its own lines stay at DEBUG.
        let span = tracing::info_span!(
            "instagram_api",
            op = call.op,
            method = %call.method,
            path = %scrub(call.url.path(), &secrets),
        );
        async move {
            let started = std::time::Instant::now();
            let result = self.send_inner(&call, &secrets).await;
            record_call(&call, &result, started.elapsed());
            match &result {
                Ok(reply) => tracing::debug!(
                    status = reply.status,
                    call_count = reply.usage.max_percent(),
                    "instagram call succeeded"
                ),
                Err(e) => tracing::debug!(
                    error = %e,
                    fbtrace_id = e.details().and_then(|d| d.fbtrace_id.as_deref()),
                    "instagram call failed"
                ),
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn send_inner(&self, call: &Call<'_>, secrets: &[&str]) -> Result<Reply, Error> {
        let mut query = call.query.clone();
        let mut form = call.form.clone();
        let mut request = self.http.request(call.method.clone(), call.url.clone());
        if let Some(token) = call.token {
            let mut auth_params = Vec::new();
            if self.token_placement == TokenPlacement::Query {
                auth_params.push(("access_token".to_owned(), token.expose_secret().to_owned()));
            } else {
                request = request.bearer_auth(token.expose_secret());
            }
            if let Some(secret) = &self.appsecret {
                auth_params.push(("appsecret_proof".to_owned(), appsecret_proof(secret, token)));
            }
            match form.as_mut() {
                Some(form) => form.extend(auth_params),
                None => query.extend(auth_params),
            }
        }
        if !query.is_empty() {
            request = request.query(&query);
        }
        if let Some(form) = &form {
            request = request.form(form);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| Error::network(e, secrets))?;
        let status = response.status().as_u16();
        let usage = Usage::from_headers(response.headers());
        let retry_after_header = retry_after(response.headers());

        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Error::network(e, secrets))?
        {
            if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(Error::Decode {
                    status,
                    message: "response body too large".into(),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Ok(None)
        } else {
            serde_json::from_slice::<Value>(&bytes).map(Some)
        };
        let ctx = ResponseContext {
            http_status: status,
            usage,
            retry_after_header,
            secrets,
        };

        if (200..300).contains(&status) {
            let body = body.map_err(|e| Error::decode(status, &e, secrets))?;
            // Graph occasionally reports errors with a 200; the envelope decides.
            if let Some(graph) = body.as_ref().and_then(GraphErrorBody::from_envelope)
                && graph.code.is_some()
            {
                return Err(classify_graph(graph, ctx));
            }
            return Ok(Reply {
                status,
                body: body.unwrap_or(Value::Null),
                usage: ctx.usage,
            });
        }
        Err(classify_error_body(body.ok().flatten().as_ref(), ctx))
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// One request, before the client adds authentication.
pub(crate) struct Call<'a> {
    pub op: &'static str,
    pub method: Method,
    pub url: Url,
    pub query: Vec<(String, String)>,
    /// `Some` sends a form body (POST); `None` sends no body.
    pub form: Option<Vec<(String, String)>>,
    /// Added as a Graph token according to [`TokenPlacement`].
    pub token: Option<&'a AccessToken>,
    /// Other secrets in `query` / `form`, scrubbed from anything that leaves the call.
    pub extra_secrets: Vec<&'a str>,
}

impl<'a> Call<'a> {
    /// A Graph call: params go into the query for GET/DELETE and the form body otherwise.
    pub fn graph(
        op: &'static str,
        method: Method,
        url: Url,
        token: &'a AccessToken,
        params: Vec<(String, String)>,
    ) -> Self {
        let (query, form) = if method == Method::GET || method == Method::DELETE {
            (params, None)
        } else {
            (Vec::new(), Some(params))
        };
        Self {
            op,
            method,
            url,
            query,
            form,
            token: Some(token),
            extra_secrets: Vec::new(),
        }
    }

    fn secrets(&self) -> Vec<&'a str> {
        let mut s = self.extra_secrets.clone();
        if let Some(t) = self.token {
            s.push(t.expose_secret());
        }
        s
    }
}

/// A 2xx answer with its JSON body (`Null` when empty).
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
    pub usage: Usage,
}

impl Reply {
    pub fn decode<T: DeserializeOwned>(self, secrets: &[&str]) -> Result<T, Error> {
        let status = self.status;
        let mut body = self.body;
        strip_paging_tokens(&mut body);
        serde_json::from_value(body).map_err(|e| Error::decode(status, &e, secrets))
    }
}

impl Reply {
    /// Accepts `{"success": true}` (or a bare `true`), the answer of hide, delete and
    /// subscribe calls.
    pub fn success(self, op: &str) -> Result<(), Error> {
        let ok = match &self.body {
            Value::Bool(b) => *b,
            Value::Object(map) => map.get("success").and_then(Value::as_bool).unwrap_or(false),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::UnexpectedResponse {
                status: self.status,
                message: format!("{op}: Instagram did not confirm success"),
                details: Box::new(crate::error::ErrorDetails {
                    http_status: Some(self.status),
                    usage: self.usage,
                    ..Default::default()
                }),
            })
        }
    }
}

/// Counts the call by endpoint, HTTP status and Graph error code
/// (`instagram_api_calls_total`), and times it (`instagram_api_call_duration_seconds`).
/// Numeric path segments become `{id}`, so labels stay few and carry no user's id.
fn record_call(call: &Call<'_>, result: &Result<Reply, Error>, took: std::time::Duration) {
    let endpoint = endpoint_label(call.op, call.url.path());
    let (status, code) = match result {
        Ok(reply) => (reply.status.to_string(), "none".to_string()),
        Err(e) => (
            e.details()
                .and_then(|d| d.http_status)
                .map_or_else(|| "none".to_string(), |s| s.to_string()),
            e.graph_code()
                .map_or_else(|| "none".to_string(), |c| c.to_string()),
        ),
    };
    metrics::counter!("instagram_api_calls_total", "endpoint" => endpoint.clone(), "status" => status, "code" => code)
        .increment(1);
    metrics::histogram!("instagram_api_call_duration_seconds", "endpoint" => endpoint)
        .record(took.as_secs_f64());
}

/// `refresh`, `exchange_code`, … as named; a raw Graph call by its path without the
/// version, ids replaced: `graph:me/media`, `graph:{id}/comments`.
fn endpoint_label(op: &str, path: &str) -> String {
    if op != "raw" {
        return op.to_string();
    }
    let segments: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .skip_while(|s| s.starts_with('v') && s[1..].starts_with(|c: char| c.is_ascii_digit()))
        .map(|s| {
            if s.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                s
            }
        })
        .collect();
    format!("graph:{}", segments.join("/"))
}

#[cfg(test)]
mod endpoint_label_tests {
    #[test]
    fn ids_and_the_version_leave_the_label() {
        assert_eq!(
            super::endpoint_label("raw", "/v24.0/me/media"),
            "graph:me/media"
        );
        assert_eq!(
            super::endpoint_label("raw", "/v24.0/17841400000000001/comments"),
            "graph:{id}/comments"
        );
        assert_eq!(
            super::endpoint_label("refresh", "/refresh_access_token"),
            "refresh"
        );
    }
}
