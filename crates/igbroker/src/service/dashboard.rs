//! What the dashboard reads beyond the API's answers: the overview's counts and an
//! account's history. Each is a few indexed queries, whatever the number of accounts.

use igbroker_store::{AccountRow, AuditRow};

use crate::service::error::Result;
use crate::state::AppState;

const WEEK: i64 = 7 * 86_400;
const DAY: i64 = 86_400;

pub struct Overview {
    pub by_status: Vec<(String, i64)>,
    pub expiring_week: i64,
    pub failing: i64,
    pub due: i64,
    /// (outcome, count) over the last 7 days.
    pub refresh_outcomes: Vec<(String, i64)>,
    /// (what, count) over the last 24 hours.
    pub usage: Vec<(String, i64)>,
}

pub async fn overview(state: &AppState) -> Result<Overview> {
    let now = state.now();
    let store = state.store();
    let gauges = store.account_gauges(now).await?;
    let mut by_status = Vec::new();
    for s in ["active", "reauth_required", "suspended", "revoked"] {
        let n = gauges
            .by_status
            .iter()
            .find(|(k, _)| k == s)
            .map(|(_, n)| *n)
            .unwrap_or(0);
        by_status.push((s.to_string(), n));
    }
    let mut refresh_outcomes = Vec::new();
    for (action, label) in [
        ("token.refreshed", "refreshed"),
        ("account.reauth_required", "needed re-authorization"),
    ] {
        refresh_outcomes.push((
            label.to_string(),
            store.count_audit_action(action, now - WEEK).await?,
        ));
    }
    refresh_outcomes.push((
        "failing now (not transient, not re-auth)".to_string(),
        gauges.failing,
    ));
    let mut usage = Vec::new();
    for (action, label) in [
        ("token.read", "token reads"),
        ("graph.call", "Graph API calls through the broker"),
        ("account.connected", "accounts connected"),
        ("account.revoked", "accounts revoked"),
    ] {
        usage.push((
            label.to_string(),
            store.count_audit_action(action, now - DAY).await?,
        ));
    }
    Ok(Overview {
        by_status,
        expiring_week: store.count_active_expiring(now, now + WEEK).await?,
        failing: gauges.failing,
        due: gauges.due,
        refresh_outcomes,
        usage,
    })
}

/// An account's newest audit entries, newest first.
pub async fn recent_audit(state: &AppState, account_id: &str, limit: i64) -> Result<Vec<AuditRow>> {
    Ok(state
        .store()
        .recent_audit_for_account(account_id, limit)
        .await?)
}

/// The entries the timeline draws for `acc`, oldest first.
pub async fn lifecycle(
    state: &AppState,
    acc: &AccountRow,
    actions: &[&str],
) -> Result<Vec<AuditRow>> {
    Ok(state
        .store()
        .account_audit_of(&acc.id, actions, 500)
        .await?)
}

/// Every app, for the dashboard's lists and choosers (an installation has a handful).
pub async fn all_apps(state: &AppState) -> Result<Vec<igbroker_store::AppRow>> {
    Ok(state.store().all_apps().await?)
}

/// Whether an app has a webhook secret (the value itself is never shown again).
pub async fn has_webhook_secret(state: &AppState, app_id: &str) -> Result<bool> {
    Ok(state.store().app_webhook_secret(app_id).await?.is_some())
}

/// An app's newest webhook events with their delivery state, newest first.
pub async fn recent_deliveries(
    state: &AppState,
    app_id: &str,
    limit: i64,
) -> Result<Vec<igbroker_store::OutboxRow>> {
    Ok(state.store().recent_outbox(app_id, limit).await?)
}
