use igbroker_core::{IdKind, PrefixedId};
use igbroker_store::AuditEntry;
use serde_json::Value;

use crate::error::ApiError;
use crate::state::AppState;

/// Appends one entry. Entries name accounts by broker id only, and `detail`
/// never carries a token, code or secret.
pub async fn record(
    state: &AppState,
    actor: &str,
    action: &str,
    account_id: Option<&str>,
    app_id: Option<&str>,
    detail: Value,
) -> Result<(), ApiError> {
    let entry = AuditEntry {
        id: PrefixedId::generate(IdKind::Audit).into_string(),
        at: state.now(),
        actor: actor.to_string(),
        action: action.to_string(),
        account_id: account_id.map(str::to_owned),
        app_id: app_id.map(str::to_owned),
        detail: detail.to_string(),
    };
    state.store().append_audit(&entry).await?;
    Ok(())
}
