//! `igbroker demo`: the sandbox and the broker in one process on loopback, sharing
//! one clock, with SQLite and a generated key; `--script` walks the whole token life.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use instagram_sandbox::control_client::{Consent, UserSpec};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::stack::{Stack, StackOptions, http_client};

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
    stack: Stack,
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
        crate::demo_data::prepare(data)?;
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| {
                format!("cannot listen on 127.0.0.1:{port}; choose another with --port")
            })?;
        let stack = Stack::start(StackOptions {
            listener,
            sandbox_listener: TcpListener::bind("127.0.0.1:0").await?,
            database_url: format!("sqlite://{}?mode=rwc", data.join("igbroker.db").display()),
            ring_file: data.join("keys.toml"),
            tweak: Box::new(|_| {}),
            admin_key_name: "demo admin".into(),
        })
        .await?;
        let app = stack
            .register_app(
                "Demo app",
                json!({
                    "scopes": ["instagram_business_basic", "instagram_business_content_publish",
                               "instagram_business_manage_comments", "instagram_business_manage_insights"],
                }),
            )
            .await?;
        for (username, account_type, media_count) in DEMO_USERS {
            stack
                .sandbox
                .create_user(&UserSpec {
                    account_type: Some((*account_type).into()),
                    ..UserSpec::named(*username).with_media(*media_count)
                })
                .await
                .with_context(|| {
                    format!("creating the demo Instagram user @{username} in the sandbox")
                })?;
        }
        let dashboard_link = format!(
            "{}?next=/ui/connect",
            crate::service::sign_in::create_link(&stack.state, "ui:demo")
                .await
                .map_err(|e| anyhow!("creating the dashboard sign-in link: {e}"))?
        );
        Ok(Demo {
            broker_url: stack.broker_url.clone(),
            sandbox_url: stack.sandbox_url.clone(),
            admin_key: stack.admin_key.clone(),
            app_id: str_field(&app.broker, "id")?,
            dashboard_link,
            data_dir: data.to_path_buf(),
            state: stack.state.clone(),
            stack,
        })
    }

    pub async fn stop(self) {
        self.stack.stop().await;
    }
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
    // The broker binds the session to this "browser" with a cookie; keep it for the callback.
    let cookie = resp
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .to_string();
    let authorize = location(&resp).context("step connect: connect link")?;
    let consent = Consent::for_authorize_url(&authorize, DEMO_USER, "allow").ok_or_else(|| {
        anyhow!("step connect: the connect link led to {authorize}, not an authorize URL")
    })?;
    let location = demo
        .stack
        .sandbox
        .authorize(&consent)
        .await
        .context("step connect: consent in the sandbox")?;
    // A browser never sends the `#_` fragment Instagram appends; neither do we.
    let mut callback = url::Url::parse(&location)?;
    callback.set_fragment(None);
    let resp = http
        .get(callback.as_str())
        .header(reqwest::header::COOKIE, cookie)
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
    demo.stack
        .sandbox
        .advance_clock(30 * 86_400)
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
    let anomaly = tokio::spawn(crate::worker::anomaly::run(
        demo.state.clone(),
        shutdown.clone(),
    ));
    let scheduler =
        tokio::spawn(crate::worker::scheduler::Scheduler::new(demo.state.clone()).run(shutdown));
    if let Some(stop) = stop {
        stop.await;
    }
    trigger.fire();
    let _ = scheduler.await;
    let _ = anomaly.await;
    demo.stop().await;
    Ok(ExitCode::SUCCESS)
}
