//! Everything a request or a background task needs, built once and shared.

use std::sync::Arc;

use igbroker_core::{Clock, RefreshPolicy};
use igbroker_store::Store;
use igbroker_vault::Vault;

use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    store: Store,
    vault: Vault,
    instagram: instagram_api::Client,
    clock: Arc<dyn Clock>,
    policy: RefreshPolicy,
    /// Names this process in leases, so a replica can tell its own.
    node_id: String,
    /// Rung when due times change, so the scheduler need not wait out its sleep.
    wake: Arc<tokio::sync::Notify>,
    /// Apps Instagram throttled, until when: checked before every refresh call,
    /// since refreshes already claimed would otherwise still go out.
    holds: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Store,
        vault: Vault,
        instagram: instagram_api::Client,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let policy = config.refresh_policy();
        let node_id = format!("node_{}", uuid::Uuid::now_v7().simple());
        AppState {
            inner: Arc::new(Inner {
                config,
                store,
                vault,
                instagram,
                clock,
                policy,
                node_id,
                wake: Arc::new(tokio::sync::Notify::new()),
                holds: std::sync::Mutex::default(),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
    pub fn vault(&self) -> &Vault {
        &self.inner.vault
    }
    pub fn instagram(&self) -> &instagram_api::Client {
        &self.inner.instagram
    }
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }
    pub fn now(&self) -> i64 {
        self.inner.clock.now_unix()
    }
    pub fn policy(&self) -> &RefreshPolicy {
        &self.inner.policy
    }
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }
    pub fn hold_app(&self, app_id: &str, until: i64) {
        if let Ok(mut h) = self.inner.holds.lock() {
            let now = self.now();
            h.retain(|_, t| *t > now);
            let e = h.entry(app_id.to_string()).or_insert(until);
            *e = (*e).max(until);
        }
    }

    /// Until when the app is held, if it is.
    pub fn app_held_until(&self, app_id: &str) -> Option<i64> {
        let now = self.now();
        self.inner
            .holds
            .lock()
            .ok()
            .and_then(|h| h.get(app_id).copied())
            .filter(|t| *t > now)
    }

    pub fn wake_scheduler(&self) {
        self.inner.wake.notify_waiters();
    }
    pub fn scheduler_wake(&self) -> Arc<tokio::sync::Notify> {
        self.inner.wake.clone()
    }
}

/// Builds the Instagram client from the configuration.
pub fn instagram_client(config: &Config) -> anyhow::Result<instagram_api::Client> {
    let ig = &config.instagram;
    let cfg = instagram_api::Config {
        authorize_url: url::Url::parse(&ig.authorize_url)?,
        token_url: url::Url::parse(&ig.token_url)?,
        graph_url: url::Url::parse(&ig.graph_url)?,
        graph_version: ig.graph_version.clone(),
        connect_timeout: ig.connect_timeout,
        request_timeout: ig.request_timeout,
    };
    Ok(instagram_api::Client::new(cfg)?)
}
