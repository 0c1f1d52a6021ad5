//! The queries behind the refresh scheduler: due work is claimed with a lease in
//! one statement, so any number of replicas share it without double work.

use crate::{Backend, Store, StoreError};

/// What a claim hands back: the whole row, so refreshing needs no other read.
pub type Claimed = crate::AccountRow;

impl Store {
    /// Leases up to `limit` active accounts whose refresh is due (or whose token
    /// already expired), skipping apps on hold. PostgreSQL skips rows another
    /// replica is claiming; SQLite has one writer, so the statement is atomic.
    pub async fn claim_due(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let sql = claim_due_sql(self.backend());
        crate::accounts::typed(
            sqlx::query_as::<_, crate::accounts::AccountRecord>(sqlx::AssertSqlSafe(sql))
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .fetch_all(self.w())
                .await?,
        )
    }

    /// The earliest time any active account needs attention (due refresh or
    /// expiry); the scheduler sleeps until then.
    pub async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        let due: Option<i64> =
            sqlx::query_scalar("SELECT MIN(next_refresh_at) FROM accounts WHERE status = 'active'")
                .fetch_one(&self.pool)
                .await?;
        Ok(due)
    }

    /// Counts due accounts (for `accounts refresh --due` and metrics).
    pub async fn count_due(&self, now: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM accounts WHERE status = 'active' AND next_refresh_at <= $1",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Ids of the next `limit` due accounts in due order (read only).
    pub async fn due_ids(&self, now: i64, limit: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM accounts WHERE status = 'active' AND next_refresh_at <= $1 ORDER BY next_refresh_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Active accounts in id order (for `accounts refresh --all`).
    pub async fn active_ids_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM accounts WHERE status = 'active' AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Takes up to `n` units of the app's refresh budget for the current window,
    /// shared by all replicas; returns how many it got (0 when spent or held).
    pub async fn take_app_budget_n(
        &self,
        app_id: &str,
        now: i64,
        window_secs: i64,
        per_window: i64,
        n: i64,
    ) -> Result<i64, StoreError> {
        for _ in 0..8 {
            let row: Option<(i64, i64, i64)> = sqlx::query_as(
                "SELECT window_start, used, hold_until FROM app_budgets WHERE app_id = $1",
            )
            .bind(app_id)
            .fetch_optional(self.w())
            .await?;
            let Some((start, used, hold)) = row else {
                sqlx::query(
                    "INSERT INTO app_budgets (app_id, window_start, used, hold_until) VALUES ($1, $2, 0, 0)
                     ON CONFLICT (app_id) DO NOTHING",
                )
                .bind(app_id)
                .bind(now)
                .execute(self.w())
                .await?;
                continue;
            };
            if hold > now {
                return Ok(0);
            }
            let (new_start, base) = if start + window_secs <= now {
                (now, 0)
            } else {
                (start, used)
            };
            let granted = n.min(per_window - base).max(0);
            if granted == 0 {
                return Ok(0);
            }
            // Compare-and-swap on what was read, so two replicas never both take the last units.
            let done = sqlx::query(
                "UPDATE app_budgets SET window_start = $2, used = $3
                 WHERE app_id = $1 AND window_start = $4 AND used = $5 AND hold_until <= $6",
            )
            .bind(app_id)
            .bind(new_start)
            .bind(base + granted)
            .bind(start)
            .bind(used)
            .bind(now)
            .execute(self.w())
            .await?;
            if done.rows_affected() == 1 {
                return Ok(granted);
            }
        }
        Ok(0)
    }

    /// When the app's current budget window ends (for rescheduling a deferred account).
    pub async fn app_budget_window_end(
        &self,
        app_id: &str,
        window_secs: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT window_start, hold_until FROM app_budgets WHERE app_id = $1")
                .bind(app_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(start, hold)| (start + window_secs).max(hold)))
    }

    /// Holds every refresh of an app until `until` (Instagram said to slow down).
    pub async fn hold_app(&self, app_id: &str, until: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO app_budgets (app_id, window_start, used, hold_until) VALUES ($1, $2, 0, $3)
             ON CONFLICT (app_id) DO UPDATE SET hold_until = CASE WHEN app_budgets.hold_until > $3 THEN app_budgets.hold_until ELSE $3 END",
        )
        .bind(app_id)
        .bind(now)
        .bind(until)
        .execute(self.w())
        .await?;
        Ok(())
    }

    /// Gives back a claimed account without an attempt (budget spent, shutdown),
    /// due again at `due_at`.
    pub async fn defer_claimed(
        &self,
        id: &str,
        owner: &str,
        due_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE accounts SET lease_owner = NULL, lease_until = NULL, next_refresh_at = $3
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(due_at)
        .execute(self.w())
        .await?;
        Ok(())
    }

    /// `defer_claimed` for many accounts under one owner, in a few statements.
    pub async fn defer_claimed_many(
        &self,
        ids: &[String],
        owner: &str,
        due_at: i64,
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        for chunk in crate::batch::fixed_chunks(ids) {
            let list = crate::batch::param_list(chunk.len(), 3);
            let sql = format!(
                "UPDATE accounts SET lease_owner = NULL, lease_until = NULL, next_refresh_at = $2
                 WHERE lease_owner = $1 AND id IN ({list})"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(owner)
                .bind(due_at);
            for id in chunk {
                q = q.bind(id.clone());
            }
            n += q.execute(self.w()).await?.rows_affected();
        }
        Ok(n)
    }

    /// Releases every lease this owner still holds (clean shutdown).
    pub async fn release_all_leases(&self, owner_prefix: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET lease_owner = NULL, lease_until = NULL WHERE lease_owner LIKE $1",
        )
        .bind(format!("{owner_prefix}%"))
        .execute(self.w())
        .await?;
        Ok(done.rows_affected())
    }

    /// Leases past their expiry, for monitoring and tests: none should linger.
    pub async fn count_expired_leases(&self, now: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM accounts WHERE lease_until IS NOT NULL AND lease_until <= $1",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }
}

