//! Queries behind `igbroker keys status|rotate`: which key version protects how many
//! records, and re-sealing them in batches with compare-and-swap.

use std::collections::BTreeMap;

use sqlx::FromRow;

use crate::{Store, StoreError};

/// Every column that holds a value sealed by the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SealedColumn {
    AccountToken,
    AppClientSecret,
    /// The client secret an app had before its last change, kept for a grace period.
    AppPreviousClientSecret,
    AppWebhookSecret,
    /// The webhook secret an app had before its last rotation, still signing for a while.
    AppPreviousWebhookSecret,
    AppWebhookVerifyToken,
    ConnectState,
}

impl SealedColumn {
    pub const ALL: [SealedColumn; 7] = [
        SealedColumn::AccountToken,
        SealedColumn::AppClientSecret,
        SealedColumn::AppPreviousClientSecret,
        SealedColumn::AppWebhookSecret,
        SealedColumn::AppPreviousWebhookSecret,
        SealedColumn::AppWebhookVerifyToken,
        SealedColumn::ConnectState,
    ];

    /// The table, which is also the table named in the value's associated data.
    pub fn table(self) -> &'static str {
        match self {
            SealedColumn::AccountToken => "accounts",
            SealedColumn::AppClientSecret
            | SealedColumn::AppPreviousClientSecret
            | SealedColumn::AppWebhookSecret
            | SealedColumn::AppPreviousWebhookSecret
            | SealedColumn::AppWebhookVerifyToken => "apps",
            SealedColumn::ConnectState => "connect_sessions",
        }
    }

    /// The column name bound into the value's associated data (not the SQL column).
    pub fn aad_column(self) -> &'static str {
        match self {
            SealedColumn::AccountToken => "token",
            SealedColumn::AppClientSecret => "client_secret",
            SealedColumn::AppPreviousClientSecret => "previous_client_secret",
            SealedColumn::AppWebhookSecret => "webhook_secret",
            SealedColumn::AppPreviousWebhookSecret => "previous_webhook_secret",
            SealedColumn::AppWebhookVerifyToken => "webhook_verify_token",
            SealedColumn::ConnectState => "state",
        }
    }

    /// A stable name for output (`keys status --json`).
    pub fn key(self) -> &'static str {
        match self {
            SealedColumn::AccountToken => "account_tokens",
            SealedColumn::AppClientSecret => "app_client_secrets",
            SealedColumn::AppPreviousClientSecret => "app_previous_client_secrets",
            SealedColumn::AppWebhookSecret => "app_webhook_secrets",
            SealedColumn::AppPreviousWebhookSecret => "app_previous_webhook_secrets",
            SealedColumn::AppWebhookVerifyToken => "app_webhook_verify_tokens",
            SealedColumn::ConnectState => "connect_session_states",
        }
    }

    fn sql_column(self) -> &'static str {
        match self {
            SealedColumn::AccountToken => "token_enc",
            SealedColumn::AppClientSecret => "client_secret_enc",
            SealedColumn::AppPreviousClientSecret => "previous_client_secret_enc",
            SealedColumn::AppWebhookSecret => "webhook_secret_enc",
            SealedColumn::AppPreviousWebhookSecret => "previous_webhook_secret_enc",
            SealedColumn::AppWebhookVerifyToken => "webhook_verify_token_enc",
            SealedColumn::ConnectState => "state_enc",
        }
    }

    /// The indexed column that mirrors the sealed value's key version, where the table can
    /// grow large; apps are few and are read whole.
    fn version_column(self) -> Option<&'static str> {
        match self {
            SealedColumn::AccountToken => Some("token_key_version"),
            SealedColumn::ConnectState => Some("state_key_version"),
            SealedColumn::AppClientSecret
            | SealedColumn::AppPreviousClientSecret
            | SealedColumn::AppWebhookSecret
            | SealedColumn::AppPreviousWebhookSecret
            | SealedColumn::AppWebhookVerifyToken => None,
        }
    }
}

/// The key version in a sealed value's header; 0 when the value is not one the vault reads.
pub(crate) fn header_version(sealed: &[u8]) -> i64 {
    igbroker_vault::sealed_key_version(sealed).map_or(0, i64::from)
}

#[derive(Debug, Clone, FromRow)]
pub struct SealedValue {
    pub id: String,
    pub sealed: Vec<u8>,
}

