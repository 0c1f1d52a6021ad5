//! The router: `/_sandbox/…` is the control API; every other path is normalised the way
//! Meta's front ends accept it (`//`, trailing `/`, optional `/vNN.N`, `/_fb/` for
//! graph.facebook.com) and dispatched here. A middleware around everything applies injected
//! faults and writes the call log.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::calls::{CallEntry, CallInfo};
use crate::errors::{FlatError, GraphError, IGAPI, OAUTH};
use crate::faults::{Fault, FaultKind, Phase};
use crate::params::{ParamError, read_request};
use crate::{Sandbox, control, graph, lock, oauth};

pub fn router(sb: Sandbox) -> Router {
    Router::new()
        .nest("/_sandbox", control::routes())
        .fallback(handle)
        .layer(middleware::from_fn_with_state(sb.clone(), observe))
        .with_state(sb)
}

/// A request path as Meta's hosts read it.
#[derive(Debug, Clone)]
pub struct RoutePath {
    /// Served under `/_fb/`: the graph.facebook.com host.
    pub fb: bool,
    pub version: Option<String>,
    pub segs: Vec<String>,
}

fn is_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else {
        return false;
    };
    let mut parts = rest.splitn(2, '.');
    let major = parts.next().unwrap_or("");
    let minor = parts.next().unwrap_or("");
    !major.is_empty()
        && !minor.is_empty()
        && major.bytes().all(|b| b.is_ascii_digit())
        && minor.bytes().all(|b| b.is_ascii_digit())
}

impl RoutePath {
    pub fn parse(path: &str) -> Self {
        let mut segs: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let fb = segs.first().is_some_and(|s| s == "_fb");
        if fb {
            segs.remove(0);
        }
        let version = if segs.first().is_some_and(|s| is_version(s)) {
            Some(segs.remove(0))
        } else {
            None
        };
        Self { fb, version, segs }
    }

    /// The path without version, duplicate or trailing slashes: what faults and the call log
    /// match against.
    pub fn normalized(&self) -> String {
        let base = format!("/{}", self.segs.join("/"));
        if self.fb { format!("/_fb{base}") } else { base }
    }

    /// `api.instagram.com/oauth/access_token` answers with the flat error envelope.
    pub fn is_flat_host(&self) -> bool {
        !self.fb
            && self.segs.len() == 2
            && self.segs[0] == "oauth"
            && self.segs[1] == "access_token"
    }
}

async fn handle(State(sb): State<Sandbox>, req: Request) -> Response {
    let route = match req.extensions().get::<RoutePath>() {
        Some(r) => r.clone(),
        None => RoutePath::parse(req.uri().path()),
    };
    let parsed = match read_request(req).await {
        Ok(p) => p,
        Err(e) => {
            let message = match e {
                ParamError::TooLarge => "The request body is too large".to_owned(),
                ParamError::Malformed(m) => m,
            };
            return if route.is_flat_host() {
                FlatError::new(message).into_response()
            } else {
                GraphError::param(message).into_response()
            };
        }
    };
    if route.fb {
        return graph::reject_fb(&parsed).into_response();
    }
    let segs: Vec<&str> = route.segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["oauth", "authorize"] => oauth::authorize(&sb, &parsed),
        ["oauth", "access_token"] => oauth::exchange_code(&sb, &parsed),
        ["access_token"] => oauth::exchange_long_lived(&sb, &parsed),
        ["refresh_access_token"] => oauth::refresh(&sb, &parsed),
        _ => graph::handle(&sb, &parsed, &route),
    }
}