/// What `/metrics` reports about accounts, read in a few indexed queries.
#[derive(Debug, Clone, Default)]
pub struct AccountGauges {
    pub by_status: Vec<(String, i64)>,
    /// Active accounts whose refresh fails for a reason neither transient nor re-auth.
    pub failing: i64,
    /// Active accounts due for a refresh now (a backlog that does not shrink is an alert).
    pub due: i64,
    pub webhooks_pending: i64,
}

impl Store {
    pub async fn account_gauges(&self, now: i64) -> Result<AccountGauges, StoreError> {
        let by_status: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM accounts GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        let failing: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM accounts WHERE refresh_failing = 1 AND status = 'active'",
        )
        .fetch_one(&self.pool)
        .await?;
        let webhooks_pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(AccountGauges {
            by_status,
            failing,
            due: self.count_due(now).await?,
            webhooks_pending,
        })
    }

    pub async fn count_accounts_with_status(
        &self,
        status: igbroker_core::AccountStatus,
    ) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE status = $1")
                .bind(status.as_str())
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

/// The statement of [`Store::claim_due`] (binds: owner, lease_until, now, limit), public so
/// that a test can pin its query plan.
pub fn claim_due_sql(backend: Backend) -> String {
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    format!(
        "UPDATE accounts SET lease_owner = $1, lease_until = $2
         WHERE id IN (
            SELECT id FROM accounts
            WHERE status = 'active' AND next_refresh_at <= $3
              AND (lease_until IS NULL OR lease_until <= $3)
              AND app_id NOT IN (SELECT app_id FROM app_budgets WHERE hold_until > $3)
            ORDER BY next_refresh_at
            LIMIT $4
            {lock})
         RETURNING {COLUMNS}",
        COLUMNS = crate::accounts::COLUMNS
    )
}
