use igbroker_core::InstagramScope;
use sqlx::FromRow;

use crate::error::decode_scopes;
use crate::{Store, StoreError, Tx};

#[derive(Debug, Clone)]
pub struct AppRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub client_id: String,
    /// Sealed by the vault; bound to (apps, id, client_secret).
    pub client_secret_enc: Vec<u8>,
    pub scopes: Vec<InstagramScope>,
    pub redirect_uri: String,
    /// Normalized origins a connect session may return to.
    pub return_origins: Vec<String>,
    pub webhook_url: Option<String>,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

/// The row as stored: scopes comma-joined, origins a JSON array.
#[derive(FromRow)]
struct AppRecord {
    id: String,
    name: String,
    kind: String,
    client_id: String,
    client_secret_enc: Vec<u8>,
    scopes: String,
    redirect_uri: String,
    return_origins: String,
    webhook_url: Option<String>,
    created_at: i64,
    deleted_at: Option<i64>,
}

impl TryFrom<AppRecord> for AppRow {
    type Error = StoreError;

    fn try_from(r: AppRecord) -> Result<AppRow, StoreError> {
        let scopes = decode_scopes("apps", &r.id, &r.scopes)?;
        let return_origins =
            crate::error::decode("apps", &r.id, "return_origins", &r.return_origins, |v| {
                serde_json::from_str::<Vec<String>>(v).ok()
            })?;
        Ok(AppRow {
            id: r.id,
            name: r.name,
            kind: r.kind,
            client_id: r.client_id,
            client_secret_enc: r.client_secret_enc,
            scopes,
            redirect_uri: r.redirect_uri,
            return_origins,
            webhook_url: r.webhook_url,
            created_at: r.created_at,
            deleted_at: r.deleted_at,
        })
    }
}

fn typed(records: Vec<AppRecord>) -> Result<Vec<AppRow>, StoreError> {
    records.into_iter().map(AppRow::try_from).collect()
}

fn origins_json(origins: &[String]) -> String {
    serde_json::to_string(origins).unwrap_or_else(|_| "[]".into())
}

const COLUMNS: &str = "id, name, kind, client_id, client_secret_enc, scopes, redirect_uri, return_origins, webhook_url, created_at, deleted_at";

/// The state changes of an app, written on a [`Tx`] with their audit entry.
impl Tx {
    pub async fn insert_app(&mut self, app: &AppRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO apps (id, name, kind, client_id, client_secret_enc, scopes, redirect_uri, return_origins, webhook_url, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&app.id)
        .bind(&app.name)
        .bind(&app.kind)
        .bind(&app.client_id)
        .bind(&app.client_secret_enc)
        .bind(InstagramScope::join(&app.scopes))
        .bind(&app.redirect_uri)
        .bind(origins_json(&app.return_origins))
        .bind(&app.webhook_url)
        .bind(app.created_at)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Writes an app's editable fields (everything but id, kind, client_id and
    /// times) as given.
    pub async fn update_app(&mut self, app: &AppRow) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE apps SET name = $2, client_secret_enc = $3, scopes = $4, redirect_uri = $5,
                return_origins = $6, webhook_url = $7
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(&app.id)
        .bind(&app.name)
        .bind(&app.client_secret_enc)
        .bind(InstagramScope::join(&app.scopes))
        .bind(&app.redirect_uri)
        .bind(origins_json(&app.return_origins))
        .bind(&app.webhook_url)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Soft delete, refused while live accounts use the app.
    pub async fn delete_app(&mut self, id: &str, now: i64) -> Result<bool, StoreError> {
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM accounts WHERE app_id = $1 AND status <> 'revoked'",
        )
        .bind(id)
        .fetch_one(self.conn())
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
                .execute(self.conn())
                .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// An app committed alone (tests, benchmarks); the service writes it on a [`Tx`].
    pub async fn insert_app(&self, app: &AppRow) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.insert_app(app).await?;
        tx.commit().await
    }

    /// A soft delete committed alone, without an audit entry (tests).
    pub async fn delete_app(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = tx.delete_app(id, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    pub async fn get_app(&self, id: &str) -> Result<Option<AppRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM apps WHERE id = $1 AND deleted_at IS NULL");
        sqlx::query_as::<_, AppRecord>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(AppRow::try_from)
            .transpose()
    }

    /// Apps after `after_id` in id (creation) order; `limit + 1` rows tell whether more
    /// follow. `only` narrows to those ids in the query itself, so that a page is full
    /// whenever more matching apps exist.
    pub async fn list_apps(
        &self,
        only: Option<&[String]>,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AppRow>, StoreError> {
        let only_sql = match only {
            None => String::new(),
            Some([]) => return Ok(Vec::new()),
            Some(ids) => format!(" AND id IN ({})", crate::batch::param_list(ids.len(), 3)),
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM apps WHERE deleted_at IS NULL AND id > $1{only_sql} ORDER BY id LIMIT $2"
        );
        let mut q = sqlx::query_as::<_, AppRecord>(sqlx::AssertSqlSafe(sql))
            .bind(after_id.unwrap_or("").to_string())
            .bind(limit);
        for id in only.unwrap_or_default() {
            q = q.bind(id.clone());
        }
        typed(q.fetch_all(&self.pool).await?)
    }

    pub async fn all_apps(&self) -> Result<Vec<AppRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM apps ORDER BY id");
        typed(
            sqlx::query_as::<_, AppRecord>(sqlx::AssertSqlSafe(sql))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn update_app_secret(&self, id: &str, sealed: &[u8]) -> Result<(), StoreError> {
        sqlx::query("UPDATE apps SET client_secret_enc = $2 WHERE id = $1")
            .bind(id)
            .bind(sealed)
            .execute(self.w())
            .await?;
        Ok(())
    }
}
