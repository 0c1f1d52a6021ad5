//! Connected accounts: reading them, showing them, and revoking them.

use igbroker_core::{AccountStatus, RefreshState};
use igbroker_store::{AccountFilter, AccountRow};
use igbroker_vault::Aad;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;

use crate::service::apps::scope_names;
use crate::service::error::{Error, Result};
use crate::service::{audit, events};
use crate::state::AppState;
use crate::util::rfc3339;

pub fn token_aad(account_id: &str) -> Aad<'_> {
    Aad::new("accounts", account_id, "token")
}

pub async fn get(state: &AppState, id: &str) -> Result<AccountRow> {
    state
        .store()
        .get_account(id)
        .await?
        .ok_or_else(|| Error::not_found("account", id))
}

/// A status filter as a caller typed it.
pub fn parse_status(s: &str) -> Result<AccountStatus> {
    AccountStatus::parse(s).ok_or_else(|| {
        Error::Invalid(format!(
            "status `{s}` is not one of active, reauth_required, revoked, suspended"
        ))
    })
}

/// Accounts in id order after `after`, narrowed by `filter`.
pub async fn list(
    state: &AppState,
    filter: &AccountFilter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<AccountRow>> {
    Ok(state.store().list_accounts(filter, after, limit).await?)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub issued_at: Option<String>,
    pub expires_at: Option<String>,
    pub refreshed_at: Option<String>,
    pub next_refresh_at: Option<String>,
    pub refresh_state: &'static str,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: String,
    pub app_id: String,
    pub end_user: Option<String>,
    pub ig_user_id: String,
    pub ig_scoped_id: String,
    pub username: Option<String>,
    pub scopes: Vec<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub token: TokenInfo,
    pub created_at: String,
    pub updated_at: String,
}

impl AccountView {
    pub fn from_row(a: &AccountRow, now: i64) -> AccountView {
        AccountView {
            id: a.id.clone(),
            app_id: a.app_id.clone(),
            end_user: (!a.end_user.is_empty()).then(|| a.end_user.clone()),
            ig_user_id: a.ig_user_id.clone(),
            ig_scoped_id: a.ig_scoped_id.clone(),
            username: a.username.clone(),
            scopes: scope_names(&a.scopes),
            status: a.status.as_str().to_string(),
            status_reason: a.status_reason.clone(),
            token: TokenInfo {
                issued_at: a.issued_at.map(rfc3339),
                expires_at: a.expires_at.map(rfc3339),
                refreshed_at: a.refreshed_at.map(rfc3339),
                next_refresh_at: a.next_refresh_at.map(rfc3339),
                refresh_state: RefreshState::derive(
                    now,
                    a.lease_until,
                    a.backoff_until,
                    a.refresh_failing,
                )
                .as_str(),
                last_error: a.last_error.clone(),
            },
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        }
    }
}

pub fn open_token(state: &AppState, acc: &AccountRow) -> Result<SecretString> {
    let sealed = acc
        .token_enc
        .as_deref()
        .ok_or(Error::NotActive(AccountStatus::Revoked))?;
    Ok(state.vault().open_string(&token_aad(&acc.id), sealed)?)
}

/// Revokes the account: its token is destroyed. The change, its audit entry and
/// its `account.revoked` event commit together. Revoking twice changes nothing.
pub async fn revoke(state: &AppState, id: &str, actor: &str, reason: &str) -> Result<AccountRow> {
    let acc = get(state, id).await?;
    if acc.status == AccountStatus::Revoked {
        return Ok(acc);
    }
    let detail = json!({"reason": reason});
    let event = events::account_event(
        state,
        events::ACCOUNT_REVOKED,
        (&acc).into(),
        detail.clone(),
        None,
    )
    .await?;
    let entry = audit::entry(
        state,
        actor,
        "account.revoked",
        Some(&acc.id),
        Some(&acc.app_id),
        detail,
    );
    let mut tx = state.store().begin().await?;
    if !tx.revoke_account(&acc.id, reason, state.now()).await? {
        // Revoked meanwhile by someone else, who wrote the audit entry and event.
        drop(tx);
        return get(state, id).await;
    }
    tx.append_audit(&[entry]).await?;
    if let Some(event) = &event {
        tx.enqueue_webhook(event).await?;
    }
    tx.commit().await?;
    if event.is_some() {
        state.wake_scheduler();
    }
    get(state, id).await
}
