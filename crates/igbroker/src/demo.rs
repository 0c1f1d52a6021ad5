//! `igbroker demo`: the sandbox and the broker in one process on loopback, sharing
//! one clock, with SQLite and a generated key; `--script` walks the whole token life.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use igbroker_core::Clock;
use igbroker_vault::KeyRing;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::clock::SandboxClockAdapter;
use crate::config::Config;
use crate::server;

/// A running demo: both servers and what a user needs to call them.
pub struct Demo {
    pub broker_url: String,
    pub sandbox_url: String,
    pub admin_key: String,
    pub app_id: String,
    /// A one-time link that signs a browser into the dashboard on its connect page.
    pub dashboard_link: String,
    pub data_dir: std::path::PathBuf,
    /// The broker's state, for running its scheduler beside the demo.
    pub state: crate::state::AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

const DEMO_USER: &str = "demo_shop";
/// Sandbox users the demo creates, ready to log in on the consent page.
const DEMO_USERS: &[(&str, &str, u32)] = &[
    (DEMO_USER, "BUSINESS", 5),
    ("demo_creator", "MEDIA_CREATOR", 3),
];

impl Demo {
    /// Starts both servers; `port` 0 picks a free one.
    pub async fn start(port: u16, data: &Path) -> anyhow::Result<Demo> {
        reset_data_dir(data)?;
        let sandbox =
            instagram_sandbox::Sandbox::new(instagram_sandbox::SandboxOptions::default())?;
        let clock: Arc<dyn Clock> = Arc::new(SandboxClockAdapter(sandbox.clock()));
        let sb_listener = TcpListener::bind("127.0.0.1:0").await?;
        let sandbox_url = format!("http://{}", sb_listener.local_addr()?);
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| {
                format!("cannot listen on 127.0.0.1:{port}; choose another with --port")
            })?;
        let broker_url = format!("http://{}", listener.local_addr()?);

        let ring_file = data.join("keys.toml");
        KeyRing::generate().write_file(&ring_file)?;
        let db_path = data.join("igbroker.db");
        let mut config = Config {
            listen: listener.local_addr()?.to_string(),
            public_url: broker_url.clone(),
            database_url: format!("sqlite://{}?mode=rwc", db_path.display()),
            ..Config::default()
        };
        config.keys.ring_file = ring_file;
        config.instagram.authorize_url = format!("{sandbox_url}/oauth/authorize");
        config.instagram.token_url = format!("{sandbox_url}/oauth/access_token");
        config.instagram.graph_url = sandbox_url.clone();
        config.validate()?;

        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (sb_stop_tx, sb_stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = instagram_sandbox::serve(sb_listener, sandbox, async {
                let _ = sb_stop_rx.await;
            })
            .await
            {
                tracing::error!(error = %e, "sandbox stopped");
            }
        }));
        let state = server::build_state(config, clock).await?;
        let store = state.store().clone();
        let demo_state = state.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.await;
                let _ = sb_stop_tx.send(());
            };
            if let Err(e) = server::serve(listener, state, shutdown).await {
                tracing::error!(error = %e, "broker stopped");
            }
        }));

        let (_, admin_key) = crate::service::api_keys::create(
            &store,
            "demo admin",
            &["admin".to_string()],
            &[],
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )
        .await
        .map_err(|e| anyhow!("{e}"))?;

        let http = http_client()?;
        let redirect_uri = format!("{broker_url}/oauth/callback");
        let sb_app: Value = post_json(
            &http,
            &format!("{sandbox_url}/_sandbox/apps"),
            None,
            &json!({"redirect_uris": [redirect_uri], "name": "Demo app"}),
        )
        .await
        .context("registering the demo app in the sandbox")?;
        let client_id = str_field(&sb_app, "client_id")?;
        let client_secret = str_field(&sb_app, "client_secret")?;
        for (username, account_type, media_count) in DEMO_USERS {
            post_json(
                &http,
                &format!("{sandbox_url}/_sandbox/users"),
                None,
                &json!({"username": username, "account_type": account_type, "media_count": media_count}),
            )
            .await
            .with_context(|| format!("creating the demo Instagram user @{username} in the sandbox"))?;
        }
        let app: Value = post_json(
            &http,
            &format!("{broker_url}/v1/apps"),
            Some(&admin_key),
            &json!({
                "name": "Demo app",
                "client_id": client_id,
                "client_secret": client_secret,
                "scopes": ["instagram_business_basic", "instagram_business_content_publish",
                           "instagram_business_manage_comments", "instagram_business_manage_insights"],
            }),
        )
        .await
        .context("registering the demo app in the broker")?;
        let dashboard_link = format!(
            "{}?next=/ui/connect",
            crate::http::ui::session::create_link(&demo_state, "ui:demo")
                .await
                .map_err(|e| anyhow!("creating the dashboard sign-in link: {e}"))?
        );
        Ok(Demo {
            broker_url,
            sandbox_url,
            admin_key,
            dashboard_link,
            app_id: str_field(&app, "id")?,
            data_dir: data.to_path_buf(),
            state: demo_state,
            stop: Some(stop_tx),
            tasks,
        })
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

