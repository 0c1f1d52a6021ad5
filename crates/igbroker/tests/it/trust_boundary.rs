//! The trust boundary, tried as an attacker with loopback traffic only: the Graph proxy
//! never hands out a token, keys cannot grant more than they hold, another tenant's ids
//! look missing, webhooks cannot be aimed inside, and every door has a limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{Backend, RETURN_ORIGIN, TestEnv, USER, s};
use instagram_sandbox::control_client::Call;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

enum Body {
    None,
    Json(Value),
    Form(Vec<(&'static str, String)>),
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn call(env: &TestEnv, key: &str, method: Method, path: &str, body: Body) -> Answer {
    let mut req = env
        .http
        .request(method, format!("{}{path}", env.broker))
        .bearer_auth(key);
    req = match body {
        Body::None => req,
        Body::Json(v) => req.json(&v),
        Body::Form(f) => req.form(&f),
    };
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    crate::common::assert_no_token_in(path, &text);
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// Creates a key through the API with the root key; returns (id, key).
async fn new_key(env: &TestEnv, body: Value) -> (String, String) {
    let a = call(
        env,
        &env.admin_key,
        Method::POST,
        "/v1/api-keys",
        Body::Json(body),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    (s(&a.body["id"]), s(&a.body["key"]))
}

/// The sequence number of the newest call the sandbox received.
async fn last_call(env: &TestEnv) -> u64 {
    env.sandbox_calls_after(0)
        .await
        .iter()
        .map(|c| c.seq)
        .max()
        .unwrap_or(0)
}

async fn calls_since(env: &TestEnv, seq: u64) -> Vec<Call> {
    env.sandbox_calls_after(seq).await
}

// ---------------------------------------------------------------------------------------
// The Graph proxy

async fn graph_key_cannot_reach_token_endpoints(env: TestEnv) {
    let acc = env.connect(USER, "u1").await;
    let (_, key) = new_key(
        &env,
        json!({"name": "graph only", "scopes": ["graph"], "app_ids": [env.app_id]}),
    )
    .await;
    let before = last_call(&env).await;
    let mut tried = 0;
    for path in [
        "refresh_access_token",
        "access_token",
        "oauth/access_token",
        "v24.0/refresh_access_token",
        "v24.0/access_token",
        "v24.0/oauth/access_token",
        "V21.0/OAuth/Access_Token",
    ] {
        for method in [Method::GET, Method::POST] {
            let grant = "ig_refresh_token".to_string();
            let bodies = [
                (format!("?grant_type={grant}"), Body::None),
                (
                    String::new(),
                    Body::Form(vec![("grant_type", grant.clone())]),
                ),
                (String::new(), Body::Json(json!({"grant_type": grant}))),
            ];
            for (query, body) in bodies {
                let url = format!("/v1/accounts/{acc}/graph/{path}{query}");
                let a = call(&env, &key, method.clone(), &url, body).await;
                assert!(
                    a.status.is_client_error(),
                    "{method} {url}: {} {}",
                    a.status,
                    a.body
                );
                assert!(a.body["error"]["message"].is_string(), "{}", a.body);
                tried += 1;
            }
        }
    }
    assert_eq!(tried, 42);
    // Reserved parameters, in the query, a form and JSON alike.
    for (method, url, body) in [
        (
            Method::GET,
            format!("/v1/accounts/{acc}/graph/me?access_token=x"),
            Body::None,
        ),
        (
            Method::GET,
            format!("/v1/accounts/{acc}/graph/me/media_publish?method=post&creation_id=1"),
            Body::None,
        ),
        (
            Method::POST,
            format!("/v1/accounts/{acc}/graph/me"),
            Body::Form(vec![("method", "get".into())]),
        ),
        (
            Method::POST,
            format!("/v1/accounts/{acc}/graph/me"),
            Body::Json(json!({"batch": "[]"})),
        ),
        (
            Method::GET,
            format!("/v1/accounts/{acc}/graph/me?callback=steal"),
            Body::None,
        ),
    ] {
        let a = call(&env, &key, method.clone(), &url, body).await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{method} {url}: {}",
            a.body
        );
        assert!(
            a.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("reserved")),
            "{}",
            a.body
        );
    }
    let leaked = calls_since(&env, before).await;
    assert!(leaked.is_empty(), "calls reached Instagram: {leaked:?}");

    // An allowed call still goes through.
    let a = call(
        &env,
        &key,
        Method::GET,
        &format!("/v1/accounts/{acc}/graph/me?fields=username"),
        Body::None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

async fn an_answer_carrying_the_token_is_withheld(env: TestEnv) {
    let acc = env.connect(USER, "u1").await;
    let (_, tok) = env.get(&format!("/v1/accounts/{acc}/token")).await;
    let token = s(&tok["access_token"]);
    let (_, key) = new_key(
        &env,
        json!({"name": "graph only", "scopes": ["graph"], "app_ids": [env.app_id]}),
    )
    .await;
    // A post whose caption is the token (anyone who ever held it could publish one):
    // Instagram then hands the token back in an ordinary answer.
    let (st, c) = env
        .api(
            Method::POST,
            &format!("/v1/accounts/{acc}/graph/me/media"),
            Some(json!({"image_url": "https://cdn.example/p.jpg", "caption": token})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    env.advance(10);
    let (st, p) = env
        .api(
            Method::POST,
            &format!("/v1/accounts/{acc}/graph/me/media_publish"),
            Some(json!({"creation_id": s(&c["id"])})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let url = format!("/v1/accounts/{acc}/graph/me/media?fields=caption");
    let resp = env
        .http
        .get(format!("{}{url}", env.broker))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains(&token),
        "the proxy handed out the token: {text}"
    );
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{text}");
    let (_, audit) = env
        .get(&format!(
            "/v1/audit?account_id={acc}&action=graph.answer_withheld"
        ))
        .await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 1, "{audit}");
}

// ---------------------------------------------------------------------------------------
// API keys

async fn keys_cannot_escalate(env: TestEnv) {
    let other = env.register_app(json!({})).await;
    let other_id = s(&other["id"]);
    let (limited_id, limited) = new_key(
        &env,
        json!({"name": "app admin", "scopes": ["admin"], "app_ids": [env.app_id]}),
    )
    .await;
    let (other_key_id, _) = new_key(
        &env,
        json!({"name": "other app", "scopes": ["graph"], "app_ids": [other_id]}),
    )
    .await;
    let (inside_id, _) = new_key(
        &env,
        json!({"name": "inside", "scopes": ["graph"], "app_ids": [env.app_id]}),
    )
    .await;
    let (_, narrow) = new_key(
        &env,
        json!({"name": "narrow", "scopes": ["accounts:read"], "app_ids": []}),
    )
    .await;
    let root_list = call(
        &env,
        &env.admin_key,
        Method::GET,
        "/v1/api-keys?limit=500",
        Body::None,
    )
    .await;
    let root_id = root_list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "test admin")
        .map(|k| s(&k["id"]))
        .unwrap();

    for body in [
        json!({"name": "x", "scopes": ["admin"]}),
        json!({"name": "x", "scopes": ["admin"], "app_ids": []}),
        json!({"name": "x", "scopes": ["graph"], "app_ids": [other_id]}),
        json!({"name": "x", "scopes": ["graph"], "app_ids": [env.app_id, other_id]}),
    ] {
        let a = call(
            &env,
            &limited,
            Method::POST,
            "/v1/api-keys",
            Body::Json(body.clone()),
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{body}: {}", a.body);
    }
    // A key without admin creates nothing, wider or not.
    let a = call(
        &env,
        &narrow,
        Method::POST,
        "/v1/api-keys",
        Body::Json(json!({"name": "x", "scopes": ["tokens:read"]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    // Inside its apps it may create.
    let a = call(
        &env,
        &limited,
        Method::POST,
        "/v1/api-keys",
        Body::Json(json!({"name": "ok", "scopes": ["graph"], "app_ids": [env.app_id]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);

    // It lists only keys inside its apps.
    let a = call(
        &env,
        &limited,
        Method::GET,
        "/v1/api-keys?limit=500",
        Body::None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let seen: Vec<String> = a.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| s(&k["id"]))
        .collect();
    assert!(
        seen.contains(&inside_id) && seen.contains(&limited_id),
        "{seen:?}"
    );
    assert!(
        !seen.contains(&root_id) && !seen.contains(&other_key_id),
        "{seen:?}"
    );

    // It cannot revoke the root key or another app's key: they look missing.
    for id in [&root_id, &other_key_id] {
        let a = call(
            &env,
            &limited,
            Method::DELETE,
            &format!("/v1/api-keys/{id}"),
            Body::None,
        )
        .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    }
    let after = call(
        &env,
        &env.admin_key,
        Method::GET,
        "/v1/api-keys?limit=500",
        Body::None,
    )
    .await;
    let revoked: Vec<&Value> = after.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !k["revoked_at"].is_null())
        .collect();
    assert!(revoked.is_empty(), "{revoked:?}");

    // The last unlimited admin key cannot revoke itself away.
    let a = call(
        &env,
        &env.admin_key,
        Method::DELETE,
        &format!("/v1/api-keys/{root_id}"),
        Body::None,
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    let a = call(
        &env,
        &env.admin_key,
        Method::GET,
        "/v1/api-keys",
        Body::None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------
// Tenants

async fn another_tenants_ids_look_missing(env: TestEnv) {
    let other = env.register_app(json!({})).await;
    let other_id = s(&other["id"]);
    let their_acc = env.connect_to(&other_id, USER, "theirs").await;
    let their_session = env
        .session(json!({"app_id": other_id, "end_user": "x"}))
        .await;
    let their_session = s(&their_session["id"]);
    let (their_key, _) = new_key(
        &env,
        json!({"name": "theirs", "scopes": ["graph"], "app_ids": [other_id]}),
    )
    .await;
    let (_, mine) = new_key(
        &env,
        json!({"name": "mine", "scopes": ["admin"], "app_ids": [env.app_id]}),
    )
    .await;
    let before = last_call(&env).await;
    // Each route with the other tenant's id, and with a missing id of the same kind.
    let missing_app = "app_0190000000007000800000000000000a";
    let missing_acc = "acc_0190000000007000800000000000000a";
    let missing_cs = "cs_0190000000007000800000000000000a";
    let missing_key = "key_0190000000007000800000000000000a";
    let cases: Vec<(Method, String, String, Body, Body)> = vec![
        (
            Method::GET,
            format!("/v1/apps/{other_id}"),
            format!("/v1/apps/{missing_app}"),
            Body::None,
            Body::None,
        ),
        (
            Method::PATCH,
            format!("/v1/apps/{other_id}"),
            format!("/v1/apps/{missing_app}"),
            Body::Json(json!({"name": "mine now"})),
            Body::Json(json!({"name": "mine now"})),
        ),
        (
            Method::DELETE,
            format!("/v1/apps/{other_id}"),
            format!("/v1/apps/{missing_app}"),
            Body::None,
            Body::None,
        ),
        (
            Method::GET,
            format!("/v1/connect-sessions/{their_session}"),
            format!("/v1/connect-sessions/{missing_cs}"),
            Body::None,
            Body::None,
        ),
        (
            Method::POST,
            "/v1/connect-sessions".into(),
            "/v1/connect-sessions".into(),
            Body::Json(json!({"app_id": other_id, "end_user": "x"})),
            Body::Json(json!({"app_id": missing_app, "end_user": "x"})),
        ),
        (
            Method::GET,
            format!("/v1/accounts/{their_acc}"),
            format!("/v1/accounts/{missing_acc}"),
            Body::None,
            Body::None,
        ),
        (
            Method::GET,
            format!("/v1/accounts/{their_acc}/token"),
            format!("/v1/accounts/{missing_acc}/token"),
            Body::None,
            Body::None,
        ),
        (
            Method::POST,
            format!("/v1/accounts/{their_acc}/refresh"),
            format!("/v1/accounts/{missing_acc}/refresh"),
            Body::None,
            Body::None,
        ),
        (
            Method::DELETE,
            format!("/v1/accounts/{their_acc}"),
            format!("/v1/accounts/{missing_acc}"),
            Body::None,
            Body::None,
        ),
        (
            Method::GET,
            format!("/v1/accounts/{their_acc}/graph/me"),
            format!("/v1/accounts/{missing_acc}/graph/me"),
            Body::None,
            Body::None,
        ),
        (
            Method::POST,
            format!("/v1/accounts/{their_acc}/graph/me/media"),
            format!("/v1/accounts/{missing_acc}/graph/me/media"),
            Body::Json(json!({"image_url": "https://cdn.example.com/a.jpg"})),
            Body::Json(json!({"image_url": "https://cdn.example.com/a.jpg"})),
        ),
        (
            Method::POST,
            format!("/v1/accounts/{their_acc}/media"),
            format!("/v1/accounts/{missing_acc}/media"),
            Body::Json(json!({"type": "image", "image_url": "https://cdn.example.com/a.jpg"})),
            Body::Json(json!({"type": "image", "image_url": "https://cdn.example.com/a.jpg"})),
        ),
        (
            Method::GET,
            format!("/v1/accounts/{their_acc}/media/requests/k1"),
            format!("/v1/accounts/{missing_acc}/media/requests/k1"),
            Body::None,
            Body::None,
        ),
        (
            Method::POST,
            format!("/v1/accounts/{their_acc}/suspend"),
            format!("/v1/accounts/{missing_acc}/suspend"),
            Body::None,
            Body::None,
        ),
        (
            Method::POST,
            format!("/v1/accounts/{their_acc}/resume"),
            format!("/v1/accounts/{missing_acc}/resume"),
            Body::None,
            Body::None,
        ),
        (
            Method::POST,
            "/v1/accounts/import".into(),
            "/v1/accounts/import".into(),
            Body::Json(json!({"app_id": other_id, "access_token": "IGAAnotreal"})),
            Body::Json(json!({"app_id": missing_app, "access_token": "IGAAnotreal"})),
        ),
        (
            Method::GET,
            format!("/v1/accounts?app_id={other_id}"),
            format!("/v1/accounts?app_id={missing_app}"),
            Body::None,
            Body::None,
        ),
        (
            Method::GET,
            format!("/v1/audit?account_id={their_acc}"),
            format!("/v1/audit?account_id={missing_acc}"),
            Body::None,
            Body::None,
        ),
        (
            Method::DELETE,
            format!("/v1/api-keys/{their_key}"),
            format!("/v1/api-keys/{missing_key}"),
            Body::None,
            Body::None,
        ),
    ];
    for (method, theirs, missing, b1, b2) in cases {
        let a = call(&env, &mine, method.clone(), &theirs, b1).await;
        let m = call(&env, &mine, method.clone(), &missing, b2).await;
        assert_eq!(
            a.status,
            StatusCode::NOT_FOUND,
            "{method} {theirs}: {}",
            a.body
        );
        assert_eq!(
            m.status,
            StatusCode::NOT_FOUND,
            "{method} {missing}: {}",
            m.body
        );
        assert_eq!(a.body["error"]["code"], m.body["error"]["code"]);
        // Same words, only the id differs.
        let strip = |v: &Value, ids: &[&str]| {
            let mut t = s(&v["error"]["message"]);
            for id in ids {
                t = t.replace(id, "ID");
            }
            t
        };
        let ids = [
            other_id.as_str(),
            their_acc.as_str(),
            their_session.as_str(),
            their_key.as_str(),
            missing_app,
            missing_acc,
            missing_cs,
            missing_key,
        ];
        assert_eq!(
            strip(&a.body, &ids),
            strip(&m.body, &ids),
            "{method} {theirs}"
        );
    }
    let leaked = calls_since(&env, before).await;
    assert!(leaked.is_empty(), "calls reached Instagram: {leaked:?}");
    // Nothing of theirs changed.
    let acc = env.account(&their_acc).await;
    assert_eq!(acc["status"], "active");
    let (st, app) = env.get(&format!("/v1/apps/{other_id}")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(app["name"], other["name"]);
}

// ---------------------------------------------------------------------------------------
// Webhook destinations

/// A listener that counts the connections it accepts and answers 200.
async fn listener() -> (u16, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 65536];
            let _ = c.read(&mut buf).await;
            let _ = c
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    (port, hits, task)
}

async fn webhooks_are_not_aimed_inside(env: TestEnv) {
    let (port, hits, task) = listener().await;
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://10.1.2.3/hook".to_string(),
        format!("http://0x7f000001:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://localhost:{port}/hook"),
    ] {
        let (st, v) = env
            .api(
                Method::PATCH,
                &format!("/v1/apps/{}", env.app_id),
                Some(json!({"webhook_url": url})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{url}: {v}");
        assert!(
            s(&v["error"]["message"]).contains("allow_private_networks"),
            "{url}: {v}"
        );
    }
    // A URL already stored (written before the policy, or by a database writer) is
    // checked again at delivery, on the address it resolves to then.
    let sealed = env
        .state
        .vault()
        .seal(
            &igbroker::service::apps::webhook_secret_aad(&env.app_id),
            b"whsec_test",
        )
        .unwrap();
    env.state
        .store()
        .set_app_webhook_secret(&env.app_id, &sealed)
        .await
        .unwrap();
    sqlx::query("UPDATE apps SET webhook_url = $1 WHERE id = $2")
        .bind(format!("http://localhost:{port}/hook"))
        .bind(&env.app_id)
        .execute(env.state.store().pool())
        .await
        .unwrap();
    env.connect(USER, "u1").await;
    env.run_scheduler().await;
    let errors: Vec<Option<String>> =
        sqlx::query_scalar("SELECT error FROM webhook_deliveries ORDER BY at")
            .fetch_all(env.state.store().pool())
            .await
            .unwrap();
    assert!(!errors.is_empty(), "no delivery was attempted");
    assert!(
        errors
            .iter()
            .all(|e| e.as_deref().is_some_and(|e| e.contains("loopback"))),
        "{errors:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the listener was reached");
    task.abort();
}

async fn operators_may_allow_private_webhooks(env: TestEnv) {
    let (port, hits, task) = listener().await;
    let (st, v) = env
        .api(
            Method::PATCH,
            &format!("/v1/apps/{}", env.app_id),
            Some(json!({"webhook_url": format!("http://localhost:{port}/hook")})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    env.connect(USER, "u1").await;
    env.run_scheduler().await;
    assert!(hits.load(Ordering::SeqCst) >= 1, "the listener got nothing");
    task.abort();
}

// ---------------------------------------------------------------------------------------
// Limits

async fn a_key_over_its_rate_gets_429(env: TestEnv) {
    let (_, slow) = new_key(
        &env,
        json!({"name": "slow", "scopes": ["accounts:read"], "rate_limit_per_second": 5}),
    )
    .await;
    let (_, other) = new_key(&env, json!({"name": "other", "scopes": ["accounts:read"]})).await;
    let mut limited = 0;
    let started = Instant::now();
    for _ in 0..60 {
        let a = call(&env, &slow, Method::GET, "/v1/accounts", Body::None).await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
            assert_eq!(a.body["error"]["code"], "rate_limited", "{}", a.body);
            let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=2).contains(&retry), "{retry}");
        } else {
            assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        }
        let b = call(&env, &other, Method::GET, "/v1/accounts", Body::None).await;
        assert_eq!(
            b.status,
            StatusCode::OK,
            "the other key was limited: {}",
            b.body
        );
    }
    // A burst of 10, then 5 a second: whatever the machine's speed, no more got through.
    let allowed = 10.0 + 5.0 * started.elapsed().as_secs_f64() + 1.0;
    assert!(limited >= 1, "none of 60 calls was limited");
    assert!(
        f64::from(60 - limited) <= allowed,
        "{} of 60 got through, more than {allowed:.0}",
        60 - limited
    );
}

async fn slow_connections_do_not_hold_the_broker(env: TestEnv) {
    let addr = env.broker.trim_start_matches("http://").to_string();
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(c);
    }
    let started = Instant::now();
    let resp = env
        .http
        .get(format!("{}/healthz", env.broker))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "healthz took {:?}",
        started.elapsed()
    );
    // The broker cuts them off after the header-read timeout (1 s here).
    let closed = futures::future::join_all(slow.iter_mut().map(|c| async move {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut rest))
            .await
            .is_ok()
    }))
    .await;
    assert!(
        closed.iter().all(|c| *c),
        "some slow connections stayed open"
    );
}

async fn failed_keys_slow_an_address_down(env: TestEnv) {
    let mut limited = None;
    for i in 0..40 {
        let a = call(
            &env,
            "igb_wrong_key",
            Method::GET,
            "/v1/accounts",
            Body::None,
        )
        .await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(a.headers.contains_key("retry-after"));
            limited = Some(i);
            break;
        }
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    assert!(limited.is_some(), "40 wrong keys were all answered");
    // Even the right key waits now: the address is slowed down, not the key.
    let a = call(
        &env,
        &env.admin_key,
        Method::GET,
        "/v1/accounts",
        Body::None,
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
}

// ---------------------------------------------------------------------------------------
// Browser pages

async fn browser_pages_are_not_framed_and_bound_to_their_browser(env: TestEnv) {
    let sess = env
        .session(json!({"app_id": env.app_id, "end_user": "u1"}))
        .await;
    let connect = env.http.get(s(&sess["connect_url"])).send().await.unwrap();
    assert_eq!(connect.status(), StatusCode::FOUND);
    let h = connect.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let cookie = h["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    // Another browser (no cookie) completes the consent: refused, clearly.
    let cb = env.consent(&s(&sess["connect_url"]), USER, "allow").await;
    let resp = env.http.get(cb.as_str()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let page = resp.text().await.unwrap();
    assert!(page.contains("start again"), "{page}");
    let (_, after) = env
        .get(&format!("/v1/connect-sessions/{}", s(&sess["id"])))
        .await;
    assert_ne!(after["status"], "connected", "{after}");

    // The first browser's cookie no longer counts: the link was opened again since
    // (by `consent`, as the user's browser; the test client keeps that cookie).
    let pair = cookie.split(';').next().unwrap().to_string();
    let resp = env
        .http
        .get(cb.as_str())
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // The browser that opened the link last completes it.
    let resp = env.callback(&cb).await;
    assert!(
        resp.status().is_success() || resp.status() == StatusCode::FOUND,
        "{}",
        resp.status()
    );
    let (_, after) = env
        .get(&format!("/v1/connect-sessions/{}", s(&sess["id"])))
        .await;
    assert_eq!(after["status"], "connected", "{after}");
    let _ = RETURN_ORIGIN;
}

// ---------------------------------------------------------------------------------------
// Audit

async fn a_rewritten_audit_entry_is_named(env: TestEnv) {
    let acc = env.connect(USER, "u1").await;
    for _ in 0..3 {
        let (st, _) = env.get(&format!("/v1/accounts/{acc}/token")).await;
        assert_eq!(st, StatusCode::OK);
    }
    let pool = env.state.store().pool().clone();
    let rows = env
        .state
        .store()
        .list_audit(None, None, None, 0, 100)
        .await
        .unwrap();
    assert!(rows.len() >= 4);
    // Rewrite the second token read and recompute every plain link from there on.
    let target = rows
        .iter()
        .filter(|r| r.action == "token.read")
        .nth(1)
        .unwrap()
        .seq;
    let start = rows.iter().position(|r| r.seq == target).unwrap();
    let mut prev = rows[start - 1].hash.clone();
    for r in &rows[start..] {
        let mut e = r.entry();
        if r.seq == target {
            e.actor = "cli:nobody".into();
        }
        let hash = igbroker_store::plain_link(&prev, &e);
        sqlx::query("UPDATE audit_log SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&e.actor)
            .bind(&prev)
            .bind(&hash)
            .bind(r.seq)
            .execute(&pool)
            .await
            .unwrap();
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(&pool)
        .await
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_igbroker"))
        .args(["audit", "verify"])
        .env("IGBROKER_DATABASE_URL", &env.database_url)
        .env("IGBROKER_KEYS__RING_FILE", env.dir.path().join("keys.toml"))
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("entry {target}")), "{stdout}");
}

// ---------------------------------------------------------------------------------------
// The demo's data folder

#[test]
fn demo_refuses_a_folder_it_did_not_make() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("igbroker.db");
    std::fs::write(&db, b"someone's real database").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_igbroker"))
        .args(["demo", "--script", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did not create"), "{stderr}");
    assert_eq!(std::fs::read(&db).unwrap(), b"someone's real database");
}

fn strict_webhooks(c: &mut igbroker::config::Config) {
    c.webhooks.allow_private_networks = false;
    c.webhooks.allow_hosts.clear();
    c.webhooks.allow_http = true;
}

fn slow_key(c: &mut igbroker::config::Config) {
    c.limits.header_read_timeout = Duration::from_secs(1);
}

fn few_failures(c: &mut igbroker::config::Config) {
    c.limits.failed_auth_burst = 10;
}

both_backends!(
    graph_token_endpoints,
    graph_key_cannot_reach_token_endpoints
);
both_backends!(
    graph_withholds_tokens,
    an_answer_carrying_the_token_is_withheld
);
both_backends!(key_escalation, keys_cannot_escalate);
both_backends!(cross_tenant, another_tenants_ids_look_missing);
both_backends!(audit_rewrite, a_rewritten_audit_entry_is_named);
both_backends!(
    browser_binding,
    browser_pages_are_not_framed_and_bound_to_their_browser
);
both_backends!(rate_limits, a_key_over_its_rate_gets_429);
both_backends!(
    private_webhooks_allowed,
    operators_may_allow_private_webhooks
);

mod webhook_policy {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some(env) = TestEnv::start_with(Backend::Sqlite, strict_webhooks).await {
            webhooks_are_not_aimed_inside(env).await;
        }
    }
}

mod slow_clients {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some(env) = TestEnv::start_with(Backend::Sqlite, slow_key).await {
            slow_connections_do_not_hold_the_broker(env).await;
        }
    }
}

mod failed_auth {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some(env) = TestEnv::start_with(Backend::Sqlite, few_failures).await {
            failed_keys_slow_an_address_down(env).await;
        }
    }
}
