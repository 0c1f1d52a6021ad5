//! The sandbox and the broker started together in this process on loopback, sharing the
//! sandbox's clock, with an admin API key: what `igbroker demo` runs, and what each
//! integration test starts for itself. The caller binds the listeners (so a port is never
//! released and bound again) and decides the database and the key ring.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use igbroker_core::Clock;
use instagram_sandbox::control_client::{AppSpec, ControlClient, SandboxApp};
use instagram_sandbox::{Sandbox, SandboxClock, SandboxOptions};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::clock::SandboxClockAdapter;
use crate::config::Config;
use crate::server;
use crate::state::AppState;

/// What to start.
pub struct StackOptions {
    /// The broker's listener; its address becomes `listen` and `public_url`.
    pub listener: TcpListener,
    /// The sandbox's listener.
    pub sandbox_listener: TcpListener,
    pub database_url: String,
    /// Where the key ring is; a new one is generated there.
    pub ring_file: PathBuf,
    /// Changes to the configuration before the broker is built (tests lift limits).
    pub tweak: Box<dyn FnOnce(&mut Config) + Send>,
    /// The name of the admin API key created at start.
    pub admin_key_name: String,
}

/// A running sandbox and broker.
pub struct Stack {
    pub broker_url: String,
    pub sandbox_url: String,
    /// An API key with the `admin` scope.
    pub admin_key: String,
    pub state: AppState,
    /// The sandbox's control API.
    pub sandbox: ControlClient,
    /// The clock both servers read.
    pub clock: SandboxClock,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// An app registered in the sandbox and then in the broker.
pub struct RegisteredApp {
    pub sandbox: SandboxApp,
    /// The broker's answer to `POST /v1/apps` (with `id` and `webhook_secret`).
    pub broker: Value,
}

impl Stack {
    pub async fn start(opts: StackOptions) -> anyhow::Result<Stack> {
        let sandbox = Sandbox::new(SandboxOptions::default())?;
        let sandbox_clock = sandbox.clock();
        let clock: Arc<dyn Clock> = Arc::new(SandboxClockAdapter(sandbox_clock.clone()));
        let sandbox_url = format!("http://{}", opts.sandbox_listener.local_addr()?);
        let broker_addr = opts.listener.local_addr()?;
        let broker_url = format!("http://{broker_addr}");

        igbroker_vault::KeyRing::generate()
            .write_file(&opts.ring_file)
            .with_context(|| format!("cannot write the key ring {}", opts.ring_file.display()))?;
        let mut config = Config {
            listen: broker_addr.to_string(),
            public_url: broker_url.clone(),
            database_url: opts.database_url,
            ..Config::default()
        };
        config.keys.ring_file = opts.ring_file;
        config.instagram.authorize_url = format!("{sandbox_url}/oauth/authorize");
        config.instagram.token_url = format!("{sandbox_url}/oauth/access_token");
        config.instagram.graph_url = sandbox_url.clone();
        // Everything a stack talks to runs on this machine, its webhook receivers too.
        config.webhooks.allow_private_networks = true;
        config.webhooks.allow_http = true;
        (opts.tweak)(&mut config);
        config.validate()?;

        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (sb_stop_tx, sb_stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut tasks = Vec::new();
        let sandbox_listener = opts.sandbox_listener;
        tasks.push(tokio::spawn(async move {
            if let Err(e) = instagram_sandbox::serve(sandbox_listener, sandbox, async {
                let _ = sb_stop_rx.await;
            })
            .await
            {
                tracing::error!(error = %e, "sandbox stopped");
            }
        }));
        let state = match server::build_state(config, clock).await {
            Ok(s) => s,
            Err(e) => {
                let _ = sb_stop_tx.send(());
                return Err(e);
            }
        };
        let serve_state = state.clone();
        let listener = opts.listener;
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.await;
                let _ = sb_stop_tx.send(());
            };
            if let Err(e) = server::serve(listener, serve_state, shutdown).await {
                tracing::error!(error = %e, "broker stopped");
            }
        }));
        let mut stack = Stack {
            broker_url,
            sandbox_url: sandbox_url.clone(),
            admin_key: String::new(),
            state,
            sandbox: ControlClient::with_http(sandbox_url, http_client()?),
            clock: sandbox_clock,
            stop: Some(stop_tx),
            tasks,
        };
        let (_, admin_key) = crate::service::api_keys::create(
            stack.state.store(),
            &opts.admin_key_name,
            &["admin".to_string()],
            &[],
            stack.clock.now_unix(),
        )
        .await
        .map_err(|e| anyhow!("creating the admin API key: {e}"))?;
        stack.admin_key = admin_key;
        Ok(stack)
    }

    /// The broker's OAuth callback, the redirect URI every app registers.
    pub fn callback_url(&self) -> String {
        format!("{}/oauth/callback", self.broker_url)
    }

    /// Registers an app in the sandbox (redirecting to this broker) and then in the broker;
    /// `broker_fields` are the fields of `POST /v1/apps` besides the client id and secret.
    pub async fn register_app(
        &self,
        name: &str,
        broker_fields: Value,
    ) -> anyhow::Result<RegisteredApp> {
        let sandbox = self
            .sandbox
            .create_app(&AppSpec {
                name: Some(name.to_owned()),
                ..AppSpec::redirecting_to(self.callback_url())
            })
            .await
            .context("registering the app in the sandbox")?;
        let mut body = json!({
            "name": name,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        });
        if let (Value::Object(b), Value::Object(extra)) = (&mut body, broker_fields) {
            b.extend(extra);
        }
        let resp = http_client()?
            .post(format!("{}/v1/apps", self.broker_url))
            .bearer_auth(&self.admin_key)
            .json(&body)
            .send()
            .await
            .context("registering the app in the broker")?;
        let status = resp.status();
        let broker: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(anyhow!(
                "registering the app in the broker: {status}: {broker}"
            ));
        }
        Ok(RegisteredApp { sandbox, broker })
    }

    /// Stops both servers and waits for them to drain.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Stack {
    /// Dropped without `stop` (a test that ends or panics): both servers still shut down.
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// The HTTP client the demo and tests use: no redirects followed, so a test sees each one.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?)
}
