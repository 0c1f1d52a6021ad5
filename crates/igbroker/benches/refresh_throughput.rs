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
use igbroker_store::test_support;
use igbroker_vault::KeyRing;
use instagram_sandbox::control_client::{AppSpec, ControlClient, FaultSpec, SeedSpec, Seeded};
use serde_json::json;

const DAY: i64 = 86_400;

/// The scheduler's throughput as a share of the bare loop's, in percent.
const TARGET_PERCENT: f64 = 70.0;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
    let control = ControlClient::new(sb.clone());

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

    let app = control
        .create_app(&AppSpec::redirecting_to("http://127.0.0.1:1/cb"))
        .await
        .unwrap();
    let client_id = app.client_id.clone();
    let (row, _) = igbroker::service::apps::create(
        &state,
        "cli:test",
        serde_json::from_value(json!({"name": "bench", "client_id": client_id,
            "client_secret": app.client_secret, "scopes": ["instagram_business_basic"],
            "redirect_uri": "http://127.0.0.1:1/cb"}))
        .unwrap(),
    )
    .await
    .unwrap();
    if latency_ms > 0 {
        control
            .add_fault(&FaultSpec::latency("/refresh_access_token", latency_ms))
            .await
            .unwrap();
    }

    // Two sets of due tokens: one for the bare loop, one for the scheduler.
    let seed = |prefix: &'static str| {
        let control = control.clone();
        let spec = SeedSpec {
            client_id: client_id.clone(),
            count: n,
            username_prefix: Some(prefix.into()),
            token_age_secs: Some(41 * DAY),
            ..SeedSpec::default()
        };
        async move { control.seed(&spec).await.unwrap() }
    };
    let bare_tokens: Vec<String> = seed("bare_")
        .await
        .into_iter()
        .map(|t| t.access_token)
        .collect();
    let sched = seed("sched_").await;
    let now = clock.now_unix();
    let to_rows = |seeded: &[Seeded]| -> Vec<igbroker_store::NewAccount> {
        seeded
            .iter()
            .map(|item| {
                let id = igbroker_core::PrefixedId::generate(igbroker_core::IdKind::Account)
                    .into_string();
                let (issued_at, expires_at) = (item.issued_at, item.expires_at);
                igbroker_store::NewAccount {
                    id: id.clone(),
                    app_id: row.id.clone(),
                    end_user: String::new(),
                    ig_user_id: item.user_id.clone(),
                    ig_scoped_id: item.id.clone(),
                    username: None,
                    scopes: vec![igbroker_core::InstagramScope::BusinessBasic],
                    token: igbroker_store::TokenUpdate {
                        token_enc: state
                            .vault()
                            .seal_str(
                                &igbroker::service::accounts::token_aad(&id),
                                &item.access_token,
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
    if let Some(pg) = igbroker_store::test_support::pg_admin_url() {
        backends.push(("PostgreSQL", Some(pg)));
    }
    println!("refresh throughput: {n} due accounts, concurrency {concurrency}");
    let mut missed = Vec::new();
    for (name, pg) in &backends {
        for &latency in &latencies {
            let dir = tempfile::tempdir().unwrap();
            let url = match pg {
                None => test_support::sqlite_url(dir.path(), "bench.db"),
                Some(admin) => rt
                    .block_on(test_support::create_pg_database(admin, "igb_bench"))
                    .unwrap(),
            };
            let (bare, sched, store) = rt.block_on(run(url, n, concurrency, latency));
            let ratio = 100.0 * sched / bare;
            // At zero latency the bare loop outruns what the database can store at all
            // ("storage alone"), so the ratio there measures the disk, not the scheduler:
            // the target applies from 1 ms of upstream latency on.
            let verdict = if latency == 0 {
                "(no target at 0 ms: storage-bound)"
            } else if ratio >= TARGET_PERCENT {
                "PASS"
            } else {
                missed.push(format!(
                    "{name} at {latency} ms: scheduler {ratio:.0}% of the bare loop, target >= {TARGET_PERCENT}%"
                ));
                "FAIL"
            };
            println!(
                "{name:<10} upstream latency {latency:>3} ms: bare loop {bare:>8.0}/s, scheduler {sched:>8.0}/s, ratio {ratio:.0}% (target >= {TARGET_PERCENT}%) {verdict}; storage alone {store:>6.0}/s"
            );
        }
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    if !missed.is_empty() {
        eprintln!("\nrefresh: {} target(s) missed:", missed.len());
        for m in &missed {
            eprintln!("  MISSED {m}");
        }
        std::process::exit(1);
    }
}
