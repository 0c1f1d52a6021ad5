use igbroker_core::urls::{normalize_origin, validate_redirect_uri};
use igbroker_core::{IdKind, InstagramScope, PrefixedId};
use igbroker_store::AppRow;
use igbroker_vault::Aad;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::state::AppState;
use crate::util::rfc3339;

#[derive(Debug, Deserialize)]
pub struct NewApp {
    pub name: String,
    #[serde(default)]
    pub kind: Option<String>,
    pub client_id: String,
    pub client_secret: SecretString,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    #[serde(default)]
    pub return_origins: Vec<String>,
    #[serde(default)]
    pub webhook_url: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AppView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub redirect_uri: String,
    pub return_origins: Vec<String>,
    pub webhook_url: Option<String>,
    pub created_at: String,
}

impl AppView {
    pub fn from_row(row: &AppRow) -> AppView {
        AppView {
            id: row.id.clone(),
            name: row.name.clone(),
            kind: row.kind.clone(),
            client_id: row.client_id.clone(),
            scopes: split_list(&row.scopes),
            redirect_uri: row.redirect_uri.clone(),
            return_origins: serde_json::from_str(&row.return_origins).unwrap_or_default(),
            webhook_url: row.webhook_url.clone(),
            created_at: rfc3339(row.created_at),
        }
    }
}

pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn secret_aad(app_id: &str) -> Aad<'_> {
    Aad::new("apps", app_id, "client_secret")
}

/// Registers an app; returns it and, when it has a webhook, the signing secret
/// (shown once).
pub async fn create(state: &AppState, req: NewApp) -> Result<(AppRow, Option<String>), ApiError> {
    let name = valid_name(&req.name)?;
    let kind = req.kind.as_deref().unwrap_or("instagram_login");
    if kind != "instagram_login" {
        return Err(ApiError::InvalidRequest(format!(
            "kind `{kind}` is not supported; use \"instagram_login\""
        )));
    }
    let client_id = req.client_id.trim();
    if client_id.is_empty()
        || client_id.len() > 64
        || !client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::InvalidRequest(
            "client_id must be the Instagram App ID (App Dashboard > Instagram > API setup with Instagram login), not the Meta App ID".into(),
        ));
    }
    let secret = valid_client_secret(&req.client_secret)?;
    let scopes = valid_scopes(&req.scopes)?;
    let redirect_uri = match req.redirect_uri {
        Some(r) => valid_redirect_uri(&r)?,
        None => state.config().default_redirect_uri(),
    };
    let origins = valid_origins(&req.return_origins)?;
    if let Some(w) = &req.webhook_url {
        valid_webhook_url(w)?;
    }
    let id = PrefixedId::generate(IdKind::App).into_string();
    let sealed = state.vault().seal_str(&secret_aad(&id), secret)?;
    let row = AppRow {
        id,
        name: name.to_string(),
        kind: kind.to_string(),
        client_id: client_id.to_string(),
        client_secret_enc: sealed,
        scopes,
        redirect_uri,
        return_origins: origins,
        webhook_url: req.webhook_url,
        created_at: state.now(),
        deleted_at: None,
    };
    state.store().insert_app(&row).await?;
    let webhook_secret = match row.webhook_url {
        Some(_) => Some(crate::service::webhooks::new_secret(state, &row.id).await?),
        None => None,
    };
    Ok((row, webhook_secret))
}

fn valid_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::InvalidRequest(
            "name must be 1 to 200 characters".into(),
        ));
    }
    Ok(name)
}

fn valid_client_secret(secret: &SecretString) -> Result<&str, ApiError> {
    let secret = secret.expose_secret();
    if secret.is_empty() || secret.len() > 256 || secret.chars().any(char::is_whitespace) {
        return Err(ApiError::InvalidRequest(
            "client_secret must be the Instagram App Secret (no spaces)".into(),
        ));
    }
    Ok(secret)
}

/// The stored form: comma-separated, validated, least privilege as asked.
fn valid_scopes(scopes: &[String]) -> Result<String, ApiError> {
    let scopes = InstagramScope::parse_requested(scopes)
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    Ok(InstagramScope::join(&scopes))
}

