//! Building the broker from configuration and serving it.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use igbroker_core::{Clock, SystemClock};
use igbroker_store::Store;
use igbroker_vault::{KeyRing, Vault};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::clock::RemoteClock;
use crate::config::Config;
use crate::shutdown::Shutdown;
use crate::state::{AppState, instagram_client};

/// The key ring named by the configuration: `keys.ring` (env) or `keys.ring_file`.
pub fn load_key_ring(config: &Config) -> anyhow::Result<KeyRing> {
    if let Some(spec) = &config.keys.ring {
        return KeyRing::from_env_spec(spec.expose_secret())
            .context("IGBROKER_KEYS__RING is not a valid key ring");
    }
    KeyRing::load_file(&config.keys.ring_file).with_context(|| {
        format!(
            "cannot load the key ring {} (create one with `igbroker keys init`)",
            config.keys.ring_file.display()
        )
    })
}

/// The clock the configuration asks for: the system's, or a sandbox's.
pub async fn clock_for(config: &Config, shutdown: Shutdown) -> anyhow::Result<Arc<dyn Clock>> {
    if config.dev.clock_url.is_empty() {
        Ok(Arc::new(SystemClock))
    } else {
        let c = RemoteClock::start(&config.dev.clock_url, shutdown)
            .await
            .with_context(|| format!("cannot read dev.clock_url {}", config.dev.clock_url))?;
        Ok(Arc::new(c))
    }
}

pub async fn build_state(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    if config.refresh_policy().min_age < 86_400 && !config.instagram_is_loopback() {
        tracing::warn!(
            "refresh.min_age is below Instagram's 24 hours while the Instagram URLs are not loopback: refreshes of young tokens will fail"
        );
    }
    crate::telemetry::install();
    let ring = load_key_ring(&config)?;
    let store = Store::open(&config.database_url)
        .await?
        .with_audit_key(ring.audit_key().cloned());
    log_audit_head(&store, ring.audit_key().is_some()).await;
    let vault = Vault::new(ring);
    let instagram = instagram_client(&config)?;
    Ok(AppState::new(config, store, vault, instagram, clock))
}

/// Logs the audit chain's head, so that it can be kept outside the database (a log
/// store the database's writers cannot edit) and compared with `igbroker audit verify`.
pub async fn log_audit_head(store: &Store, keyed: bool) {
    match store.audit_head().await {
        Ok((seq, hash)) => {
            tracing::info!(seq, head = %hash, keyed, "audit chain head");
            if !keyed {
                tracing::warn!(
                    "the key ring has no audit key, so audit entries are linked with plain hashes anyone with database access can recompute; `igbroker keys add` gives the ring one"
                );
            } else if seq > 0 && !hash.starts_with("k1:") {
                tracing::warn!(
                    "the audit chain still has plain links; `igbroker audit relink` checks it and links it under the audit key"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the audit chain head"),
    }
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config().conn_limits();
    let app = crate::http::router(state);
    crate::listener::serve(listener, app, limits, shutdown).await
}
