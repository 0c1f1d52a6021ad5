//! Usage history for anomaly detection, learned from the audit log: the worker's cursor and
//! lease, each account's baseline, and the actors that have read each account.
//!
//! The audit log is the source because every token read and Graph call already appends to
//! it: counting from it costs the read path nothing. Its `seq` order is commit order (appends
//! serialize on the chain head), so a cursor on `seq` never skips a late commit.

use sqlx::FromRow;

use crate::{Store, StoreError, Tx};

/// An audit entry as the usage worker reads it.
#[derive(Debug, Clone, FromRow)]
pub struct UsageEntry {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub account_id: Option<String>,
}

/// One account's stored baseline (see `igbroker_core::anomaly::Baseline`); the mean and
/// deviation in millionths, so both databases store them exactly.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct BaselineRow {
    pub account_id: String,
    pub mean_micros: i64,
    pub dev_micros: i64,
    pub first_interval: i64,
    pub folded_through: i64,
    pub current_interval: i64,
    pub current_count: i64,
    pub flagged_interval: Option<i64>,
}

const BASELINE_COLUMNS: &str = "account_id, mean_micros, dev_micros, first_interval, folded_through, current_interval, current_count, flagged_interval";

impl Store {
    /// Takes (or renews) the worker's lease; returns the cursor when this owner holds it.
    pub async fn claim_usage_cursor(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "UPDATE usage_cursor SET lease_owner = $1, lease_until = $2
             WHERE id = 1 AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until <= $3)
             RETURNING after_seq",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .fetch_optional(self.w())
        .await?)
    }

    pub async fn release_usage_cursor(&self, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE usage_cursor SET lease_owner = NULL, lease_until = NULL
             WHERE id = 1 AND lease_owner = $1",
        )
        .bind(owner)
        .execute(self.w())
        .await?;
        Ok(())
    }

    /// The next audit entries after `after_seq`, all actions (the cursor must pass them all).
    pub async fn usage_entries(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<UsageEntry>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT seq, at, actor, action, account_id FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn usage_baseline(
        &self,
        account_id: &str,
    ) -> Result<Option<BaselineRow>, StoreError> {
        let sql = format!("SELECT {BASELINE_COLUMNS} FROM usage_baselines WHERE account_id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Whether `actor` has read `account_id` before.
    pub async fn usage_reader_known(
        &self,
        account_id: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM usage_readers WHERE account_id = $1 AND actor = $2",
        )
        .bind(account_id)
        .bind(actor)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }
}

impl Tx {
    pub async fn save_baseline(&mut self, b: &BaselineRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO usage_baselines (account_id, mean_micros, dev_micros, first_interval,
             folded_through, current_interval, current_count, flagged_interval)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (account_id) DO UPDATE SET mean_micros = $2, dev_micros = $3,
             first_interval = $4, folded_through = $5, current_interval = $6,
             current_count = $7, flagged_interval = $8",
        )
        .bind(&b.account_id)
        .bind(b.mean_micros)
        .bind(b.dev_micros)
        .bind(b.first_interval)
        .bind(b.folded_through)
        .bind(b.current_interval)
        .bind(b.current_count)
        .bind(b.flagged_interval)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn add_usage_reader(
        &mut self,
        account_id: &str,
        actor: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO usage_readers (account_id, actor, first_seen_at) VALUES ($1, $2, $3)
         ON CONFLICT (account_id, actor) DO NOTHING",
        )
        .bind(account_id)
        .bind(actor)
        .bind(at)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Moves the cursor, only while `owner` still holds the lease; false when it was lost (the
    /// caller's transaction must then roll back).
    pub async fn advance_usage_cursor(
        &mut self,
        owner: &str,
        after_seq: i64,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE usage_cursor SET after_seq = $2 WHERE id = 1 AND lease_owner = $1")
                .bind(owner)
                .bind(after_seq)
                .execute(self.conn())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets an account's history (a resumed account learns its use afresh).
    pub async fn reset_usage(&mut self, account_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM usage_baselines WHERE account_id = $1")
            .bind(account_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}

/// Suspending and resuming: status changes of their own, so that revocation and the refresh
/// engine never undo them by accident.
impl Tx {
    /// False when the account was not active.
    pub async fn suspend_account(&mut self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET status = 'suspended', status_reason = 'anomaly_or_operator', updated_at = $2
             WHERE id = $1 AND status = 'active'",
        )
        .bind(id)
        .bind(now)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// False when the account was not suspended.
    pub async fn resume_account(&mut self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET status = 'active', status_reason = NULL, updated_at = $2
             WHERE id = $1 AND status = 'suspended'",
        )
        .bind(id)
        .bind(now)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
