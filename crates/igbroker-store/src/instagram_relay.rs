//! Queries behind the relay of Instagram's webhooks: the per-app switch and sealed verify
//! token, and the accounts an entry's Instagram account id maps to.

use sqlx::FromRow;

use crate::{Store, StoreError};

/// An app's relay settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySettings {
    pub enabled: bool,
    /// The verify token, sealed by the vault (`apps/{id}/webhook_verify_token`).
    pub verify_token_enc: Option<Vec<u8>>,
}

/// A broker account an Instagram entry is relayed to.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RelayTarget {
    pub id: String,
    pub end_user: String,
    pub username: Option<String>,
    pub status: String,
}

#[derive(FromRow)]
struct SettingsRow {
    relay_instagram_webhooks: i64,
    webhook_verify_token_enc: Option<Vec<u8>>,
}

impl Store {
    /// The relay settings of a live app; `None` when there is no such app.
    pub async fn instagram_relay(&self, app_id: &str) -> Result<Option<RelaySettings>, StoreError> {
        let row: Option<SettingsRow> = sqlx::query_as(
            "SELECT relay_instagram_webhooks, webhook_verify_token_enc FROM apps
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| RelaySettings {
            enabled: r.relay_instagram_webhooks != 0,
            verify_token_enc: r.webhook_verify_token_enc,
        }))
    }

    /// The accounts of `app_id` that belong to this Instagram professional account and are
    /// not revoked (several end users may have connected the same Instagram account).
    pub async fn relay_targets(
        &self,
        app_id: &str,
        ig_user_id: &str,
    ) -> Result<Vec<RelayTarget>, StoreError> {
        Ok(sqlx::query_as::<_, RelayTarget>(
            "SELECT id, end_user, username, status FROM accounts
             WHERE app_id = $1 AND ig_user_id = $2 AND status <> 'revoked' ORDER BY id",
        )
        .bind(app_id)
        .bind(ig_user_id)
        .fetch_all(&self.pool)
        .await?)
    }
}
