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

/// One entry as the API and the CLI show it; `detail` as JSON, the hashes kept
/// for whoever checks the chain themselves.
pub fn view(r: &igbroker_store::AuditRow) -> Value {
    serde_json::json!({
        "id": r.id,
        "seq": r.seq,
        "at": crate::util::rfc3339(r.at),
        "actor": r.actor,
        "action": r.action,
        "account_id": r.account_id,
        "app_id": r.app_id,
        "detail": serde_json::from_str::<Value>(&r.detail).unwrap_or(Value::Null),
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    })
}
