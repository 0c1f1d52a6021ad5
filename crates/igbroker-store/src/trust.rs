//! Columns of the trust boundary: a key's own rate, the browser bound to a connect
//! session, and the count that keeps the last unlimited admin key alive.

use crate::{Store, StoreError};

impl Store {
    pub async fn set_api_key_rate(&self, id: &str, per_second: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET rate_limit_per_second = $2 WHERE id = $1")
            .bind(id)
            .bind(per_second)
            .execute(self.w())
            .await?;
        Ok(())
    }

    /// The key's own rate, if it has one.
    pub async fn api_key_rate(&self, id: &str) -> Result<Option<i64>, StoreError> {
        let rate: Option<Option<i64>> =
            sqlx::query_scalar("SELECT rate_limit_per_second FROM api_keys WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(rate.flatten())
    }

    /// Scopes and apps of a live key, by id.
    pub async fn api_key_reach(&self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT scopes, app_ids FROM api_keys WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Live keys with `admin` over every app.
    pub async fn count_unlimited_admin_keys(&self) -> Result<i64, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT scopes FROM api_keys WHERE revoked_at IS NULL AND app_ids = ''",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter(|s| s.split(',').any(|p| p.trim() == "admin"))
            .count() as i64)
    }

    /// Revokes a key unless it is the last live unlimited admin key; `Ok(false)` when
    /// there is no such live key. Checked and written in one transaction.
    pub async fn revoke_api_key_keeping_root(
        &self,
        id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.w().begin().await?;
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT scopes, app_ids FROM api_keys WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((scopes, app_ids)) = row else {
            return Ok(false);
        };
        let is_admin = |s: &str| s.split(',').any(|p| p.trim() == "admin");
        if app_ids.is_empty() && is_admin(&scopes) {
            // Lock the other unlimited admin rows (PostgreSQL) so that two revokes of the
            // last two cannot both pass; SQLite's single writer serialises them anyway.
            let others: Vec<String> = sqlx::query_scalar(if self.backend() == crate::Backend::Postgres {
                "SELECT scopes FROM api_keys WHERE revoked_at IS NULL AND app_ids = '' AND id <> $1 FOR UPDATE"
            } else {
                "SELECT scopes FROM api_keys WHERE revoked_at IS NULL AND app_ids = '' AND id <> $1"
            })
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            if !others.iter().any(|s| is_admin(s)) {
                return Err(StoreError::Conflict(
                    "this is the last admin key over every app; create another one before revoking it (or use `igbroker api-keys revoke`)".into(),
                ));
            }
        }
        sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Binds a pending session to a browser (the hash of its cookie); a later visit of the
    /// link from another browser rebinds it, so the last browser to open the link wins.
    pub async fn bind_connect_browser(&self, id: &str, hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE connect_sessions SET browser_hash = $2 WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(hash)
        .execute(self.w())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn connect_browser_hash(&self, id: &str) -> Result<Option<String>, StoreError> {
        let h: Option<Option<String>> =
            sqlx::query_scalar("SELECT browser_hash FROM connect_sessions WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(h.flatten())
    }
}
