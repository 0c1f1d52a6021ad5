//! Content publishing: the container state machine, media_publish, the daily cap (row 7).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

async fn container(t: &TestSandbox, token: &str, form: &[(&str, &str)]) -> String {
    let r = t.graph_post("/v24.0/me/media", token, form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_same_shape(&fixture("container_create.json"), &r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn status(t: &TestSandbox, token: &str, id: &str) -> Value {
    t.graph(
        &format!("/v24.0/{id}"),
        token,
        &[("fields", "status_code,status")],
    )
    .await
    .body
}

async fn publish(t: &TestSandbox, token: &str, id: &str) -> Resp {
    t.graph_post("/v24.0/me/media_publish", token, &[("creation_id", id)])
        .await
}

#[tokio::test]
async fn container_goes_in_progress_finished_published() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(1).await;
    let id = container(
        &t,
        &long,
        &[
            ("image_url", "https://cdn.example.com/a.jpg"),
            ("caption", "Launch day"),
        ],
    )
    .await;
    let s = status(&t, &long, &id).await;
    assert_eq!(s["status_code"], "IN_PROGRESS");
    assert_eq!(s["status"], "In Progress: Media is still being processed.");

    let early = publish(&t, &long, &id).await;
    assert_eq!(early.status, StatusCode::BAD_REQUEST);
    assert_graph_error(&early, 9007, Some(2_207_027));
    assert_eq!(early.body["error"]["is_transient"], true);

    t.advance(5).await;
    let s = status(&t, &long, &id).await;
    assert_same_shape(&fixture("container_status_finished.json"), &s);
    assert_eq!(s, {
        let mut f = fixture("container_status_finished.json");
        f["id"] = json!(id);
        f
    });

    let p = publish(&t, &long, &id).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert_same_shape(&fixture("media_publish.json"), &p.body);
    let media_id = p.body["id"].as_str().unwrap();
    assert_eq!(status(&t, &long, &id).await["status_code"], "PUBLISHED");
    let list = t.graph("/me/media", &long, &[("fields", "caption")]).await;
    assert_eq!(list.body["data"][0]["id"], json!(media_id));
    assert_eq!(list.body["data"][0]["caption"], "Launch day");
    let me = t.graph("/me", &long, &[("fields", "media_count")]).await;
    assert_eq!(me.body["media_count"], 2);
    // A container publishes once.
    assert_graph_error(&publish(&t, &long, &id).await, 506, None);
}

#[tokio::test]
async fn containers_expire_after_24_hours_and_faults_make_them_fail() {
    let t = TestSandbox::start().await;
    let (_app, user, long) = t.connected(0).await;
    let stale = container(&t, &long, &[("image_url", "https://cdn.example.com/a.jpg")]).await;
    t.advance(86_400).await;
    assert_eq!(status(&t, &long, &stale).await["status_code"], "EXPIRED");
    assert_graph_error(&publish(&t, &long, &stale).await, -2, Some(2_207_020));

    let pid = user["user_id"].as_str().unwrap();
    t.control
        .add_fault(
            &FaultSpec::container_error("/*/media")
                .method("POST")
                .times(1),
        )
        .await
        .unwrap();
    let bad = container(&t, &long, &[("image_url", "https://cdn.example.com/b.jpg")]).await;
    let good = t
        .graph_post(
            &format!("/{pid}/media"),
            &long,
            &[("image_url", "https://cdn.example.com/c.jpg")],
        )
        .await;
    let good = good.body["id"].as_str().unwrap().to_owned();
    assert_eq!(status(&t, &long, &bad).await["status_code"], "IN_PROGRESS");
    t.advance(5).await;
    let s = status(&t, &long, &bad).await;
    assert_eq!(s["status_code"], "ERROR");
    assert_eq!(
        s["status"],
        "Error: Media upload has failed with error code 2207026"
    );
    assert_graph_error(&publish(&t, &long, &bad).await, -1, Some(2_207_032));
    assert_eq!(publish(&t, &long, &good).await.status, StatusCode::OK);
}

#[tokio::test]
async fn carousels_reels_and_stories() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    let a = container(
        &t,
        &long,
        &[
            ("image_url", "https://cdn.example.com/1.jpg"),
            ("is_carousel_item", "true"),
        ],
    )
    .await;
    let b = container(
        &t,
        &long,
        &[
            ("image_url", "https://cdn.example.com/2.jpg"),
            ("is_carousel_item", "true"),
        ],
    )
    .await;
    let children = format!("{a},{b}");
    let album = container(
        &t,
        &long,
        &[
            ("media_type", "CAROUSEL"),
            ("children", &children),
            ("caption", "Two"),
        ],
    )
    .await;
    let one = t
        .graph_post(
            "/me/media",
            &long,
            &[("media_type", "CAROUSEL"), ("children", &a)],
        )
        .await;
    assert_graph_error(&one, 100, None);
    t.advance(5).await;
    assert_graph_error(&publish(&t, &long, &a).await, 100, None);
    let p = publish(&t, &long, &album).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    let mid = p.body["id"].as_str().unwrap();
    let m = t
        .graph(
            &format!("/{mid}"),
            &long,
            &[("fields", "media_type,children{media_type,media_url}")],
        )
        .await;
    assert_eq!(m.body["media_type"], "CAROUSEL_ALBUM", "{}", m.text);
    assert_eq!(m.body["children"]["data"].as_array().unwrap().len(), 2);
    let kids = t
        .graph(
            &format!("/{mid}/children"),
            &long,
            &[("fields", "id,media_type")],
        )
        .await;
    assert_eq!(kids.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(kids.body["data"][0]["media_type"], "IMAGE");
    // Carousel items are not listed on their own.
    let list = t.graph("/me/media", &long, &[]).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);

    let reel = container(
        &t,
        &long,
        &[
            ("media_type", "REELS"),
            ("video_url", "https://cdn.example.com/r.mp4"),
        ],
    )
    .await;
    t.advance(5).await;
    assert_eq!(
        status(&t, &long, &reel).await["status_code"],
        "IN_PROGRESS",
        "videos take longer"
    );
    t.advance(10).await;
    let r = publish(&t, &long, &reel).await;
    let rid = r.body["id"].as_str().unwrap();
    let m = t
        .graph(
            &format!("/{rid}"),
            &long,
            &[("fields", "media_type,media_product_type,thumbnail_url")],
        )
        .await;
    assert_eq!(m.body["media_type"], "VIDEO");
    assert_eq!(m.body["media_product_type"], "REELS");
    assert!(m.body["thumbnail_url"].is_string());

    let story = container(
        &t,
        &long,
        &[
            ("media_type", "STORIES"),
            ("image_url", "https://cdn.example.com/s.jpg"),
        ],
    )
    .await;
    t.advance(5).await;
    assert_eq!(publish(&t, &long, &story).await.status, StatusCode::OK);
    let stories = t
        .graph("/me/stories", &long, &[("fields", "media_product_type")])
        .await;
    assert_eq!(
        stories.body["data"][0]["media_product_type"], "STORY",
        "{}",
        stories.text
    );
    assert_eq!(
        t.graph("/me/media", &long, &[]).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn container_parameter_errors() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    t.user("acme_shop").await;
    let basic_only = t
        .long_token(&app, "acme_shop", "instagram_business_basic")
        .await;
    let denied = t
        .graph_post(
            "/me/media",
            &basic_only,
            &[("image_url", "https://cdn.example.com/a.jpg")],
        )
        .await;
    assert_graph_error(&denied, 200, None);
    let limit = t
        .graph("/me/content_publishing_limit", &basic_only, &[])
        .await;
    assert_graph_error(&limit, 200, None);

    let long = t.long_token(&app, "acme_shop", ALL_SCOPES).await;
    let missing = t.graph_post("/me/media", &long, &[("caption", "x")]).await;
    assert_eq!(
        missing.body["error"]["message"],
        "The parameter image_url is required"
    );
    let resumable = t
        .graph_post(
            "/me/media",
            &long,
            &[("media_type", "REELS"), ("upload_type", "resumable")],
        )
        .await;
    assert_eq!(
        resumable.body,
        json!({ "error": {
            "message": "The parameter video_url is required", "type": "IGApiException", "code": 100,
            "is_transient": false, "fbtrace_id": resumable.body["error"]["fbtrace_id"],
        }})
    );
    let bad_url = t
        .graph_post("/me/media", &long, &[("image_url", "not a url")])
        .await;
    assert_graph_error(&bad_url, 9004, Some(2_207_052));
    let bad_type = t
        .graph_post(
            "/me/media",
            &long,
            &[
                ("media_type", "HOLOGRAM"),
                ("image_url", "https://x.example/a.jpg"),
            ],
        )
        .await;
    assert_graph_error(&bad_type, 100, None);
    // JSON bodies are accepted as well.
    let r = TestSandbox::read(
        t.http
            .post(t.url("/me/media"))
            .bearer_auth(&long)
            .json(&json!({ "image_url": "https://cdn.example.com/j.jpg", "caption": "json" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let unknown = publish(&t, &long, "17999999999999999").await;
    assert_graph_error(&unknown, 100, None);
}

#[tokio::test]
async fn daily_publishing_cap_and_content_publishing_limit() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    t.user_with(UserSpec {
        publish_quota_total: Some(2),
        ..UserSpec::named("acme_shop")
    })
    .await;
    let long = t.long_token(&app, "acme_shop", ALL_SCOPES).await;
    for _ in 0..2 {
        let id = container(&t, &long, &[("image_url", "https://cdn.example.com/a.jpg")]).await;
        t.advance(5).await;
        assert_eq!(publish(&t, &long, &id).await.status, StatusCode::OK);
    }
    let id = container(&t, &long, &[("image_url", "https://cdn.example.com/a.jpg")]).await;
    t.advance(5).await;
    let capped = publish(&t, &long, &id).await;
    assert_graph_error(&capped, 9, Some(2_207_042));

    let r = t
        .graph(
            "/v24.0/me/content_publishing_limit",
            &long,
            &[("fields", "quota_usage,config")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_same_shape(&fixture("content_publishing_limit.json"), &r.body);
    assert_eq!(r.body["data"][0]["quota_usage"], 2);
    assert_eq!(
        r.body["data"][0]["config"],
        json!({ "quota_total": 2, "quota_duration": 86400 })
    );
    let bare = t.graph("/me/content_publishing_limit", &long, &[]).await;
    assert_eq!(bare.body, json!({ "data": [{ "quota_usage": 2 }] }));
    let now = t.control.clock().await.unwrap().now_unix;
    let too_old = (now - 2 * 86_400).to_string();
    let r = t
        .graph(
            "/me/content_publishing_limit",
            &long,
            &[("since", &too_old)],
        )
        .await;
    assert_graph_error(&r, 100, None);

    // The window rolls: a day later the quota is free again (the container has expired, so
    // a new one is needed).
    t.advance(86_400).await;
    let bare = t.graph("/me/content_publishing_limit", &long, &[]).await;
    assert_eq!(bare.body["data"][0]["quota_usage"], 0);
    let id = container(&t, &long, &[("image_url", "https://cdn.example.com/a.jpg")]).await;
    t.advance(5).await;
    assert_eq!(publish(&t, &long, &id).await.status, StatusCode::OK);
}
