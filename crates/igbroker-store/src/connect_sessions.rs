use igbroker_core::{ConnectSessionStatus, InstagramScope};
use sqlx::FromRow;

use crate::error::{decode, decode_scopes};
use crate::rotation::header_version;
use crate::{Store, StoreError, Tx};

#[derive(Debug, Clone)]
pub struct ConnectSessionRow {
    pub id: String,
    pub app_id: String,
    pub end_user: String,
    pub scopes: Vec<InstagramScope>,
    pub return_url: Option<String>,
    /// Set when the session re-connects an existing account.
    pub account_id: Option<String>,
    pub state_hash: String,
    pub state_enc: Vec<u8>,
    pub status: ConnectSessionStatus,
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

#[derive(FromRow)]
struct SessionRecord {
    id: String,
    app_id: String,
    end_user: String,
    scopes: String,
    return_url: Option<String>,
    account_id: Option<String>,
    state_hash: String,
    state_enc: Vec<u8>,
    status: String,
    code_hash: Option<String>,
    result_account_id: Option<String>,
    error: Option<String>,
    created_at: i64,
    expires_at: i64,
    completed_at: Option<i64>,
    redirect_uri: Option<String>,
}

impl TryFrom<SessionRecord> for ConnectSessionRow {
    type Error = StoreError;

    fn try_from(r: SessionRecord) -> Result<ConnectSessionRow, StoreError> {
        let status = decode(
            "connect_sessions",
            &r.id,
            "status",
            &r.status,
            ConnectSessionStatus::parse,
        )?;
        let scopes = decode_scopes("connect_sessions", &r.id, &r.scopes)?;
        Ok(ConnectSessionRow {
            id: r.id,
            app_id: r.app_id,
            end_user: r.end_user,
            scopes,
            return_url: r.return_url,
            account_id: r.account_id,
            state_hash: r.state_hash,
            state_enc: r.state_enc,
            status,
            code_hash: r.code_hash,
            result_account_id: r.result_account_id,
            error: r.error,
            created_at: r.created_at,
            expires_at: r.expires_at,
            completed_at: r.completed_at,
            redirect_uri: r.redirect_uri,
        })
    }
}

const COLUMNS: &str = "id, app_id, end_user, scopes, return_url, account_id, state_hash, state_enc, status, code_hash, result_account_id, error, created_at, expires_at, completed_at, redirect_uri";

impl Tx {
    pub async fn insert_connect_session(
        &mut self,
        s: &ConnectSessionRow,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO connect_sessions (id, app_id, end_user, scopes, return_url, account_id, state_hash, state_enc, status, created_at, expires_at, state_key_version, redirect_uri)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&s.id)
        .bind(&s.app_id)
        .bind(&s.end_user)
        .bind(InstagramScope::join(&s.scopes))
        .bind(&s.return_url)
        .bind(&s.account_id)
        .bind(&s.state_hash)
        .bind(&s.state_enc)
        .bind(s.status.as_str())
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(header_version(&s.state_enc))
        .bind(&s.redirect_uri)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records the outcome; only a pending or exchanging session can finish, once.
    pub async fn finish_connect_session(
        &mut self,
        id: &str,
        status: ConnectSessionStatus,
        result_account_id: Option<&str>,
        error: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE connect_sessions SET status = $2, result_account_id = $3, error = $4, completed_at = $5
             WHERE id = $1 AND status IN ('pending', 'exchanging')",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(result_account_id)
        .bind(error)
        .bind(now)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    pub async fn insert_connect_session(&self, s: &ConnectSessionRow) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.insert_connect_session(s).await?;
        tx.commit().await
    }

    pub async fn get_connect_session(
        &self,
        id: &str,
    ) -> Result<Option<ConnectSessionRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM connect_sessions WHERE id = $1");
        sqlx::query_as::<_, SessionRecord>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(ConnectSessionRow::try_from)
            .transpose()
    }

    pub async fn find_connect_session_by_state(
        &self,
        state_hash: &str,
    ) -> Result<Option<ConnectSessionRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM connect_sessions WHERE state_hash = $1");
        sqlx::query_as::<_, SessionRecord>(sqlx::AssertSqlSafe(sql))
            .bind(state_hash)
            .fetch_optional(&self.pool)
            .await?
            .map(ConnectSessionRow::try_from)
            .transpose()
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

    /// Records the outcome alone (a denial, a failed exchange: nothing else changes).
    pub async fn finish_connect_session(
        &self,
        id: &str,
        status: ConnectSessionStatus,
        result_account_id: Option<&str>,
        error: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = tx
            .finish_connect_session(id, status, result_account_id, error, now)
            .await?;
        tx.commit().await?;
        Ok(done)
    }
}
