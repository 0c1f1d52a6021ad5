//! Wire format and error paths against a scripted loopback server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Canned, Mock};
use futures::TryStreamExt;
use instagram_api::{
    AccessToken, AppCredentials, AuthorizationCode, Client, ClientSecret, ContainerRequest, Error,
    InsightsQuery, MediaQuery, Method, NetworkErrorKind, PollOptions, PublishingErrorKind,
    RawRequest, ReauthReason, TokenPlacement,
};

const FLAT: &str = include_str!("fixtures/exchange_flat_shape.json");
const DATA: &str = include_str!("fixtures/exchange_data_shape.json");
const LONG: &str = include_str!("fixtures/long_lived.json");
const ME: &str = include_str!("fixtures/me.json");
const APP_USAGE: &str = r#"{"call_count":28,"total_time":25,"total_cputime":25}"#;
const BUC_USAGE: &str = r#"{"17841400000000001":[{"type":"instagram","call_count":97,"total_cputime":23,"total_time":23,"estimated_time_to_regain_access":0}]}"#;

fn app() -> AppCredentials {
    AppCredentials {
        client_id: "990602627938098".into(),
        client_secret: ClientSecret::new("app-secret-1"),
    }
}

fn fast_poll() -> PollOptions {
    PollOptions {
        initial_interval: Duration::from_millis(5),
        max_interval: Duration::from_millis(20),
        multiplier: 2,
        timeout: Duration::from_secs(3),
    }
}

#[tokio::test]
async fn code_exchange_posts_form_fields_and_accepts_both_shapes() {
    let mock = Mock::start().await;
    mock.on("POST", "/oauth/access_token", Canned::json(200, FLAT));
    mock.on("POST", "/oauth/access_token", Canned::json(200, DATA));
    let client = mock.client();
    let code = AuthorizationCode::new("AQBx-hBsH3abcdefg");

    for _ in 0..2 {
        let t = client
            .exchange_code(&app(), "https://app.example.com/cb", &code)
            .await
            .unwrap();
        assert_eq!(t.user_id, "27640875392278831");
        assert_eq!(t.access_token.expose_secret(), "IGAAx...short");
        assert!(
            t.permissions
                .contains(&"instagram_business_basic".to_owned())
        );
    }
    let r = mock.last();
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.headers.get("content-type").unwrap().to_str().unwrap(),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        r.form_value("client_id").as_deref(),
        Some("990602627938098")
    );
    assert_eq!(
        r.form_value("client_secret").as_deref(),
        Some("app-secret-1")
    );
    assert_eq!(
        r.form_value("grant_type").as_deref(),
        Some("authorization_code")
    );
    assert_eq!(
        r.form_value("redirect_uri").as_deref(),
        Some("https://app.example.com/cb")
    );
    assert_eq!(r.form_value("code").as_deref(), Some("AQBx-hBsH3abcdefg"));
    assert!(r.query.is_empty(), "secrets stay out of the URL");
}

#[tokio::test]
async fn code_exchange_error_is_oauth() {
    let mock = Mock::start().await;
    mock.on(
        "POST",
        "/oauth/access_token",
        Canned::json(400, include_str!("fixtures/exchange_error.json")),
    );
    let err = mock
        .client()
        .exchange_code(
            &app(),
            "https://app.example.com/cb",
            &AuthorizationCode::new("used"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OAuth { code: 400, .. }), "{err:?}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn long_lived_exchange_and_refresh_are_unversioned_gets() {
    let mock = Mock::start().await;
    mock.on("GET", "/access_token", Canned::json(200, LONG));
    mock.on(
        "GET",
        "/refresh_access_token",
        Canned::json(
            200,
            include_str!("fixtures/long_lived_without_token_type.json"),
        ),
    );
    let client = mock.client();

    let long = client
        .exchange_long_lived(
            &ClientSecret::new("app-secret-1"),
            &AccessToken::new("short-1"),
        )
        .await
        .unwrap();
    assert_eq!(long.expires_in, 5_183_944);
    let r = mock.last();
    assert_eq!(r.path, "/access_token");
    assert_eq!(
        r.query_value("grant_type").as_deref(),
        Some("ig_exchange_token")
    );
    assert_eq!(
        r.query_value("client_secret").as_deref(),
        Some("app-secret-1")
    );
    assert_eq!(r.query_value("access_token").as_deref(), Some("short-1"));

    let fresh = client.refresh(&long.access_token).await.unwrap();
    assert_eq!(fresh.token_type, None);
    let r = mock.last();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", "/refresh_access_token")
    );
    assert_eq!(
        r.query_value("grant_type").as_deref(),
        Some("ig_refresh_token")
    );
    assert_eq!(
        r.query_value("access_token").as_deref(),
        Some("IGAAx...long")
    );
}

