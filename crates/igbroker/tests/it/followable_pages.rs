//! Paged Graph answers through the broker carry `paging.next` / `previous` links to the
//! broker itself: a caller follows them to the end with only its API key, and no answer
//! holds Instagram's host or the account's token; a hostile cursor is refused.

use instagram_sandbox::control_client::UserSpec;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const PAGED_USER: &str = "many_posts";
const MEDIA: usize = 60;

async fn graph_key(env: &TestEnv) -> String {
    let (st, v) = env
        .api(
            reqwest::Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "pages", "scopes": ["graph"], "app_ids": [env.app_id]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    s(&v["key"])
}

/// GETs an absolute URL with `key`; the answer's text, checked for the host and token.
async fn follow(env: &TestEnv, url: &str, key: &str, token: &str) -> (StatusCode, Value) {
    assert!(url.starts_with(&env.broker), "a link off the broker: {url}");
    let resp = env.http.get(url).bearer_auth(key).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let sandbox_host = env.sandbox.trim_start_matches("http://");
    assert!(
        !text.contains(sandbox_host),
        "the sandbox's host leaked: {text}"
    );
    assert!(!text.contains("graph.instagram.com"), "{text}");
    assert!(!text.contains(token), "the token leaked into {url}");
    assert!(!text.contains("access_token"), "{text}");
    (status, serde_json::from_str(&text).unwrap())
}

async fn media_pages_are_followed_to_the_end(env: TestEnv) {
    env.sb
        .create_user(&UserSpec::named(PAGED_USER).with_media(MEDIA as u32))
        .await
        .unwrap();
    let acc = env.connect(PAGED_USER, "pager").await;
    let (st, tok) = env.get(&format!("/v1/accounts/{acc}/token")).await;
    assert_eq!(st, StatusCode::OK, "{tok}");
    let token = s(&tok["access_token"]);
    let key = graph_key(&env).await;

    let mut url = format!(
        "{}/v1/accounts/{acc}/graph/me/media?fields=id,caption&limit=25",
        env.broker
    );
    let mut ids: Vec<String> = Vec::new();
    let mut pages = 0;
    let mut last = Value::Null;
    loop {
        let (st, page) = follow(&env, &url, &key, &token).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        pages += 1;
        assert!(pages <= 10, "paging does not end");
        for m in page["data"].as_array().unwrap() {
            assert!(m["caption"].is_string(), "fields= was kept: {m}");
            ids.push(s(&m["id"]));
        }
        if let Some(prev) = page["paging"]["previous"].as_str() {
            assert!(prev.contains("before="), "{prev}");
            assert!(
                prev.contains("limit=25") && prev.contains("fields=id%2Ccaption"),
                "{prev}"
            );
        }
        match page["paging"]["next"].as_str() {
            Some(next) => {
                assert!(
                    next.contains("limit=25") && next.contains("fields=id%2Ccaption"),
                    "{next}"
                );
                url = next.to_string();
            }
            None => break,
        }
        last = page;
    }
    assert_eq!(pages, 3, "60 items in pages of 25");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(ids.len(), MEDIA, "every item once");
    assert_eq!(unique.len(), MEDIA, "no item twice");

    // The previous link of the second page leads back to the first page's items.
    let prev = s(&last["paging"]["previous"]);
    let (st, back) = follow(&env, &prev, &key, &token).await;
    assert_eq!(st, StatusCode::OK, "{back}");
    let back_ids: Vec<String> = back["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| s(&m["id"]))
        .collect();
    assert_eq!(back_ids, ids[..25].to_vec());

    // A link is the broker's route like any other: without a key it is refused.
    let resp = env.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

async fn hostile_cursors_are_refused(env: TestEnv) {
    let acc = env.connect(USER, "u1").await;
    let before = env
        .sandbox_calls_after(0)
        .await
        .iter()
        .map(|c| c.seq)
        .max()
        .unwrap_or(0);
    for hostile in [
        "..%2F..%2Foauth%2Faccess_token",
        "x%26access_token%3DIGAAx",
        "x%3Fredirect%3Dhttps%3A%2F%2Fevil.example",
        "%2F..%2Frefresh_access_token",
    ] {
        for name in ["after", "before"] {
            let (st, v) = env
                .get(&format!(
                    "/v1/accounts/{acc}/graph/me/media?limit=2&{name}={hostile}"
                ))
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{name}={hostile}: {v}");
            assert!(s(&v["error"]["message"]).starts_with(name), "{v}");
        }
    }
    assert!(
        env.sandbox_calls_after(before).await.is_empty(),
        "a hostile cursor reached Instagram"
    );
    // A well-formed cursor Instagram does not know is Instagram's to refuse, on the same path.
    let (st, v) = env
        .get(&format!(
            "/v1/accounts/{acc}/graph/me/media?after=bm90LWEtY3Vyc29y"
        ))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let calls = env.sandbox_calls_after(before).await;
    assert_eq!(calls.len(), 1);
    assert!(calls[0].path.ends_with("/me/media"), "{}", calls[0].path);
}

both_backends!(followed_to_the_end, media_pages_are_followed_to_the_end);
both_backends!(hostile_cursors, hostile_cursors_are_refused);
