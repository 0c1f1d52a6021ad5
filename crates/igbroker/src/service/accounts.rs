use igbroker_core::{AccountStatus, RefreshState};
use igbroker_store::AccountRow;
use igbroker_vault::Aad;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;

use crate::error::ApiError;
use crate::service::{apps::split_list, audit, refresh, webhooks};
use crate::state::AppState;
use crate::util::rfc3339;

pub fn token_aad(account_id: &str) -> Aad<'_> {
    Aad::new("accounts", account_id, "token")
}

pub async fn get(state: &AppState, id: &str) -> Result<AccountRow, ApiError> {
    state
        .store()
        .get_account(id)
        .await?
        .ok_or_else(|| ApiError::not_found("account", id))
}

pub fn status_of(a: &AccountRow) -> AccountStatus {
    AccountStatus::parse(&a.status).unwrap_or(AccountStatus::Suspended)
}

#[derive(Debug, Serialize)]
pub struct TokenInfo {
    pub issued_at: Option<String>,
    pub expires_at: Option<String>,
    pub refreshed_at: Option<String>,
    pub next_refresh_at: Option<String>,
    pub refresh_state: &'static str,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize)]
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
            scopes: split_list(&a.scopes),
            status: a.status.clone(),
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
                    a.refresh_failing != 0,
                )
                .as_str(),
                last_error: a.last_error.clone(),
            },
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        }
    }
}

/// An active account whose token has not expired; an expired one is marked
/// `reauth_required` on the spot so that nobody is handed a dead token.
pub async fn require_usable(state: &AppState, id: &str) -> Result<AccountRow, ApiError> {
    let acc = get(state, id).await?;
    let status = status_of(&acc);
    if status != AccountStatus::Active {
        return Err(ApiError::not_active(status));
    }
    if acc.expires_at.is_some_and(|e| e <= state.now()) {
        state
            .store()
            .mark_reauth_required(&acc.id, "expired", state.now())
            .await?;
        return Err(ApiError::not_active(AccountStatus::ReauthRequired));
    }
    Ok(acc)
}

pub fn open_token(state: &AppState, acc: &AccountRow) -> Result<SecretString, ApiError> {
    let sealed = acc
        .token_enc
        .as_deref()
        .ok_or_else(|| ApiError::not_active(AccountStatus::Revoked))?;
    Ok(state.vault().open_string(&token_aad(&acc.id), sealed)?)
}

/// Hands out the token (audited), refreshing first when it is close to expiry.
pub async fn read_token(
    state: &AppState,
    id: &str,
    actor: &str,
) -> Result<(AccountRow, SecretString), ApiError> {
    let mut acc = require_usable(state, id).await?;
    if let (Some(issued), Some(expires)) = (acc.issued_at, acc.expires_at)
        && state
            .policy()
            .read_should_refresh(state.now(), issued, expires)
    {
        match refresh::refresh_now(state, &acc.id, actor).await {
            Ok(fresh) => acc = fresh,
            // The current token is still valid: serve it, the scheduler retries.
            Err(e) => {
                tracing::warn!(account_id = %acc.id, error = %e, "refresh before token read failed")
            }
        }
        acc = require_usable(state, &acc.id).await?;
    }
    let token = open_token(state, &acc)?;
    metrics::counter!("igbroker_token_reads_total").increment(1);
    audit::record(
        state,
        actor,
        "token.read",
        Some(&acc.id),
        Some(&acc.app_id),
        json!({}),
    )
    .await?;
    Ok((acc, token))
}

pub async fn revoke(
    state: &AppState,
    id: &str,
    actor: &str,
    reason: &str,
) -> Result<AccountRow, ApiError> {
    let acc = get(state, id).await?;
    if status_of(&acc) == AccountStatus::Revoked {
        return Ok(acc);
    }
    if !state
        .store()
        .revoke_account(&acc.id, reason, state.now())
        .await?
    {
        return get(state, id).await;
    }
    webhooks::account_event(
        state,
        "account.revoked",
        &acc,
        json!({"reason": reason}),
        false,
    )
    .await?;
    audit::record(
        state,
        actor,
        "account.revoked",
        Some(&acc.id),
        Some(&acc.app_id),
        json!({"reason": reason}),
    )
    .await?;
    get(state, id).await
}

#[derive(Debug, serde::Deserialize)]
pub struct ImportRequest {
    pub app_id: String,
    pub access_token: secrecy::SecretString,
    #[serde(default)]
    pub end_user: Option<String>,
    /// When the token was issued or last refreshed (RFC 3339); default now.
    /// Its age decides when it may be refreshed.
    #[serde(default)]
    pub issued_at: Option<String>,
}

/// Adopts a long-lived token obtained elsewhere, after checking it with `/me`.
/// Its expiry is taken as 60 days from `issued_at`: Instagram does not say.
pub async fn import(
    state: &AppState,
    req: ImportRequest,
    actor: &str,
) -> Result<(AccountRow, bool), ApiError> {
    use secrecy::ExposeSecret;
    let app = crate::service::apps::get(state, &req.app_id).await?;
    let token = req.access_token.expose_secret().trim().to_string();
    if token.is_empty() || token.len() > 2048 || token.chars().any(char::is_whitespace) {
        return Err(ApiError::InvalidRequest(
            "access_token must be a long-lived Instagram token".into(),
        ));
    }
    let now = state.now();
    let issued_at = match &req.issued_at {
        Some(t) => crate::util::parse_rfc3339(t)?,
        None => now,
    };
    if issued_at > now + 300 {
        return Err(ApiError::InvalidRequest(
            "issued_at lies in the future".into(),
        ));
    }
    let expires_at = issued_at + 60 * 86_400;
    if expires_at <= now {
        return Err(ApiError::InvalidRequest(
            "a token issued 60 days ago or more has expired; connect the account instead".into(),
        ));
    }
    let ig_token = instagram_api::AccessToken::new(token.clone());
    let profile = state
        .instagram()
        .me(&ig_token, &["id", "user_id", "username"])
        .await
        .map_err(|e| match e {
            instagram_api::Error::Reauth { .. } => {
                ApiError::InvalidRequest(format!("Instagram does not accept this token: {e}"))
            }
            other => crate::service::connect::upstream("token check (/me)", &other),
        })?;
    let end_user = req.end_user.unwrap_or_default();
    let (id, previous) = crate::service::connect::connect_account(
        state,
        &app,
        &end_user,
        None,
        crate::service::connect::ConnectedToken {
            ig_user_id: profile
                .user_id
                .clone()
                .unwrap_or_else(|| profile.id.clone()),
            ig_scoped_id: profile.id.clone(),
            username: profile.username.clone(),
            // Instagram does not tell which scopes a bare token carries: assume the app's.
            scopes: app.scopes.clone(),
            token,
            issued_at,
            expires_at,
        },
    )
    .await?;
    audit::record(
        state,
        actor,
        "account.imported",
        Some(&id),
        Some(&app.id),
        json!({}),
    )
    .await?;
    let acc = get(state, &id).await?;
    if previous.is_none() {
        webhooks::account_event(
            state,
            "account.connected",
            &acc,
            json!({"imported": true}),
            false,
        )
        .await?;
    }
    state.wake_scheduler();
    Ok((acc, previous.is_none()))
}
