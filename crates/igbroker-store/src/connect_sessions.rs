use sqlx::FromRow;

use crate::rotation::header_version;
use crate::{Store, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct ConnectSessionRow {
    pub id: String,
    pub app_id: String,
    pub end_user: String,
    pub scopes: String,
    pub return_url: Option<String>,
    /// Set when the session re-connects an existing account.
    pub account_id: Option<String>,
    pub state_hash: String,
    pub state_enc: Vec<u8>,
    /// pending | exchanging | connected | denied | error
    pub status: String,
    /// Hash of the code that completed (or is completing) the session.
    pub code_hash: Option<String>,
    pub result_account_id: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
    /// What `/connect` sends to Instagram and the exchange repeats (None on
    /// sessions older than the column: the app's current one).
    pub redirect_uri: Option<String>,
}

const COLUMNS: &str = "id, app_id, end_user, scopes, return_url, account_id, state_hash, state_enc, status, code_hash, result_account_id, error, created_at, expires_at, completed_at, redirect_uri";

impl Store {
    pub async fn insert_connect_session(&self, s: &ConnectSessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO connect_sessions (id, app_id, end_user, scopes, return_url, account_id, state_hash, state_enc, status, created_at, expires_at, state_key_version, redirect_uri)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&s.id)
        .bind(&s.app_id)
        .bind(&s.end_user)
        .bind(&s.scopes)
        .bind(&s.return_url)
        .bind(&s.account_id)
        .bind(&s.state_hash)
        .bind(&s.state_enc)
        .bind(&s.status)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(header_version(&s.state_enc))
        .bind(&s.redirect_uri)
        .execute(self.w())
        .await?;
        Ok(())
    }

    pub async fn get_connect_session(
        &self,
        id: &str,
    ) -> Result<Option<ConnectSessionRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM connect_sessions WHERE id = $1");
        Ok(
            sqlx::query_as::<_, ConnectSessionRow>(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn find_connect_session_by_state(
        &self,
        state_hash: &str,
    ) -> Result<Option<ConnectSessionRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM connect_sessions WHERE state_hash = $1");
        Ok(
            sqlx::query_as::<_, ConnectSessionRow>(sqlx::AssertSqlSafe(sql))
                .bind(state_hash)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Moves a pending, unexpired session to `exchanging` for this code: the one
    /// caller that wins does the exchange; duplicates wait for its outcome.
    pub async fn claim_connect_session(
        &self,
        id: &str,
        code_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE connect_sessions SET status = 'exchanging', code_hash = $2
             WHERE id = $1 AND status = 'pending' AND expires_at > $3",
        )
        .bind(id)
        .bind(code_hash)
        .bind(now)
        .execute(self.w())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the outcome; only a pending or exchanging session can finish, once.
    pub async fn finish_connect_session(
        &self,
        id: &str,
        status: &str,
        result_account_id: Option<&str>,
        error: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE connect_sessions SET status = $2, result_account_id = $3, error = $4, completed_at = $5
             WHERE id = $1 AND status IN ('pending', 'exchanging')",
        )
        .bind(id)
        .bind(status)
        .bind(result_account_id)
        .bind(error)
        .bind(now)
        .execute(self.w())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
