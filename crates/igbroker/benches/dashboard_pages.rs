//! The dashboard's accounts page with 100,000 accounts, unfiltered and filtered, against
//! the broker's trivial `GET /healthz` on the same server in the same run: p50 and p99
//! of the time from request to last byte over loopback.
//!
//! `cargo bench -p igbroker --bench dashboard_pages` (SQLite), with `TEST_PG_URL` set
//! also on PostgreSQL. `BENCH_ACCOUNTS` and `BENCH_REQUESTS` change the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use igbroker_core::{Clock, IdKind, InstagramScope, PrefixedId, SystemClock};
use igbroker_store::{AppRow, NewAccount, TokenUpdate};
use igbroker_vault::KeyRing;
use sqlx::Connection;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(label: &str, database_url: String, n: usize, requests: usize) {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("keys.toml");
    KeyRing::generate().write_file(&ring).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = igbroker::config::Config {
        database_url,
        public_url: base.clone(),
        ..igbroker::config::Config::default()
    };
    config.keys.ring_file = ring;
    config.refresh.scheduler = false;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = igbroker::server::build_state(config, clock.clone())
        .await
        .unwrap();
    let now = clock.now_unix();

    // Four apps; accounts spread over them, one in twenty needing re-authorization.
    let mut apps = Vec::new();
    for i in 0..4 {
        let id = PrefixedId::generate(IdKind::App).into_string();
        let secret = state
            .vault()
            .seal_str(&igbroker::service::apps::secret_aad(&id), "bench-secret")
            .unwrap();
        state
            .store()
            .insert_app(&AppRow {
                id: id.clone(),
                name: format!("Bench app {i}"),
                kind: "instagram_login".into(),
                client_id: format!("10000000000000{i}"),
                client_secret_enc: secret,
                scopes: vec![
                    InstagramScope::BusinessBasic,
                    InstagramScope::ContentPublish,
                ],
                redirect_uri: format!("{base}/oauth/callback"),
                return_origins: Vec::new(),
                webhook_url: None,
                created_at: now,
                deleted_at: None,
            })
            .await
            .unwrap();
        apps.push(id);
    }
    let started = Instant::now();
    let mut rows = Vec::with_capacity(1000);
    for i in 0..n {
        let id = PrefixedId::generate(IdKind::Account).into_string();
        let sealed = state
            .vault()
            .seal_str(&igbroker::service::accounts::token_aad(&id), "IGAAbench")
            .unwrap();
        rows.push(NewAccount {
            id,
            app_id: apps[i % apps.len()].clone(),
            end_user: format!("customer-{}", i % 5000),
            ig_user_id: format!("178414{i:011}"),
            ig_scoped_id: format!("9{i:015}"),
            username: Some(format!("user_{i:06}")),
            scopes: vec![
                InstagramScope::BusinessBasic,
                InstagramScope::ContentPublish,
            ],
            token: TokenUpdate {
                token_enc: sealed,
                key_version: 1,
                issued_at: now - (i as i64 % 50) * 86_400,
                expires_at: now + (60 - (i as i64 % 50)) * 86_400,
                next_refresh_at: now + 86_400,
            },
        });
        if rows.len() == 1000 || i + 1 == n {
            state.store().insert_accounts(&rows, now).await.unwrap();
            rows.clear();
        }
    }
    sqlx::query("UPDATE accounts SET status = 'reauth_required' WHERE username LIKE '%5'")
        .execute(state.store().pool())
        .await
        .unwrap();
    if label == "PostgreSQL" {
        sqlx::query("ANALYZE accounts")
            .execute(state.store().pool())
            .await
            .unwrap();
    }
    eprintln!(
        "{label}: {n} accounts stored in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let serve_state = state.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(igbroker::server::serve(listener, serve_state, async {
        let _ = stop_rx.await;
    }));
    let opened = igbroker::service::sign_in::open(
        &state,
        igbroker::service::sign_in::Identity {
            actor: "ui:bench".into(),
            api_key_id: None,
        },
    )
    .await
    .unwrap();
    let cookie = igbroker::http::ui::session::session_cookie(&state, &opened)
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let http = reqwest::Client::builder().build().unwrap();

    // A cursor from the middle of the table: a deep page costs what the first one does.
    let middle =
        sqlx::query_scalar::<_, String>("SELECT id FROM accounts ORDER BY id LIMIT 1 OFFSET $1")
            .bind((n / 2) as i64)
            .fetch_one(state.store().pool())
            .await
            .unwrap();
    let cursor = igbroker::util::encode_cursor(&middle);
    let routes: Vec<(String, String)> = vec![
        ("GET /healthz".into(), "/healthz".into()),
        ("accounts, first page".into(), "/ui/accounts".into()),
        (
            "accounts, page in the middle".into(),
            format!("/ui/accounts?cursor={cursor}"),
        ),
        (
            "accounts, status=reauth_required".into(),
            "/ui/accounts?status=reauth_required".into(),
        ),
        (
            "accounts, app + status=active".into(),
            format!("/ui/accounts?app={}&status=active", apps[1]),
        ),
        (
            "accounts, end user".into(),
            "/ui/accounts?end_user=customer-42".into(),
        ),
        (
            "accounts, username prefix".into(),
            "/ui/accounts?q=user_0421".into(),
        ),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(requests); routes.len()];
    // Warm-up, then the routes interleaved so that all share the machine's moods.
    for (_, path) in &routes {
        for _ in 0..5 {
            let r = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.bytes().await.unwrap();
        }
    }
    for _ in 0..requests {
        for (i, (_, path)) in routes.iter().enumerate() {
            let t = Instant::now();
            let r = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            let ok = r.status().is_success();
            let body = r.bytes().await.unwrap();
            times[i].push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(ok && !body.is_empty());
        }
    }
    let mut base_p50 = 0.0;
    for (i, (name, _)) in routes.iter().enumerate() {
        let mut t = times[i].clone();
        t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (p50, p99) = (percentile(&t, 0.5), percentile(&t, 0.99));
        if i == 0 {
            base_p50 = p50;
        }
        println!(
            "{label:<10} {n} accounts  {name:<34} p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  ({:.1}x healthz p50)",
            p50 / base_p50
        );
    }
    let _ = stop_tx.send(());
    let _ = server.await;
}

fn main() {
    let n = env_num("BENCH_ACCOUNTS", 100_000);
    let requests = env_num("BENCH_REQUESTS", 200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        );
        run("SQLite", url, n, requests).await;
        if let Ok(admin) = std::env::var("TEST_PG_URL") {
            let name = format!("igb_bench_{}", uuid::Uuid::now_v7().simple());
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap();
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
            run("PostgreSQL", format!("{base}/{name}"), n, requests).await;
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    });
}