/// One page of values under a key version; `next_after` is the cursor for the next page,
/// `None` once the column is exhausted.
#[derive(Debug, Clone, Default)]
pub struct SealedPage {
    pub values: Vec<SealedValue>,
    pub next_after: Option<String>,
}

/// A re-sealed value, written only if the row still holds `old`.
#[derive(Debug, Clone)]
pub struct SealedSwap {
    pub id: String,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

impl Store {
    /// Records per key version in `column` (version 0: values the vault cannot parse).
    pub async fn count_sealed_by_version(
        &self,
        column: SealedColumn,
    ) -> Result<BTreeMap<i64, i64>, StoreError> {
        let table = column.table();
        if let Some(vcol) = column.version_column() {
            let sql = format!(
                "SELECT {vcol}, COUNT(*) FROM {table} WHERE {vcol} IS NOT NULL GROUP BY {vcol}"
            );
            let rows: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(&self.pool)
                .await?;
            return Ok(rows.into_iter().collect());
        }
        let col = column.sql_column();
        let sql = format!("SELECT id, {col} AS sealed FROM {table} WHERE {col} IS NOT NULL");
        let rows: Vec<SealedValue> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        let mut out = BTreeMap::new();
        for r in rows {
            *out.entry(header_version(&r.sealed)).or_insert(0) += 1;
        }
        Ok(out)
    }

    /// Up to `limit` values of `column` sealed under `version`, in id order after `after`.
    pub async fn sealed_page(
        &self,
        column: SealedColumn,
        version: i64,
        after: &str,
        limit: i64,
    ) -> Result<SealedPage, StoreError> {
        let table = column.table();
        let col = column.sql_column();
        let rows: Vec<SealedValue> = match column.version_column() {
            Some(vcol) => {
                let sql = format!(
                    "SELECT id, {col} AS sealed FROM {table}
                     WHERE {vcol} = $1 AND id > $2 AND {col} IS NOT NULL ORDER BY id LIMIT $3"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(version)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT id, {col} AS sealed FROM {table}
                     WHERE id > $1 AND {col} IS NOT NULL ORDER BY id LIMIT $2"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        let next_after = if i64::try_from(rows.len()).unwrap_or(i64::MAX) < limit {
            None
        } else {
            rows.last().map(|r| r.id.clone())
        };
        let values = rows
            .into_iter()
            .filter(|r| header_version(&r.sealed) == version)
            .collect();
        Ok(SealedPage { values, next_after })
    }

    /// Writes re-sealed values in one short transaction; a row whose value changed since it
    /// was read (a refresh stored a new token) keeps the newer value. Returns how many were
    /// written.
    pub async fn swap_sealed(
        &self,
        column: SealedColumn,
        swaps: &[SealedSwap],
    ) -> Result<u64, StoreError> {
        if swaps.is_empty() {
            return Ok(0);
        }
        let table = column.table();
        let col = column.sql_column();
        let vcol = column.version_column();
        let sql = match vcol {
            Some(vcol) => {
                format!("UPDATE {table} SET {col} = $1, {vcol} = $2 WHERE id = $3 AND {col} = $4")
            }
            None => format!("UPDATE {table} SET {col} = $1 WHERE id = $2 AND {col} = $3"),
        };
        let mut tx = self.w().begin().await?;
        let mut written = 0;
        for s in swaps {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(&s.new);
            if vcol.is_some() {
                q = q.bind(header_version(&s.new));
            }
            written += q
                .bind(&s.id)
                .bind(&s.old)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Fills `state_key_version` of sessions written before the column existed.
    pub(crate) async fn backfill_key_versions(&self) -> Result<(), StoreError> {
        let mut after = String::new();
        loop {
            let rows: Vec<SealedValue> = sqlx::query_as(
                "SELECT id, state_enc AS sealed FROM connect_sessions
                 WHERE state_key_version IS NULL AND id > $1 ORDER BY id LIMIT 500",
            )
            .bind(&after)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.id.clone();
            let mut tx = self.w().begin().await?;
            for r in &rows {
                sqlx::query("UPDATE connect_sessions SET state_key_version = $1 WHERE id = $2")
                    .bind(header_version(&r.sealed))
                    .bind(&r.id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
    }
}
