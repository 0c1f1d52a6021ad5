//! The fast request path keeps its promises: token reads are audited in group
//! commits and the chain verifies (one replica or two), a token never leaves
//! before its audit entry is committed, a revoked API key stops working on every
//! replica within `api_key_cache_ttl`, and a revoked account at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{Backend, TestEnv, s};
use igbroker_core::Clock;
use igbroker_store::ChainCheck;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A second replica: its own state (pools, key cache, audit writer) and server
/// on the same database, with `ttl` as its API-key cache bound.
struct Replica {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn replica(env: &TestEnv, ttl: Duration) -> Replica {
    let mut config = env.state.config().clone();
    config.api_key_cache_ttl = ttl;
    let clock: Arc<dyn Clock> = Arc::new(igbroker::clock::SandboxClockAdapter(env.clock.clone()));
    let state = igbroker::server::build_state(config, clock).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serve_state = state.clone();
    tokio::spawn(async move {
        let _ = igbroker::server::serve(listener, serve_state, async {
            let _ = rx.await;
        })
        .await;
    });
    Replica {
        url,
        stop: Some(tx),
    }
}

async fn get(env: &TestEnv, base: &str, path: &str, key: &str) -> (StatusCode, String) {
    let r = env
        .http
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

async fn token_reads_in_audit(env: &TestEnv) -> usize {
    let mut n = 0;
    let mut after = 0i64;
    loop {
        let rows = env
            .state
            .store()
            .list_audit(None, Some("token.read"), None, after, 1000)
            .await
            .unwrap();
        let Some(last) = rows.last() else { break };
        after = last.seq;
        n += rows.len();
    }
    n
}

/// 240 concurrent token reads through two replicas: every read that answered
/// 200 has its own entry, and the one chain both replicas appended to verifies.
async fn concurrent_reads_through_two_replicas_are_each_audited_in_one_chain(env: TestEnv) {
    let accounts = env.seed(12, 3 * 86_400).await;
    let b = replica(&env, Duration::from_secs(1)).await;
    let mut reads = tokio::task::JoinSet::new();
    for i in 0..240 {
        let base = if i % 2 == 0 {
            env.broker.clone()
        } else {
            b.url.clone()
        };
        let id = accounts[i % accounts.len()].account_id.clone();
        let (http, key) = (env.http.clone(), env.admin_key.clone());
        reads.spawn(async move {
            let r = http
                .get(format!("{base}/v1/accounts/{id}/token"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            r.status()
        });
    }
    while let Some(status) = reads.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    assert_eq!(token_reads_in_audit(&env).await, 240);
    match env.state.store().verify_audit().await.unwrap() {
        ChainCheck::Intact { entries } => assert!(entries >= 240, "{entries} entries"),
        broken => panic!("chain broken after concurrent reads: {broken:?}"),
    }
    drop(b);
}
both_backends!(
    group_commit_two_replicas,
    concurrent_reads_through_two_replicas_are_each_audited_in_one_chain
);

/// When the audit log refuses the entry, the caller gets 503 and not the token;
/// once it accepts entries again, reads work again.
async fn no_token_leaves_without_its_audit_entry(env: TestEnv) {
    let acc = &env.seed(1, 3 * 86_400).await[0];
    let path = format!("/v1/accounts/{}/token", acc.account_id);
    let (st, body) = get(&env, &env.broker, &path, &env.admin_key).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let token = s(&serde_json::from_str::<Value>(&body).unwrap()["access_token"]);
    assert!(token.len() > 10);

    let pool = env.state.store().pool();
    let sqlite = env.database_url.starts_with("sqlite:");
    let block: &[&str] = if sqlite {
        &[
            "CREATE TRIGGER audit_down BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit device down'); END",
        ]
    } else {
        &[
            "CREATE FUNCTION audit_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit device down'; END $$",
            "CREATE TRIGGER audit_down BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_down()",
        ]
    };
    for sql in block {
        sqlx::query(sqlx::AssertSqlSafe(*sql))
            .execute(pool)
            .await
            .unwrap();
    }
    let before = token_reads_in_audit(&env).await;
    let (st, body) = get(&env, &env.broker, &path, &env.admin_key).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        !body.contains(&token),
        "the token left without its audit entry"
    );
    assert_eq!(token_reads_in_audit(&env).await, before);

    let unblock = if sqlite {
        "DROP TRIGGER audit_down"
    } else {
        "DROP TRIGGER audit_down ON audit_log"
    };
    sqlx::query(unblock).execute(pool).await.unwrap();
    let (st, body) = get(&env, &env.broker, &path, &env.admin_key).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(token_reads_in_audit(&env).await, before + 1);
    assert!(matches!(
        env.state.store().verify_audit().await.unwrap(),
        ChainCheck::Intact { .. }
    ));
}
both_backends!(
    audit_refusal_withholds_the_token,
    no_token_leaves_without_its_audit_entry
);

/// The bound on the API-key cache: revoked through replica A, the key is refused
/// by A at once and by replica B (which had just verified it) within B's TTL.
async fn revoked_key_is_refused_by_every_replica_within_the_ttl(env: TestEnv) {
    const TTL: Duration = Duration::from_millis(400);
    let b = replica(&env, TTL).await;
    let (st, created) = env
        .api(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "reader", "scopes": ["accounts:read"]})),
        )
        .await;
    assert!(st.is_success(), "{created}");
    let (key, key_id) = (s(&created["key"]), s(&created["id"]));
    // Both replicas verify (and cache) the key.
    for base in [&env.broker, &b.url] {
        let (st, body) = get(&env, base, "/v1/accounts", &key).await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }
    let (st, _) = env
        .api(Method::DELETE, &format!("/v1/api-keys/{key_id}"), None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let revoked = Instant::now();
    let (st, _) = get(&env, &env.broker, "/v1/accounts", &key).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "the revoking replica still took the key"
    );
    // B may still trust its check for up to TTL after the revocation, never longer.
    tokio::time::sleep_until((revoked + TTL).into()).await;
    let (st, _) = get(&env, &b.url, "/v1/accounts", &key).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "replica B accepted a key revoked more than api_key_cache_ttl ago"
    );
    // The admin key, verified long ago on B, is checked again and still works.
    let (st, _) = get(&env, &b.url, "/v1/accounts", &env.admin_key).await;
    assert_eq!(st, StatusCode::OK);
}
both_backends!(
    key_revocation_bound,
    revoked_key_is_refused_by_every_replica_within_the_ttl
);

