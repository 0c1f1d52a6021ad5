//! An append-only, hash-chained log: each entry's hash covers the previous hash,
//! so editing or deleting any entry breaks verification from there on.

use sha2::{Digest, Sha256};
use sqlx::FromRow;

use crate::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub account_id: Option<String>,
    pub app_id: Option<String>,
    /// JSON text; never a token, code or secret.
    pub detail: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub account_id: Option<String>,
    pub app_id: Option<String>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainCheck {
    Intact { entries: i64 },
    Broken { at_seq: i64, reason: String },
}

fn entry_hash(prev: &str, e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        &e.id,
        &e.at.to_string(),
        &e.actor,
        &e.action,
        e.account_id.as_deref().unwrap_or(""),
        e.app_id.as_deref().unwrap_or(""),
        &e.detail,
    ] {
        // Length-prefixed so that moving text between fields changes the hash.
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

const COLUMNS: &str = "seq, id, at, actor, action, account_id, app_id, detail, prev_hash, hash";

impl Store {
    /// An entry that records no change (a token read, a Graph call), committed alone.
    pub async fn append_audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.append_audit(std::slice::from_ref(e)).await?;
        tx.commit().await
    }

    pub async fn list_audit(
        &self,
        account_id: Option<&str>,
        action: Option<&str>,
        since: Option<i64>,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log
             WHERE seq > $1 AND ($2 = '' OR account_id = $2) AND ($3 = '' OR action = $3) AND at >= $4
             ORDER BY seq LIMIT $5"
        );
        Ok(sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql))
            .bind(after_seq)
            .bind(account_id.unwrap_or(""))
            .bind(action.unwrap_or(""))
            .bind(since.unwrap_or(i64::MIN))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Walks the whole chain in pages.
    pub async fn verify_audit(&self) -> Result<ChainCheck, StoreError> {
        let mut prev = "0".repeat(64);
        let mut after = 0i64;
        let mut count = 0i64;
        loop {
            let rows = self.list_audit(None, None, None, after, 1000).await?;
            if rows.is_empty() {
                break;
            }
            for r in rows {
                let entry = AuditEntry {
                    id: r.id.clone(),
                    at: r.at,
                    actor: r.actor.clone(),
                    action: r.action.clone(),
                    account_id: r.account_id.clone(),
                    app_id: r.app_id.clone(),
                    detail: r.detail.clone(),
                };
                if r.prev_hash != prev {
                    return Ok(ChainCheck::Broken {
                        at_seq: r.seq,
                        reason: "previous hash does not match: an entry before it was removed or altered".into(),
                    });
                }
                if entry_hash(&prev, &entry) != r.hash {
                    return Ok(ChainCheck::Broken {
                        at_seq: r.seq,
                        reason: "entry content does not match its hash: it was altered".into(),
                    });
                }
                prev = r.hash;
                after = r.seq;
                count += 1;
            }
        }
        let head: String = sqlx::query_scalar("SELECT hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        if head != prev {
            return Ok(ChainCheck::Broken {
                at_seq: after,
                reason:
                    "the newest entries were removed (chain head does not match the last entry)"
                        .into(),
            });
        }
        Ok(ChainCheck::Intact { entries: count })
    }
}

/// Appends entries inside the caller's transaction, so that a change and its
/// audit entries commit together.
pub(crate) async fn append_in_tx(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    entries: &[AuditEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    // Writing the head first takes the write lock (SQLite) or the row lock
    // (PostgreSQL), so concurrent appenders queue instead of forking the chain.
    let n = i64::try_from(entries.len()).unwrap_or(i64::MAX);
    let mut prev: String =
        sqlx::query_scalar("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING hash")
            .bind(n)
            .fetch_one(&mut **tx)
            .await?;
    // One multi-row INSERT per chunk: the chain is computed here, the rows go in together.
    for chunk in crate::batch::fixed_chunks(entries) {
        let values = crate::batch::placeholders(chunk.len(), 9, 1);
        let mut rows = Vec::with_capacity(chunk.len());
        for e in chunk {
            let hash = entry_hash(&prev, e);
            rows.push((e, std::mem::replace(&mut prev, hash.clone()), hash));
        }
        let sql = format!(
            "INSERT INTO audit_log (id, at, actor, action, account_id, app_id, detail, prev_hash, hash) VALUES {values}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (e, prev_hash, hash) in rows {
            q = q
                .bind(e.id.clone())
                .bind(e.at)
                .bind(e.actor.clone())
                .bind(e.action.clone())
                .bind(e.account_id.clone())
                .bind(e.app_id.clone())
                .bind(e.detail.clone())
                .bind(prev_hash)
                .bind(hash);
        }
        q.execute(&mut **tx).await?;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