/// The demo's data is disposable: each start begins from nothing.
fn reset_data_dir(data: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    for name in [
        "igbroker.db",
        "igbroker.db-wal",
        "igbroker.db-shm",
        "igbroker.db-journal",
        "keys.toml",
    ] {
        let p = data.join(name);
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
        }
    }
    Ok(())
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?)
}

fn str_field(v: &Value, name: &str) -> anyhow::Result<String> {
    v.get(name)
        .and_then(|x| {
            x.as_str()
                .map(str::to_owned)
                .or_else(|| x.as_i64().map(|n| n.to_string()))
        })
        .ok_or_else(|| anyhow!("answer has no `{name}`: {v}"))
}

async fn post_json(
    http: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    body: &Value,
) -> anyhow::Result<Value> {
    let mut req = http.post(url).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{url} answered {status}: {v}");
    }
    Ok(v)
}

async fn get_json(
    http: &reqwest::Client,
    url: &str,
    key: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let resp = http.get(url).bearer_auth(key).send().await?;
    let status = resp.status();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

fn location(resp: &reqwest::Response) -> anyhow::Result<String> {
    resp.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("expected a redirect, got {}", resp.status()))
}

/// What the script saw; tests use the token values as canaries.
#[derive(Default)]
pub struct ScriptReport {
    pub account_id: String,
    pub tokens_seen: Vec<String>,
}

