//! Audit entries: built here, written either alone (an event that changes
//! nothing, like a token read) or on the transaction of the change they record.

use igbroker_core::{IdKind, PrefixedId};
use igbroker_store::AuditEntry;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::service::error::{Error, Result};
use crate::state::AppState;

/// An entry naming accounts by broker id only; `detail` never carries a token,
/// code or secret.
pub fn entry(
    state: &AppState,
    actor: &str,
    action: &str,
    account_id: Option<&str>,
    app_id: Option<&str>,
    detail: Value,
) -> AuditEntry {
    AuditEntry {
        id: PrefixedId::generate(IdKind::Audit).into_string(),
        at: state.now(),
        actor: actor.to_string(),
        action: action.to_string(),
        account_id: account_id.map(str::to_owned),
        app_id: app_id.map(str::to_owned),
        detail: detail.to_string(),
    }
}

/// One entry waiting for the group commit, and who to tell once it is durable.
pub type PendingEntry = (AuditEntry, oneshot::Sender<Result<()>>);

/// Appends one entry that records no state change (a read, a call, an export),
/// and returns once it is committed. Entries of concurrent requests are chained
/// and committed together by one writer, so the wait is one batch, not a queue
/// of single commits.
pub async fn record(
    state: &AppState,
    actor: &str,
    action: &str,
    account_id: Option<&str>,
    app_id: Option<&str>,
    detail: Value,
) -> Result<()> {
    let e = entry(state, actor, action, account_id, app_id, detail);
    let (ack, done) = oneshot::channel();
    let gone = || Error::Unavailable("the audit writer has stopped; retry".into());
    state
        .audit_queue()
        .send((e, ack))
        .await
        .map_err(|_| gone())?;
    done.await.map_err(|_| gone())?
}

/// One page of the log, oldest first.
pub async fn list(
    state: &AppState,
    account_id: Option<&str>,
    action: Option<&str>,
    since: Option<i64>,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<igbroker_store::AuditRow>> {
    Ok(state
        .store()
        .list_audit(account_id, action, since, after_seq, limit)
        .await?)
}

/// One entry as the API and the CLI show it; `detail` as JSON, the hashes kept
/// for whoever checks the chain themselves.
/// One audit entry as the API shows it; `hash` chains it to `prev_hash`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntryView {
    pub id: String,
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub account_id: Option<String>,
    pub app_id: Option<String>,
    /// What the action concerned; never a secret.
    #[schema(value_type = Object)]
    pub detail: Value,
    pub prev_hash: String,
    pub hash: String,
}

pub fn view(r: &igbroker_store::AuditRow) -> AuditEntryView {
    AuditEntryView {
        id: r.id.clone(),
        seq: r.seq,
        at: crate::util::rfc3339(r.at),
        actor: r.actor.clone(),
        action: r.action.clone(),
        account_id: r.account_id.clone(),
        app_id: r.app_id.clone(),
        detail: serde_json::from_str::<Value>(&r.detail).unwrap_or(Value::Null),
        prev_hash: r.prev_hash.clone(),
        hash: r.hash.clone(),
    }
}
