//! `/me` and the IG user node, with the Graph error envelope (checklist rows 6 and 10).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const ME_FIELDS: &str = "user_id,username,name,account_type,profile_picture_url,followers_count,follows_count,media_count";

#[tokio::test]
async fn me_answers_the_documented_fields() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    let user = t
        .user_with(UserSpec {
            account_type: Some("MEDIA_CREATOR".into()),
            ..UserSpec::named("acme_shop").with_media(3)
        })
        .await;
    let code = t.code_for(&app, "acme_shop", ALL_SCOPES).await;
    let ex = t.exchange(&app, &code).await;
    let scoped = ex.body["user_id"].as_u64().unwrap();
    let long = t.long_token(&app, "acme_shop", ALL_SCOPES).await;

    let r = t.graph("/me", &long, &[("fields", ME_FIELDS)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_same_shape(&fixture("me.json"), &r.body);
    assert_eq!(r.body["id"], json!(scoped.to_string()));
    assert_eq!(r.body["user_id"], user["user_id"]);
    assert!(r.body["user_id"].as_str().unwrap().starts_with("17841"));
    assert_eq!(r.body["username"], "acme_shop");
    assert_eq!(r.body["account_type"], "MEDIA_CREATOR");
    assert_eq!(r.body["media_count"], 3);
}

#[tokio::test]
async fn me_paths_versions_slashes_and_bearer_header() {
    let t = TestSandbox::start().await;
    let (_app, user, long) = t.connected(0).await;
    for path in ["/me", "/v24.0/me", "/v99.9/me", "//me/", "/v25.0//me"] {
        let r = t
            .graph(path, &long, &[("fields", "user_id, username")])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(r.body["user_id"], user["user_id"], "{path}");
    }
    let r = TestSandbox::read(
        t.http
            .get(t.url("/v24.0/me?fields=username"))
            .bearer_auth(&long)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.body["username"], "acme_shop", "{}", r.text);
    // Without fields: the id alone.
    let r = t.graph("/me", &long, &[]).await;
    let obj = r.body.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), vec!["id"]);
    // The user node by its professional id and by its app-scoped id.
    let pid = user["user_id"].as_str().unwrap();
    let by_pid = t
        .graph(&format!("/v24.0/{pid}"), &long, &[("fields", "username")])
        .await;
    assert_eq!(by_pid.body["username"], "acme_shop", "{}", by_pid.text);
    let scoped = r.body["id"].as_str().unwrap();
    let by_scoped = t
        .graph(&format!("/{scoped}"), &long, &[("fields", "user_id")])
        .await;
    assert_eq!(by_scoped.body["user_id"], json!(pid));
}

#[tokio::test]
async fn me_token_errors_use_the_graph_envelope() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;

    let unknown = t.graph("/me", "IGAAbogusbogusbogusbogus", &[]).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_graph_error(&unknown, 190, None);
    assert!(unknown.headers.get("www-authenticate").is_some());

    let garbage = t.graph("/me", "not-a-token", &[]).await;
    assert_graph_error(&garbage, 190, None);
    assert_eq!(
        garbage.body["error"]["message"],
        "Invalid OAuth access token - Cannot parse access token"
    );

    let missing = t.get("/me").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.body["error"]["code"].is_i64());

    let bad_field = t.graph("/me", &long, &[("fields", "id,xyz")]).await;
    assert_graph_error(&bad_field, 100, None);
    assert_eq!(
        bad_field.body["error"]["message"],
        "(#100) Tried accessing nonexisting field (xyz) on node type (User)"
    );

    let syntax = t
        .graph("/me", &long, &[("fields", "id,media{caption")])
        .await;
    assert_graph_error(&syntax, 100, None);

    // Someone else's node does not exist for this token.
    let other = t.user("someone_else").await;
    let r = t
        .graph(
            &format!("/{}", other["user_id"].as_str().unwrap()),
            &long,
            &[],
        )
        .await;
    assert_graph_error(&r, 100, Some(33));
}

#[tokio::test]
async fn me_expired_token_is_190_463_with_the_session_message() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    t.advance(5_184_000).await;
    let r = t.graph("/me", &long, &[("fields", "username")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_same_shape(&fixture("graph_error_expired.json"), &r.body);
    assert_eq!(r.body["error"]["type"], "OAuthException");
    let msg = r.body["error"]["message"].as_str().unwrap();
    // "Session has expired on Thursday, 10-Dec-15 04:00:00 PST. The current time is …"
    let re_like = |s: &str| {
        let (day, rest) = s.split_once(", ").unwrap();
        assert!(day.ends_with("day"), "{s}");
        assert!(rest.ends_with(" PST") || rest.ends_with(" PDT"), "{s}");
        assert_eq!(rest.len(), "10-Dec-15 04:00:00 PST".len(), "{s}");
    };
    let body = msg
        .strip_prefix("Error validating access token: Session has expired on ")
        .unwrap();
    let (expired, now) = body.split_once(". The current time is ").unwrap();
    re_like(expired);
    re_like(now.strip_suffix('.').unwrap());
}

#[tokio::test]
async fn facebook_host_rejects_instagram_tokens() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    for path in [
        "/_fb/v24.0/me",
        "/_fb/me/accounts",
        "/_fb/v25.0/debug_token",
    ] {
        let r = t.graph(path, &long, &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_graph_error(&r, 190, None);
        assert_eq!(r.body["error"]["type"], "OAuthException");
        assert_eq!(
            r.body["error"]["message"],
            "Invalid OAuth access token - Cannot parse access token"
        );
    }
    // The same token is fine on the Instagram host.
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn params_in_form_and_json_bodies_are_read() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    // Graph reads a GET's parameters from the query; a body is merged in too.
    let r = TestSandbox::read(
        t.http
            .get(t.url("/me"))
            .header("content-type", "application/json")
            .body(json!({ "access_token": long, "fields": "username" }).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.body["username"], "acme_shop", "{}", r.text);
    let bad_json = TestSandbox::read(
        t.http
            .get(t.url("/me"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_graph_error(&bad_json, 100, None);
    let v: &Value = &bad_json.body;
    assert!(v["error"]["message"].as_str().unwrap().contains("JSON"));
}
