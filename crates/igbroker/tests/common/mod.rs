//! A broker and a sandbox per test, in-process on port 0, each test with its own
//! database: a SQLite file in a temp folder, or a fresh PostgreSQL database on
//! the server named by TEST_PG_URL (started by scripts/test).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use igbroker::clock::SandboxClockAdapter;
use igbroker::config::Config;
use igbroker::state::AppState;
use igbroker_core::Clock;
use igbroker_vault::KeyRing;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestEnv {
    pub broker: String,
    pub sandbox: String,
    pub admin_key: String,
    pub app_id: String,
    pub client_id: String,
    pub http: reqwest::Client,
    pub clock: instagram_sandbox::SandboxClock,
    pub state: AppState,
    pub database_url: String,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The connect-session cookie the last opened connect link set, as a browser keeps it.
    cookie: std::sync::Mutex<Option<String>>,
}

/// No answer a test client sees from the Graph proxy may carry an access token (the
/// sandbox's tokens start with `IGAA`).
pub fn assert_no_token_in(path: &str, body: &str) {
    if !path.contains("/graph/") {
        return;
    }
    let mut rest = body;
    while let Some(i) = rest.find("IGAA") {
        let tail = &rest[i + 4..];
        let run = tail
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        assert!(run < 20, "a proxied answer carries a token: {path}");
        rest = tail;
    }
}

pub const USER: &str = "shop_one";
pub const OTHER_USER: &str = "shop_two";
pub const RETURN_ORIGIN: &str = "https://service.example";

