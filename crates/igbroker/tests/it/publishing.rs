//! `POST /v1/accounts/{id}/media` against the sandbox: an image, a carousel and a reel
//! are published; one Idempotency-Key sent five times at once publishes once; a container
//! ending in ERROR is a 4xx naming Meta's subcode; a missing Instagram scope, another
//! tenant's account and hostile bodies are refused before Instagram sees a call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use instagram_sandbox::control_client::FaultSpec;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

/// Moves the shared clock one second every 20 ms while it lives, so that containers
/// (a few seconds of processing on that clock) finish and the broker's polls come due.
struct Ticker(Arc<AtomicBool>);

impl Ticker {
    fn start(env: &TestEnv) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let clock = env.clock.clone();
        let flag = stop.clone();
        tokio::spawn(async move {
            while !flag.load(Ordering::SeqCst) {
                clock.advance(1);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Ticker(stop)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Answer {
    status: StatusCode,
    body: Value,
    replayed: bool,
}

async fn post_media(
    env: &TestEnv,
    key: &str,
    acc: &str,
    idem: Option<&str>,
    body: &Value,
) -> Answer {
    let mut req = env
        .http
        .post(format!("{}/v1/accounts/{acc}/media", env.broker))
        .bearer_auth(key)
        .json(body);
    if let Some(k) = idem {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let replayed = resp.headers().get("idempotent-replayed").is_some();
    let text = resp.text().await.unwrap();
    assert!(!text.contains("IGAA"), "an answer carries a token: {text}");
    assert!(
        !text.contains(env.sandbox.trim_start_matches("http://")),
        "{text}"
    );
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        replayed,
    }
}

async fn last_seq(env: &TestEnv) -> u64 {
    env.sandbox_calls_after(0)
        .await
        .iter()
        .map(|c| c.seq)
        .max()
        .unwrap_or(0)
}

async fn publishes_since(env: &TestEnv, seq: u64) -> usize {
    env.sandbox_calls_after(seq)
        .await
        .iter()
        .filter(|c| c.path.ends_with("/media_publish") && c.status == 200)
        .count()
}

async fn media_count(env: &TestEnv, acc: &str) -> u64 {
    let (st, v) = env
        .get(&format!("/v1/accounts/{acc}/graph/me?fields=media_count"))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["media_count"].as_u64().unwrap()
}

async fn media(env: &TestEnv, acc: &str, id: &str, fields: &str) -> Value {
    let (st, v) = env
        .get(&format!("/v1/accounts/{acc}/graph/{id}?fields={fields}"))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

fn img(n: u32) -> String {
    format!("https://cdn.example.com/photo-{n}.jpg")
}

async fn image_carousel_and_reel_are_published(env: TestEnv) {
    let acc = env.connect(USER, "u1").await;
    let _t = Ticker::start(&env);
    let before = media_count(&env, &acc).await;

    let a = post_media(
        &env,
        &env.admin_key,
        &acc,
        None,
        &json!({"type": "image", "image_url": img(1), "caption": "Launch day"}),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["status"], "published");
    let id = s(&a.body["media_id"]);
    assert!(
        a.body["permalink"]
            .as_str()
            .is_some_and(|p| p.starts_with("https://")),
        "{}",
        a.body
    );
    let m = media(&env, &acc, &id, "caption,media_type").await;
    assert_eq!(
        (m["caption"].as_str(), m["media_type"].as_str()),
        (Some("Launch day"), Some("IMAGE"))
    );

    let c = post_media(
        &env,
        &env.admin_key,
        &acc,
        Some("carousel-1"),
        &json!({
        "type": "carousel", "caption": "Three",
        "children": [{"image_url": img(2)}, {"image_url": img(3), "alt_text": "a cat"},
                     {"video_url": "https://cdn.example.com/clip.mp4"}]}),
    )
    .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    let m = media(&env, &acc, &s(&c.body["media_id"]), "media_type,children").await;
    assert_eq!(m["media_type"], "CAROUSEL_ALBUM", "{m}");
    assert_eq!(
        m["children"]["data"].as_array().map(Vec::len),
        Some(3),
        "{m}"
    );

    let r = post_media(
        &env,
        &env.admin_key,
        &acc,
        None,
        &json!({
        "type": "reel", "video_url": "https://cdn.example.com/reel.mp4", "caption": "Reel",
        "share_to_feed": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let m = media(
        &env,
        &acc,
        &s(&r.body["media_id"]),
        "media_type,media_product_type",
    )
    .await;
    assert_eq!(m["media_product_type"], "REELS", "{m}");

    let st = post_media(
        &env,
        &env.admin_key,
        &acc,
        None,
        &json!({"type": "story", "image_url": img(4)}),
    )
    .await;
    assert_eq!(st.status, StatusCode::CREATED, "{}", st.body);

    // A story is not part of the feed that media_count counts.
    assert_eq!(media_count(&env, &acc).await, before + 3);
    // Each publish is audited with its start and its end.
    let (_, audit) = env
        .get(&format!(
            "/v1/audit?account_id={acc}&action=media.published"
        ))
        .await;
    assert_eq!(audit["data"].as_array().map(Vec::len), Some(4), "{audit}");
    // The status URL tells the same.
    let (code, v) = env
        .get(&format!("/v1/accounts/{acc}/media/requests/carousel-1"))
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["media_id"].as_str()),
        (Some("published"), c.body["media_id"].as_str())
    );
}

async fn one_key_sent_five_times_publishes_once(env: TestEnv) {
    let acc = env.connect(USER, "u1").await;
    let before_media = media_count(&env, &acc).await;
    let seq = last_seq(&env).await;
    let _t = Ticker::start(&env);
    let body = json!({"type": "image", "image_url": img(9), "caption": "Once"});
    let answers = futures::future::join_all(
        (0..5).map(|_| post_media(&env, &env.admin_key, &acc, Some("retry-me-7"), &body)),
    )
    .await;
    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(
        created,
        1,
        "{:?}",
        answers
            .iter()
            .map(|a| (a.status, a.body.clone()))
            .collect::<Vec<_>>()
    );
    for a in answers.iter().filter(|a| a.status != StatusCode::CREATED) {
        assert!(
            matches!(a.status, StatusCode::ACCEPTED | StatusCode::OK),
            "{} {}",
            a.status,
            a.body
        );
        if a.status == StatusCode::ACCEPTED {
            assert_eq!(a.body["status"], "in_progress");
            assert!(
                s(&a.body["status_url"])
                    .ends_with(&format!("/v1/accounts/{acc}/media/requests/retry-me-7"))
            );
        }
    }
    let media_id = answers
        .iter()
        .find(|a| a.status == StatusCode::CREATED)
        .map(|a| s(&a.body["media_id"]))
        .unwrap();
    assert_eq!(
        publishes_since(&env, seq).await,
        1,
        "media_publish was called more than once"
    );
    assert_eq!(media_count(&env, &acc).await, before_media + 1);

    // A later retry is answered from the database, without Instagram.
    let seq = last_seq(&env).await;
    let again = post_media(&env, &env.admin_key, &acc, Some("retry-me-7"), &body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert!(again.replayed);
    assert_eq!(s(&again.body["media_id"]), media_id);
    assert!(env.sandbox_calls_after(seq).await.is_empty());

    // The same key with another body is refused.
    let other = post_media(
        &env,
        &env.admin_key,
        &acc,
        Some("retry-me-7"),
        &json!({"type": "image", "image_url": img(9), "caption": "Twice"}),
    )
    .await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        other.body
    );
    assert!(
        s(&other.body["error"]["message"]).contains("Idempotency-Key"),
        "{}",
        other.body
    );

    // The key and the result are kept in the database every replica reads.
    let row = env
        .state
        .store()
        .publish_request(&acc, "retry-me-7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.state.as_str(), row.media_id.as_deref()),
        ("published", Some(media_id.as_str()))
    );
}

async fn a_container_in_error_names_the_subcode(env: TestEnv) {
    let acc = env.connect(USER, "u1").await;
    let _t = Ticker::start(&env);
    env.fault(FaultSpec {
        subcode: Some(2_207_052),
        ..FaultSpec::container_error("/*/media")
            .method("POST")
            .times(1)
    })
    .await;
    let seq = last_seq(&env).await;
    let a = post_media(
        &env,
        &env.admin_key,
        &acc,
        Some("will-fail"),
        &json!({"type": "image", "image_url": img(5)}),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "publish_failed", "{}", a.body);
    let msg = s(&a.body["error"]["message"]);
    assert!(msg.contains("ERROR") && msg.contains("2207052"), "{msg}");
    assert!(
        msg.contains("public https address"),
        "says what to fix: {msg}"
    );
    assert_eq!(publishes_since(&env, seq).await, 0);
    assert!(
        env.sandbox_calls_after(seq)
            .await
            .iter()
            .all(|c| !c.path.ends_with("/media_publish")),
        "media_publish must not be sent for a failed container"
    );
    // A retry of the key gets the same answer from the database.
    let again = post_media(
        &env,
        &env.admin_key,
        &acc,
        Some("will-fail"),
        &json!({"type": "image", "image_url": img(5)}),
    )
    .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.replayed);
    assert_eq!(again.body["error"]["message"], a.body["error"]["message"]);
    let (_, audit) = env
        .get(&format!(
            "/v1/audit?account_id={acc}&action=media.publish_failed"
        ))
        .await;
    assert_eq!(audit["data"].as_array().map(Vec::len), Some(1), "{audit}");
}

async fn refusals_reach_no_instagram(env: TestEnv) {
    let acc = env.connect(USER, "u1").await;
    // An account of an app without the publish permission.
    let basic = env.register_app(json!({})).await;
    let basic_acc = env.connect_to(&s(&basic["id"]), OTHER_USER, "u2").await;
    let (st, k) = env.api(reqwest::Method::POST, "/v1/api-keys",
        Some(json!({"name": "other tenant", "scopes": ["publish", "graph"], "app_ids": [s(&basic["id"])]}))).await;
    assert_eq!(st, StatusCode::CREATED, "{k}");
    let other_tenant = s(&k["key"]);
    let (st, k) = env
        .api(
            reqwest::Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "graph only", "scopes": ["graph"], "app_ids": [env.app_id]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{k}");
    let graph_only = s(&k["key"]);
    let seq = last_seq(&env).await;
    let good = json!({"type": "image", "image_url": img(1)});

    let a = post_media(&env, &env.admin_key, &basic_acc, None, &good).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "missing_scope");
    assert!(
        s(&a.body["error"]["message"]).contains("instagram_business_content_publish"),
        "{}",
        a.body
    );

    let a = post_media(&env, &other_tenant, &acc, None, &good).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    let (st, _) = {
        let r = env
            .http
            .get(format!("{}/v1/accounts/{acc}/media/requests/x", env.broker))
            .bearer_auth(&other_tenant)
            .send()
            .await
            .unwrap();
        (r.status(), ())
    };
    assert_eq!(st, StatusCode::NOT_FOUND);

    let a = post_media(&env, &graph_only, &acc, None, &good).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "missing_scope");

    let eleven: Vec<Value> = (0..11).map(|n| json!({"image_url": img(n)})).collect();
    for (body, field) in [
        (json!({"type": "carousel", "children": eleven}), "children"),
        (
            json!({"type": "carousel", "children": [{"image_url": img(1)}]}),
            "children",
        ),
        (
            json!({"type": "image", "image_url": "http://cdn.example.com/a.jpg"}),
            "image_url",
        ),
        (
            json!({"type": "image", "image_url": "file:///etc/passwd"}),
            "image_url",
        ),
        (
            json!({"type": "reel", "video_url": "javascript:alert(1)"}),
            "video_url",
        ),
        (
            json!({"type": "image", "image_url": img(1), "caption": "x".repeat(2201)}),
            "caption",
        ),
        (
            json!({"type": "image", "image_url": img(1), "access_token": "IGAAx"}),
            "access_token",
        ),
        (
            json!({"type": "carousel", "children": [{"image_url": img(1)}, {"video_url": "http://x/v.mp4"}]}),
            "children[1].video_url",
        ),
        (json!({"type": "story"}), "image_url"),
        (json!({"type": "boomerang"}), "type"),
        (json!(["not", "an", "object"]), "type"),
    ] {
        let a = post_media(&env, &env.admin_key, &acc, None, &body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{field}: {}", a.body);
        assert!(
            s(&a.body["error"]["message"]).contains(field),
            "{field}: {}",
            a.body
        );
    }
    let a = post_media(&env, &env.admin_key, &acc, Some("has a space"), &good).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(s(&a.body["error"]["message"]).contains("Idempotency-Key"));

    assert!(
        env.sandbox_calls_after(seq).await.is_empty(),
        "a refused request reached Instagram"
    );
    assert!(
        env.state
            .store()
            .publish_request(&acc, "has a space")
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_used_up_quota_is_refused_and_the_key_stays_usable(env: TestEnv) {
    env.sb
        .create_user(&instagram_sandbox::control_client::UserSpec {
            publish_quota_total: Some(1),
            ..instagram_sandbox::control_client::UserSpec::named("quota_one")
        })
        .await
        .unwrap();
    let acc = env.connect("quota_one", "q").await;
    let _t = Ticker::start(&env);
    let first = post_media(
        &env,
        &env.admin_key,
        &acc,
        Some("q-1"),
        &json!({"type": "image", "image_url": img(1)}),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let seq = last_seq(&env).await;
    let second = post_media(
        &env,
        &env.admin_key,
        &acc,
        Some("q-2"),
        &json!({"type": "image", "image_url": img(2)}),
    )
    .await;
    assert_eq!(
        second.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        second.body
    );
    assert!(
        s(&second.body["error"]["message"]).contains("content_publishing_limit"),
        "{}",
        second.body
    );
    let calls = env.sandbox_calls_after(seq).await;
    assert!(
        calls
            .iter()
            .all(|c| c.path.ends_with("/content_publishing_limit")),
        "only the quota was asked"
    );
    // Nothing was published, so the key may be sent again later.
    assert!(
        env.state
            .store()
            .publish_request(&acc, "q-2")
            .await
            .unwrap()
            .is_none()
    );
}

both_backends!(published, image_carousel_and_reel_are_published);
both_backends!(idempotent, one_key_sent_five_times_publishes_once);
both_backends!(container_error, a_container_in_error_names_the_subcode);
both_backends!(refusals, refusals_reach_no_instagram);
both_backends!(quota, a_used_up_quota_is_refused_and_the_key_stays_usable);

/// A request whose replica died: its row stays `in_progress` under a lease no one renews.
async fn abandoned(env: &TestEnv, acc: &str, key: &str, body: &Value, stage: &str) {
    let post = igbroker::service::publish::parse(body).unwrap();
    let now = env.state.now();
    let mut tx = env.state.store().begin().await.unwrap();
    let row = igbroker_store::PublishRequestRow {
        account_id: acc.to_string(),
        idem_key: key.to_string(),
        body_hash: igbroker::service::publish::body_hash(&post),
        kind: post.kind().to_string(),
        state: "in_progress".into(),
        stage: "containers".into(),
        lease_token: "dead-replica".into(),
        lease_until: now + 600,
        container_id: None,
        media_id: None,
        permalink: None,
        error_code: None,
        error_message: None,
        created_at: now,
        updated_at: now,
    };
    assert!(tx.insert_publish_request(&row).await.unwrap());
    tx.commit().await.unwrap();
    if stage != "containers" {
        let attempt = igbroker_store::PublishAttempt {
            account_id: acc,
            idem_key: key,
            lease_token: "dead-replica",
        };
        assert!(
            env.state
                .store()
                .advance_publish_request(&attempt, stage, Some("1799"), now + 600, now)
                .await
                .unwrap()
        );
    }
}

async fn an_abandoned_request_is_taken_over_once_its_lease_ends(env: TestEnv) {
    let acc = env.connect(USER, "u1").await;
    let body = json!({"type": "image", "image_url": img(7), "caption": "Resumed"});
    abandoned(&env, &acc, "crashed-1", &body, "containers").await;
    let seq = last_seq(&env).await;
    // While the dead replica's lease runs, a retry waits: 202 and the status URL.
    let a = post_media(&env, &env.admin_key, &acc, Some("crashed-1"), &body).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert!(
        a.body["status_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/media/requests/crashed-1"))
    );
    let (st, v) = env
        .get(&format!("/v1/accounts/{acc}/media/requests/crashed-1"))
        .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::ACCEPTED, Some("in_progress")),
        "{v}"
    );
    assert!(env.sandbox_calls_after(seq).await.is_empty());
    // Once it ran out, the retry takes the request over and publishes it, once.
    env.advance(601);
    let _t = Ticker::start(&env);
    let a = post_media(&env, &env.admin_key, &acc, Some("crashed-1"), &body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(publishes_since(&env, seq).await, 1);

    // A replica that died after sending media_publish may have published: never repeated.
    abandoned(&env, &acc, "crashed-2", &body, "publishing").await;
    env.advance(601);
    let seq = last_seq(&env).await;
    let a = post_media(&env, &env.admin_key, &acc, Some("crashed-2"), &body).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    assert!(
        s(&a.body["error"]["message"]).contains("may or may not be live"),
        "{}",
        a.body
    );
    assert!(env.sandbox_calls_after(seq).await.is_empty());
}

both_backends!(
    taken_over,
    an_abandoned_request_is_taken_over_once_its_lease_ends
);

async fn a_slow_publish_answers_202_and_finishes(env: TestEnv) {
    let acc = env.connect(USER, "u1").await;
    let seq = last_seq(&env).await;
    // A reel takes 10 s of the clock to process; the clock stands still (but for real
    // time), so the answer comes after `[publish] wait` (1 s here).
    let body = json!({"type": "reel", "video_url": "https://cdn.example.com/long.mp4"});
    let a = post_media(&env, &env.admin_key, &acc, Some("slow-1"), &body).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(a.body["status"], "in_progress");
    let status_url = s(&a.body["status_url"]);
    assert!(status_url.starts_with(&env.broker), "{status_url}");
    // The work goes on without the caller: once the clock moves, the status URL has it.
    let _t = Ticker::start(&env);
    let mut done = Value::Null;
    for _ in 0..300 {
        let r = env
            .http
            .get(&status_url)
            .bearer_auth(&env.admin_key)
            .send()
            .await
            .unwrap();
        let st = r.status();
        let v: Value = r.json().await.unwrap();
        if st == StatusCode::OK {
            done = v;
            break;
        }
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(done["status"], "published", "{done}");
    assert!(done["media_id"].is_string(), "{done}");
    assert_eq!(publishes_since(&env, seq).await, 1);
}

both_backends_with!(slow, a_slow_publish_answers_202_and_finishes, |c| {
    c.publish.wait = Duration::from_secs(1);
});

async fn each_state_commits_with_its_audit_entry(env: TestEnv) {
    let acc = env.connect(USER, "u1").await;
    let _t = Ticker::start(&env);
    let body = json!({"type": "image", "image_url": img(3)});
    // The end is refused with its audit entry: the request is not marked published.
    crate::service_layer::refuse_inserts(&env, "audit_log", "action", "media.published").await;
    let a = post_media(&env, &env.admin_key, &acc, Some("audit-2"), &body).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", a.body);
    let row = env
        .state
        .store()
        .publish_request(&acc, "audit-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.state.as_str(), row.media_id.as_deref()),
        ("in_progress", None)
    );
    let (_, audit) = env
        .get(&format!(
            "/v1/audit?account_id={acc}&action=media.published"
        ))
        .await;
    assert_eq!(audit["data"].as_array().map(Vec::len), Some(0), "{audit}");

    // The start is refused with its audit entry: no request is kept, Instagram is not called.
    crate::service_layer::refuse_inserts(&env, "audit_log", "action", "media.publish_started")
        .await;
    let seq = last_seq(&env).await;
    let a = post_media(&env, &env.admin_key, &acc, Some("audit-1"), &body).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", a.body);
    assert!(
        env.state
            .store()
            .publish_request(&acc, "audit-1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(env.sandbox_calls_after(seq).await.is_empty());
}

both_backends!(audited, each_state_commits_with_its_audit_entry);
