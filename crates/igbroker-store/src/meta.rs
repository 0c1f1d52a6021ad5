//! What Meta's callbacks need: the accounts of an Instagram user within one app, the
//! previous client secret during a rotation, data-deletion requests, and deleting every
//! record of a user.

use sqlx::FromRow;

use crate::accounts::{AccountRecord, COLUMNS as ACCOUNT_COLUMNS};
use crate::{AccountRow, Store, StoreError, Tx};

/// A data-deletion request, as its status page shows it. It names no Instagram user.
#[derive(Debug, Clone, FromRow)]
pub struct DataDeletionRow {
    pub code: String,
    pub app_id: String,
    /// SHA-256 of the app id and the user id Meta sent: finds a repeated request's code.
    pub subject_hash: String,
    pub requested_at: i64,
    pub completed_at: Option<i64>,
    pub accounts_deleted: i64,
    pub sessions_deleted: i64,
    pub events_deleted: i64,
}

const DELETION_COLUMNS: &str = "code, app_id, subject_hash, requested_at, completed_at, accounts_deleted, sessions_deleted, events_deleted";

/// What deleting a user's records removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub accounts: i64,
    pub sessions: i64,
    pub events: i64,
}

impl Store {
    /// The accounts of `app_id` whose professional id or app-scoped id is `user_id`, in any
    /// status: Meta does not say which of the two its callbacks carry.
    pub async fn accounts_of_instagram_user(
        &self,
        app_id: &str,
        user_id: &str,
    ) -> Result<Vec<AccountRow>, StoreError> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts
             WHERE app_id = $1 AND (ig_user_id = $2 OR ig_scoped_id = $2) ORDER BY id"
        );
        sqlx::query_as::<_, AccountRecord>(sqlx::AssertSqlSafe(sql))
            .bind(app_id)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(AccountRow::try_from)
            .collect()
    }

    /// The sealed previous client secret of an app and until when it verifies.
    pub async fn previous_client_secret(
        &self,
        app_id: &str,
    ) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        let row: Option<(Option<Vec<u8>>, Option<i64>)> = sqlx::query_as(
            "SELECT previous_client_secret_enc, previous_client_secret_until FROM apps WHERE id = $1",
        )
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some((Some(sealed), Some(until))) => Some((sealed, until)),
            _ => None,
        })
    }

    pub async fn data_deletion(&self, code: &str) -> Result<Option<DataDeletionRow>, StoreError> {
        let sql = format!("SELECT {DELETION_COLUMNS} FROM data_deletions WHERE code = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(code)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn data_deletion_by_subject(
        &self,
        app_id: &str,
        subject_hash: &str,
    ) -> Result<Option<DataDeletionRow>, StoreError> {
        let sql = format!(
            "SELECT {DELETION_COLUMNS} FROM data_deletions WHERE app_id = $1 AND subject_hash = $2"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(app_id)
            .bind(subject_hash)
            .fetch_optional(&self.pool)
            .await?)
    }
}

impl Tx {
    /// Keeps an app's previous client secret (sealed for its own column) verifying until
    /// `until`; written on the transaction that changes the secret.
    pub async fn set_previous_client_secret(
        &mut self,
        app_id: &str,
        previous_sealed: &[u8],
        until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE apps SET previous_client_secret_enc = $2, previous_client_secret_until = $3
         WHERE id = $1",
        )
        .bind(app_id)
        .bind(previous_sealed)
        .bind(until)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a deletion request, or updates it when Meta repeats it.
    pub async fn save_data_deletion(&mut self, row: &DataDeletionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO data_deletions (code, app_id, subject_hash, requested_at, completed_at,
             accounts_deleted, sessions_deleted, events_deleted)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (code) DO UPDATE SET completed_at = $5, accounts_deleted = $6,
             sessions_deleted = $7, events_deleted = $8",
        )
        .bind(&row.code)
        .bind(&row.app_id)
        .bind(&row.subject_hash)
        .bind(row.requested_at)
        .bind(row.completed_at)
        .bind(row.accounts_deleted)
        .bind(row.sessions_deleted)
        .bind(row.events_deleted)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Deletes an account and everything that names it: its connect sessions, the events about
    /// it still in the outbox (with their delivery log), and its usage history. Audit entries
    /// stay: they name the account by broker id only.
    pub async fn delete_account_records(
        &mut self,
        account_id: &str,
    ) -> Result<Deleted, StoreError> {
        let sessions = sqlx::query(
            "DELETE FROM connect_sessions WHERE account_id = $1 OR result_account_id = $1",
        )
        .bind(account_id)
        .execute(self.conn())
        .await?
        .rows_affected();
        sqlx::query(
            "DELETE FROM webhook_deliveries
         WHERE outbox_id IN (SELECT id FROM webhook_outbox WHERE account_id = $1)",
        )
        .bind(account_id)
        .execute(self.conn())
        .await?;
        let events = sqlx::query("DELETE FROM webhook_outbox WHERE account_id = $1")
            .bind(account_id)
            .execute(self.conn())
            .await?
            .rows_affected();
        for sql in [
            "DELETE FROM usage_baselines WHERE account_id = $1",
            "DELETE FROM usage_readers WHERE account_id = $1",
            "DELETE FROM publish_requests WHERE account_id = $1",
        ] {
            sqlx::query(sql)
                .bind(account_id)
                .execute(self.conn())
                .await?;
        }
        let accounts = sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(account_id)
            .execute(self.conn())
            .await?
            .rows_affected();
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Ok(Deleted {
            accounts: n(accounts),
            sessions: n(sessions),
            events: n(events),
        })
    }
}
