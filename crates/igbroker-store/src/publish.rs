//! Publish requests: what makes `POST /v1/accounts/{id}/media` publish once per
//! Idempotency-Key, across replicas and restarts. Every change is guarded by the
//! attempt's `lease_token`, so an attempt that lost its lease changes nothing.

use sqlx::FromRow;

use crate::{Store, StoreError, Tx};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PublishRequestRow {
    pub account_id: String,
    pub idem_key: String,
    /// SHA-256 of the validated request: the same key with another body is refused.
    pub body_hash: String,
    /// `image`, `carousel`, `reel` or `story`.
    pub kind: String,
    /// `in_progress`, `published` or `failed`.
    pub state: String,
    /// `containers` or `publishing` (media_publish may have been sent).
    pub stage: String,
    pub lease_token: String,
    pub lease_until: i64,
    pub container_id: Option<String>,
    pub media_id: Option<String>,
    pub permalink: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "account_id, idem_key, body_hash, kind, state, stage, lease_token, lease_until,
    container_id, media_id, permalink, error_code, error_message, created_at, updated_at";

/// One attempt at a request: what every guarded change names.
pub struct PublishAttempt<'a> {
    pub account_id: &'a str,
    pub idem_key: &'a str,
    pub lease_token: &'a str,
}

/// How a request ended, stored for every retry of its key to see.
pub enum PublishOutcome<'a> {
    Published {
        media_id: &'a str,
        permalink: Option<&'a str>,
    },
    Failed {
        code: &'a str,
        message: &'a str,
    },
}

impl Tx {
    /// Inserts a new request; false when the key is taken already (by this or another
    /// replica), and nothing changed.
    pub async fn insert_publish_request(
        &mut self,
        row: &PublishRequestRow,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO publish_requests (account_id, idem_key, body_hash, kind, state, stage,
                 lease_token, lease_until, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'in_progress', 'containers', $5, $6, $7, $7)
             ON CONFLICT (account_id, idem_key) DO NOTHING",
        )
        .bind(&row.account_id)
        .bind(&row.idem_key)
        .bind(&row.body_hash)
        .bind(&row.kind)
        .bind(&row.lease_token)
        .bind(row.lease_until)
        .bind(row.created_at)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes over an `in_progress` request whose lease expired before `now`; false when
    /// another attempt holds it (or took it first).
    pub async fn take_over_publish_request(
        &mut self,
        attempt: &PublishAttempt<'_>,
        lease_until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE publish_requests SET lease_token = $3, lease_until = $4, updated_at = $5
             WHERE account_id = $1 AND idem_key = $2 AND state = 'in_progress' AND lease_until < $5",
        )
        .bind(attempt.account_id)
        .bind(attempt.idem_key)
        .bind(attempt.lease_token)
        .bind(lease_until)
        .bind(now)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores how the request ended; false when the attempt no longer holds it.
    pub async fn finish_publish_request(
        &mut self,
        attempt: &PublishAttempt<'_>,
        outcome: &PublishOutcome<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let q = match outcome {
            PublishOutcome::Published {
                media_id,
                permalink,
            } => sqlx::query(
                "UPDATE publish_requests SET state = 'published', media_id = $4, permalink = $5,
                     updated_at = $6
                 WHERE account_id = $1 AND idem_key = $2 AND lease_token = $3 AND state = 'in_progress'",
            )
            .bind(attempt.account_id)
            .bind(attempt.idem_key)
            .bind(attempt.lease_token)
            .bind(*media_id)
            .bind(*permalink)
            .bind(now),
            PublishOutcome::Failed { code, message } => sqlx::query(
                "UPDATE publish_requests SET state = 'failed', error_code = $4,
                     error_message = $5, updated_at = $6
                 WHERE account_id = $1 AND idem_key = $2 AND lease_token = $3 AND state = 'in_progress'",
            )
            .bind(attempt.account_id)
            .bind(attempt.idem_key)
            .bind(attempt.lease_token)
            .bind(*code)
            .bind(*message)
            .bind(now),
        };
        Ok(q.execute(self.conn()).await?.rows_affected() == 1)
    }

    /// Forgets a request that failed before anything reached Instagram's feed, so its key
    /// may be sent again; false when the attempt no longer holds it.
    pub async fn delete_publish_request(
        &mut self,
        attempt: &PublishAttempt<'_>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM publish_requests
             WHERE account_id = $1 AND idem_key = $2 AND lease_token = $3 AND state = 'in_progress'
               AND stage = 'containers'",
        )
        .bind(attempt.account_id)
        .bind(attempt.idem_key)
        .bind(attempt.lease_token)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    pub async fn publish_request(
        &self,
        account_id: &str,
        idem_key: &str,
    ) -> Result<Option<PublishRequestRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM publish_requests WHERE account_id = $1 AND idem_key = $2"
        );
        Ok(
            sqlx::query_as::<_, PublishRequestRow>(sqlx::AssertSqlSafe(sql))
                .bind(account_id)
                .bind(idem_key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Renews the attempt's lease and records its progress (`stage`, the container);
    /// false when the attempt no longer holds the request, and it must stop.
    pub async fn advance_publish_request(
        &self,
        attempt: &PublishAttempt<'_>,
        stage: &str,
        container_id: Option<&str>,
        lease_until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE publish_requests SET stage = $4, container_id = COALESCE($5, container_id),
                 lease_until = $6, updated_at = $7
             WHERE account_id = $1 AND idem_key = $2 AND lease_token = $3 AND state = 'in_progress'",
        )
        .bind(attempt.account_id)
        .bind(attempt.idem_key)
        .bind(attempt.lease_token)
        .bind(stage)
        .bind(container_id)
        .bind(lease_until)
        .bind(now)
        .execute(self.w())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
