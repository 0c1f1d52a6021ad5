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

impl crate::Tx {
    /// Writes a new key (with its own rate, if any) on this transaction.
    pub async fn insert_api_key(
        &mut self,
        key: &crate::ApiKeyRow,
        rate_limit_per_second: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, scopes, app_ids, created_at, rate_limit_per_second)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.key_hash)
        .bind(&key.scopes)
        .bind(&key.app_ids)
        .bind(key.created_at)
        .bind(rate_limit_per_second)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Revokes a live key; `Ok(false)` when there is none. With `keep_root`, the last live
    /// unlimited admin key is refused (`Conflict`): the API must not lock everyone out,
    /// while an operator at the CLI may.
    pub async fn revoke_api_key(
        &mut self,
        id: &str,
        now: i64,
        keep_root: bool,
    ) -> Result<bool, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT scopes, app_ids FROM api_keys WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        let Some((scopes, app_ids)) = row else {
            return Ok(false);
        };
        let is_admin = |s: &str| s.split(',').any(|p| p.trim() == "admin");
        if keep_root && app_ids.is_empty() && is_admin(&scopes) {
            // Lock the other unlimited admin rows (PostgreSQL) so that two revokes of the
            // last two cannot both pass; SQLite's single writer serialises them anyway.
            let postgres = self.backend() == crate::Backend::Postgres;
            let others: Vec<String> = sqlx::query_scalar(if postgres {
                "SELECT scopes FROM api_keys WHERE revoked_at IS NULL AND app_ids = '' AND id <> $1 FOR UPDATE"
            } else {
                "SELECT scopes FROM api_keys WHERE revoked_at IS NULL AND app_ids = '' AND id <> $1"
            })
            .bind(id)
            .fetch_all(self.conn())
            .await?;
            if !others.iter().any(|s| is_admin(s)) {
                return Err(StoreError::Conflict(
                    "this is the last admin key over every app; create another one before revoking it (or use `igbroker api-keys revoke`)".into(),
                ));
            }
        }
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(self.conn())
                .await?;
        Ok(done.rows_affected() == 1)
    }
}
