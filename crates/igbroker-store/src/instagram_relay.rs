//! Queries behind the relay of Instagram's webhooks: the per-app switch and sealed verify
//! token, and the accounts an entry's Instagram account id maps to.

use sqlx::FromRow;

use crate::{Store, StoreError, Tx};

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

    /// How many connect sessions of the app ended with error `code`, and how many live
    /// accounts of it carry `code` as the start of their `last_error` (for `apps doctor`).
    pub async fn count_failures_with_code(
        &self,
        app_id: &str,
        code: &str,
    ) -> Result<(i64, i64), StoreError> {
        let sessions: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM connect_sessions WHERE app_id = $1 AND status = 'error' AND error = $2",
        )
        .bind(app_id)
        .bind(code)
        .fetch_one(&self.pool)
        .await?;
        let accounts: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM accounts WHERE app_id = $1 AND status <> 'revoked' AND last_error LIKE $2",
        )
        .bind(app_id)
        .bind(format!("{code}%"))
        .fetch_one(&self.pool)
        .await?;
        Ok((sessions, accounts))
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

impl Tx {
    /// Writes the relay switch and/or a new sealed verify token; `None` leaves a field as it is.
    pub async fn set_instagram_relay(
        &mut self,
        app_id: &str,
        enabled: Option<bool>,
        verify_token_enc: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        if let Some(on) = enabled {
            sqlx::query("UPDATE apps SET relay_instagram_webhooks = $2 WHERE id = $1")
                .bind(app_id)
                .bind(i64::from(on))
                .execute(self.conn())
                .await?;
        }
        if let Some(sealed) = verify_token_enc {
            sqlx::query("UPDATE apps SET webhook_verify_token_enc = $2 WHERE id = $1")
                .bind(app_id)
                .bind(sealed)
                .execute(self.conn())
                .await?;
        }
        Ok(())
    }
}
