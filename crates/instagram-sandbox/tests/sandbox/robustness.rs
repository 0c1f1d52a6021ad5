//! Odd requests get Meta's errors: never a panic, an opaque 500 or a hang.

use reqwest::{Method, StatusCode};

use crate::common::*;

/// Method, path, and an optional (content type, body).
type Case = (Method, String, Option<(&'static str, Vec<u8>)>);

#[tokio::test]
async fn odd_requests_get_meta_errors() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(1).await;
    let cases: Vec<Case> = vec![
        (Method::GET, "/".into(), None),
        (Method::GET, "/v24.0".into(), None),
        (Method::PUT, format!("/me?access_token={long}"), None),
        (Method::DELETE, format!("/me?access_token={long}"), None),
        (
            Method::GET,
            format!("/me/media/extra/segments?access_token={long}"),
            None,
        ),
        (
            Method::GET,
            format!("/me?access_token={long}&fields=%7B%7D%7B"),
            None,
        ),
        (
            Method::GET,
            format!("/me?access_token={long}&fields=media.limit(9999999999999999999999)"),
            None,
        ),
        (
            Method::POST,
            "/oauth/access_token".into(),
            Some(("multipart/form-data; boundary=x", b"--x\r\nbroken".to_vec())),
        ),
        (
            Method::POST,
            "/oauth/access_token".into(),
            Some(("application/json", b"[1,2]".to_vec())),
        ),
        (
            Method::POST,
            format!("/me/media?access_token={long}"),
            Some(("application/json", vec![b'{'; 10])),
        ),
        (
            Method::POST,
            format!("/me/media?access_token={long}"),
            Some(("application/x-www-form-urlencoded", vec![b'a'; 2 << 20])),
        ),
        (
            Method::GET,
            "/refresh_access_token?grant_type=ig_refresh_token&access_token=%FF%FE".into(),
            None,
        ),
        (Method::GET, "/oauth/authorize?client_id=%00".into(), None),
        (Method::PATCH, "/oauth/authorize".into(), None),
        (Method::GET, "/_fb/".into(), None),
    ];
    for (method, path, body) in cases {
        let mut req = t.http.request(method.clone(), t.url(&path));
        if let Some((ctype, bytes)) = body {
            req = req.header("content-type", ctype).body(bytes);
        }
        let resp = tokio::time::timeout(std::time::Duration::from_secs(10), req.send())
            .await
            .unwrap_or_else(|_| panic!("{method} {path} hung"))
            .unwrap();
        let r = TestSandbox::read(resp).await;
        assert!(
            r.status.is_client_error(),
            "{method} {path}: {} {}",
            r.status,
            r.text
        );
        let is_graph =
            r.body["error"]["code"].is_i64() && r.body["error"]["fbtrace_id"].is_string();
        let is_flat = r.body["error_type"] == "OAuthException";
        let is_page = r.text.starts_with("<!doctype html>");
        assert!(
            is_graph || is_flat || is_page,
            "{method} {path}: {}",
            r.text
        );
    }
    // The sandbox is still fine afterwards.
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);
    let r = t
        .control
        .create_user(&UserSpec::named("still_alive"))
        .await
        .unwrap();
    assert_eq!(r.username, "still_alive");
}