/// The whole story, one printed line per step; the error names the failed step.
pub async fn script(demo: &Demo, out: &mut dyn FnMut(&str)) -> anyhow::Result<ScriptReport> {
    let http = http_client()?;
    let b = &demo.broker_url;
    let key = demo.admin_key.as_str();
    let mut report = ScriptReport::default();

    // 1. Connect: a session, its link, Instagram's consent (headless), the callback.
    let session = post_json(
        &http,
        &format!("{b}/v1/connect-sessions"),
        Some(key),
        &json!({"app_id": demo.app_id, "end_user": "user-42"}),
    )
    .await
    .context("step connect: creating a connect session")?;
    let session_id = str_field(&session, "id")?;
    let connect_url = str_field(&session, "connect_url")?;
    let resp = http
        .get(&connect_url)
        .send()
        .await
        .context("step connect: opening the connect link")?;
    let authorize = url::Url::parse(&location(&resp).context("step connect: connect link")?)?;
    let q: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    let consent = post_json(
        &http,
        &format!("{}/_sandbox/authorize", demo.sandbox_url),
        None,
        &json!({
            "client_id": q.get("client_id"), "redirect_uri": q.get("redirect_uri"), "scope": q.get("scope"),
            "state": q.get("state"), "username": DEMO_USER, "decision": "allow",
        }),
    )
    .await
    .context("step connect: consent in the sandbox")?;
    // A browser never sends the `#_` fragment Instagram appends; neither do we.
    let mut callback = url::Url::parse(&str_field(&consent, "location")?)?;
    callback.set_fragment(None);
    let resp = http
        .get(callback.as_str())
        .send()
        .await
        .context("step connect: callback")?;
    if !resp.status().is_success() && !resp.status().is_redirection() {
        bail!(
            "step connect: the callback answered {}: {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    let (_, s) = get_json(&http, &format!("{b}/v1/connect-sessions/{session_id}"), key).await?;
    if s["status"] != "connected" {
        bail!("step connect: session is {} ({})", s["status"], s["error"]);
    }
    let account_id = str_field(&s, "account_id")?;
    report.account_id = account_id.clone();
    let (_, acc) = get_json(&http, &format!("{b}/v1/accounts/{account_id}"), key).await?;
    out(&format!(
        "connect        account {account_id} connected: @{} (Instagram user {}), scopes {}",
        acc["username"].as_str().unwrap_or("?"),
        acc["ig_user_id"].as_str().unwrap_or("?"),
        acc["scopes"]
    ));
    out(&format!(
        "exchange       code -> short-lived -> long-lived token, expires {}",
        acc["token"]["expires_at"].as_str().unwrap_or("?")
    ));
    let first_expiry = acc["token"]["expires_at"]
        .as_str()
        .unwrap_or("")
        .to_string();

    // 2. Token read (audited).
    let (st, tok) = get_json(&http, &format!("{b}/v1/accounts/{account_id}/token"), key).await?;
    if st != StatusCode::OK {
        bail!("step token read: {st}: {tok}");
    }
    let token = str_field(&tok, "access_token")?;
    report.tokens_seen.push(token.clone());
    out(&format!(
        "token read     {} characters, expires {} (the value stays out of this output)",
        token.len(),
        tok["expires_at"].as_str().unwrap_or("?")
    ));

    // 3. A Graph call through the broker: the token does not leave it.
    let (st, me) = get_json(
        &http,
        &format!("{b}/v1/accounts/{account_id}/graph/me?fields=user_id,username,media_count"),
        key,
    )
    .await?;
    if st != StatusCode::OK {
        bail!("step graph /me: {st}: {me}");
    }
    out(&format!(
        "graph /me      username {}, user_id {}, media_count {}",
        me["username"], me["user_id"], me["media_count"]
    ));

    // 4. Time passes: 30 days on the shared clock.
    post_json(
        &http,
        &format!("{}/_sandbox/clock", demo.sandbox_url),
        None,
        &json!({"advance_secs": 30 * 86_400}),
    )
    .await
    .context("step clock: moving the sandbox clock")?;
    out("clock          moved 30 days ahead (sandbox and broker share it)");

    // 5. Refresh.
    let resp = http
        .post(format!("{b}/v1/accounts/{account_id}/refresh"))
        .bearer_auth(key)
        .send()
        .await?;
    let st = resp.status();
    let refreshed: Value = resp.json().await.unwrap_or(Value::Null);
    if st != StatusCode::OK {
        bail!("step refresh: {st}: {refreshed}");
    }
    let new_expiry = refreshed["token"]["expires_at"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if new_expiry <= first_expiry {
        bail!("step refresh: expiry did not advance ({first_expiry} -> {new_expiry})");
    }
    out(&format!(
        "refresh        token refreshed, expiry {first_expiry} -> {new_expiry}"
    ));
    let (_, tok) = get_json(&http, &format!("{b}/v1/accounts/{account_id}/token"), key).await?;
    if let Some(t) = tok["access_token"].as_str() {
        report.tokens_seen.push(t.to_string());
    }

    // 6. Revoke: the token is destroyed locally.
    let resp = http
        .delete(format!("{b}/v1/accounts/{account_id}"))
        .bearer_auth(key)
        .send()
        .await?;
    let st = resp.status();
    let revoked: Value = resp.json().await.unwrap_or(Value::Null);
    if st != StatusCode::OK || revoked["status"] != "revoked" {
        bail!("step revoke: {st}: {revoked}");
    }
    let (st, after) = get_json(&http, &format!("{b}/v1/accounts/{account_id}/token"), key).await?;
    if st != StatusCode::CONFLICT {
        bail!("step revoke: token still readable after revoke ({st}: {after})");
    }
    out(&format!(
        "revoke         account revoked, token destroyed; reading it now answers {} {}",
        st.as_u16(),
        after["error"]["code"].as_str().unwrap_or("?")
    ));
    Ok(report)
}

pub async fn run(
    port: Option<u16>,
    data: &Path,
    script_mode: bool,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let port = port.unwrap_or(if script_mode { 0 } else { 8080 });
    // Installed before the URLs are printed (see `os_shutdown_signal`); the script mode
    // keeps the default Ctrl-C, which simply ends it.
    let stop = (!script_mode).then(crate::shutdown::os_shutdown_signal);
    let demo = Demo::start(port, data).await?;
    if script_mode {
        let mut lines = Vec::new();
        let result = script(&demo, &mut |line: &str| {
            if json_out {
                lines.push(line.to_string());
            } else {
                println!("ok  {line}");
            }
        })
        .await;
        demo.stop().await;
        return match result {
            Ok(r) => {
                if json_out {
                    println!(
                        "{}",
                        json!({"ok": true, "account_id": r.account_id, "steps": lines})
                    );
                } else {
                    println!("demo script finished: every step passed");
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                if json_out {
                    println!(
                        "{}",
                        json!({"ok": false, "error": format!("{e:#}"), "steps": lines})
                    );
                } else {
                    eprintln!("FAILED {e:#}");
                }
                Ok(ExitCode::from(1))
            }
        };
    }
    if json_out {
        println!(
            "{}",
            json!({"broker_url": demo.broker_url, "sandbox_url": demo.sandbox_url, "dashboard_url": demo.dashboard_link, "admin_api_key": demo.admin_key, "app_id": demo.app_id})
        );
    } else {
        let users: Vec<String> = DEMO_USERS.iter().map(|u| format!("@{}", u.0)).collect();
        println!("igbroker demo is running (Ctrl-C to stop)");
        println!();
        println!("Open the dashboard (a one-time sign-in link, valid 15 minutes):");
        println!("  {}", demo.dashboard_link);
        println!(
            "then press Continue, open Instagram's consent page and log in as {}.",
            users.join(" or ")
        );
        println!();
        println!("  broker:    {}", demo.broker_url);
        println!(
            "  sandbox:   {} (a local Instagram; users {})",
            demo.sandbox_url,
            users.join(", ")
        );
        println!("  metrics:   {}/metrics", demo.broker_url);
        println!("  admin key: {}", demo.admin_key);
        println!("  app:       {}", demo.app_id);
        println!("  data:      {}", demo.data_dir.display());
        println!();
        println!("Or connect from a script:");
        println!(
            "  curl -s -X POST {}/v1/connect-sessions -H 'Authorization: Bearer {}' -H 'content-type: application/json' -d '{{\"app_id\":\"{}\"}}'",
            demo.broker_url, demo.admin_key, demo.app_id
        );
        println!("  then open the connect_url it returns.");
    }
    // The scheduler runs too, so that moving the sandbox clock past a token's due
    // time (POST /_sandbox/clock) shows a refresh within `refresh.poll`.
    let (trigger, shutdown) = crate::shutdown::channel();
    let scheduler =
        tokio::spawn(crate::worker::scheduler::Scheduler::new(demo.state.clone()).run(shutdown));
    if let Some(stop) = stop {
        stop.await;
    }
    trigger.fire();
    let _ = scheduler.await;
    demo.stop().await;
    Ok(ExitCode::SUCCESS)
}