fn valid_redirect_uri(uri: &str) -> Result<String, ApiError> {
    validate_redirect_uri(uri).map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

/// The stored form: a JSON array of normalized, distinct origins.
fn valid_origins(list: &[String]) -> Result<String, ApiError> {
    let mut origins = Vec::new();
    for o in list {
        let o = normalize_origin(o).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
        if !origins.contains(&o) {
            origins.push(o);
        }
    }
    Ok(serde_json::to_string(&origins).unwrap_or_else(|_| "[]".into()))
}

fn valid_webhook_url(url: &str) -> Result<(), ApiError> {
    validate_redirect_uri(url)
        .map(|_| ())
        .map_err(|e| ApiError::InvalidRequest(e.to_string().replace("redirect_uri", "webhook_url")))
}

/// `PATCH /v1/apps/{id}`: absent fields stay; `webhook_url: null` removes the webhook.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppChanges {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    #[serde(default)]
    pub return_origins: Option<Vec<String>>,
    /// Absent: unchanged; `null`: no webhook; a URL: deliver there.
    #[serde(default, deserialize_with = "present")]
    pub webhook_url: Option<Option<String>>,
    /// A new signing secret, shown once in the answer.
    #[serde(default)]
    pub rotate_webhook_secret: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The app after an update, and which fields changed (names only, never values).
pub struct Updated {
    pub row: AppRow,
    pub changed: Vec<&'static str>,
    /// Set when a webhook was added or its secret rotated (shown once).
    pub webhook_secret: Option<String>,
}

/// An app as answered after a change, with a new webhook secret when there is
/// one (shown this once, like an API key).
pub fn shown_once(row: &AppRow, webhook_secret: Option<String>) -> Result<Value, ApiError> {
    let mut view = serde_json::to_value(AppView::from_row(row))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(secret) = webhook_secret {
        view["webhook_secret"] = Value::String(secret);
    }
    Ok(view)
}

/// Changes an app and audits which fields changed (names only). Accounts keep
/// their granted scopes: new scopes apply to the next connect; a new client
/// secret to the next exchange or refresh.
pub async fn update(
    state: &AppState,
    actor: &str,
    id: &str,
    req: AppChanges,
) -> Result<Updated, ApiError> {
    let mut row = get(state, id).await?;
    let had_webhook = row.webhook_url.is_some();
    let mut changed = Vec::new();
    if let Some(name) = &req.name {
        row.name = valid_name(name)?.to_string();
        changed.push("name");
    }
    if let Some(secret) = &req.client_secret {
        let secret = valid_client_secret(secret)?;
        row.client_secret_enc = state.vault().seal_str(&secret_aad(&row.id), secret)?;
        changed.push("client_secret");
    }
    if let Some(scopes) = &req.scopes {
        row.scopes = valid_scopes(scopes)?;
        changed.push("scopes");
    }
    if let Some(uri) = &req.redirect_uri {
        row.redirect_uri = valid_redirect_uri(uri)?;
        changed.push("redirect_uri");
    }
    if let Some(origins) = &req.return_origins {
        row.return_origins = valid_origins(origins)?;
        changed.push("return_origins");
    }
    if let Some(url) = &req.webhook_url {
        if let Some(u) = url {
            valid_webhook_url(u)?;
        }
        row.webhook_url = url.clone();
        changed.push("webhook_url");
    }
    if req.rotate_webhook_secret && row.webhook_url.is_none() {
        return Err(ApiError::InvalidRequest(
            "rotate_webhook_secret needs a webhook_url on the app; set one in the same request"
                .into(),
        ));
    }
    if changed.is_empty() && !req.rotate_webhook_secret {
        return Err(ApiError::InvalidRequest(
            "nothing to change: give at least one of name, client_secret, scopes, redirect_uri, return_origins, webhook_url, rotate_webhook_secret".into(),
        ));
    }
    if !state.store().update_app(&row).await? {
        return Err(ApiError::not_found("app", id));
    }
    // A webhook added now needs a secret; an existing one keeps its own unless rotated.
    let webhook_secret = if row.webhook_url.is_some() && (!had_webhook || req.rotate_webhook_secret)
    {
        changed.push("webhook_secret");
        Some(crate::service::webhooks::new_secret(state, &row.id).await?)
    } else {
        None
    };
    crate::service::audit::record(
        state,
        actor,
        "app.updated",
        None,
        Some(id),
        serde_json::json!({"changed": changed}),
    )
    .await?;
    Ok(Updated {
        row,
        changed,
        webhook_secret,
    })
}

pub async fn get(state: &AppState, id: &str) -> Result<AppRow, ApiError> {
    state
        .store()
        .get_app(id)
        .await?
        .ok_or_else(|| ApiError::not_found("app", id))
}

pub fn client_secret(
    state: &AppState,
    app: &AppRow,
) -> Result<instagram_api::ClientSecret, ApiError> {
    let s = state
        .vault()
        .open_string(&secret_aad(&app.id), &app.client_secret_enc)?;
    Ok(instagram_api::ClientSecret::new(
        s.expose_secret().to_string(),
    ))
}
