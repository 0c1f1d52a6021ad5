use sqlx::FromRow;

use crate::{Store, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct AppRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub client_id: String,
    /// Sealed by the vault; bound to (apps, id, client_secret).
    pub client_secret_enc: Vec<u8>,
    /// Comma-separated Instagram scopes.
    pub scopes: String,
    pub redirect_uri: String,
    /// JSON array of origins.
    pub return_origins: String,
    pub webhook_url: Option<String>,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

const COLUMNS: &str = "id, name, kind, client_id, client_secret_enc, scopes, redirect_uri, return_origins, webhook_url, created_at, deleted_at";

impl Store {
    pub async fn insert_app(&self, app: &AppRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO apps (id, name, kind, client_id, client_secret_enc, scopes, redirect_uri, return_origins, webhook_url, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&app.id)
        .bind(&app.name)
        .bind(&app.kind)
        .bind(&app.client_id)
        .bind(&app.client_secret_enc)
        .bind(&app.scopes)
        .bind(&app.redirect_uri)
        .bind(&app.return_origins)
        .bind(&app.webhook_url)
        .bind(app.created_at)
        .execute(self.w())
        .await?;
        Ok(())
    }

    pub async fn get_app(&self, id: &str) -> Result<Option<AppRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM apps WHERE id = $1 AND deleted_at IS NULL");
        Ok(sqlx::query_as::<_, AppRow>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Apps after `after_id` in id (creation) order; `limit + 1` rows tell whether more follow.
    pub async fn list_apps(
        &self,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AppRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM apps WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2"
        );
        Ok(sqlx::query_as::<_, AppRow>(sqlx::AssertSqlSafe(sql))
            .bind(after_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn all_apps(&self) -> Result<Vec<AppRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM apps ORDER BY id");
        Ok(sqlx::query_as::<_, AppRow>(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?)
    }

    /// Writes an app's editable fields (everything but id, kind, client_id and
    /// times) as given.
    pub async fn update_app(&self, app: &AppRow) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE apps SET name = $2, client_secret_enc = $3, scopes = $4, redirect_uri = $5,
                return_origins = $6, webhook_url = $7
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(&app.id)
        .bind(&app.name)
        .bind(&app.client_secret_enc)
        .bind(&app.scopes)
        .bind(&app.redirect_uri)
        .bind(&app.return_origins)
        .bind(&app.webhook_url)
        .execute(self.w())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn update_app_secret(&self, id: &str, sealed: &[u8]) -> Result<(), StoreError> {
        sqlx::query("UPDATE apps SET client_secret_enc = $2 WHERE id = $1")
            .bind(id)
            .bind(sealed)
            .execute(self.w())
            .await?;
        Ok(())
    }

    /// Soft delete, refused while live accounts use the app.
    pub async fn delete_app(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM accounts WHERE app_id = $1 AND status <> 'revoked'",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        if live > 0 {
            return Err(StoreError::Conflict(format!(
                "the app still has {live} connected account(s); revoke them first"
            )));
        }
        let done =
            sqlx::query("UPDATE apps SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(self.w())
                .await?;
        Ok(done.rows_affected() == 1)
    }
}
