//! API keys: creating them, and verifying a presented key from memory once the
//! database has vouched for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use igbroker_core::secrets::{new_api_key, sha256_hex};
use igbroker_core::{ApiScope, IdKind, PrefixedId};
use igbroker_store::{ApiKeyRow, AuditEntry, Store};
use serde::Serialize;
use serde_json::json;

use crate::service::error::{Error, Result};
use crate::util::rfc3339;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub app_ids: Vec<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl ApiKeyView {
    pub fn from_row(r: &ApiKeyRow) -> Self {
        ApiKeyView {
            id: r.id.clone(),
            name: r.name.clone(),
            scopes: crate::util::split_list(&r.scopes),
            app_ids: crate::util::split_list(&r.app_ids),
            created_at: rfc3339(r.created_at),
            last_used_at: r.last_used_at.map(rfc3339),
            revoked_at: r.revoked_at.map(rfc3339),
        }
    }
}

/// What a new key is to be.
pub struct NewKey<'a> {
    pub name: &'a str,
    pub scopes: &'a [String],
    /// Empty: every app.
    pub app_ids: &'a [String],
    /// Its own request rate per second (default: `[limits] per_key_per_second`).
    pub rate_limit_per_second: Option<u32>,
}

/// Creates a key and its `api_key.created` audit entry in one transaction; the
/// plaintext is returned once and only its hash is stored. Whether `actor` may grant
/// these scopes and apps is the caller's check (`key_policy::may_create`).
pub async fn create(
    store: &Store,
    actor: &str,
    req: NewKey<'_>,
    now: i64,
) -> Result<(ApiKeyRow, String)> {
    let NewKey {
        name,
        scopes,
        app_ids,
        rate_limit_per_second,
    } = req;
    if let Some(r) = rate_limit_per_second
        && !(1..=100_000).contains(&r)
    {
        return Err(Error::Invalid(
            "rate_limit_per_second must be 1 to 100000".into(),
        ));
    }
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(Error::Invalid("name must be 1 to 200 characters".into()));
    }
    let scopes = ApiScope::parse_list(scopes).map_err(|e| Error::Invalid(e.to_string()))?;
    if scopes.is_empty() {
        return Err(Error::Invalid(
            "give the key at least one scope, e.g. `admin` or `tokens:read`".into(),
        ));
    }
    for a in app_ids {
        PrefixedId::parse(IdKind::App, a).map_err(|e| Error::Invalid(e.to_string()))?;
    }
    let key = new_api_key();
    let row = ApiKeyRow {
        id: PrefixedId::generate(IdKind::ApiKey).into_string(),
        name: name.to_string(),
        key_hash: sha256_hex(&key),
        scopes: scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(","),
        app_ids: app_ids.join(","),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    let mut tx = store.begin().await?;
    tx.insert_api_key(&row, rate_limit_per_second.map(i64::from))
        .await?;
    tx.append_audit(&[audit_entry(
        actor,
        "api_key.created",
        json!({"key_id": row.id}),
        now,
    )])
    .await?;
    tx.commit().await?;
    Ok((row, key))
}