async fn observe(State(sb): State<Sandbox>, mut req: Request, next: Next) -> Response {
    let raw_path = req.uri().path().to_owned();
    if raw_path.starts_with("/_sandbox/") || raw_path == "/_sandbox" {
        return next.run(req).await;
    }
    let method = req.method().as_str().to_owned();
    let route = RoutePath::parse(&raw_path);
    let normalized = route.normalized();
    req.extensions_mut().insert(route.clone());

    let fired = {
        let mut faults = lock(&sb.inner.faults);
        if faults.is_empty() {
            Vec::new()
        } else {
            faults.take(
                &method,
                &normalized,
                &[
                    FaultKind::Status,
                    FaultKind::GraphError,
                    FaultKind::Latency,
                    FaultKind::Reset,
                ],
            )
        }
    };
    let (before, after): (Vec<Fault>, Vec<Fault>) = fired
        .into_iter()
        .partition(|f| f.spec.phase == Phase::Before);

    sleep_for(&before).await;
    let resp = match before.iter().find(|f| f.spec.kind != FaultKind::Latency) {
        Some(f) => fault_response(f, &route),
        None => {
            let resp = next.run(req).await;
            sleep_for(&after).await;
            match after.iter().find(|f| f.spec.kind != FaultKind::Latency) {
                // The call took effect; only its answer is replaced.
                Some(f) => fault_response(f, &route),
                None => resp,
            }
        }
    };

    let now = sb.now();
    let info = resp
        .extensions()
        .get::<CallInfo>()
        .cloned()
        .unwrap_or_default();
    lock(&sb.inner.calls).push(CallEntry {
        seq: 0,
        at: String::new(),
        at_unix: now,
        method,
        path: raw_path,
        route: normalized,
        status: resp.status().as_u16(),
        app_id: info.app_id,
        user_id: info.user_id,
        token_sha256: info.token_sha256,
    });
    resp
}

async fn sleep_for(faults: &[Fault]) {
    let ms: u64 = faults
        .iter()
        .filter(|f| f.spec.kind == FaultKind::Latency)
        .filter_map(|f| f.spec.latency_ms)
        .sum();
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn default_message(code: i64) -> &'static str {
    match code {
        1 => "An unknown error occurred",
        2 => "An unexpected error has occurred. Please retry your request later.",
        4 => "(#4) Application request limit reached",
        17 => "(#17) User request limit reached",
        32 => crate::ratelimit::PAGE_LIMIT_MESSAGE,
        100 => "(#100) Invalid parameter",
        803 => "(#803) Some of the aliases you requested do not exist",
        2500 => "Unknown path components",
        190 => "Invalid OAuth 2.0 Access Token",
        613 => "(#613) Calls to this api have exceeded the rate limit.",
        9007 => "Media ID is not available",
        80002 => {
            "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again."
        }
        _ => "An unexpected error has occurred. Please retry your request later.",
    }
}

fn fault_response(f: &Fault, route: &RoutePath) -> Response {
    let s = &f.spec;
    match s.kind {
        FaultKind::Status => {
            let status = s
                .status
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                format!(
                    "<html><body><h1>{}</h1><p>Sandbox fault {}</p></body></html>",
                    status, f.id
                ),
            )
                .into_response()
        }
        FaultKind::GraphError => {
            let code = s.code.unwrap_or(2);
            let message = s
                .message
                .clone()
                .unwrap_or_else(|| default_message(code).to_owned());
            if route.is_flat_host() {
                let mut resp = FlatError::new(message).into_response();
                if let Some(st) = s.status.and_then(|c| StatusCode::from_u16(c).ok()) {
                    *resp.status_mut() = st;
                }
                return resp;
            }
            let transient = s.is_transient.unwrap_or(matches!(
                code,
                1 | 2 | 4 | 17 | 32 | 341 | 613 | 80002 | -1 | -2 | 9007
            ));
            let kind = if matches!(code, 1 | 2 | 4 | 17 | 32 | 102 | 190) {
                OAUTH
            } else {
                IGAPI
            };
            let default_status = if matches!(code, 1 | 2) {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            };
            let mut err = GraphError::new(kind, code, message)
                .transient(transient)
                .status(
                    s.status
                        .and_then(|c| StatusCode::from_u16(c).ok())
                        .unwrap_or(default_status),
                );
            err.subcode = s.subcode;
            err.into_response()
        }
        FaultKind::Reset => reset_response(),
        FaultKind::Latency | FaultKind::ContainerError => {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A body that fails before its first byte makes the server abort the connection, which the
/// client sees as a reset / incomplete message.
fn reset_response() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox fault: connection reset",
        ))
    });
    Response::new(Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_meta() {
        let r = RoutePath::parse("//v24.0//me/media/");
        assert_eq!(r.version.as_deref(), Some("v24.0"));
        assert_eq!(r.normalized(), "/me/media");
        let r = RoutePath::parse("/_fb/v25.0/me");
        assert!(r.fb);
        assert_eq!(r.normalized(), "/_fb/me");
        let r = RoutePath::parse("/vx/me");
        assert_eq!(r.version, None);
        assert!(RoutePath::parse("/oauth/access_token/").is_flat_host());
    }
}
