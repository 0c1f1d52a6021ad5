//! One test per behaviour the emulator must have, each comparing the sandbox's answer
//! with Instagram's documented sample payloads (tests/fixtures). The other modules test each
//! area in depth; these walk the rows end to end.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn row_01_authorize_validates_and_redirects_with_code_or_denial() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    t.user("acme_shop").await;
    let cid = app["client_id"].as_str().unwrap();
    let page = t
        .get_q(
            "/oauth/authorize",
            &[
                ("client_id", cid),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
                ("scope", ALL_SCOPES),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let wrong = t
        .get_q(
            "/oauth/authorize",
            &[
                ("client_id", cid),
                ("redirect_uri", "https://evil.example/cb"),
                ("response_type", "code"),
                ("scope", ALL_SCOPES),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let ok = t.consent(&app, "acme_shop", ALL_SCOPES, "k9s8d7").await;
    assert!(
        ok.starts_with(&format!("{REDIRECT}?code=")) && ok.ends_with("&state=k9s8d7#_"),
        "{ok}"
    );
    let deny = t
        .control
        .authorize(&Consent {
            client_id: cid.to_owned(),
            redirect_uri: REDIRECT.into(),
            scope: ALL_SCOPES.into(),
            state: Some("k9s8d7".into()),
            username: None,
            decision: "deny".into(),
            granted_scopes: None,
        })
        .await
        .unwrap();
    assert_eq!(
        json!(deny),
        json!(format!(
            "{REDIRECT}?error=access_denied&error_reason=user_denied&error_description=The+user+denied+your+request&state=k9s8d7"
        ))
    );
}

#[tokio::test]
async fn row_02_code_exchange_flat_data_and_errors() {
    let t = TestSandbox::start().await;
    let flat_app = t.app(spec()).await;
    let data_app = t
        .app(AppSpec {
            exchange_shape: Some(ExchangeShape::Data),
            ..spec()
        })
        .await;
    t.user("acme_shop").await;
    let code = t.code_for(&flat_app, "acme_shop", ALL_SCOPES).await;
    let flat = t.exchange(&flat_app, &code).await;
    assert_same_shape(&fixture("code_exchange_flat.json"), &flat.body);
    let used = t.exchange(&flat_app, &code).await;
    assert_eq!(used.status, StatusCode::BAD_REQUEST);
    assert_same_shape(&fixture("code_exchange_error.json"), &used.body);
    assert_eq!(
        used.body["error_message"],
        fixture("oauth_messages.json")["exchange_code_used"]
    );
    let code = t.code_for(&data_app, "acme_shop", ALL_SCOPES).await;
    let data = t.exchange(&data_app, &code).await;
    assert_same_shape(&fixture("code_exchange_data.json"), &data.body);
}

#[tokio::test]
async fn row_03_long_lived_exchange() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    t.user("acme_shop").await;
    let short = t.short_token(&app, "acme_shop", ALL_SCOPES).await;
    let r = t
        .get_q(
            "/access_token",
            &[
                ("grant_type", "ig_exchange_token"),
                ("client_secret", app["client_secret"].as_str().unwrap()),
                ("access_token", &short),
            ],
        )
        .await;
    assert_same_shape(&fixture("long_lived_token.json"), &r.body);
    assert_eq!(r.body["token_type"], "bearer");
    let expires_in = r.body["expires_in"].as_i64().unwrap();
    assert!(
        (5_183_000..=5_184_000).contains(&expires_in),
        "≈ 60 days: {expires_in}"
    );
}

#[tokio::test]
async fn row_04_refresh_rules() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    let q = [
        ("grant_type", "ig_refresh_token"),
        ("access_token", long.as_str()),
    ];
    assert_eq!(
        t.get_q("/refresh_access_token", &q).await.status,
        StatusCode::BAD_REQUEST,
        "younger than 24 h"
    );
    t.advance(86_400).await;
    let r = t.get_q("/refresh_access_token", &q).await;
    assert_same_shape(&fixture("refresh_token.json"), &r.body);
    let post = t.post_form("/refresh_access_token", &q).await;
    assert_eq!(
        post.body["error"]["message"],
        "Unsupported request - method type: post"
    );
    t.advance(61 * 86_400).await;
    assert_graph_error(&t.get_q("/refresh_access_token", &q).await, 190, Some(463));
}

#[tokio::test]
async fn row_05_clock_jumps_one_hour_one_day_sixty_days() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    t.user("acme_shop").await;
    let code = t.code_for(&app, "acme_shop", ALL_SCOPES).await;
    let short = t.short_token(&app, "acme_shop", ALL_SCOPES).await;
    let long = t.long_token(&app, "acme_shop", ALL_SCOPES).await;
    t.advance(3600).await;
    assert_eq!(
        t.exchange(&app, &code).await.status,
        StatusCode::BAD_REQUEST,
        "code gone after 1 h"
    );
    assert_graph_error(&t.graph("/me", &short, &[]).await, 190, Some(463));
    t.advance(86_400).await;
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);
    t.advance(60 * 86_400).await;
    assert_graph_error(&t.graph("/me", &long, &[]).await, 190, Some(463));
    assert_eq!(
        t.control.clock().await.unwrap().offset_secs,
        3600 + 61 * 86_400
    );
}