#[tokio::test]
async fn me_is_versioned_and_sends_the_token_as_configured() {
    let mock = Mock::start().await;
    mock.on("GET", "/v24.0/me", Canned::json(200, ME));
    let token = AccessToken::new("tok-1");

    let me = mock
        .client()
        .me(&token, &["user_id", "username"])
        .await
        .unwrap();
    assert_eq!(me.id, "27640875392278831");
    let r = mock.last();
    assert_eq!(r.bearer().as_deref(), Some("tok-1"));
    assert_eq!(r.query_value("fields").as_deref(), Some("user_id,username"));
    assert_eq!(r.query_value("access_token"), None);

    let client = mock
        .client()
        .with_token_placement(TokenPlacement::Query)
        .with_appsecret_proof(ClientSecret::new("secret"));
    client.me(&token, &[]).await.unwrap();
    let r = mock.last();
    assert_eq!(r.bearer(), None);
    assert_eq!(r.query_value("access_token").as_deref(), Some("tok-1"));
    assert_eq!(
        r.query_value("appsecret_proof").unwrap(),
        instagram_api::appsecret_proof(&ClientSecret::new("secret"), &token)
    );
    assert!(r.query_value("fields").unwrap().contains("followers_count"));

    let mut config = mock.config();
    config.graph_version = "v25.0".into();
    mock.on("GET", "/v25.0/me", Canned::json(200, ME));
    Client::new(config).unwrap().me(&token, &[]).await.unwrap();
    assert_eq!(mock.last().path, "/v25.0/me");
}

#[tokio::test]
async fn usage_headers_on_success_and_failure() {
    let mock = Mock::start().await;
    mock.on(
        "GET",
        "/v24.0/me/media",
        Canned::json(200, r#"{"data":[]}"#)
            .header("x-app-usage", APP_USAGE)
            .header("x-business-use-case-usage", BUC_USAGE),
    );
    mock.on(
        "GET",
        "/v24.0/me",
        Canned::json(400, include_str!("fixtures/graph_error_buc_rate_limit.json")).header(
            "X-Business-Use-Case-Usage",
            r#"{"17841400000000001":[{"type":"instagram","call_count":100,"estimated_time_to_regain_access":9}]}"#,
        ),
    );
    let client = mock.client();
    let token = AccessToken::new("tok");

    let resp = client
        .raw(&token, RawRequest::get("me/media", vec![]))
        .await
        .unwrap();
    assert_eq!(resp.usage.app.as_ref().unwrap().call_count, Some(28));
    assert_eq!(resp.usage.business[0].call_count, Some(97));

    let err = client.me(&token, &[]).await.unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { code: 80002, retry_after: Some(d), .. } if d == Duration::from_secs(540)),
        "{err:?}"
    );
    assert_eq!(err.usage().unwrap().business[0].call_count, Some(100));
}