/// A PostgreSQL database of its own, or None (with a notice) when no server is configured.
pub async fn pg_database() -> Option<String> {
    let Ok(admin) = std::env::var("TEST_PG_URL") else {
        if std::env::var("IGBROKER_REQUIRE_PG").is_ok() {
            panic!("IGBROKER_REQUIRE_PG is set but TEST_PG_URL is not: run scripts/test");
        }
        eprintln!("TEST_PG_URL not set: skipping the PostgreSQL variant (scripts/test runs it)");
        return None;
    };
    let name = format!("igb_t_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to TEST_PG_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin.clone());
    Some(format!("{base}/{name}"))
}

impl TestEnv {
    pub async fn start(backend: Backend) -> Option<TestEnv> {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestEnv> {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match backend {
            Backend::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("igbroker.db").display()
            ),
            Backend::Postgres => pg_database().await?,
        };
        let sandbox =
            instagram_sandbox::Sandbox::new(instagram_sandbox::SandboxOptions::default()).unwrap();
        let clock = sandbox.clock();
        let sb_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sandbox_url = format!("http://{}", sb_listener.local_addr().unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let broker_url = format!("http://{}", listener.local_addr().unwrap());

        let ring_file = dir.path().join("keys.toml");
        KeyRing::generate().write_file(&ring_file).unwrap();
        let mut config = Config {
            listen: listener.local_addr().unwrap().to_string(),
            public_url: broker_url.clone(),
            database_url: database_url.clone(),
            ..Config::default()
        };
        config.keys.ring_file = ring_file;
        config.instagram.authorize_url = format!("{sandbox_url}/oauth/authorize");
        config.instagram.token_url = format!("{sandbox_url}/oauth/access_token");
        config.instagram.graph_url = sandbox_url.clone();
        config.instagram.request_timeout = Duration::from_secs(10);
        // The tests' webhook receivers listen on loopback.
        config.webhooks.allow_private_networks = true;
        config.webhooks.allow_http = true;
        tweak(&mut config);

        let broker_clock: Arc<dyn Clock> = Arc::new(SandboxClockAdapter(clock.clone()));
        let state = igbroker::server::build_state(config, broker_clock)
            .await
            .unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (sb_tx, sb_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(instagram_sandbox::serve(sb_listener, sandbox, async {
            let _ = sb_rx.await;
        }));
        let serve_state = state.clone();
        tokio::spawn(async move {
            let _ = igbroker::server::serve(listener, serve_state, async {
                let _ = stop_rx.await;
                let _ = sb_tx.send(());
            })
            .await;
        });

        let (_, admin_key) = igbroker::service::api_keys::create(
            state.store(),
            "test admin",
            &["admin".into()],
            &[],
            0,
        )
        .await
        .unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let redirect_uri = format!("{broker_url}/oauth/callback");
        let sb_app = post(
            &http,
            &format!("{sandbox_url}/_sandbox/apps"),
            None,
            json!({"redirect_uris": [redirect_uri]}),
        )
        .await;
        assert!(sb_app.0.is_success(), "sandbox app: {:?}", sb_app);
        let client_id = s(&sb_app.1["client_id"]);
        for u in [USER, OTHER_USER] {
            let r = post(
                &http,
                &format!("{sandbox_url}/_sandbox/users"),
                None,
                json!({"username": u, "media_count": 3}),
            )
            .await;
            assert!(r.0.is_success(), "sandbox user: {:?}", r);
        }
        let app = post(
            &http,
            &format!("{broker_url}/v1/apps"),
            Some(&admin_key),
            json!({
                "name": "Test app",
                "client_id": client_id,
                "client_secret": s(&sb_app.1["client_secret"]),
                "scopes": ["instagram_business_basic", "instagram_business_content_publish"],
                "return_origins": [RETURN_ORIGIN],
            }),
        )
        .await;
        assert_eq!(app.0, StatusCode::CREATED, "{:?}", app.1);
        Some(TestEnv {
            broker: broker_url,
            sandbox: sandbox_url,
            admin_key,
            app_id: s(&app.1["id"]),
            client_id,
            http,
            clock,
            state,
            database_url,
            dir,
            stop: Some(stop_tx),
            cookie: std::sync::Mutex::new(None),
        })
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.broker))
            .bearer_auth(&self.admin_key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert_no_token_in(path, &text);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.api(reqwest::Method::GET, path, None).await
    }

    pub async fn session(&self, body: Value) -> Value {
        let (st, v) = self
            .api(reqwest::Method::POST, "/v1/connect-sessions", Some(body))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        v
    }

    /// Opens the connect link and answers the consent in the sandbox; returns
    /// the callback URL Instagram redirects to (fragment removed, as browsers do).
    pub async fn consent(&self, connect_url: &str, username: &str, decision: &str) -> url::Url {
        let resp = self.http.get(connect_url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND, "connect link");
        if let Some(c) = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
        {
            *self.cookie.lock().unwrap() = Some(c.to_string());
        }
        let loc = resp.headers()["location"].to_str().unwrap().to_string();
        let authorize = url::Url::parse(&loc).unwrap();
        let q: HashMap<String, String> = authorize.query_pairs().into_owned().collect();
        let (st, v) = post(
            &self.http,
            &format!("{}/_sandbox/authorize", self.sandbox),
            None,
            json!({"client_id": q["client_id"], "redirect_uri": q["redirect_uri"], "scope": q["scope"],
                   "state": q.get("state"), "username": username, "decision": decision}),
        )
        .await;
        assert!(st.is_success(), "sandbox authorize: {v}");
        let mut cb = url::Url::parse(v["location"].as_str().unwrap()).unwrap();
        cb.set_fragment(None);
        cb
    }

    /// The callback, from the browser that opened the last connect link.
    pub async fn callback(&self, url: &url::Url) -> reqwest::Response {
        let mut req = self.http.get(url.as_str());
        let cookie = self.cookie.lock().unwrap().clone();
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }

    /// Every call the sandbox logged.
    pub async fn sandbox_calls_all(&self) -> Vec<Value> {
        let resp = self
            .http
            .get(format!("{}/_sandbox/calls", self.sandbox))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "/_sandbox/calls");
        let v: Value = resp.json().await.unwrap();
        v["data"].as_array().cloned().unwrap_or_default()
    }

    /// The whole connect flow; returns the account id.
    pub async fn connect(&self, username: &str, end_user: &str) -> String {
        self.connect_to(&self.app_id.clone(), username, end_user)
            .await
    }

    /// Registers another app in the sandbox and the broker; `extra` adds broker
    /// fields (e.g. webhook_url). Returns the broker's answer (with webhook_secret).
    pub async fn register_app(&self, extra: Value) -> Value {
        let redirect_uri = format!("{}/oauth/callback", self.broker);
        let (st, sb_app) = post(
            &self.http,
            &format!("{}/_sandbox/apps", self.sandbox),
            None,
            json!({"redirect_uris": [redirect_uri]}),
        )
        .await;
        assert!(st.is_success(), "{sb_app}");
        let mut body = json!({
            "name": "Another app",
            "client_id": s(&sb_app["client_id"]),
            "client_secret": s(&sb_app["client_secret"]),
            "scopes": ["instagram_business_basic"],
            "return_origins": [RETURN_ORIGIN],
        });
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        let (st, app) = self
            .api(reqwest::Method::POST, "/v1/apps", Some(body))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{app}");
        app
    }

    pub async fn connect_to(&self, app_id: &str, username: &str, end_user: &str) -> String {
        let created = self
            .session(json!({"app_id": app_id, "end_user": end_user}))
            .await;
        let cb = self
            .consent(created["connect_url"].as_str().unwrap(), username, "allow")
            .await;
        let resp = self.callback(&cb).await;
        assert!(resp.status().is_success(), "callback: {}", resp.status());
        let (_, sess) = self
            .get(&format!(
                "/v1/connect-sessions/{}",
                created["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(sess["status"], "connected", "{sess}");
        s(&sess["account_id"])
    }

    pub fn advance(&self, secs: i64) {
        self.clock.advance(secs);
    }

    pub async fn run_scheduler(&self) -> igbroker::worker::scheduler::RunStats {
        igbroker::worker::scheduler::Scheduler::new(self.state.clone())
            .run_until_idle(|_| {})
            .await
            .unwrap()
    }

    pub async fn fault(&self, spec: Value) -> String {
        let (st, v) = post(
            &self.http,
            &format!("{}/_sandbox/faults", self.sandbox),
            None,
            spec,
        )
        .await;
        assert!(st.is_success(), "fault: {v}");
        s(&v["id"])
    }

    pub async fn clear_faults(&self) {
        let resp = self
            .http
            .delete(format!("{}/_sandbox/faults", self.sandbox))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
    }

    pub async fn account(&self, id: &str) -> Value {
        let (st, v) = self.get(&format!("/v1/accounts/{id}")).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v
    }

    /// The sandbox user id (`id` field of POST /_sandbox/users) by username.
    pub async fn sandbox_user_id(&self, username: &str) -> String {
        let resp = self
            .http
            .get(format!("{}/_sandbox/users", self.sandbox))
            .send()
            .await
            .unwrap();
        let v: Value = resp.json().await.unwrap();
        let list = v["data"]
            .as_array()
            .cloned()
            .or_else(|| v.as_array().cloned())
            .unwrap_or_default();
        list.iter()
            .find(|u| u["username"] == username)
            .map(|u| s(&u["id"]))
            .unwrap_or_else(|| panic!("no sandbox user {username}: {v}"))
    }

    /// Every file in the test's folder (database, WAL, journal, key ring).
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir.path()).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
        out
    }

    pub async fn sandbox_calls(&self, path: &str) -> Vec<Value> {
        let resp = self
            .http
            .get(format!("{}/_sandbox/calls", self.sandbox))
            .query(&[("path", path)])
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "/_sandbox/calls");
        let v: Value = resp.json().await.unwrap();
        v["data"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub async fn post(
    http: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = http.post(url).json(&body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub fn s(v: &Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs one async test body against SQLite and against PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(env) = TestEnv::start(Backend::Sqlite).await {
                    $body(env).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(env) = TestEnv::start(Backend::Postgres).await {
                    $body(env).await;
                }
            }
        }
    };
}

/// Like `both_backends!`, with a configuration tweak.
#[macro_export]
macro_rules! both_backends_with {
    ($name:ident, $body:path, $tweak:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(env) = TestEnv::start_with(Backend::Sqlite, $tweak).await {
                    $body(env).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(env) = TestEnv::start_with(Backend::Postgres, $tweak).await {
                    $body(env).await;
                }
            }
        }
    };
}

/// A seeded account: the broker's id and the sandbox's professional id.
pub struct Seeded {
    pub account_id: String,
    pub ig_user_id: String,
}

/// Many accounts at once: the sandbox issues long-lived tokens (issued
/// `token_age_secs` ago) and they are stored in bulk, as an import would.
#[allow(clippy::too_many_arguments)]
pub async fn seed_accounts(
    http: &reqwest::Client,
    sandbox: &str,
    state: &AppState,
    app_id: &str,
    client_id: &str,
    n: usize,
    token_age_secs: i64,
    now: i64,
) -> Vec<Seeded> {
    let (st, v) = post(
        http,
        &format!("{sandbox}/_sandbox/seed"),
        None,
        json!({"client_id": client_id, "count": n, "token_age_secs": token_age_secs, "username_prefix": "bulk_"}),
    )
    .await;
    assert!(st.is_success(), "seed: {v}");
    let mut out = Vec::with_capacity(n);
    let mut rows = Vec::with_capacity(n);
    for item in v["data"].as_array().unwrap() {
        let id = igbroker_core::PrefixedId::generate(igbroker_core::IdKind::Account).into_string();
        let token = item["access_token"].as_str().unwrap();
        let issued_at = item["issued_at"].as_i64().unwrap();
        let expires_at = item["expires_at"].as_i64().unwrap();
        rows.push(igbroker_store::NewAccount {
            id: id.clone(),
            app_id: app_id.to_string(),
            end_user: String::new(),
            ig_user_id: s(&item["user_id"]),
            ig_scoped_id: s(&item["id"]),
            username: Some(s(&item["username"])),
            scopes: vec![igbroker_core::InstagramScope::BusinessBasic],
            token: igbroker_store::TokenUpdate {
                token_enc: state
                    .vault()
                    .seal_str(&igbroker::service::accounts::token_aad(&id), token)
                    .unwrap(),
                key_version: i64::from(state.vault().current_version()),
                issued_at,
                expires_at,
                next_refresh_at: state.policy().next_refresh_at(&id, issued_at, expires_at),
            },
        });
        out.push(Seeded {
            account_id: id,
            ig_user_id: s(&item["user_id"]),
        });
    }
    for chunk in rows.chunks(1000) {
        state.store().insert_accounts(chunk, now).await.unwrap();
    }
    out
}

impl TestEnv {
    pub async fn seed(&self, n: usize, token_age_secs: i64) -> Vec<Seeded> {
        seed_accounts(
            &self.http,
            &self.sandbox,
            &self.state,
            &self.app_id,
            &self.client_id,
            n,
            token_age_secs,
            self.clock.now_unix(),
        )
        .await
    }
}

/// The sandbox's call counters: `{"calls": {route: {status: count}}}` since it started.
pub async fn sandbox_stats(http: &reqwest::Client, sandbox: &str) -> Value {
    http.get(format!("{sandbox}/_sandbox/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