#[tokio::test]
async fn row_06_graph_error_envelope_and_190_subcodes() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    t.advance(5_184_000).await;
    let expired = t.graph("/me", &long, &[]).await;
    assert_same_shape(&fixture("graph_error_expired.json"), &expired.body);
    let (_app, _user2, other) = {
        let app = t.app(spec()).await;
        t.user("second").await;
        let tok = t.long_token(&app, "second", ALL_SCOPES).await;
        (app, (), tok)
    };
    t.control
        .user_event("second", &UserEvent::PasswordChanged)
        .await
        .unwrap();
    let changed = t.graph("/me", &other, &[]).await;
    assert_same_shape(&fixture("graph_error_expired.json"), &changed.body);
    assert_eq!(changed.body["error"]["error_subcode"], 460);
    let app = t.app(spec()).await;
    t.user("third").await;
    let third = t.long_token(&app, "third", ALL_SCOPES).await;
    t.control
        .user_event("third", &UserEvent::Deauthorize { client_id: None })
        .await
        .unwrap();
    assert_eq!(
        t.graph("/me", &third, &[]).await.body["error"]["error_subcode"],
        458
    );
}

#[tokio::test]
async fn row_07_nodes_paging_and_publishing_pipeline() {
    let t = TestSandbox::start().await;
    let (_app, user, long) = t.connected(3).await;
    let me = t
        .graph("/me", &long, &[("fields", "user_id,username,name,account_type,profile_picture_url,followers_count,follows_count,media_count")])
        .await;
    assert_same_shape(&fixture("me.json"), &me.body);
    let pid = user["user_id"].as_str().unwrap();
    let page = t
        .graph(&format!("/{pid}/media"), &long, &[("fields", "id,caption,media_type,media_product_type,media_url,permalink,timestamp,like_count,comments_count"), ("limit", "2")])
        .await;
    assert_same_shape(&fixture("media_page.json"), &page.body);
    let c = t
        .graph_post(
            &format!("/{pid}/media"),
            &long,
            &[("image_url", "https://cdn.example.com/a.jpg")],
        )
        .await;
    assert_same_shape(&fixture("container_create.json"), &c.body);
    let cid = c.body["id"].as_str().unwrap();
    let early = t
        .graph_post(
            &format!("/{pid}/media_publish"),
            &long,
            &[("creation_id", cid)],
        )
        .await;
    assert_graph_error(&early, 9007, Some(2_207_027));
    t.advance(5).await;
    let st = t
        .graph(
            &format!("/{cid}"),
            &long,
            &[("fields", "status_code,status")],
        )
        .await;
    assert_same_shape(&fixture("container_status_finished.json"), &st.body);
    let p = t
        .graph_post(
            &format!("/{pid}/media_publish"),
            &long,
            &[("creation_id", cid)],
        )
        .await;
    assert_same_shape(&fixture("media_publish.json"), &p.body);
    let limit = t
        .graph(
            &format!("/{pid}/content_publishing_limit"),
            &long,
            &[("fields", "quota_usage,config")],
        )
        .await;
    assert_same_shape(&fixture("content_publishing_limit.json"), &limit.body);
}

#[tokio::test]
async fn row_08_usage_headers_and_throttling_codes() {
    let t = TestSandbox::start().await;
    let app = t
        .app(AppSpec {
            rate_limit_calls: Some(2),
            ..spec()
        })
        .await;
    t.user("acme_shop").await;
    let long = t.long_token(&app, "acme_shop", ALL_SCOPES).await;
    let r = t.graph("/me", &long, &[]).await;
    let usage: serde_json::Value =
        serde_json::from_str(r.headers["x-app-usage"].to_str().unwrap()).unwrap();
    assert_same_shape(&fixture("x_app_usage.json"), &usage);
    assert!(r.headers.contains_key("x-business-use-case-usage"));
    t.graph("/me", &long, &[]).await;
    assert_graph_error(&t.graph("/me", &long, &[]).await, 80002, None);
}

#[tokio::test]
async fn row_09_signed_requests_and_webhooks() {
    let t = TestSandbox::start().await;
    let rx = Receiver::start().await;
    let app = t
        .app(AppSpec {
            deauthorize_url: Some(format!("{}/deauth", rx.base)),
            webhook_url: Some(format!("{}/hook", rx.base)),
            ..spec()
        })
        .await;
    t.user_with(UserSpec::named("acme_shop").with_media(1))
        .await;
    let long = t.long_token(&app, "acme_shop", ALL_SCOPES).await;
    t.graph_post(
        "/me/subscribed_apps",
        &long,
        &[("subscribed_fields", "comments")],
    )
    .await;
    t.control
        .user_event("acme_shop", &bare_comment())
        .await
        .unwrap();
    t.control
        .user_event("acme_shop", &UserEvent::Deauthorize { client_id: None })
        .await
        .unwrap();
    let got = rx.take();
    assert_eq!(got.len(), 2);
    let secret = app["client_secret"].as_str().unwrap();
    let hook = got.iter().find(|r| r.path == "/hook").unwrap();
    let sig = hook.headers["x-hub-signature-256"].to_str().unwrap();
    assert_eq!(
        sig,
        format!(
            "sha256={}",
            hex::encode(hmac(secret.as_bytes(), &hook.body))
        )
    );
    assert_same_shape(
        &fixture("webhook_comment.json"),
        &serde_json::from_slice(&hook.body).unwrap(),
    );
    let deauth = got.iter().find(|r| r.path == "/deauth").unwrap();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&deauth.body)
        .into_owned()
        .collect();
    let payload = verify_signed_request(&form[0].1, secret);
    assert_same_shape(
        &fixture("signed_request_deauthorize_payload.json"),
        &payload,
    );
}

#[tokio::test]
async fn row_10_instagram_tokens_are_rejected_on_the_facebook_host() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    let r = t
        .graph("/_fb/v24.0/me", &long, &[("fields", "id,name")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["code"], 190);
    assert_eq!(
        r.body["error"]["message"],
        "Invalid OAuth access token - Cannot parse access token"
    );
}
