//! Prometheus metrics: one recorder per process, rendered by `GET /metrics`.
//! Labels never carry an account's or end user's id, a token or anything an end user typed:
//! only outcomes, statuses, route templates, Instagram endpoints with ids replaced, and the
//! operator's own app ids (on the usage gauge), so the page is safe to scrape without a key.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder the first time (later calls, e.g. several brokers in
/// one test process, share it). None when another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .and_then(|b| b.install_recorder())
        {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed; /metrics will be empty");
                None
            }
        })
        .as_ref()
}

/// Seconds: latency histograms resolve the fast paths (a token read is well under 5 ms)
/// as well as slow Instagram calls.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How long database gauges are reused: a scrape storm costs at most one set of
/// queries per this interval.
pub const GAUGE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// The database gauges of the last scrape and when they were read; one reader at a time.
#[derive(Default)]
pub struct GaugeCache {
    last: tokio::sync::Mutex<Option<(std::time::Instant, Gauges)>>,
}

#[derive(Clone)]
struct Gauges {
    accounts: igbroker_store::AccountGauges,
    audit_seq: i64,
    expiring_within_7d: i64,
    usage_by_app: Vec<(String, i64)>,
}

impl GaugeCache {
    async fn get(&self, state: &AppState) -> Result<Gauges, crate::error::ApiError> {
        // Held across the queries: concurrent scrapes wait for one read instead of each
        // running its own.
        let mut last = self.last.lock().await;
        if let Some((at, g)) = last.as_ref()
            && at.elapsed() < GAUGE_TTL
        {
            return Ok(g.clone());
        }
        let accounts = state.store().account_gauges(state.now()).await?;
        let (audit_seq, head) = state.store().audit_head().await?;
        tracing::debug!(seq = audit_seq, head = %head, "audit chain head");
        let now = state.now();
        let expiring_within_7d = state
            .store()
            .tokens_expiring_before(now + 7 * 86_400)
            .await?;
        let usage_by_app = state.store().usage_by_app(now - 3600).await?;
        let g = Gauges {
            accounts,
            audit_seq,
            expiring_within_7d,
            usage_by_app,
        };
        *last = Some((std::time::Instant::now(), g.clone()));
        Ok(g)
    }
}

/// The exposition text: the counters recorded so far, plus gauges of the accounts read
/// from the database at most every [`GAUGE_TTL`] (so every replica reports the same).
pub async fn render(state: &AppState) -> Result<String, crate::error::ApiError> {
    let Some(handle) = install() else {
        return Ok(String::new());
    };
    let cached = state.gauges().get(state).await?;
    metrics::gauge!("igbroker_audit_head_seq").set(cached.audit_seq as f64);
    let g = cached.accounts;
    for status in ["active", "reauth_required", "revoked", "suspended"] {
        let n = g
            .by_status
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("igbroker_accounts", "status" => status).set(n as f64);
    }
    metrics::gauge!("igbroker_accounts_refresh_failing").set(g.failing as f64);
    metrics::gauge!("igbroker_accounts_refresh_due").set(g.due as f64);
    metrics::gauge!("igbroker_webhooks_pending").set(g.webhooks_pending as f64);
    metrics::gauge!("igbroker_tokens_expiring_within_7d").set(cached.expiring_within_7d as f64);
    for (app_id, pct) in &cached.usage_by_app {
        metrics::gauge!("igbroker_instagram_usage_percent", "app_id" => app_id.clone())
            .set(*pct as f64);
    }
    handle.run_upkeep();
    Ok(handle.render())
}