/// Revokes a live key with its `api_key.revoked` audit entry in one transaction.
/// `keep_root` refuses the last unlimited admin key (the API's rule; an operator at
/// the CLI may revoke it). A key that does not exist or is revoked already is `NotFound`.
pub async fn revoke(store: &Store, actor: &str, id: &str, keep_root: bool, now: i64) -> Result<()> {
    let mut tx = store.begin().await?;
    if !tx.revoke_api_key(id, now, keep_root).await? {
        return Err(Error::not_found("API key", id));
    }
    tx.append_audit(&[audit_entry(
        actor,
        "api_key.revoked",
        json!({"key_id": id}),
        now,
    )])
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Keys live apart from the service chain (the CLI uses them with a bare `Store`), so
/// their audit entries are built here rather than by the audit module.
fn audit_entry(actor: &str, action: &str, detail: serde_json::Value, now: i64) -> AuditEntry {
    AuditEntry {
        id: PrefixedId::generate(IdKind::Audit).into_string(),
        at: now,
        actor: actor.to_string(),
        action: action.to_string(),
        account_id: None,
        app_id: None,
        detail: detail.to_string(),
    }
}

/// What a verified key may do.
#[derive(Debug)]
pub struct VerifiedKey {
    pub id: String,
    pub scopes: Vec<ApiScope>,
    /// Empty: every app.
    pub app_ids: Vec<String>,
}

struct Checked {
    key: Arc<VerifiedKey>,
    /// When the database last confirmed the key was not revoked.
    at: Instant,
    /// When `last_used_at` was last written from this replica (unix seconds).
    touched: i64,
}

/// Keys this replica has checked against the database recently, by hash.
///
/// The bound: a key revoked on any replica (or with the CLI) is refused by every
/// replica at most `ttl` after the revocation commits, because an entry older
/// than `ttl` is checked against the database again before it is trusted. A key
/// revoked through this replica is forgotten at once. Unknown keys are never
/// cached, so the map holds at most one entry per live key.
pub struct KeyCache {
    ttl: Duration,
    checked: Mutex<HashMap<String, Checked>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        KeyCache {
            ttl,
            checked: Mutex::default(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn fresh(&self, hash: &str, now: i64) -> Option<(Arc<VerifiedKey>, bool)> {
        let mut map = self.checked.lock().ok()?;
        let c = map.get_mut(hash)?;
        if c.at.elapsed() >= self.ttl {
            return None;
        }
        // `last_used_at` has minute resolution: write it at most once a minute.
        let touch = now - c.touched >= 60;
        if touch {
            c.touched = now;
        }
        Some((c.key.clone(), touch))
    }

    fn remember(&self, hash: String, key: Arc<VerifiedKey>, now: i64) {
        if let Ok(mut map) = self.checked.lock() {
            let touched = map.get(&hash).map_or(now, |c| c.touched);
            map.insert(
                hash,
                Checked {
                    key,
                    at: Instant::now(),
                    touched,
                },
            );
        }
    }

    fn forget_hash(&self, hash: &str) {
        if let Ok(mut map) = self.checked.lock() {
            map.remove(hash);
        }
    }

    /// Forgets a key revoked through this replica, so that it is refused at once here.
    pub fn forget_id(&self, id: &str) {
        if let Ok(mut map) = self.checked.lock() {
            map.retain(|_, c| c.key.id != id);
        }
    }
}

/// Verifies a presented key: from memory when this replica checked it less than
/// the cache's `ttl` ago, otherwise against the database. `None`: unknown or revoked.
pub async fn verify(
    store: &Store,
    cache: &KeyCache,
    presented: &str,
    now: i64,
) -> Result<Option<Arc<VerifiedKey>>> {
    let hash = sha256_hex(presented);
    if let Some((key, touch)) = cache.fresh(&hash, now) {
        if touch {
            touch_later(store, &key.id, now);
        }
        return Ok(Some(key));
    }
    let Some(row) = store.find_api_key(&hash).await? else {
        cache.forget_hash(&hash);
        return Ok(None);
    };
    let scopes = ApiScope::parse_list(&[row.scopes.as_str()])
        .map_err(|e| Error::Internal(format!("API key {} has unreadable scopes: {e}", row.id)))?;
    let key = Arc::new(VerifiedKey {
        id: row.id,
        scopes,
        app_ids: crate::util::split_list(&row.app_ids),
    });
    if row.last_used_at.is_none_or(|t| now - t >= 60) {
        touch_later(store, &key.id, now);
    }
    cache.remember(hash, key.clone(), now);
    Ok(Some(key))
}

/// Records the use off the request path: a read never waits on a write for it.
fn touch_later(store: &Store, id: &str, now: i64) {
    let (store, id) = (store.clone(), id.to_string());
    tokio::spawn(async move {
        if let Err(e) = store.touch_api_key(&id, now).await {
            tracing::warn!(error = %e, "could not record API key use");
        }
    });
}
