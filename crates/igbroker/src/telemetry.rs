//! Prometheus metrics: one recorder per process, rendered by `GET /metrics`.
//! Labels never carry ids, tokens or anything an end user typed: only
//! outcomes and statuses, so the page is safe to scrape without a key.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder the first time (later calls, e.g. several brokers in
/// one test process, share it). None when another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed; /metrics will be empty");
                None
            }
        })
        .as_ref()
}

/// The exposition text: the counters recorded so far, plus gauges of the
/// accounts read from the database now (so every replica reports the same).
pub async fn render(state: &AppState) -> Result<String, crate::error::ApiError> {
    let Some(handle) = install() else {
        return Ok(String::new());
    };
    let g = state.store().account_gauges(state.now()).await?;
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
    handle.run_upkeep();
    Ok(handle.render())
}
