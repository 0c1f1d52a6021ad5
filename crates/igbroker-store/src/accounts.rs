use sqlx::FromRow;

use crate::rotation::header_version;
use crate::{Store, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct AccountRow {
    pub id: String,
    pub app_id: String,
    /// Empty when the connecting service named no end user.
    pub end_user: String,
    pub ig_user_id: String,
    pub ig_scoped_id: String,
    pub username: Option<String>,
    pub scopes: String,
    pub status: String,
    pub status_reason: Option<String>,
    /// Sealed by the vault, bound to (accounts, id, token); NULL once revoked.
    pub token_enc: Option<Vec<u8>>,
    pub token_key_version: Option<i64>,
    pub issued_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub refreshed_at: Option<i64>,
    pub next_refresh_at: Option<i64>,
    pub refresh_attempts: i64,
    pub refresh_failing: i64,
    pub backoff_until: Option<i64>,
    pub last_error: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, app_id, end_user, ig_user_id, ig_scoped_id, username, scopes, status, status_reason, token_enc, token_key_version, issued_at, expires_at, refreshed_at, next_refresh_at, refresh_attempts, refresh_failing, backoff_until, last_error, lease_owner, lease_until, created_at, updated_at";

/// A freshly connected (or re-connected) token and who it belongs to.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: String,
    pub app_id: String,
    pub end_user: String,
    pub ig_user_id: String,
    pub ig_scoped_id: String,
    pub username: Option<String>,
    pub scopes: String,
    pub token: TokenUpdate,
}

#[derive(Debug, Clone)]
pub struct TokenUpdate {
    pub token_enc: Vec<u8>,
    pub key_version: i64,
    pub issued_at: i64,
    pub expires_at: i64,
    pub next_refresh_at: i64,
}

impl TokenUpdate {
    /// The version named by the sealed value itself, so that the indexed column can never
    /// disagree with the ciphertext (a ring reloaded between sealing and reading
    /// `current_version` would otherwise record the wrong one).
    fn stored_key_version(&self) -> i64 {
        match header_version(&self.token_enc) {
            0 => self.key_version,
            v => v,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    pub app_id: Option<String>,
    pub end_user: Option<String>,
    pub status: Option<String>,
}

impl Store {
    pub async fn insert_account(&self, a: &NewAccount, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO accounts (id, app_id, end_user, ig_user_id, ig_scoped_id, username, scopes, status,
                token_enc, token_key_version, issued_at, expires_at, next_refresh_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $11, $12, $13, $13)",
        )
        .bind(&a.id)
        .bind(&a.app_id)
        .bind(&a.end_user)
        .bind(&a.ig_user_id)
        .bind(&a.ig_scoped_id)
        .bind(&a.username)
        .bind(&a.scopes)
        .bind(&a.token.token_enc)
        .bind(a.token.stored_key_version())
        .bind(a.token.issued_at)
        .bind(a.token.expires_at)
        .bind(a.token.next_refresh_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Many accounts in one transaction (imports, load tests, benchmarks).
    pub async fn insert_accounts(&self, list: &[NewAccount], now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for a in list {
            sqlx::query(
                "INSERT INTO accounts (id, app_id, end_user, ig_user_id, ig_scoped_id, username, scopes, status,
                    token_enc, token_key_version, issued_at, expires_at, next_refresh_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $11, $12, $13, $13)",
            )
            .bind(&a.id)
            .bind(&a.app_id)
            .bind(&a.end_user)
            .bind(&a.ig_user_id)
            .bind(&a.ig_scoped_id)
            .bind(&a.username)
            .bind(&a.scopes)
            .bind(&a.token.token_enc)
            .bind(a.token.key_version)
            .bind(a.token.issued_at)
            .bind(a.token.expires_at)
            .bind(a.token.next_refresh_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A re-connect: new token and scopes on the same account, which becomes active again.
    pub async fn reconnect_account(&self, a: &NewAccount, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET ig_scoped_id = $2, username = $3, scopes = $4, status = 'active', status_reason = NULL,
                token_enc = $5, token_key_version = $6, issued_at = $7, expires_at = $8, refreshed_at = NULL,
                next_refresh_at = $9, refresh_attempts = 0, refresh_failing = 0, backoff_until = NULL,
                last_error = NULL, updated_at = $10
             WHERE id = $1 AND status <> 'revoked'",
        )
        .bind(&a.id)
        .bind(&a.ig_scoped_id)
        .bind(&a.username)
        .bind(&a.scopes)
        .bind(&a.token.token_enc)
        .bind(a.token.stored_key_version())
        .bind(a.token.issued_at)
        .bind(a.token.expires_at)
        .bind(a.token.next_refresh_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn get_account(&self, id: &str) -> Result<Option<AccountRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM accounts WHERE id = $1");
        Ok(sqlx::query_as::<_, AccountRow>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn find_live_account(
        &self,
        app_id: &str,
        end_user: &str,
        ig_user_id: &str,
    ) -> Result<Option<AccountRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM accounts WHERE app_id = $1 AND end_user = $2 AND ig_user_id = $3 AND status <> 'revoked'"
        );
        Ok(sqlx::query_as::<_, AccountRow>(sqlx::AssertSqlSafe(sql))
            .bind(app_id)
            .bind(end_user)
            .bind(ig_user_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Accounts in id order after `after_id`; each filter that is set narrows by an indexed column.
    pub async fn list_accounts(
        &self,
        filter: &AccountFilter,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AccountRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM accounts
             WHERE id > $1 AND ($2 = '' OR app_id = $2) AND ($3 = '' OR end_user = $3) AND ($4 = '' OR status = $4)
             ORDER BY id LIMIT $5"
        );
        Ok(sqlx::query_as::<_, AccountRow>(sqlx::AssertSqlSafe(sql))
            .bind(after_id.unwrap_or(""))
            .bind(filter.app_id.as_deref().unwrap_or(""))
            .bind(filter.end_user.as_deref().unwrap_or(""))
            .bind(filter.status.as_deref().unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Takes the refresh lease unless another holder's lease is still running.
    pub async fn acquire_refresh_lease(
        &self,
        id: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET lease_owner = $2, lease_until = $3
             WHERE id = $1 AND status = 'active' AND (lease_until IS NULL OR lease_until <= $4)",
        )
        .bind(id)
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn release_refresh_lease(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2")
            .bind(id)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Writes a refreshed token only while `owner` still holds an unexpired lease,
    /// so a holder that stalled past its lease cannot overwrite a newer result.
    pub async fn store_refreshed_token(
        &self,
        id: &str,
        owner: &str,
        now: i64,
        token: &TokenUpdate,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET token_enc = $3, token_key_version = $4, issued_at = $5, expires_at = $6,
                refreshed_at = $5, next_refresh_at = $7, refresh_attempts = 0, refresh_failing = 0,
                backoff_until = NULL, last_error = NULL, lease_owner = NULL, lease_until = NULL, updated_at = $8
             WHERE id = $1 AND lease_owner = $2 AND lease_until > $8 AND status = 'active'",
        )
        .bind(id)
        .bind(owner)
        .bind(&token.token_enc)
        .bind(token.stored_key_version())
        .bind(token.issued_at)
        .bind(token.expires_at)
        .bind(token.next_refresh_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt (under the lease) and when to try again.
    pub async fn record_refresh_failure(
        &self,
        id: &str,
        owner: &str,
        now: i64,
        error: &str,
        retry_at: i64,
        failing: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET refresh_attempts = refresh_attempts + 1, last_error = $3, backoff_until = $4,
                next_refresh_at = $4, refresh_failing = $5, lease_owner = NULL, lease_until = NULL, updated_at = $6
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(error)
        .bind(retry_at)
        .bind(i64::from(failing))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The token stays (a re-connect replaces it), but nothing refreshes or serves it.
    pub async fn mark_reauth_required(
        &self,
        id: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET status = 'reauth_required', status_reason = $2, next_refresh_at = NULL,
                lease_owner = NULL, lease_until = NULL, last_error = $2, updated_at = $3
             WHERE id = $1 AND status = 'active'",
        )
        .bind(id)
        .bind(reason)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revocation destroys: the ciphertext is deleted, not flagged.
    pub async fn revoke_account(
        &self,
        id: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET status = 'revoked', status_reason = $2, token_enc = NULL, token_key_version = NULL,
                next_refresh_at = NULL, lease_owner = NULL, lease_until = NULL, updated_at = $3
             WHERE id = $1 AND status <> 'revoked'",
        )
        .bind(id)
        .bind(reason)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
