//! A broker and a sandbox per test, in-process on port 0, each test with its own
//! database: a SQLite file in a temp folder, or a fresh PostgreSQL database on
//! the server named by TEST_PG_URL (started by scripts/test).

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use igbroker::config::Config;
use igbroker::stack::{Stack, StackOptions};
use igbroker::state::AppState;
use igbroker_store::test_support;
use instagram_sandbox::control_client::{
    AppSpec, Call, CallsQuery, Consent, ControlClient, FaultSpec, SeedSpec, UserSpec,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub use igbroker_store::test_support::TestBackend as Backend;

pub struct TestEnv {
    pub broker: String,
    pub sandbox: String,
    pub admin_key: String,
    pub app_id: String,
    pub client_id: String,
    pub http: reqwest::Client,
    pub clock: instagram_sandbox::SandboxClock,
    pub state: AppState,
    /// The sandbox's control API.
    pub sb: ControlClient,
    pub database_url: String,
    pub dir: tempfile::TempDir,
    /// Stops both servers when the test's environment is dropped.
    _stack: Stack,
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
    igbroker_store::test_support::pg_database().await
}

impl TestEnv {
    pub async fn start(backend: Backend) -> Option<TestEnv> {
        Self::start_with(backend, |_| {}).await
    }

    /// The stack `igbroker demo` starts, on the given backend, with an app (`app_id`,
    /// registered in the sandbox as `client_id`) and two sandbox users.
    pub async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut Config) + Send + 'static,
    ) -> Option<TestEnv> {
        let dir = tempfile::tempdir().unwrap();
        let database_url = test_support::fresh_database(backend, dir.path()).await?;
        let stack = Stack::start(StackOptions {
            listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            sandbox_listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            database_url: database_url.clone(),
            ring_file: dir.path().join("keys.toml"),
            tweak: Box::new(move |c: &mut Config| {
                c.instagram.request_timeout = Duration::from_secs(10);
                tweak(c);
            }),
            admin_key_name: "test admin".into(),
        })
        .await
        .unwrap();
        let app = stack
            .register_app(
                "Test app",
                json!({
                    "scopes": ["instagram_business_basic", "instagram_business_content_publish"],
                    "return_origins": [RETURN_ORIGIN],
                }),
            )
            .await
            .unwrap();
        assert!(app.broker["id"].is_string(), "{}", app.broker);
        for u in [USER, OTHER_USER] {
            stack
                .sandbox
                .create_user(&UserSpec::named(u).with_media(3))
                .await
                .unwrap();
        }
        Some(TestEnv {
            broker: stack.broker_url.clone(),
            sandbox: stack.sandbox_url.clone(),
            admin_key: stack.admin_key.clone(),
            app_id: s(&app.broker["id"]),
            client_id: app.sandbox.client_id.clone(),
            http: igbroker::stack::http_client().unwrap(),
            clock: stack.clock.clone(),
            state: stack.state.clone(),
            sb: stack.sandbox.clone(),
            database_url,
            dir,
            cookie: std::sync::Mutex::new(None),
            _stack: stack,
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
        let authorize = resp.headers()["location"].to_str().unwrap().to_string();
        let consent = Consent::for_authorize_url(&authorize, username, decision)
            .unwrap_or_else(|| panic!("not an authorize URL: {authorize}"));
        let location = self.sb.authorize(&consent).await.unwrap();
        let mut cb = url::Url::parse(&location).unwrap();
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

    /// The calls the sandbox logged after the one numbered `seq` (all of them for 0).
    pub async fn sandbox_calls_after(&self, seq: u64) -> Vec<Call> {
        self.sb
            .calls(&CallsQuery {
                after_seq: Some(seq),
                ..CallsQuery::default()
            })
            .await
            .unwrap()
    }

    /// The whole connect flow; returns the account id.
    pub async fn connect(&self, username: &str, end_user: &str) -> String {
        self.connect_to(&self.app_id.clone(), username, end_user)
            .await
    }

    /// Registers another app in the sandbox and the broker; `extra` adds broker
    /// fields (e.g. webhook_url). Returns the broker's answer (with webhook_secret).
    pub async fn register_app(&self, extra: Value) -> Value {
        let sb_app = self
            .sb
            .create_app(&AppSpec::redirecting_to(format!(
                "{}/oauth/callback",
                self.broker
            )))
            .await
            .unwrap();
        let mut body = json!({
            "name": "Another app",
            "client_id": sb_app.client_id,
            "client_secret": sb_app.client_secret,
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

    pub async fn fault(&self, spec: FaultSpec) -> String {
        self.sb.add_fault(&spec).await.unwrap()
    }

    pub async fn account(&self, id: &str) -> Value {
        let (st, v) = self.get(&format!("/v1/accounts/{id}")).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v
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

    /// What the database holds, as bytes to scan: the SQLite files (WAL included), or a
    /// `pg_dump` of the PostgreSQL database; and the key ring file.
    pub fn stored_bytes(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = self.files();
        if !self.database_url.starts_with("sqlite:") {
            out.push(("pg_dump".into(), pg_dump(&self.database_url)));
        }
        out
    }

    pub async fn sandbox_calls(&self, path: &str) -> Vec<Call> {
        self.sb.calls_to(path).await.unwrap()
    }
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
pub async fn seed_accounts(
    sb: &ControlClient,
    state: &AppState,
    app_id: &str,
    client_id: &str,
    n: usize,
    token_age_secs: i64,
    now: i64,
) -> Vec<Seeded> {
    let seeded = sb
        .seed(&SeedSpec {
            client_id: client_id.into(),
            count: n,
            token_age_secs: Some(token_age_secs),
            username_prefix: Some("bulk_".into()),
            scope: None,
        })
        .await
        .unwrap();
    let mut out = Vec::with_capacity(n);
    let mut rows = Vec::with_capacity(n);
    for item in seeded {
        let id = igbroker_core::PrefixedId::generate(igbroker_core::IdKind::Account).into_string();
        let token = item.access_token.as_str();
        let (issued_at, expires_at) = (item.issued_at, item.expires_at);
        rows.push(igbroker_store::NewAccount {
            id: id.clone(),
            app_id: app_id.to_string(),
            end_user: String::new(),
            ig_user_id: item.user_id.clone(),
            ig_scoped_id: item.id.clone(),
            username: Some(item.username.clone()),
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
            ig_user_id: item.user_id.clone(),
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
            &self.sb,
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

pub fn pg_dump(url: &str) -> Vec<u8> {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Debian's postgresql package (scripts/test installs it)")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin/pg_dump"))
        .filter(|p| p.exists())
        .max_by_key(|p| {
            p.parent()
                .and_then(std::path::Path::parent)
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        })
        .expect("pg_dump under /usr/lib/postgresql/*/bin");
    let out = std::process::Command::new(bin)
        .arg("--dbname")
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Plaintext, or its hex form (how a dump shows a bytea column).
pub fn leaks(haystack: &[u8], secret: &str) -> bool {
    contains(haystack, secret.as_bytes())
        || contains(haystack, hex::encode(secret).as_bytes())
        || contains(haystack, hex::encode_upper(secret).as_bytes())
}

/// A loopback port where nothing listens, kept so for as long as the returned socket lives.
///
/// The socket is bound but does not listen: a connection to it is refused at once, and no other
/// socket can take the port meanwhile (it is bound without `SO_REUSEADDR`). A port bound,
/// dropped and assumed still free could be taken by any process in between. Call `listen` on
/// the socket to start answering on the same port later.
pub fn closed_port() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// What a webhook receiver got: each delivery's headers and body.
pub type Inbox = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, axum::body::Bytes)>>>;
/// The owning service's webhook endpoint: records what the broker delivers (headers and body).
pub async fn receiver() -> (String, Inbox) {
    let got = Inbox::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push((headers, body));
                    "ok"
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, got)
}

/// HMAC-SHA256 written out as RFC 2104 defines it, so that checking a signature shares no
/// code with the broker's signing.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[test]
fn the_independent_hmac_matches_rfc_4231() {
    // RFC 4231, test case 2.
    assert_eq!(
        hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

/// Whether one of a delivery's signatures (comma-separated while a secret rotates) is
/// `sha256=HEX(HMAC-SHA256(secret, "{timestamp}.{body}"))`.
pub fn signed_with(h: &axum::http::HeaderMap, body: &[u8], secret: &str) -> bool {
    let ts = h["x-igbroker-timestamp"].to_str().unwrap();
    let message = [ts.as_bytes(), b".", body].concat();
    let want = format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &message))
    );
    signatures(h).contains(&want)
}

/// The signatures a delivery carries (more than one while a webhook secret rotates).
pub fn signatures(h: &axum::http::HeaderMap) -> Vec<String> {
    h["x-igbroker-signature"]
        .to_str()
        .unwrap()
        .split(',')
        .map(|s| s.trim().to_string())
        .collect()
}

/// The events delivered so far, each signature checked with the independent HMAC.
pub fn events(got: &Inbox, secret: &str) -> Vec<Value> {
    got.lock()
        .unwrap()
        .iter()
        .map(|(h, body)| {
            assert!(signed_with(h, body, secret), "bad signature");
            serde_json::from_slice(body).unwrap()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The command line

/// The OS user the CLI sees (it names CLI actors `cli:{user}`), fixed for snapshots.
pub const OS_USER: &str = "snapshot-user";

/// The `igbroker` binary with a fixed OS user, quiet logs and no key ring or config
/// from the developer's environment.
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_igbroker"));
    cmd.env("USER", OS_USER)
        .env("IGBROKER_LOG", "warn")
        .env_remove("IGBROKER_KEYS__RING")
        .env_remove("IGBROKER_CONFIG");
    cmd
}

/// Runs the binary against the test broker's database, key ring, clock and sandbox.
pub fn cli(env: &TestEnv, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = cli_command(env, args).spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// The binary, configured for the test broker's database, key ring, clock and sandbox,
/// with its standard streams piped.
pub fn cli_command(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = bin();
    cmd.args(args)
        .env("IGBROKER_DATABASE_URL", &env.database_url)
        .env("IGBROKER_PUBLIC_URL", &env.broker)
        .env("IGBROKER_KEYS__RING_FILE", env.dir.path().join("keys.toml"))
        .env(
            "IGBROKER_INSTAGRAM__AUTHORIZE_URL",
            format!("{}/oauth/authorize", env.sandbox),
        )
        .env(
            "IGBROKER_INSTAGRAM__TOKEN_URL",
            format!("{}/oauth/access_token", env.sandbox),
        )
        .env("IGBROKER_INSTAGRAM__GRAPH_URL", &env.sandbox)
        .env(
            "IGBROKER_DEV__CLOCK_URL",
            format!("{}/_sandbox/clock", env.sandbox),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}
