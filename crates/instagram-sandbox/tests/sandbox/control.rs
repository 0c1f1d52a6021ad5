//! The control API: apps, users, clock, call log.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn apps_are_generated_and_secrets_are_returned_once() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    let cid = app["client_id"].as_str().unwrap();
    assert!(
        cid.len() >= 15 && cid.bytes().all(|b| b.is_ascii_digit()),
        "{cid}"
    );
    let secret = app["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32);
    assert_eq!(app["access"], "advanced");
    assert_eq!(app["refresh_mode"], "same");
    assert_eq!(app["exchange_shape"], "flat");
    assert_eq!(app["young_refresh"], "error");
    let listed = serde_json::to_string(&t.control.apps().await.unwrap()).unwrap();
    assert!(listed.contains(cid), "{listed}");
    assert!(!listed.contains(secret));
    let one = t.control.app(cid).await.unwrap();
    assert!(one.client_secret.is_none());
    assert!(!serde_json::to_string(&one).unwrap().contains(secret));
}

#[tokio::test]
async fn apps_can_be_registered_with_given_credentials_and_updated() {
    let t = TestSandbox::start().await;
    // Raw: asserts 201 for a new app and 200 for an update, which the typed client hides.
    let body = json!({
        "client_id": "1234567890123456", "client_secret": "s3cret",
        "redirect_uris": [REDIRECT], "refresh_mode": "new",
    });
    let r = t.post_json("/_sandbox/apps", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["client_secret"], "s3cret");
    let r = t
        .post_json(
            "/_sandbox/apps",
            &json!({ "client_id": "1234567890123456", "redirect_uris": [REDIRECT, "http://127.0.0.1:9/cb"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["redirect_uris"].as_array().unwrap().len(), 2);
    // The secret was kept.
    t.user("acme_shop").await;
    let app = json!({ "client_id": "1234567890123456", "client_secret": "s3cret" });
    let code = t.code_for(&app, "acme_shop", ALL_SCOPES).await;
    assert_eq!(t.exchange(&app, &code).await.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_control_requests_get_json_errors() {
    let t = TestSandbox::start().await;
    // Raw on purpose: bodies the typed client cannot express (unknown values, broken JSON).
    for (path, body) in [
        ("/_sandbox/apps", json!({ "redirect_uris": [] })),
        ("/_sandbox/apps", json!({ "redirect_uris": ["not a url"] })),
        (
            "/_sandbox/apps",
            json!({ "redirect_uris": [REDIRECT], "access": "premium" }),
        ),
        ("/_sandbox/users", json!({ "username": "" })),
        ("/_sandbox/users", json!({ "username": "bad name!" })),
        (
            "/_sandbox/users",
            json!({ "username": "ok", "account_type": "PERSONAL" }),
        ),
        ("/_sandbox/clock", json!({ "advance": 5 })),
    ] {
        let r = t.post_json(path, &body).await;
        assert!(r.status.is_client_error(), "{path} {body}: {}", r.status);
        assert!(r.body["error"]["message"].is_string(), "{path}: {}", r.text);
    }
    let r = TestSandbox::read(
        t.http
            .post(t.url("/_sandbox/apps"))
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["error"]["message"].is_string());
}

#[tokio::test]
async fn users_have_professional_ids_and_repeat_creation_returns_the_same_user() {
    let t = TestSandbox::start().await;
    // Raw: asserts 201 for a new user and 200 for the same name again.
    let r = t
        .post_json(
            "/_sandbox/users",
            &json!({ "username": "acme_shop", "media_count": 2 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let pid = r.body["user_id"].as_str().unwrap().to_owned();
    assert!(pid.starts_with("17841") && pid.len() == 17);
    assert_eq!(r.body["id"], json!(pid));
    assert_eq!(r.body["username"], "acme_shop");
    assert_eq!(r.body["media_count"], 2);
    let again = t
        .post_json("/_sandbox/users", &json!({ "username": "acme_shop" }))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["user_id"], json!(pid));
    assert_eq!(t.control.user(&pid).await.unwrap().username, "acme_shop");
    assert_eq!(
        t.control.user("nobody").await.unwrap_err().status(),
        Some(StatusCode::NOT_FOUND)
    );
}

#[tokio::test]
async fn clock_moves_and_is_shared_with_the_library_handle() {
    let t = TestSandbox::start().await;
    let before = t.control.clock().await.unwrap();
    assert_eq!(before.offset_secs, 0);
    assert!(before.now.ends_with('Z'));
    let r = t.control.advance_clock(86_400).await.unwrap();
    assert_eq!(r.offset_secs, 86_400);
    assert_eq!(t.sb.clock().offset_secs(), 86_400);
    t.sb.clock().advance(60);
    let after = t.control.clock().await.unwrap();
    assert_eq!(after.offset_secs, 86_460);
    let moved = after.now_unix - before.now_unix;
    assert!((86_460..86_470).contains(&moved), "{moved}");
}

#[tokio::test]
async fn calls_are_logged_without_secrets() {
    let t = TestSandbox::start().await;
    let (app, user, long) = t.connected(0).await;
    t.graph("/v24.0/me", &long, &[("fields", "username")]).await;
    let calls = t.calls("/me").await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    let c = &calls[0];
    assert_eq!(c.method, "GET");
    assert_eq!(c.path, "/v24.0/me");
    assert_eq!(c.status, 200);
    assert_eq!(c.app_id.as_deref(), app["client_id"].as_str());
    assert_eq!(c.user_id.as_deref(), user["user_id"].as_str());
    // Raw: a secret in any field, one the typed client knows or not, must fail this.
    let all = t.get("/_sandbox/calls").await;
    assert!(all.body["data"].as_array().unwrap().len() >= 3);
    assert!(!all.text.contains(&long));
    assert!(!all.text.contains(app["client_secret"].as_str().unwrap()));
    assert!(!all.text.contains("code=AQ"));
    let exchanges = t.calls("/oauth/access_token").await;
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].method, "POST");
}

#[tokio::test]
async fn seed_connects_many_users_and_stats_count_calls() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    let data = t
        .control
        .seed(&SeedSpec {
            client_id: app["client_id"].as_str().unwrap().to_owned(),
            count: 3,
            username_prefix: Some("load_".into()),
            token_age_secs: Some(90_000),
            ..SeedSpec::default()
        })
        .await
        .unwrap();
    assert_eq!(data.len(), 3);
    for (n, u) in data.iter().enumerate() {
        assert_eq!(u.username, format!("load_{n}"));
        let tok = u.access_token.as_str();
        let me = t.graph("/me", tok, &[("fields", "id,username")]).await;
        assert_eq!(me.body["id"], json!(u.id), "{}", me.text);
        // Issued 25 h ago: old enough to refresh.
        let refreshed = t
            .get_q(
                "/refresh_access_token",
                &[("grant_type", "ig_refresh_token"), ("access_token", tok)],
            )
            .await;
        assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    }
    let stats = t.control.stats().await.unwrap();
    assert_eq!(stats["/me"][&200], 3, "{stats:?}");
    assert_eq!(stats["/refresh_access_token"][&200], 3);
    let bad = t
        .control
        .seed(&SeedSpec {
            client_id: "nope".into(),
            count: 1,
            ..SeedSpec::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(t.control.user("load_2").await.unwrap().username, "load_2");
}
