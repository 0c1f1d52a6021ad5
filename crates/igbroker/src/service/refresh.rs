//! Refreshing one account's token now, under the account's lease, so that two
//! callers (or replicas) never refresh the same token at once.

use std::time::Duration;

use igbroker_core::{AccountStatus, RefreshCheck};
use igbroker_store::{AccountRow, TokenUpdate};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::error::ApiError;
use crate::service::{accounts, audit};
use crate::state::AppState;
use crate::util::rfc3339;

/// A lease outlives the upstream timeout, so a result is never written after
/// another holder could have taken over.
fn lease_secs(state: &AppState) -> i64 {
    let ig = &state.config().instagram;
    i64::try_from((ig.request_timeout + ig.connect_timeout).as_secs()).unwrap_or(60) * 2 + 10
}

pub async fn refresh_now(state: &AppState, id: &str, actor: &str) -> Result<AccountRow, ApiError> {
    let acc = accounts::require_usable(state, id).await?;
    let (Some(issued), Some(expires)) = (acc.issued_at, acc.expires_at) else {
        return Err(ApiError::Internal(format!(
            "account {id} has no token times"
        )));
    };
    match state.policy().check(state.now(), issued, expires) {
        RefreshCheck::TooYoung { ready_at } => {
            return Err(ApiError::TokenTooYoung {
                ready_at: rfc3339(ready_at),
            });
        }
        RefreshCheck::Expired => {
            state
                .store()
                .mark_reauth_required(id, "expired", state.now())
                .await?;
            return Err(ApiError::not_active(AccountStatus::ReauthRequired));
        }
        RefreshCheck::Allowed => {}
    }
    let owner = format!("{}:{}", state.node_id(), uuid::Uuid::now_v7().simple());
    let now = state.now();
    if !state
        .store()
        .acquire_refresh_lease(id, &owner, now, now + lease_secs(state))
        .await?
    {
        return join_in_flight(state, id).await;
    }
    let result = refresh_under_lease(state, &acc, &owner).await;
    if result.is_err() {
        state.store().release_refresh_lease(id, &owner).await?;
    }
    let acc = result?;
    audit::record(
        state,
        actor,
        "token.refreshed",
        Some(&acc.id),
        Some(&acc.app_id),
        json!({"expires_at": acc.expires_at.map(rfc3339)}),
    )
    .await?;
    Ok(acc)
}

/// Another holder is refreshing: wait for its lease to end and report its result.
async fn join_in_flight(state: &AppState, id: &str) -> Result<AccountRow, ApiError> {
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(u64::try_from(lease_secs(state)).unwrap_or(60));
    loop {
        let acc = accounts::get(state, id).await?;
        let held = acc.lease_until.is_some_and(|t| t > state.now());
        if !held {
            let status = accounts::status_of(&acc);
            if status != AccountStatus::Active {
                return Err(ApiError::not_active(status));
            }
            return Ok(acc);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Unavailable(
                "a refresh of this account is still in flight; retry shortly".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn refresh_under_lease(
    state: &AppState,
    acc: &AccountRow,
    owner: &str,
) -> Result<AccountRow, ApiError> {
    let token = accounts::open_token(state, acc)?;
    let token = instagram_api::AccessToken::new(token.expose_secret().to_string());
    let old_expires = acc.expires_at.unwrap_or(0);
    match state.instagram().refresh(&token).await {
        Ok(fresh) => {
            let now = state.now();
            let expires_at = now + fresh.expires_in.max(0);
            if expires_at <= old_expires {
                let msg = "Instagram answered the refresh without extending the expiry";
                state
                    .store()
                    .record_refresh_failure(&acc.id, owner, now, msg, now + 3600, false)
                    .await?;
                return Err(ApiError::Upstream(msg.into()));
            }
            let update = TokenUpdate {
                token_enc: state.vault().seal_str(
                    &accounts::token_aad(&acc.id),
                    fresh.access_token.expose_secret(),
                )?,
                key_version: i64::from(state.vault().current_version()),
                issued_at: now,
                expires_at,
                next_refresh_at: state.policy().next_refresh_at(&acc.id, now, expires_at),
            };
            if !state
                .store()
                .store_refreshed_token(&acc.id, owner, now, &update)
                .await?
            {
                return Err(ApiError::Conflict(
                    "the refresh lease expired before the result could be stored; retry".into(),
                ));
            }
            accounts::get(state, &acc.id).await
        }
        Err(e) => Err(record_failure(state, acc, owner, &e).await?),
    }
}

/// Classifies a failed refresh and records what to do next; returns the error to report.
async fn record_failure(
    state: &AppState,
    acc: &AccountRow,
    owner: &str,
    e: &instagram_api::Error,
) -> Result<ApiError, ApiError> {
    let now = state.now();
    let message = e.to_string();
    if let instagram_api::Error::Reauth { reason, .. } = e {
        let why = match reason {
            instagram_api::ReauthReason::Expired => "expired",
            instagram_api::ReauthReason::PasswordChanged => "password_changed",
            instagram_api::ReauthReason::AppRemoved => "app_removed",
            _ => "token_invalid",
        };
        state
            .store()
            .mark_reauth_required(&acc.id, why, now)
            .await?;
        return Ok(ApiError::not_active(AccountStatus::ReauthRequired));
    }
    let (retry_at, failing) = if e.is_transient() {
        let secs = 60i64 << acc.refresh_attempts.clamp(0, 10);
        (now + secs.min(6 * 3600), false)
    } else {
        (now + 12 * 3600, true)
    };
    state
        .store()
        .record_refresh_failure(&acc.id, owner, now, &message, retry_at, failing)
        .await?;
    Ok(match e {
        instagram_api::Error::RateLimited { retry_after, .. } => ApiError::RateLimited {
            message: format!("Instagram is rate limiting this app: {message}"),
            retry_after_secs: retry_after.map(|d| d.as_secs()).unwrap_or(60),
        },
        _ => ApiError::Upstream(format!("Instagram refused the refresh: {message}")),
    })
}
