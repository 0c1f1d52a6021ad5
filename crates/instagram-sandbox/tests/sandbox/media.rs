//! Media listing with cursor paging, media nodes, children (checklist row 7, reading side).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const MEDIA_FIELDS: &str = "id,caption,media_type,media_product_type,media_url,permalink,timestamp,like_count,comments_count";

fn ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn media_pages_with_cursors_and_urls_back_to_this_host() {
    let t = TestSandbox::start().await;
    let (_app, user, long) = t.connected(23).await;
    let pid = user["user_id"].as_str().unwrap();
    let p1 = t
        .graph(
            "/v24.0/me/media",
            &long,
            &[("fields", MEDIA_FIELDS), ("limit", "10")],
        )
        .await;
    assert_eq!(p1.status, StatusCode::OK, "{}", p1.text);
    assert_same_shape(&fixture("media_page.json"), &p1.body);
    assert_eq!(ids(&p1.body).len(), 10);
    assert!(p1.body["paging"].get("previous").is_none());
    // Newest first.
    let stamps: Vec<&str> = p1.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["timestamp"].as_str().unwrap())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "{stamps:?}");
    assert!(stamps[0].ends_with("+0000"));
    assert_eq!(p1.body["data"][0]["caption"], "Sandbox post #23");

    let next = p1.body["paging"]["next"].as_str().unwrap();
    assert!(
        next.starts_with(&format!("{}/v24.0/{pid}/media?", t.base)),
        "{next}"
    );
    assert!(next.contains(&format!("access_token={long}")), "{next}");
    assert!(next.contains("limit=10"));
    // The next URL works as is, like the real ones.
    let p2 = TestSandbox::read(t.http.get(next).send().await.unwrap()).await;
    assert_eq!(p2.status, StatusCode::OK, "{}", p2.text);
    assert_eq!(ids(&p2.body).len(), 10);
    assert_eq!(p2.body["data"][0]["caption"], "Sandbox post #13");
    let prev = p2.body["paging"]["previous"].as_str().unwrap();
    let back = TestSandbox::read(t.http.get(prev).send().await.unwrap()).await;
    assert_eq!(ids(&back.body), ids(&p1.body));

    let p3 = TestSandbox::read(
        t.http
            .get(p2.body["paging"]["next"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ids(&p3.body).len(), 3);
    assert!(
        p3.body["paging"].get("next").is_none(),
        "last page has no next"
    );
    let mut all = ids(&p1.body);
    all.extend(ids(&p2.body));
    all.extend(ids(&p3.body));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 23);
}

#[tokio::test]
async fn media_defaults_expansions_and_time_filters() {
    let t = TestSandbox::start().await;
    let (_app, user, long) = t.connected(30).await;
    let all = t.graph("/me/media", &long, &[]).await;
    assert_eq!(ids(&all.body).len(), 25, "default limit is 25");
    assert_eq!(
        all.body["data"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["id"]
    );
    let pid = user["user_id"].as_str().unwrap();
    let same = t
        .graph(&format!("/{pid}/media"), &long, &[("limit", "5")])
        .await;
    assert_eq!(ids(&same.body), ids(&all.body)[..5].to_vec());

    let r = t
        .graph(
            "/me",
            &long,
            &[("fields", "username,media.limit(2){caption, like_count}")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["media"]["data"].as_array().unwrap().len(), 2);
    assert!(r.body["media"]["data"][0]["caption"].is_string());
    let next = r.body["media"]["paging"]["next"].as_str().unwrap();
    assert!(next.contains("fields=caption%2Clike_count"), "{next}");

    let r = t
        .graph(
            "/me",
            &long,
            &[("fields", "media.fields(id,media_type).limit(3)")],
        )
        .await;
    assert_eq!(
        r.body["media"]["data"].as_array().unwrap().len(),
        3,
        "{}",
        r.text
    );

    let now = t.control.clock().await.unwrap().now_unix;
    let since = (now - 5 * 86_400).to_string();
    let recent = t.graph("/me/media", &long, &[("since", &since)]).await;
    assert_eq!(ids(&recent.body).len(), 5, "{}", recent.text);

    let bad = t.graph("/me/media", &long, &[("limit", "lots")]).await;
    assert_graph_error(&bad, 100, None);
    let bad_cursor = t.graph("/me/media", &long, &[("after", "@@@")]).await;
    assert_graph_error(&bad_cursor, 100, None);
}

#[tokio::test]
async fn media_node_fields_and_other_users_media() {
    let t = TestSandbox::start().await;
    let (app, _user, long) = t.connected(2).await;
    let list = t.graph("/me/media", &long, &[]).await;
    let id = ids(&list.body)[0].clone();
    let r = t
        .graph(
            &format!("/v24.0/{id}"),
            &long,
            &[("fields", "id,caption,media_type,media_url,permalink,shortcode,timestamp,username,like_count,comments_count,owner,is_comment_enabled")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["id"], json!(id));
    assert_eq!(r.body["media_type"], "IMAGE");
    assert_eq!(r.body["username"], "acme_shop");
    assert!(
        r.body["permalink"]
            .as_str()
            .unwrap()
            .starts_with("https://www.instagram.com/p/")
    );
    assert!(r.body["owner"]["id"].as_str().unwrap().starts_with("17841"));
    // Not a carousel: no children, and no thumbnail for an image.
    let r = t
        .graph(
            &format!("/{id}"),
            &long,
            &[("fields", "children,thumbnail_url")],
        )
        .await;
    assert_eq!(
        r.body.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["id"]
    );
    let kids = t.graph(&format!("/{id}/children"), &long, &[]).await;
    assert_eq!(kids.body, json!({ "data": [] }));
    let unknown = t
        .graph(&format!("/{id}"), &long, &[("fields", "plays")])
        .await;
    assert_eq!(
        unknown.body["error"]["message"],
        "(#100) Tried accessing nonexisting field (plays) on node type (Media)"
    );

    // Another account's media is invisible to this token.
    t.user_with(UserSpec::named("rival").with_media(1)).await;
    let rival_token = t.long_token(&app, "rival", ALL_SCOPES).await;
    let theirs = ids(&t.graph("/me/media", &rival_token, &[]).await.body)[0].clone();
    assert_graph_error(
        &t.graph(&format!("/{theirs}"), &long, &[]).await,
        100,
        Some(33),
    );
    assert_graph_error(&t.graph("/me/nonsense", &long, &[]).await, 2500, None);
}
