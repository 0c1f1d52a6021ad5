use igbroker_core::urls::{normalize_origin, validate_redirect_uri};
use igbroker_core::{IdKind, InstagramScope, PrefixedId};
use igbroker_store::AppRow;
use igbroker_vault::Aad;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

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
    let name = req.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::InvalidRequest(
            "name must be 1 to 200 characters".into(),
        ));
    }
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
    let secret = req.client_secret.expose_secret();
    if secret.is_empty() || secret.len() > 256 || secret.chars().any(char::is_whitespace) {
        return Err(ApiError::InvalidRequest(
            "client_secret must be the Instagram App Secret (no spaces)".into(),
        ));
    }
    let scopes = InstagramScope::parse_requested(&req.scopes)
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let redirect_uri = match req.redirect_uri {
        Some(r) => {
            validate_redirect_uri(&r).map_err(|e| ApiError::InvalidRequest(e.to_string()))?
        }
        None => state.config().default_redirect_uri(),
    };
    let mut origins = Vec::new();
    for o in &req.return_origins {
        let o = normalize_origin(o).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
        if !origins.contains(&o) {
            origins.push(o);
        }
    }
    if let Some(w) = &req.webhook_url {
        validate_redirect_uri(w).map_err(|e| {
            ApiError::InvalidRequest(e.to_string().replace("redirect_uri", "webhook_url"))
        })?;
    }
    let id = PrefixedId::generate(IdKind::App).into_string();
    let sealed = state.vault().seal_str(&secret_aad(&id), secret)?;
    let row = AppRow {
        id,
        name: name.to_string(),
        kind: kind.to_string(),
        client_id: client_id.to_string(),
        client_secret_enc: sealed,
        scopes: InstagramScope::join(&scopes),
        redirect_uri,
        return_origins: serde_json::to_string(&origins).unwrap_or_else(|_| "[]".into()),
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
