use std::path::PathBuf;
use std::process::ExitCode;

use igbroker_store::Store;
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::server;
use crate::shutdown as tokio_util_shim;

pub async fn serve(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let stop = crate::shutdown::os_shutdown_signal();
    let (trigger, shutdown) = tokio_util_shim::channel();
    let clock = server::clock_for(&config, shutdown.clone()).await?;
    let listen = config.listen.clone();
    if !config.telemetry.otlp_traces_url.is_empty() {
        crate::otlp::start(
            config.telemetry.otlp_traces_url.clone(),
            config.telemetry.service_name.clone(),
            crate::stack::http_client()?,
        );
    }
    let state = server::build_state(config, clock).await?;
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, database = state.store().backend().name(), "igbroker serving");
    if json {
        println!(
            "{}",
            json!({"listening": listener.local_addr()?.to_string(), "database": state.store().backend().name()})
        );
    }
    let replica =
        crate::worker::replica::register_and_heartbeat(state.clone(), shutdown.clone()).await;
    let scheduler = state.config().refresh.scheduler.then(|| {
        tokio::spawn(crate::worker::scheduler::Scheduler::new(state.clone()).run(shutdown.clone()))
    });
    let anomaly = state
        .config()
        .refresh
        .scheduler
        .then(|| tokio::spawn(crate::worker::anomaly::run(state.clone(), shutdown.clone())));
    let result = server::serve(listener, state, stop).await;
    // The HTTP side has drained; now let background work finish or give back its leases.
    trigger.fire();
    if let Some(s) = scheduler {
        let _ = s.await;
    }
    if let Some(a) = anomaly {
        let _ = a.await;
    }
    // Lets the replica remove its row on a clean shutdown.
    let _ = replica.await;
    result?;
    tracing::info!("igbroker stopped");
    Ok(ExitCode::SUCCESS)
}

pub async fn migrate(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    if json {
        println!(
            "{}",
            json!({"migrated": true, "database": store.backend().name()})
        );
    } else {
        println!("database migrated ({})", store.backend().name());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn check_config(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let ring = server::load_key_ring(config)?;
    let redacted_db = redact_url(&config.database_url);
    let summary = json!({
        "listen": config.listen,
        "public_url": config.public_url,
        "database_url": redacted_db,
        "keys": {"source": if config.keys.ring.is_some() { "IGBROKER_KEYS__RING".to_string() } else { config.keys.ring_file.display().to_string() },
                 "current_version": ring.current_version()},
        "instagram": {"authorize_url": config.instagram.authorize_url, "token_url": config.instagram.token_url,
                      "graph_url": config.instagram.graph_url, "graph_version": config.instagram.graph_version},
        "refresh": {"window_secs": config.refresh.window.as_secs(), "min_age_secs": config.refresh.min_age.as_secs(),
                    "jitter_secs": config.refresh.jitter.as_secs(), "read_refresh_within_secs": config.refresh.read_refresh_within.as_secs()},
        "dev": {"clock_url": config.dev.clock_url},
    });
    if json {
        println!("{summary}");
    } else {
        println!("configuration OK");
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Hides a password in a database URL.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

pub async fn sandbox(port: u16, data: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let stop = crate::shutdown::os_shutdown_signal();
    let sandbox =
        instagram_sandbox::Sandbox::new(instagram_sandbox::SandboxOptions { data_dir: data })?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let base = format!("http://{}", listener.local_addr()?);
    if json {
        println!(
            "{}",
            json!({"listening": base, "authorize_url": format!("{base}/oauth/authorize"),
                   "token_url": format!("{base}/oauth/access_token"), "graph_url": base,
                   "control_url": format!("{base}/_sandbox/")})
        );
    } else {
        println!("Instagram sandbox listening on {base}");
        println!("  authorize_url = \"{base}/oauth/authorize\"");
        println!("  token_url     = \"{base}/oauth/access_token\"");
        println!("  graph_url     = \"{base}\"");
        println!("  control API   : {base}/_sandbox/");
    }
    instagram_sandbox::serve(listener, sandbox, stop).await?;
    Ok(ExitCode::SUCCESS)
}