/// Account state is not cached: revoked through A, B refuses the token at once.
async fn revoked_account_is_refused_by_another_replica_at_once(env: TestEnv) {
    let acc = &env.seed(1, 3 * 86_400).await[0];
    let b = replica(&env, Duration::from_secs(60)).await;
    let path = format!("/v1/accounts/{}/token", acc.account_id);
    let (st, body) = get(&env, &b.url, &path, &env.admin_key).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, body) = env
        .api(
            Method::DELETE,
            &format!("/v1/accounts/{}", acc.account_id),
            None,
        )
        .await;
    assert!(st.is_success(), "{body}");
    let (st, body) = get(&env, &b.url, &path, &env.admin_key).await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert!(!body.contains("access_token"), "{body}");
    drop(b);
}
both_backends!(
    account_revocation_is_immediate,
    revoked_account_is_refused_by_another_replica_at_once
);

/// A key trusted from memory keeps what the database said about it: its apps (another
/// app's account looks missing on every request, cached or not) and its own rate.
async fn a_cached_key_keeps_its_apps_and_its_rate(env: TestEnv) {
    let acc = &env.seed(1, 3 * 86_400).await[0];
    let other = s(&env.register_app(json!({})).await["id"]);
    // A 60 s bound: every request after the first is answered from the cache.
    let b = replica(&env, Duration::from_secs(60)).await;
    let (st, created) = env
        .api(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "other-app", "scopes": ["tokens:read"], "app_ids": [other]})),
        )
        .await;
    assert!(st.is_success(), "{created}");
    let limited = s(&created["key"]);
    let path = format!("/v1/accounts/{}/token", acc.account_id);
    for _ in 0..5 {
        let (st, body) = get(&env, &b.url, &path, &limited).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
        assert!(!body.contains("access_token"), "{body}");
    }
    let (st, created) = env
        .api(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "slow", "scopes": ["accounts:read"], "rate_limit_per_second": 1})),
        )
        .await;
    assert!(st.is_success(), "{created}");
    let slow = s(&created["key"]);
    let started = Instant::now();
    let mut passed = 0u32;
    for _ in 0..20 {
        let (st, body) = get(&env, &b.url, "/v1/accounts", &slow).await;
        match st {
            StatusCode::OK => passed += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("{other}: {body}"),
        }
    }
    // A burst of 2 (the configured burst-to-rate ratio), then 1 a second.
    let allowed = 2.0 + started.elapsed().as_secs_f64() + 1.0;
    assert!(
        f64::from(passed) <= allowed,
        "{passed} of 20 calls got through a 1/s key, more than {allowed:.0}"
    );
    drop(b);
}
both_backends!(cached_key_limits, a_cached_key_keeps_its_apps_and_its_rate);
