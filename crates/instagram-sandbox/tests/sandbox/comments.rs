//! Comments, webhook subscriptions and the comment webhook (checklist row 9, webhook side).

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn subscribed_apps_and_signed_comment_webhook() {
    let t = TestSandbox::start().await;
    let rx = Receiver::start().await;
    let app = t
        .app(AppSpec {
            webhook_url: Some(format!("{}/webhooks/instagram", rx.base)),
            ..spec()
        })
        .await;
    let user = t
        .user_with(UserSpec::named("acme_shop").with_media(1))
        .await;
    let long = t.long_token(&app, "acme_shop", ALL_SCOPES).await;

    // Not subscribed yet: nothing is sent.
    let ev = t
        .control
        .user_event(user["id"].as_str().unwrap(), &bare_comment())
        .await
        .unwrap();
    assert_eq!(ev["deliveries"], json!([]));

    let sub = t
        .graph_post(
            "/v24.0/me/subscribed_apps",
            &long,
            &[("subscribed_fields", "comments,messages")],
        )
        .await;
    assert_eq!(
        sub.body,
        fixture("subscribed_apps_post.json"),
        "{}",
        sub.text
    );
    let listed = t.graph("/me/subscribed_apps", &long, &[]).await;
    assert_eq!(
        listed.body["data"][0]["subscribed_fields"],
        json!(["comments", "messages"])
    );
    let bad = t
        .graph_post(
            "/me/subscribed_apps",
            &long,
            &[("subscribed_fields", "likes")],
        )
        .await;
    assert_graph_error(&bad, 100, None);

    let ev = t
        .control
        .user_event("acme_shop", &UserEvent::comment("Love it", "a_fan"))
        .await
        .unwrap();
    assert_eq!(ev["deliveries"][0]["status"], 200, "{ev}");
    let got = rx.take();
    assert_eq!(got.len(), 1);
    let hook = &got[0];
    assert_eq!(hook.path, "/webhooks/instagram");
    let sig = hook.headers["x-hub-signature-256"].to_str().unwrap();
    let expected = hex::encode(hmac(
        app["client_secret"].as_str().unwrap().as_bytes(),
        &hook.body,
    ));
    assert_eq!(sig, format!("sha256={expected}"));
    let payload: serde_json::Value = serde_json::from_slice(&hook.body).unwrap();
    assert_same_shape(&fixture("webhook_comment.json"), &payload);
    assert_eq!(payload["entry"][0]["id"], user["user_id"]);
    assert_eq!(
        payload["entry"][0]["changes"][0]["value"]["text"],
        "Love it"
    );

    // The comment is on the media for the API too.
    let media_id = ev["media_id"].as_str().unwrap();
    let comments = t
        .graph(
            &format!("/{media_id}/comments"),
            &long,
            &[("fields", "id,text,username,timestamp")],
        )
        .await;
    assert_eq!(comments.status, StatusCode::OK, "{}", comments.text);
    let texts: Vec<&str> = comments.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["Love it", "Nice!"]);
    assert_eq!(comments.body["data"][0]["username"], "a_fan");
}

#[tokio::test]
async fn comment_moderation() {
    let t = TestSandbox::start().await;
    let (app, _user, long) = t.connected(1).await;
    let media_id = t.graph("/me/media", &long, &[]).await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = t
        .graph_post(
            &format!("/{media_id}/comments"),
            &long,
            &[("message", "First!")],
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    let cid = c.body["id"].as_str().unwrap().to_owned();
    let reply = t
        .graph_post(&format!("/{cid}/replies"), &long, &[("message", "Thanks")])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let replies = t
        .graph(&format!("/{cid}/replies"), &long, &[("fields", "text")])
        .await;
    assert_eq!(replies.body["data"][0]["text"], "Thanks");
    let node = t
        .graph(
            &format!("/{cid}"),
            &long,
            &[("fields", "text,hidden,media,replies{text}")],
        )
        .await;
    assert_eq!(
        node.body["replies"]["data"][0]["text"], "Thanks",
        "{}",
        node.text
    );
    let hide = t
        .graph_post(&format!("/{cid}"), &long, &[("hide", "true")])
        .await;
    assert_eq!(hide.body, json!({ "success": true }));
    assert_eq!(
        t.graph(&format!("/{cid}"), &long, &[("fields", "hidden")])
            .await
            .body["hidden"],
        true
    );
    let m = t
        .graph(
            &format!("/{media_id}"),
            &long,
            &[("fields", "comments_count")],
        )
        .await;
    assert_eq!(m.body["comments_count"], 2);
    let del = TestSandbox::read(
        t.http
            .delete(t.url(&format!("/{cid}")))
            .query(&[("access_token", &long)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(del.body, json!({ "success": true }));
    assert_graph_error(
        &t.graph(&format!("/{cid}"), &long, &[]).await,
        100,
        Some(33),
    );

    let basic = t
        .long_token(&app, "acme_shop", "instagram_business_basic")
        .await;
    assert_graph_error(
        &t.graph(&format!("/{media_id}/comments"), &basic, &[]).await,
        10,
        None,
    );
    assert_graph_error(
        &t.graph_post(
            &format!("/{media_id}/comments"),
            &basic,
            &[("message", "x")],
        )
        .await,
        200,
        None,
    );
    assert_graph_error(
        &t.graph_post(
            "/me/subscribed_apps",
            &basic,
            &[("subscribed_fields", "comments")],
        )
        .await,
        200,
        None,
    );
}
