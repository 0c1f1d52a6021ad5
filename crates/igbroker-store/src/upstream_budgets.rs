//! Instagram's rate-limit budgets as the replicas share them (see `upstream_budgets` in the
//! migrations): one row per app or account that has come near a limit or been throttled.

use sqlx::FromRow;

use crate::{Store, StoreError};

/// One scope's last report.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct BudgetRow {
    /// `app:{app_id}` or `account:{account_id}`.
    pub scope: String,
    /// The highest share of any allowance Instagram reported, in percent.
    pub used_pct: i64,
    /// When Instagram estimated the budget returns (unix seconds), if it said.
    pub regain_at: Option<i64>,
    /// No call that can wait is sent before this (unix seconds): set by a throttling error.
    pub held_until: Option<i64>,
    /// The Graph error code that set the hold.
    pub hold_code: Option<i64>,
    pub updated_at: i64,
}

impl Store {
    /// The rows of these scopes (missing scopes have none: no limit was near).
    pub async fn budgets(&self, scopes: &[&str; 2]) -> Result<Vec<BudgetRow>, StoreError> {
        Ok(sqlx::query_as::<_, BudgetRow>(
            "SELECT scope, used_pct, regain_at, held_until, hold_code, updated_at
             FROM upstream_budgets WHERE scope IN ($1, $2)",
        )
        .bind(scopes[0])
        .bind(scopes[1])
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records a report. A hold is only ever extended here, never shortened, so a late
    /// answer from another replica cannot lift it early.
    pub async fn record_budget(&self, row: &BudgetRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO upstream_budgets (scope, used_pct, regain_at, held_until, hold_code, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (scope) DO UPDATE SET
                used_pct = excluded.used_pct,
                regain_at = excluded.regain_at,
                held_until = CASE
                    WHEN upstream_budgets.held_until IS NULL THEN excluded.held_until
                    WHEN excluded.held_until IS NULL THEN upstream_budgets.held_until
                    WHEN excluded.held_until > upstream_budgets.held_until THEN excluded.held_until
                    ELSE upstream_budgets.held_until END,
                hold_code = COALESCE(excluded.hold_code, upstream_budgets.hold_code),
                updated_at = excluded.updated_at",
        )
        .bind(&row.scope)
        .bind(row.used_pct)
        .bind(row.regain_at)
        .bind(row.held_until)
        .bind(row.hold_code)
        .bind(row.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Each app's last reported usage (percent), for reports newer than `since`.
    pub async fn usage_by_app(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT scope, used_pct FROM upstream_budgets
             WHERE scope LIKE 'app:%' AND updated_at >= $1 ORDER BY scope",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(scope, pct)| (scope.trim_start_matches("app:").to_string(), pct))
            .collect())
    }

    /// Active accounts whose token expires before `t` (unix seconds).
    pub async fn tokens_expiring_before(&self, t: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM accounts WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at < $1",
        )
        .bind(t)
        .fetch_one(&self.pool)
        .await?)
    }
}
