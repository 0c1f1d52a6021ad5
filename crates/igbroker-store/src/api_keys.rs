use sqlx::FromRow;

use crate::{Store, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    /// SHA-256 of the key: the key itself is shown once and never stored.
    pub key_hash: String,
    /// Comma-separated API scopes.
    pub scopes: String,
    /// Comma-separated app ids the key is limited to; empty means all apps.
    pub app_ids: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, name, key_hash, scopes, app_ids, created_at, last_used_at, revoked_at";

impl Store {
    pub async fn insert_api_key(&self, key: &ApiKeyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, scopes, app_ids, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.key_hash)
        .bind(&key.scopes)
        .bind(&key.app_ids)
        .bind(key.created_at)
        .execute(self.w())
        .await?;
        Ok(())
    }

    pub async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL");
        Ok(sqlx::query_as::<_, ApiKeyRow>(sqlx::AssertSqlSafe(sql))
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn list_api_keys(
        &self,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ApiKeyRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id > $1 ORDER BY id LIMIT $2");
        Ok(sqlx::query_as::<_, ApiKeyRow>(sqlx::AssertSqlSafe(sql))
            .bind(after_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(self.w())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Recorded at minute resolution so that a busy key does not write on every call.
    pub async fn touch_api_key(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)")
            .bind(id)
            .bind(now)
            .bind(now - 60)
            .execute(self.w())
            .await?;
        Ok(())
    }
}
