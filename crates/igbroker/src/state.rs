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
    limiter: crate::limits::Limiter,
    webhook_policy: Arc<igbroker_core::net_policy::DestinationPolicy>,
    /// Delivers webhooks: resolves names itself and connects only to allowed addresses.
    webhook_http: reqwest::Client,
    /// A key's own rate, read once per process (it is set when the key is created).
    key_rates: std::sync::Mutex<std::collections::HashMap<String, Option<f64>>>,
    gauges: crate::telemetry::GaugeCache,
    /// The audit group-commit writer's queue, started on first use (inside the runtime).
    audit: std::sync::OnceLock<tokio::sync::mpsc::Sender<crate::service::audit::PendingEntry>>,
    /// API keys checked recently against the database.
    api_keys: crate::service::api_keys::KeyCache,
    /// The dashboard's recent `apps doctor` reports.
    doctor_reports: crate::service::doctor::ReportCache,
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
        let limiter = crate::limits::Limiter::new(config.limit_settings());
        let webhook_policy = Arc::new(config.webhooks.policy());
        let webhook_http = crate::webhook_net::client(webhook_policy.clone());
        let api_keys = crate::service::api_keys::KeyCache::new(config.api_key_cache_ttl);
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
                limiter,
                webhook_policy,
                webhook_http,
                key_rates: std::sync::Mutex::default(),
                gauges: crate::telemetry::GaugeCache::default(),
                audit: std::sync::OnceLock::new(),
                api_keys,
                doctor_reports: crate::service::doctor::ReportCache::default(),
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

    pub fn limiter(&self) -> &crate::limits::Limiter {
        &self.inner.limiter
    }
    pub fn webhook_policy(&self) -> &igbroker_core::net_policy::DestinationPolicy {
        &self.inner.webhook_policy
    }
    pub fn webhook_http(&self) -> &reqwest::Client {
        &self.inner.webhook_http
    }
    pub fn gauges(&self) -> &crate::telemetry::GaugeCache {
        &self.inner.gauges
    }

    /// The key's own rate, from the database the first time this process sees the key.
    pub async fn key_rate(&self, key_id: &str) -> Result<Option<f64>, igbroker_store::StoreError> {
        if let Ok(m) = self.inner.key_rates.lock()
            && let Some(r) = m.get(key_id)
        {
            return Ok(*r);
        }
        let r = self.store().api_key_rate(key_id).await?.map(|r| r as f64);
        if let Ok(mut m) = self.inner.key_rates.lock() {
            if m.len() > 100_000 {
                m.clear();
            }
            m.insert(key_id.to_string(), r);
        }
        Ok(r)
    }

    /// Where audit entries of reads go to be committed; the writer ends when
    /// the last clone of this state is dropped.
    pub fn audit_queue(&self) -> &tokio::sync::mpsc::Sender<crate::service::audit::PendingEntry> {
        self.inner.audit.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(4 * crate::worker::audit_writer::MAX_BATCH);
            tokio::spawn(crate::worker::audit_writer::run(self.store().clone(), rx));
            tx
        })
    }

    pub fn api_keys(&self) -> &crate::service::api_keys::KeyCache {
        &self.inner.api_keys
    }
    pub fn doctor_reports(&self) -> &crate::service::doctor::ReportCache {
        &self.inner.doctor_reports
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
