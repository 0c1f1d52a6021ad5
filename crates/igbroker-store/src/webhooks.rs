//! The outbox of events for the owning service, and the log of delivery attempts.

use sqlx::FromRow;

use crate::{Backend, Store, StoreError, Tx};

#[derive(Debug, Clone, FromRow)]
pub struct OutboxRow {
    pub id: String,
    pub app_id: String,
    pub event: String,
    pub account_id: Option<String>,
    pub payload: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct WebhookDelivery {
    pub id: String,
    pub outbox_id: String,
    pub at: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

const COLUMNS: &str = "id, app_id, event, account_id, payload, created_at, attempts, next_attempt_at, delivered_at, failed_at, last_error";

impl Store {
    /// An event committed alone (tests); a state change enqueues on its [`Tx`].
    pub async fn enqueue_webhook(&self, row: &OutboxRow) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.enqueue_webhook(row).await?;
        tx.commit().await
    }

    /// Leases due deliveries, like `claim_due` does for refreshes.
    pub async fn claim_webhooks(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_outbox SET lease_owner = $1, lease_until = $2
             WHERE id IN (
                SELECT id FROM webhook_outbox
                WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $3
                  AND (lease_until IS NULL OR lease_until <= $3)
                ORDER BY next_attempt_at LIMIT $4 {lock})
             RETURNING {COLUMNS}"
        );
        Ok(sqlx::query_as::<_, OutboxRow>(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(self.w())
            .await?)
    }

    pub async fn next_webhook_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM webhook_outbox WHERE delivered_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records one attempt and what follows: delivered, retry at `retry_at`, or given up.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_webhook_attempt(
        &self,
        delivery: &WebhookDelivery,
        owner: &str,
        delivered: bool,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut tx = self.w().begin().await?;
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, outbox_id, at, status_code, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&delivery.id)
        .bind(&delivery.outbox_id)
        .bind(delivery.at)
        .bind(delivery.status_code)
        .bind(&delivery.error)
        .bind(delivery.duration_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = $3,
                delivered_at = CASE WHEN $4 = 1 THEN $5 ELSE NULL END,
                failed_at = CASE WHEN $4 = 0 AND $6 < 0 THEN $5 ELSE NULL END,
                next_attempt_at = CASE WHEN $6 < 0 THEN next_attempt_at ELSE $6 END,
                lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(&delivery.outbox_id)
        .bind(owner)
        .bind(&delivery.error)
        .bind(i64::from(delivered))
        .bind(delivery.at)
        .bind(retry_at.unwrap_or(-1))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_outbox(
        &self,
        app_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_outbox WHERE ($1 = '' OR app_id = $1) ORDER BY id LIMIT $2"
        );
        Ok(sqlx::query_as::<_, OutboxRow>(sqlx::AssertSqlSafe(sql))
            .bind(app_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn list_deliveries(
        &self,
        outbox_id: &str,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        Ok(sqlx::query_as::<_, WebhookDelivery>(
            "SELECT id, outbox_id, at, status_code, error, duration_ms FROM webhook_deliveries WHERE outbox_id = $1 ORDER BY at, id",
        )
        .bind(outbox_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A new sealed secret committed alone (tests); the service writes it on a [`Tx`].
    pub async fn set_app_webhook_secret(
        &self,
        app_id: &str,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.set_app_webhook_secret(app_id, sealed).await?;
        tx.commit().await
    }

    pub async fn app_webhook_secret(&self, app_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.app_webhook_secrets(app_id).await?.current)
    }

    /// An app's sealed webhook secret and, while it still signs, the one it replaced.
    pub async fn app_webhook_secrets(&self, app_id: &str) -> Result<WebhookSecrets, StoreError> {
        type Row = (Option<Vec<u8>>, Option<Vec<u8>>, Option<i64>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT webhook_secret_enc, previous_webhook_secret_enc, previous_webhook_secret_until
             FROM apps WHERE id = $1",
        )
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some((current, prev, until)) => WebhookSecrets {
                current,
                previous: prev.zip(until),
            },
            None => WebhookSecrets::default(),
        })
    }
}

/// The sealed secrets a delivery is signed with.
#[derive(Debug, Clone, Default)]
pub struct WebhookSecrets {
    pub current: Option<Vec<u8>>,
    /// The replaced secret and the time (unix seconds) until which it still signs.
    pub previous: Option<(Vec<u8>, i64)>,
}

impl Tx {
    /// Queues an event for the app's webhook, delivered once this commits.
    pub async fn enqueue_webhook(&mut self, row: &OutboxRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhook_outbox (id, app_id, event, account_id, payload, created_at, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.id)
        .bind(&row.app_id)
        .bind(&row.event)
        .bind(&row.account_id)
        .bind(&row.payload)
        .bind(row.created_at)
        .bind(row.next_attempt_at)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn set_app_webhook_secret(
        &mut self,
        app_id: &str,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE apps SET webhook_secret_enc = $2 WHERE id = $1")
            .bind(app_id)
            .bind(sealed)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Keeps a rotated-out webhook secret (sealed for its own column) signing until `until`;
    /// `None` forgets it (the webhook was removed).
    pub async fn set_previous_webhook_secret(
        &mut self,
        app_id: &str,
        previous: Option<(&[u8], i64)>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE apps SET previous_webhook_secret_enc = $2, previous_webhook_secret_until = $3
             WHERE id = $1",
        )
        .bind(app_id)
        .bind(previous.map(|(s, _)| s))
        .bind(previous.map(|(_, u)| u))
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
