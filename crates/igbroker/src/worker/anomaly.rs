//! The usage worker: reads new audit entries every `[anomaly] poll` and lets the service
//! layer learn baselines and raise anomalies. One replica at a time holds its lease; a
//! killed one's lease expires and another continues from the stored cursor.

use crate::service::Result;
use crate::service::anomaly::{Scan, scan_until_idle};
use crate::shutdown::Shutdown;
use crate::state::AppState;

fn owner(state: &AppState) -> String {
    format!("{}:anomaly", state.node_id())
}

/// Reads the audit log up to its end now (the CLI and tests; `run` does the same each poll).
pub async fn run_until_idle(state: &AppState) -> Result<Scan> {
    scan_until_idle(state, &owner(state)).await
}

/// Runs until `shutdown` fires, then gives its lease back.
pub async fn run(state: AppState, shutdown: Shutdown) {
    let owner = owner(&state);
    let poll = state.config().anomaly.poll;
    loop {
        match scan_until_idle(&state, &owner).await {
            Ok(s) if s.anomalies > 0 => {
                tracing::warn!(
                    anomalies = s.anomalies,
                    suspended = s.suspended,
                    "usage anomalies raised"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "reading usage from the audit log failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.wait() => break,
        }
    }
    if let Err(e) = state.store().release_usage_cursor(&owner).await {
        tracing::warn!(error = %e, "could not give back the usage worker's lease");
    }
}
