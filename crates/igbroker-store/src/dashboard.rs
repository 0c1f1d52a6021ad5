//! What the dashboard needs beyond the API's queries: its sign-ins (shared by
//! every replica, kept as hashes only) and a few indexed counts for the overview.

use sqlx::FromRow;

use crate::audit::AuditRow;
use crate::{Store, StoreError, Tx};

#[derive(Debug, Clone, FromRow)]
pub struct UiSessionRow {
    pub id_hash: String,
    /// `session` (a signed-in browser) or `link` (a one-time sign-in link).
    pub kind: String,
    pub actor: String,
    pub api_key_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

const COLUMNS: &str = "id_hash, kind, actor, api_key_id, created_at, expires_at";

impl Tx {
    pub async fn insert_ui_session(&mut self, row: &UiSessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ui_sessions (id_hash, kind, actor, api_key_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&row.id_hash)
        .bind(&row.kind)
        .bind(&row.actor)
        .bind(row.api_key_id.as_deref())
        .bind(row.created_at)
        .bind(row.expires_at)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Uses up a one-time sign-in link: the delete is what makes it one-time, also
    /// when two replicas see it at once.
    pub async fn take_ui_link(
        &mut self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<UiSessionRow>, StoreError> {
        let sql = format!(
            "DELETE FROM ui_sessions WHERE id_hash = $1 AND kind = 'link' AND expires_at > $2
             RETURNING {COLUMNS}"
        );
        Ok(sqlx::query_as::<_, UiSessionRow>(sqlx::AssertSqlSafe(sql))
            .bind(id_hash)
            .bind(now)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Ends a browser session; whether there was one.
    pub async fn delete_ui_session(&mut self, id_hash: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.conn())
            .await?
            .rows_affected()
            == 1)
    }
}

impl Store {
    /// Stores a one-time sign-in link (it records no change an audit entry would name:
    /// using it does).
    pub async fn insert_ui_session(&self, row: &UiSessionRow) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.insert_ui_session(row).await?;
        tx.commit().await
    }

    /// A live browser session; one signed in with an API key ends when the key is revoked.
    pub async fn find_ui_session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<UiSessionRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM ui_sessions s
             WHERE s.id_hash = $1 AND s.kind = 'session' AND s.expires_at > $2
               AND (s.api_key_id IS NULL OR EXISTS (
                    SELECT 1 FROM api_keys k WHERE k.id = s.api_key_id AND k.revoked_at IS NULL))"
        );
        Ok(sqlx::query_as::<_, UiSessionRow>(sqlx::AssertSqlSafe(sql))
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn prune_ui_sessions(&self, now: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(self.w())
                .await?
                .rows_affected(),
        )
    }

    /// Active accounts whose token expires in `[from, until)`.
    pub async fn count_active_expiring(&self, from: i64, until: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM accounts WHERE status = 'active' AND expires_at >= $1 AND expires_at < $2",
        )
        .bind(from)
        .bind(until)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Audit entries of one action since `since`.
    pub async fn count_audit_action(&self, action: &str, since: i64) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1 AND at >= $2")
                .bind(action)
                .bind(since)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// An account's newest audit entries, newest first.
    pub async fn recent_audit_for_account(
        &self,
        account_id: &str,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        Ok(sqlx::query_as::<_, AuditRow>(
            "SELECT seq, id, at, actor, action, account_id, app_id, detail, prev_hash, hash
             FROM audit_log WHERE account_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(account_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

impl Store {
    /// An app's newest webhook events with their delivery state, newest first.
    pub async fn recent_outbox(
        &self,
        app_id: &str,
        limit: i64,
    ) -> Result<Vec<crate::OutboxRow>, StoreError> {
        Ok(sqlx::query_as::<_, crate::OutboxRow>(
            "SELECT id, app_id, event, account_id, payload, created_at, attempts, next_attempt_at,
                    delivered_at, failed_at, last_error
             FROM webhook_outbox WHERE app_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(app_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

impl Store {
    /// An account's audit entries of the given actions, oldest first (at most `limit`,
    /// the newest kept).
    pub async fn account_audit_of(
        &self,
        account_id: &str,
        actions: &[&str],
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        if actions.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = (0..actions.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT seq, id, at, actor, action, account_id, app_id, detail, prev_hash, hash
             FROM audit_log WHERE account_id = $1 AND action IN ({})
             ORDER BY seq DESC LIMIT ${}",
            list.join(", "),
            actions.len() + 2
        );
        let mut q = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql)).bind(account_id);
        for a in actions {
            q = q.bind(a.to_string());
        }
        let mut rows = q.bind(limit).fetch_all(&self.pool).await?;
        rows.reverse();
        Ok(rows)
    }
}
