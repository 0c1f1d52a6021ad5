use igbroker_core::secrets::{new_api_key, sha256_hex};
use igbroker_core::{ApiScope, IdKind, PrefixedId};
use igbroker_store::{ApiKeyRow, Store};
use serde::Serialize;

use crate::service::error::{Error, Result};
use crate::util::rfc3339;

#[derive(Debug, Serialize)]
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

/// Creates a key; the plaintext is returned once and only its hash is stored.
pub async fn create(
    store: &Store,
    name: &str,
    scopes: &[String],
    app_ids: &[String],
    now: i64,
) -> Result<(ApiKeyRow, String)> {
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
    store.insert_api_key(&row).await?;
    Ok((row, key))
}