#[tokio::test]
async fn status_only_failures() {
    let mock = Mock::start().await;
    let token = AccessToken::new("tok");
    let client = mock.client();
    let me = || client.me(&token, &[]);

    mock.set("GET", "/v24.0/me", Canned::json(503, "<html>down</html>"));
    let e = me().await.unwrap_err();
    assert!(
        matches!(e, Error::Transient { code: None, .. }) && e.is_transient(),
        "{e:?}"
    );
    assert_eq!(e.http_status(), Some(503));

    mock.set(
        "GET",
        "/v24.0/me",
        Canned::json(429, "").header("retry-after", "7"),
    );
    let e = me().await.unwrap_err();
    assert!(
        matches!(e, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
        "{e:?}"
    );

    mock.set("GET", "/v24.0/me", Canned::json(200, "{not json"));
    let e = me().await.unwrap_err();
    assert!(matches!(e, Error::Decode { status: 200, .. }), "{e:?}");

    mock.set(
        "GET",
        "/v24.0/me",
        Canned::json(200, r#"{"id": ["wrong"]}"#),
    );
    let e = me().await.unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e:?}");

    mock.set(
        "GET",
        "/v24.0/me",
        Canned::json(200, include_str!("fixtures/graph_error_expired.json")),
    );
    let e = me().await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Reauth {
                reason: ReauthReason::Expired,
                ..
            }
        ),
        "graph error inside a 200: {e:?}"
    );

    mock.set("GET", "/v24.0/me", Canned::json(404, "Not Found"));
    let e = me().await.unwrap_err();
    assert!(
        matches!(e, Error::UnexpectedResponse { status: 404, .. }) && !e.is_transient(),
        "{e:?}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let mock = Mock::start().await;
    let target = format!("{}elsewhere", mock.base);
    mock.on(
        "GET",
        "/v24.0/me",
        Canned::json(302, "").header("location", &target),
    );
    mock.on("GET", "/elsewhere", Canned::json(200, ME));
    let e = mock
        .client()
        .me(&AccessToken::new("tok"), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::UnexpectedResponse { status: 302, .. }),
        "{e:?}"
    );
    assert!(mock.requests().iter().all(|r| r.path != "/elsewhere"));
}

