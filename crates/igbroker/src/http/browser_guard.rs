//! What browser-facing answers carry: no framing, no sniffing, no referrer; the strict
//! policy of the pages the broker draws; and the cookie that ties a connect session to the
//! browser that opened its link.

use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, HeaderMap, HeaderValue, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::middleware::Next;
use axum::response::Response;

/// Adds the framing, sniffing and referrer headers to every answer that lacks them.
///
/// The policy sets `frame-ancestors` only, so pages that need their own CSP set it
/// themselves; JSON answers carry the headers too, where they cost nothing.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in [
        (X_FRAME_OPTIONS, "DENY"),
        (CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    resp
}

/// The policy of every page the broker draws (the dashboard, the connect result): no script
/// at all, styles and images only from this origin, forms only to this origin, no framing.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                            form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// For routes that answer with pages: [`PAGE_CSP`] in place of the framing-only policy of
/// [`security_headers`] (which still adds the rest), and no caching unless the route says.
pub async fn page_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// The cookie of one connect session: one per session, so two connects in one browser
/// do not overwrite each other; sent back only to the callback.
pub fn cookie_name(session_id: &str) -> String {
    let safe: String = session_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    format!("igb_{safe}")
}

/// `Set-Cookie` for a session's browser binding, good for `max_age` seconds.
pub fn set_cookie(session_id: &str, value: &str, secure: bool, max_age: i64) -> String {
    format!(
        "{}={value}; Path=/oauth/callback; Max-Age={}; HttpOnly; SameSite=Lax{}",
        cookie_name(session_id),
        max_age.max(0),
        if secure { "; Secure" } else { "" }
    )
}

/// The value of the session's cookie in a request, if the browser sent it.
pub fn read_cookie(headers: &HeaderMap, session_id: &str) -> Option<String> {
    let name = cookie_name(session_id);
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// Ties the session to the browser now opening its link: a fresh cookie whose hash the
/// session keeps. Returns the `Set-Cookie` value.
pub async fn bind_browser(
    state: &crate::state::AppState,
    session_id: &str,
    expires_at: i64,
) -> Result<String, crate::error::ApiError> {
    let value = igbroker_core::secrets::random_token();
    state
        .store()
        .bind_connect_browser(session_id, &igbroker_core::secrets::sha256_hex(&value))
        .await?;
    let secure = state.config().public_url.starts_with("https://");
    Ok(set_cookie(
        session_id,
        &value,
        secure,
        expires_at - state.now(),
    ))
}

/// Whether the browser bringing a callback with `raw_state` is the one that opened the
/// session's link. An unknown state is left for the callback to refuse in its own words.
pub async fn same_browser(
    state: &crate::state::AppState,
    headers: &HeaderMap,
    raw_state: &str,
) -> Result<bool, crate::error::ApiError> {
    let Some(session) = state
        .store()
        .find_connect_session_by_state(&igbroker_core::secrets::sha256_hex(raw_state))
        .await?
    else {
        return Ok(true);
    };
    let bound = state.store().connect_browser_hash(&session.id).await?;
    Ok(match bound {
        Some(hash) => read_cookie(headers, &session.id).is_some_and(|v| {
            let got = igbroker_core::secrets::sha256_hex(&v);
            subtle::ConstantTimeEq::ct_eq(got.as_bytes(), hash.as_bytes()).into()
        }),
        // Only sessions finished before browsers were bound have no binding.
        None => session.status != igbroker_core::ConnectSessionStatus::Pending,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_cookie_round_trips_and_stays_in_its_lane() {
        let set = set_cookie("cs_0193", "abc", true, 600);
        assert!(set.starts_with("igb_cs_0193=abc;"), "{set}");
        for part in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/oauth/callback"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set_cookie("cs_1", "v", false, 1).contains("Secure"));
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("igb_cs_other=x; igb_cs_0193=abc"),
        );
        assert_eq!(read_cookie(&h, "cs_0193").as_deref(), Some("abc"));
        assert_eq!(read_cookie(&h, "cs_0194"), None);
        // A hostile session id cannot reach another cookie or attribute.
        assert_eq!(cookie_name("cs_1; Path=/"), "igb_cs_1Path");
    }
}
