//! Handing out an account's token: the last link of the service chain, since a
//! read may refresh first.

use secrecy::SecretString;
use serde_json::json;

use crate::service::error::Result;
use crate::service::{accounts, audit, refresh};
use crate::state::AppState;
use igbroker_store::AccountRow;

/// Hands out the token (audited), refreshing first when it is close to expiry.
pub async fn read_token(
    state: &AppState,
    id: &str,
    actor: &str,
) -> Result<(AccountRow, SecretString)> {
    hand_out(state, accounts::get(state, id).await?, actor).await
}

/// [`read_token`] for an account row the caller has just read (and authorised).
/// The token leaves only once its audit entry is committed.
pub async fn hand_out(
    state: &AppState,
    acc: AccountRow,
    actor: &str,
) -> Result<(AccountRow, SecretString)> {
    let mut acc = refresh::usable(state, acc).await?;
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
        acc = refresh::require_usable(state, &acc.id).await?;
    }
    let token = accounts::open_token(state, &acc)?;
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
