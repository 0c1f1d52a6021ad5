//! Refresh throughput of the scheduler against the sandbox, as a ratio to a bare
//! loop that makes the same refresh calls with the same concurrency, in one run.
//!
//! `cargo bench -p igbroker --bench refresh_throughput` (SQLite), with
//! `TEST_PG_URL` set also on PostgreSQL. `BENCH_ACCOUNTS`, `BENCH_CONCURRENCY`
//! and `BENCH_LATENCY_MS` (sandbox latency per refresh, to model the network)
//! change the run; every combination prints one line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use igbroker::clock::SandboxClockAdapter;
use igbroker::config::Config;
use igbroker_core::Clock;
use igbroker_vault::KeyRing;
use serde_json::{Value, json};
use sqlx::Connection;

const DAY: i64 = 86_400;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> Value {
    let resp = http.post(url).json(&body).send().await.unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    resp.json().await.unwrap()
}

async fn run(
    database_url: String,
    n: usize,
    concurrency: usize,
    latency_ms: u64,
) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let sandbox =
        instagram_sandbox::Sandbox::new(instagram_sandbox::SandboxOptions::default()).unwrap();
    let clock = sandbox.clock();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sb = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(instagram_sandbox::serve(l, sandbox, std::future::pending()));
    let http = reqwest::Client::new();

    let ring = dir.path().join("keys.toml");
    KeyRing::generate().write_file(&ring).unwrap();
    let mut config = Config {
        database_url,
        ..Config::default()
    };
    config.keys.ring_file = ring;
    config.instagram.authorize_url = format!("{sb}/oauth/authorize");
    config.instagram.token_url = format!("{sb}/oauth/access_token");
    config.instagram.graph_url = sb.clone();
    config.refresh.concurrency = concurrency;
    config.refresh.app_budget_per_minute = 1_000_000_000;
    let c: Arc<dyn Clock> = Arc::new(SandboxClockAdapter(clock.clone()));
    let state = igbroker::server::build_state(config.clone(), c)
        .await
        .unwrap();

    let app = post(
        &http,
        &format!("{sb}/_sandbox/apps"),
        json!({"redirect_uris": ["http://127.0.0.1:1/cb"]}),
    )
    .await;
    let client_id = app["client_id"].as_str().unwrap().to_string();
    let (row, _) = igbroker::service::apps::create(
        &state,
        "cli:test",
        serde_json::from_value(json!({"name": "bench", "client_id": client_id,
            "client_secret": app["client_secret"], "scopes": ["instagram_business_basic"],
            "redirect_uri": "http://127.0.0.1:1/cb"}))
        .unwrap(),
    )
    .await
    .unwrap();
    if latency_ms > 0 {
        post(
            &http,
            &format!("{sb}/_sandbox/faults"),
            json!({"path": "/refresh_access_token", "kind": "latency", "latency_ms": latency_ms}),
        )
        .await;
    }

    // Two sets of due tokens: one for the bare loop, one for the scheduler.
    let seed = |prefix: &'static str| {
        let http = http.clone();
        let sb = sb.clone();
        let client_id = client_id.clone();
        async move {
            post(&http, &format!("{sb}/_sandbox/seed"),
                json!({"client_id": client_id, "count": n, "token_age_secs": 41 * DAY, "username_prefix": prefix})).await
        }
    };
    let bare_tokens: Vec<String> = seed("bare_").await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["access_token"].as_str().unwrap().to_string())
        .collect();
    let sched = seed("sched_").await;
    let now = clock.now_unix();
    let to_rows = |seeded: &Value| -> Vec<igbroker_store::NewAccount> {
        seeded["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let id = igbroker_core::PrefixedId::generate(igbroker_core::IdKind::Account)
                    .into_string();
                let issued_at = item["issued_at"].as_i64().unwrap();
                let expires_at = item["expires_at"].as_i64().unwrap();
                igbroker_store::NewAccount {
                    id: id.clone(),
                    app_id: row.id.clone(),
                    end_user: String::new(),
                    ig_user_id: item["user_id"].as_str().unwrap().to_string(),
                    ig_scoped_id: item["id"].as_str().unwrap().to_string(),
                    username: None,
                    scopes: vec![igbroker_core::InstagramScope::BusinessBasic],
                    token: igbroker_store::TokenUpdate {
                        token_enc: state
                            .vault()
                            .seal_str(
                                &igbroker::service::accounts::token_aad(&id),
                                item["access_token"].as_str().unwrap(),
                            )
                            .unwrap(),
                        key_version: 1,
                        issued_at,
                        expires_at,
                        next_refresh_at: now - 1,
                    },
                }
            })
            .collect()
    };
    let rows = to_rows(&sched);
    for chunk in rows.chunks(1000) {
        state.store().insert_accounts(chunk, now).await.unwrap();
    }

    // The bare loop: the same client, the same calls, the same concurrency.
    let client = state.instagram().clone();
    let t = Instant::now();
    let ok = futures::stream::iter(bare_tokens)
        .map(|tok| {
            let client = client.clone();
            async move {
                client
                    .refresh(&instagram_api::AccessToken::new(tok))
                    .await
                    .is_ok()
            }
        })
        .buffer_unordered(concurrency)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    let bare = t.elapsed();
    assert_eq!(ok, n, "the bare loop must refresh every token");

    let t = Instant::now();
    let stats = igbroker::worker::scheduler::Scheduler::new(state.clone())
        .run_until_idle(|_| {})
        .await
        .unwrap();
    let sched_time = t.elapsed();
    assert_eq!(stats.refreshed, n as u64, "{stats:?}");

    // Storage alone: the same claims and group commits (sealed token and audit
    // entry per result) with no call to Instagram, for the floor the database sets.
    let rows = to_rows(&seed("store_").await);
    for chunk in rows.chunks(1000) {
        state.store().insert_accounts(chunk, now).await.unwrap();
    }
    let t = Instant::now();
    let mut stored = 0;
    loop {
        let now = clock.now_unix();
        let claimed = state
            .store()
            .claim_due("bench:store", now, now + 600, 1000)
            .await
            .unwrap();
        if claimed.is_empty() {
            break;
        }
        for batch in claimed.chunks(256) {
            let items: Vec<igbroker_store::RefreshCommit> = batch
                .iter()
                .map(|acc| {
                    let token = state
                        .vault()
                        .seal_str(
                            &igbroker::service::accounts::token_aad(&acc.id),
                            &format!("IGAA{}", acc.id),
                        )
                        .unwrap();
                    igbroker_store::RefreshCommit {
                        account_id: acc.id.clone(),
                        owner: "bench:store".into(),
                        token: igbroker_store::TokenUpdate {
                            token_enc: token,
                            key_version: 1,
                            issued_at: now,
                            expires_at: now + 60 * DAY,
                            next_refresh_at: now + 40 * DAY,
                        },
                        audit: igbroker_store::AuditEntry {
                            id: igbroker_core::PrefixedId::generate(igbroker_core::IdKind::Audit)
                                .into_string(),
                            at: now,
                            actor: "system:scheduler".into(),
                            action: "token.refreshed".into(),
                            account_id: Some(acc.id.clone()),
                            app_id: Some(acc.app_id.clone()),
                            detail: json!({"expires_at": now + 60 * DAY}).to_string(),
                        },
                    }
                })
                .collect();
            let ok = state.store().commit_refreshes(now, &items).await.unwrap();
            stored += ok.iter().filter(|b| **b).count();
        }
    }
    let store_time = t.elapsed();
    assert_eq!(stored, n, "storage alone must store every result");
    state.store().close().await;
    (
        n as f64 / bare.as_secs_f64(),
        n as f64 / sched_time.as_secs_f64(),
        n as f64 / store_time.as_secs_f64(),
    )
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing we need.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = env_num("BENCH_ACCOUNTS", 2000) as usize;
    let concurrency = env_num("BENCH_CONCURRENCY", 8) as usize;
    let latencies: Vec<u64> = std::env::var("BENCH_LATENCY_MS")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![0, 20]);
    let mut backends = vec![("SQLite", None)];
    if let Ok(pg) = std::env::var("TEST_PG_URL") {
        backends.push(("PostgreSQL", Some(pg)));
    }
    println!("refresh throughput: {n} due accounts, concurrency {concurrency}");
    for (name, pg) in &backends {
        for &latency in &latencies {
            let dir = tempfile::tempdir().unwrap();
            let url = match pg {
                None => format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("bench.db").display()
                ),
                Some(admin) => rt.block_on(async {
                    let db = format!("igb_bench_{}", uuid::Uuid::now_v7().simple());
                    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
                    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                        .execute(&mut conn)
                        .await
                        .unwrap();
                    format!("{}/{db}", admin.rsplit_once('/').unwrap().0)
                }),
            };
            let (bare, sched, store) = rt.block_on(run(url, n, concurrency, latency));
            println!(
                "{name:<10} upstream latency {latency:>3} ms: bare loop {bare:>8.0}/s, scheduler {sched:>8.0}/s, ratio {:.0}%; storage alone {store:>6.0}/s",
                100.0 * sched / bare
            );
        }
    }
    rt.shutdown_timeout(Duration::from_secs(1));
}
