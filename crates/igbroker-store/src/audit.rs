//! An append-only, hash-chained log: each entry's hash covers the previous hash,
//! so editing or deleting any entry breaks verification from there on.
//!
//! With the key ring's audit key, each link is an HMAC under that key (`k1:<hex>`), which
//! nobody who can only write to the database can compute: a rewritten entry shows even when
//! every later link was recomputed. A chain started before the key existed is verified as
//! plain SHA-256 links once and then re-linked under the key ([`Store::key_audit_chain`]);
//! from then on a plain link anywhere means a rewrite.

use hmac::{KeyInit, Mac};
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
    Intact {
        entries: i64,
    },
    Broken {
        at_seq: i64,
        reason: String,
    },
    /// Keyed links and no audit key to check them with.
    NeedsKey {
        at_seq: i64,
    },
}

/// The prefix of links made with the audit key.
const KEYED: &str = "k1:";

fn entry_parts<'a>(prev: &'a str, at: &'a str, e: &'a AuditEntry) -> [&'a str; 8] {
    [
        prev,
        &e.id,
        at,
        &e.actor,
        &e.action,
        e.account_id.as_deref().unwrap_or(""),
        e.app_id.as_deref().unwrap_or(""),
        &e.detail,
    ]
}

/// The link of `e` after `prev`: keyed when the store has the audit key.
fn link(key: Option<&igbroker_vault::KeyMaterial>, prev: &str, e: &AuditEntry) -> String {
    let Some(key) = key else {
        return entry_hash(prev, e);
    };
    let at = e.at.to_string();
    // HMAC takes keys of any length; the fallback is unreachable.
    let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key.expose_secret()) else {
        return entry_hash(prev, e);
    };
    for part in entry_parts(prev, &at, e) {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    format!("{KEYED}{}", hex::encode(mac.finalize().into_bytes()))
}

/// The plain (unkeyed) link of `e` after `prev`: what anyone who can read the log can
/// recompute, and what chains made before the audit key existed use.
pub fn plain_link(prev: &str, e: &AuditEntry) -> String {
    entry_hash(prev, e)
}

fn entry_hash(prev: &str, e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    let at = e.at.to_string();
    for part in entry_parts(prev, &at, e) {
        // Length-prefixed so that moving text between fields changes the hash.
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

impl AuditRow {
    /// The entry's content, without its place in the chain.
    pub fn entry(&self) -> AuditEntry {
        AuditEntry {
            id: self.id.clone(),
            at: self.at,
            actor: self.actor.clone(),
            action: self.action.clone(),
            account_id: self.account_id.clone(),
            app_id: self.app_id.clone(),
            detail: self.detail.clone(),
        }
    }
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

    /// The newest entry's sequence number and link, for anchoring outside the database.
    pub async fn audit_head(&self) -> Result<(i64, String), StoreError> {
        let (seq, hash): (i64, String) =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok((seq, hash))
    }

    /// Re-links a chain of plain links under the audit key, once, after checking it:
    /// returns how many entries were re-linked (0 when already keyed, empty, or no key).
    /// A broken plain chain is left as it is and reported.
    pub async fn key_audit_chain(&self) -> Result<i64, StoreError> {
        let Some(key) = self.audit_key.clone() else {
            return Ok(0);
        };
        let mut tx = self.w().begin().await?;
        // Taking the head's lock first makes appenders wait for the re-link.
        let head: String =
            sqlx::query_scalar("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING hash")
                .fetch_one(&mut *tx)
                .await?;
        if head.starts_with(KEYED) || head == "0".repeat(64) {
            tx.rollback().await?;
            return Ok(0);
        }
        let sql = format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq");
        let rows = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *tx)
            .await?;
        let mut plain_prev = "0".repeat(64);
        let mut keyed_prev = "0".repeat(64);
        let mut n = 0i64;
        for r in &rows {
            let e = r.entry();
            if r.hash.starts_with(KEYED) {
                return Err(StoreError::Conflict(format!(
                    "audit entry {} is keyed but the chain head is not: run `igbroker audit verify`",
                    r.seq
                )));
            }
            if r.prev_hash != plain_prev || entry_hash(&plain_prev, &e) != r.hash {
                return Err(StoreError::Conflict(format!(
                    "the audit chain is broken at entry {}, so it was not re-linked under the \
                     audit key; run `igbroker audit verify`",
                    r.seq
                )));
            }
            plain_prev = r.hash.clone();
            let keyed = link(Some(&key), &keyed_prev, &e);
            sqlx::query("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3")
                .bind(&keyed_prev)
                .bind(&keyed)
                .bind(r.seq)
                .execute(&mut *tx)
                .await?;
            keyed_prev = keyed;
            n += 1;
        }
        if plain_prev != head {
            return Err(StoreError::Conflict(
                "the newest audit entries were removed (the chain head does not match the last \
                 entry), so the chain was not re-linked under the audit key"
                    .into(),
            ));
        }
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
            .bind(&keyed_prev)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n)
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
                let entry = r.entry();
                let key = self.audit_key.as_deref();
                if r.hash.starts_with(KEYED) && key.is_none() {
                    return Ok(ChainCheck::NeedsKey { at_seq: r.seq });
                }
                if key.is_some() && !r.hash.starts_with(KEYED) {
                    return Ok(ChainCheck::Broken {
                        at_seq: r.seq,
                        reason: "the entry is not linked with the audit key: it was rewritten by someone without the key".into(),
                    });
                }
                if r.prev_hash != prev {
                    return Ok(ChainCheck::Broken {
                        at_seq: r.seq,
                        reason: "previous hash does not match: an entry before it was removed or altered".into(),
                    });
                }
                if link(key, &prev, &entry) != r.hash {
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
    key: Option<&igbroker_vault::KeyMaterial>,
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
            let hash = link(key, &prev, e);
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