#[tokio::test]
async fn timeouts_and_refused_connections() {
    let mock = Mock::start().await;
    mock.on(
        "GET",
        "/v24.0/me",
        Canned::json(200, ME).delayed(Duration::from_secs(3)),
    );
    let mut config = mock.config();
    config.request_timeout = Duration::from_millis(200);
    let e = Client::new(config)
        .unwrap()
        .me(&AccessToken::new("tok"), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Network {
                kind: NetworkErrorKind::Timeout,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_transient());

    // A port held closed: nothing listens there, and nothing can start to.
    let (_closed, addr) = common::closed_port();
    let client = Client::new(instagram_api::Config::for_base_url(
        format!("http://{addr}/").parse().unwrap(),
    ))
    .unwrap();
    let e = client.me(&AccessToken::new("tok"), &[]).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Network {
                kind: NetworkErrorKind::Connect,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_transient());
}

#[tokio::test]
async fn media_stream_follows_next_and_strips_tokens() {
    let mock = Mock::start().await;
    let base = mock.base.as_str().trim_end_matches('/');
    mock.on(
        "GET",
        "/v24.0/me/media",
        Canned::json(
            200,
            format!(
                r#"{{"data":[{{"id":"1"}},{{"id":"2"}}],"paging":{{"cursors":{{"after":"A"}},"next":"{base}/v24.0/me/media?after=A&access_token=LEAKED"}}}}"#
            ),
        ),
    );
    mock.on(
        "GET",
        "/v24.0/p3",
        Canned::json(
            200,
            r#"{"data":[],"paging":{"next":"https://graph.instagram.com/v24.0/p4"}}"#,
        ),
    );
    mock.on(
        "GET",
        "/v24.0/p4",
        Canned::json(
            200,
            r#"{"data":[{"id":"4"}],"paging":{"cursors":{"before":"X"}}}"#,
        ),
    );
    // Page 1 links back to the same path with after=A; the mock keys on path, so page 2 is
    // simply the next queued answer there. Page 2 names Instagram's real host.
    mock.on(
        "GET",
        "/v24.0/me/media",
        Canned::json(200, r#"{"data":[{"id":"3"}],"paging":{"next":"https://graph.instagram.com/v24.0/p3?after=C"}}"#),
    );
    let client = mock.client();
    let token = AccessToken::new("tok");
    let query = MediaQuery {
        limit: Some(2),
        fields: vec!["id".into()],
        ..Default::default()
    };
    let items: Vec<_> = client
        .media_stream(&token, "me", &query)
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<&str> = items.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3", "4"]);

    let reqs = mock.requests();
    assert_eq!(reqs[0].query_value("limit").as_deref(), Some("2"));
    assert_eq!(reqs[1].query_value("after").as_deref(), Some("A"));
    assert_eq!(
        reqs[1].query_value("access_token"),
        None,
        "the token in next was dropped"
    );
    assert!(reqs.iter().all(|r| r.bearer().as_deref() == Some("tok")));
    assert_eq!(
        reqs[2].path, "/v24.0/p3",
        "foreign host rebased onto graph_url"
    );
    assert_eq!(reqs.len(), 4);
}

#[tokio::test]
async fn repeating_next_is_an_error() {
    let mock = Mock::start().await;
    let base = mock.base.as_str().trim_end_matches('/');
    mock.on(
        "GET",
        "/v24.0/me/media",
        Canned::json(
            200,
            format!(r#"{{"data":[{{"id":"1"}}],"paging":{{"next":"{base}/v24.0/loop"}}}}"#),
        ),
    );
    mock.on(
        "GET",
        "/v24.0/loop",
        Canned::json(
            200,
            format!(r#"{{"data":[{{"id":"2"}}],"paging":{{"next":"{base}/v24.0/loop"}}}}"#),
        ),
    );
    let items: Vec<Result<_, _>> = futures::StreamExt::collect(mock.client().media_stream(
        &AccessToken::new("t"),
        "me",
        &MediaQuery::default(),
    ))
    .await;
    assert_eq!(items.len(), 3);
    assert!(matches!(items[2], Err(Error::Paging { .. })));
}

#[tokio::test]
async fn publish_polls_then_retries_not_ready() {
    let mock = Mock::start().await;
    mock.on(
        "POST",
        "/v24.0/178/media",
        Canned::json(200, r#"{"id":"c1"}"#),
    );
    mock.on(
        "GET",
        "/v24.0/c1",
        Canned::json(
            200,
            include_str!("fixtures/container_status_in_progress.json"),
        ),
    );
    mock.on(
        "GET",
        "/v24.0/c1",
        Canned::json(
            500,
            include_str!("fixtures/graph_error_unknown_transient.json"),
        ),
    );
    mock.on(
        "GET",
        "/v24.0/c1",
        Canned::json(200, include_str!("fixtures/container_status_finished.json")),
    );
    mock.on(
        "POST",
        "/v24.0/178/media_publish",
        Canned::json(400, include_str!("fixtures/graph_error_not_ready.json")),
    );
    mock.on(
        "POST",
        "/v24.0/178/media_publish",
        Canned::json(200, include_str!("fixtures/media_published.json")),
    );
    let token = AccessToken::new("tok");
    let post = ContainerRequest::image("https://cdn.example.com/a.jpg")
        .caption("hi")
        .alt_text("alt");

    let done = mock
        .client()
        .publish(&token, "178", &post, &fast_poll())
        .await
        .unwrap();
    assert_eq!(
        (done.container_id.as_str(), done.media_id.as_str()),
        ("c1", "17900001029")
    );

    let reqs = mock.requests();
    let create = &reqs[0];
    assert_eq!(
        create.form_value("image_url").as_deref(),
        Some("https://cdn.example.com/a.jpg")
    );
    assert_eq!(create.form_value("caption").as_deref(), Some("hi"));
    assert_eq!(create.form_value("alt_text").as_deref(), Some("alt"));
    assert_eq!(
        reqs[1].query_value("fields").as_deref(),
        Some("id,status_code,status")
    );
    let publishes: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.ends_with("media_publish"))
        .collect();
    assert_eq!(publishes.len(), 2);
    assert_eq!(
        publishes[1].form_value("creation_id").as_deref(),
        Some("c1")
    );
}

#[tokio::test]
async fn container_error_and_timeout() {
    let mock = Mock::start().await;
    mock.on(
        "GET",
        "/v24.0/bad",
        Canned::json(200, include_str!("fixtures/container_status_error.json")),
    );
    mock.on(
        "GET",
        "/v24.0/slow",
        Canned::json(
            200,
            include_str!("fixtures/container_status_in_progress.json"),
        ),
    );
    mock.on(
        "GET",
        "/v24.0/old",
        Canned::json(200, r#"{"status_code":"EXPIRED","id":"old"}"#),
    );
    let client = mock.client();
    let token = AccessToken::new("tok");

    let e = client
        .wait_for_container(&token, "bad", &fast_poll())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Publishing { kind: PublishingErrorKind::InvalidMedia, subcode: Some(2_207_026), ref container_id, .. } if container_id.as_deref() == Some("bad")),
        "{e:?}"
    );
    let opts = PollOptions {
        timeout: Duration::from_millis(60),
        ..fast_poll()
    };
    let e = client
        .wait_for_container(&token, "slow", &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Publishing {
                kind: PublishingErrorKind::Timeout,
                ..
            }
        ) && e.is_transient(),
        "{e:?}"
    );
    let e = client
        .wait_for_container(&token, "old", &fast_poll())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Publishing {
                kind: PublishingErrorKind::ContainerExpired,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn carousel_and_limit() {
    let mock = Mock::start().await;
    mock.on(
        "POST",
        "/v24.0/me/media",
        Canned::json(200, r#"{"id":"i1"}"#),
    );
    mock.on(
        "POST",
        "/v24.0/me/media",
        Canned::json(200, r#"{"id":"i2"}"#),
    );
    mock.on(
        "POST",
        "/v24.0/me/media",
        Canned::json(200, r#"{"id":"car"}"#),
    );
    for id in ["i1", "i2", "car"] {
        mock.on(
            "GET",
            &format!("/v24.0/{id}"),
            Canned::json(200, r#"{"status_code":"FINISHED"}"#),
        );
    }
    mock.on(
        "POST",
        "/v24.0/me/media_publish",
        Canned::json(200, r#"{"id":"m9"}"#),
    );
    mock.on(
        "GET",
        "/v24.0/me/content_publishing_limit",
        Canned::json(200, include_str!("fixtures/content_publishing_limit.json")),
    );
    let client = mock.client();
    let token = AccessToken::new("tok");

    let items = [
        ContainerRequest::carousel_image("https://x/1.jpg"),
        ContainerRequest::carousel_video("https://x/2.mp4"),
    ];
    let done = client
        .publish_carousel(&token, "me", &items, Some("two"), &fast_poll())
        .await
        .unwrap();
    assert_eq!(done.media_id, "m9");
    let creates: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v24.0/me/media")
        .collect();
    assert_eq!(
        creates[0].form_value("is_carousel_item").as_deref(),
        Some("true")
    );
    assert_eq!(
        creates[1].form_value("media_type").as_deref(),
        Some("VIDEO")
    );
    assert_eq!(
        creates[2].form_value("media_type").as_deref(),
        Some("CAROUSEL")
    );
    assert_eq!(creates[2].form_value("children").as_deref(), Some("i1,i2"));
    assert_eq!(creates[2].form_value("caption").as_deref(), Some("two"));

    let bad = client
        .publish_carousel(&token, "me", &items[..1], None, &fast_poll())
        .await
        .unwrap_err();
    assert!(matches!(bad, Error::InvalidRequest { .. }));

    let limit = client
        .content_publishing_limit(&token, "me", Some(1_700_000_000))
        .await
        .unwrap();
    assert_eq!(limit.remaining(), Some(48));
    let r = mock.last();
    assert_eq!(
        r.query_value("fields").as_deref(),
        Some("quota_usage,rate_limit_settings")
    );
    assert_eq!(r.query_value("since").as_deref(), Some("1700000000"));
}

#[tokio::test]
async fn comments_insights_subscriptions_raw() {
    let mock = Mock::start().await;
    let token = AccessToken::new("tok");
    let client = mock.client();

    mock.on(
        "GET",
        "/v24.0/m1/comments",
        Canned::json(
            200,
            r#"{"data":[{"id":"c1","text":"hi","from":{"id":"9","username":"u"},"hidden":false}]}"#,
        ),
    );
    let comments: Vec<_> = client
        .comments_stream(&token, "m1", &[])
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        comments[0].from.as_ref().unwrap().username.as_deref(),
        Some("u")
    );

    mock.on(
        "POST",
        "/v24.0/c1/replies",
        Canned::json(200, r#"{"id":"r1"}"#),
    );
    assert_eq!(
        client
            .reply_to_comment(&token, "c1", "thanks")
            .await
            .unwrap(),
        "r1"
    );
    assert_eq!(mock.last().form_value("message").as_deref(), Some("thanks"));

    mock.on(
        "POST",
        "/v24.0/c1",
        Canned::json(200, r#"{"success":true}"#),
    );
    client.hide_comment(&token, "c1", true).await.unwrap();
    assert_eq!(mock.last().form_value("hide").as_deref(), Some("true"));

    mock.on(
        "DELETE",
        "/v24.0/r1",
        Canned::json(200, r#"{"success":true}"#),
    );
    client.delete_comment(&token, "r1").await.unwrap();
    mock.on(
        "DELETE",
        "/v24.0/r2",
        Canned::json(200, r#"{"success":false}"#),
    );
    assert!(client.delete_comment(&token, "r2").await.is_err());

    mock.on(
        "GET",
        "/v24.0/me/insights",
        Canned::json(200, include_str!("fixtures/insights.json")),
    );
    let q = InsightsQuery {
        metrics: vec!["reach".into(), "follower_count".into()],
        period: Some("day".into()),
        since: Some(1),
        ..Default::default()
    };
    let metrics = client.user_insights(&token, "me", &q).await.unwrap();
    assert_eq!(metrics.len(), 2);
    let r = mock.last();
    assert_eq!(
        r.query_value("metric").as_deref(),
        Some("reach,follower_count")
    );
    assert_eq!(r.query_value("period").as_deref(), Some("day"));
    assert_eq!(r.query_value("since").as_deref(), Some("1"));

    mock.on(
        "GET",
        "/v24.0/m1/insights",
        Canned::json(
            200,
            r#"{"data":[{"name":"views","period":"lifetime","values":[{"value":10}]}]}"#,
        ),
    );
    let m = client
        .media_insights(&token, "m1", &["views"])
        .await
        .unwrap();
    assert_eq!(m[0].total(), Some(10));

    mock.on(
        "POST",
        "/v24.0/me/subscribed_apps",
        Canned::json(200, include_str!("fixtures/subscribed_apps_success.json")),
    );
    client
        .subscribe_app(&token, "me", &["comments", "messages"])
        .await
        .unwrap();
    assert_eq!(
        mock.last().query_value("subscribed_fields").as_deref(),
        Some("comments,messages")
    );

    mock.on(
        "GET",
        "/v24.0/me/subscribed_apps",
        Canned::json(200, r#"{"data":[{"subscribed_fields":["comments"]}]}"#),
    );
    assert_eq!(
        client.subscribed_apps(&token, "me").await.unwrap()[0].subscribed_fields,
        ["comments"]
    );

    mock.on(
        "POST",
        "/v24.0/me/media",
        Canned::json(200, r#"{"id":"x"}"#),
    );
    let resp = client
        .raw(
            &token,
            RawRequest {
                method: Method::POST,
                path: "/me/media".into(),
                params: vec![("image_url".into(), "u".into())],
            },
        )
        .await
        .unwrap();
    assert_eq!(resp.body["id"], "x");
    assert_eq!(mock.last().form_value("image_url").as_deref(), Some("u"));

    mock.on("GET", "/v23.0/me", Canned::json(200, ME));
    client
        .raw(&token, RawRequest::get("v23.0/me", vec![]))
        .await
        .unwrap();
    assert_eq!(mock.last().path, "/v23.0/me");

    let e = client
        .raw(
            &token,
            RawRequest::get("me", vec![("access_token".into(), "x".into())]),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidRequest { .. }));
    let e = client
        .raw(
            &token,
            RawRequest {
                method: Method::PUT,
                path: "me".into(),
                params: vec![],
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidRequest { .. }));
}
