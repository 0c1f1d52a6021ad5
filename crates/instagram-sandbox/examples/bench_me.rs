//! Rough throughput check: `GET /me` against the trivial `GET /_sandbox/health`, on loopback,
//! in one process. `cargo run -p instagram-sandbox --example bench_me [-- SECONDS CONCURRENCY]`.
//! The figures for BENCHMARKS.md come from `scripts/bench` with a real load tool; this is the
//! quick in-tree check that `/me` stays within the same order as a trivial route.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use instagram_sandbox::{Sandbox, SandboxOptions, serve};
use serde_json::{Value, json};

async fn run(url: String, secs: u64, conc: usize) -> f64 {
    let client = reqwest::Client::new();
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (client, url, count) = (client.clone(), url.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let r = client.get(&url).send().await.unwrap();
                assert!(r.status().as_u16() < 500, "{}", r.status());
                r.bytes().await.unwrap();
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = count.load(Ordering::Relaxed) as f64 / secs as f64;
    rate
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let conc: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let sb = Sandbox::new(SandboxOptions::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, sb, std::future::pending()));
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let app = post(
        "/_sandbox/apps",
        json!({ "redirect_uris": ["https://app.example/cb"], "rate_limit_calls": 4_000_000_000u32 }),
    )
    .await;
    post(
        "/_sandbox/users",
        json!({ "username": "bench", "media_count": 50 }),
    )
    .await;
    let loc = post(
        "/_sandbox/authorize",
        json!({ "client_id": app["client_id"], "redirect_uri": "https://app.example/cb",
                "scope": "instagram_business_basic", "username": "bench", "decision": "allow" }),
    )
    .await;
    let loc = loc["location"].as_str().unwrap();
    let code = url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tok: Value = http
        .post(format!("{base}/oauth/access_token"))
        .form(&[
            ("client_id", app["client_id"].as_str().unwrap()),
            ("client_secret", app["client_secret"].as_str().unwrap()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "https://app.example/cb"),
            ("code", &code),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tok["access_token"].as_str().unwrap();
    let trivial = run(format!("{base}/_sandbox/health"), secs, conc).await;
    let me = run(
        format!("{base}/v24.0/me?fields=id,user_id,username,name,account_type,media_count&access_token={token}"),
        secs,
        conc,
    )
    .await;
    if std::env::var_os("BENCH_DETAIL").is_some() {
        let client = reqwest::Client::new();
        let _ = client;
        let bare = run(
            format!("{base}/v24.0/me?fields=id&access_token={token}"),
            secs,
            conc,
        )
        .await;
        println!("GET /me?fields=id:        {bare:.0} req/s");
    }
    println!("trivial /_sandbox/health: {trivial:.0} req/s");
    println!("GET /me:                  {me:.0} req/s");
    println!("ratio: {:.2}", me / trivial);
}
