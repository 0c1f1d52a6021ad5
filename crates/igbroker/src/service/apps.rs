//! Instagram app registrations: validation, the sealed client and webhook
//! secrets, and every change written with its audit entry in one transaction.
//! First in the service chain: it imports no other rule module.

use igbroker_core::urls::{normalize_origin, validate_redirect_uri};
use igbroker_core::{IdKind, InstagramScope, PrefixedId};
use igbroker_store::AppRow;
use igbroker_vault::Aad;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::service::audit;
use crate::service::error::{Error, Result};
use crate::state::AppState;
use crate::util::rfc3339;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewApp {
    pub name: String,
    #[serde(default)]
    pub kind: Option<String>,
    pub client_id: String,
    #[schema(value_type = String, format = Password)]
    pub client_secret: SecretString,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    #[serde(default)]
    pub return_origins: Vec<String>,
    #[serde(default)]
    pub webhook_url: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
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
            scopes: scope_names(&row.scopes),
            redirect_uri: row.redirect_uri.clone(),
            return_origins: row.return_origins.clone(),
            webhook_url: row.webhook_url.clone(),
            created_at: rfc3339(row.created_at),
        }
    }
}

/// Scopes as the API shows them.
pub fn scope_names(scopes: &[InstagramScope]) -> Vec<String> {
    scopes.iter().map(|s| s.as_str().to_string()).collect()
}

/// Where an app's webhook signing secret is sealed.
pub fn webhook_secret_aad(app_id: &str) -> Aad<'_> {
    Aad::new("apps", app_id, "webhook_secret")
}

/// The rotated-out webhook secret has its own binding, like the previous client secret.
pub fn previous_webhook_secret_aad(app_id: &str) -> Aad<'_> {
    Aad::new("apps", app_id, "previous_webhook_secret")
}

/// Where an app's webhook verify token (Meta's `hub.verify_token`) is sealed.
pub fn verify_token_aad(app_id: &str) -> Aad<'_> {
    Aad::new("apps", app_id, "webhook_verify_token")
}

pub fn secret_aad(app_id: &str) -> Aad<'_> {
    Aad::new("apps", app_id, "client_secret")
}

/// The previous client secret has its own binding, so a value copied between the two
/// columns does not open.
pub fn previous_secret_aad(app_id: &str) -> Aad<'_> {
    Aad::new("apps", app_id, "previous_client_secret")
}

/// Registers an app (audited as `app.created`); returns it and, when it has a
/// webhook, the signing secret (shown once).
pub async fn create(
    state: &AppState,
    actor: &str,
    req: NewApp,
) -> Result<(AppRow, Option<String>)> {
    let name = valid_name(&req.name)?;
    let kind = req.kind.as_deref().unwrap_or("instagram_login");
    if kind != "instagram_login" {
        return Err(Error::Invalid(format!(
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
        return Err(Error::Invalid(
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
        valid_webhook_url(state, w).await?;
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
    let created = audit::entry(
        state,
        actor,
        "app.created",
        None,
        Some(&row.id),
        json!({"client_id": row.client_id}),
    );
    let webhook_secret = match row.webhook_url {
        Some(_) => Some(new_webhook_secret(state, &row.id)?),
        None => None,
    };
    let mut tx = state.store().begin().await?;
    tx.insert_app(&row).await?;
    if let Some((_, sealed)) = &webhook_secret {
        tx.set_app_webhook_secret(&row.id, sealed).await?;
    }
    tx.append_audit(&[created]).await?;
    tx.commit().await?;
    Ok((row, webhook_secret.map(|(shown, _)| shown)))
}

fn valid_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(Error::Invalid("name must be 1 to 200 characters".into()));
    }
    Ok(name)
}

fn valid_client_secret(secret: &SecretString) -> Result<&str> {
    let secret = secret.expose_secret();
    if secret.is_empty() || secret.len() > 256 || secret.chars().any(char::is_whitespace) {
        return Err(Error::Invalid(
            "client_secret must be the Instagram App Secret (no spaces)".into(),
        ));
    }
    Ok(secret)
}

/// Validated, least privilege as asked.
fn valid_scopes(scopes: &[String]) -> Result<Vec<InstagramScope>> {
    InstagramScope::parse_requested(scopes).map_err(|e| Error::Invalid(e.to_string()))
}

fn valid_redirect_uri(uri: &str) -> Result<String> {
    validate_redirect_uri(uri).map_err(|e| Error::Invalid(e.to_string()))
}

/// Normalized, distinct origins.
fn valid_origins(list: &[String]) -> Result<Vec<String>> {
    let mut origins = Vec::new();
    for o in list {
        let o = normalize_origin(o).map_err(|e| Error::Invalid(e.to_string()))?;
        if !origins.contains(&o) {
            origins.push(o);
        }
    }
    Ok(origins)
}

/// Meta echoes the verify token in a query string: printable, without spaces, at most 256.
fn valid_verify_token(token: &str) -> Result<&str> {
    if token.is_empty() || token.len() > 256 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Invalid(
            "verify_token must be 1 to 256 printable ASCII characters without spaces".into(),
        ));
    }
    Ok(token)
}

/// The `[webhooks]` policy, applied when a URL is registered (and again at each delivery,
/// on the addresses the name resolves to then).
async fn valid_webhook_url(state: &AppState, url: &str) -> Result<()> {
    if url.len() > 2048 {
        return Err(Error::Invalid(
            "webhook_url must be at most 2048 characters".into(),
        ));
    }
    crate::webhook_net::check_destination(state.webhook_policy(), url)
        .await
        .map_err(|e| Error::Invalid(format!("webhook_url: {e}")))
}

/// `PATCH /v1/apps/{id}`: absent fields stay; `webhook_url: null` removes the webhook.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppChanges {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    #[serde(default)]
    pub return_origins: Option<Vec<String>>,
    /// Absent: unchanged; `null`: no webhook; a URL: deliver there.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub webhook_url: Option<Option<String>>,
    /// A new signing secret, shown once in the answer.
    #[serde(default)]
    pub rotate_webhook_secret: bool,
    /// Relay Instagram's webhooks (`/meta/webhooks/{app_id}`) to the app's webhook.
    #[serde(default)]
    pub relay_instagram_webhooks: Option<bool>,
    /// The verify token Meta's callback verification must present; stored sealed.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub verify_token: Option<SecretString>,
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
/// An app as answered when it is created or changed: a new webhook secret appears this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppShown {
    #[serde(flatten)]
    pub app: AppView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

pub fn shown_once(row: &AppRow, webhook_secret: Option<String>) -> Result<Value> {
    serde_json::to_value(AppShown {
        app: AppView::from_row(row),
        webhook_secret,
    })
    .map_err(|e| Error::Internal(e.to_string()))
}

/// Changes an app and audits which fields changed (names only). Accounts keep
/// their granted scopes: new scopes apply to the next connect; a new client
/// secret to the next exchange or refresh.
pub async fn update(state: &AppState, actor: &str, id: &str, req: AppChanges) -> Result<Updated> {
    let mut row = get(state, id).await?;
    let had_webhook = row.webhook_url.is_some();
    let mut changed = Vec::new();
    if let Some(name) = &req.name {
        row.name = valid_name(name)?.to_string();
        changed.push("name");
    }
    // The replaced secret keeps verifying Meta's callbacks for a grace period: requests
    // signed before the change may still arrive.
    let mut previous_secret = None;
    if let Some(secret) = &req.client_secret {
        let secret = valid_client_secret(secret)?;
        // A secret that no longer opens (its key is gone) has nothing to keep.
        if let Ok(old) = client_secret(state, &row) {
            previous_secret = Some(
                state
                    .vault()
                    .seal_str(&previous_secret_aad(&row.id), old.expose_secret())?,
            );
        }
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
            valid_webhook_url(state, u).await?;
        }
        row.webhook_url = url.clone();
        changed.push("webhook_url");
    }
    let verify_token = match &req.verify_token {
        Some(t) => {
            let t = valid_verify_token(t.expose_secret())?;
            changed.push("verify_token");
            Some(state.vault().seal_str(&verify_token_aad(&row.id), t)?)
        }
        None => None,
    };
    if let Some(on) = req.relay_instagram_webhooks {
        changed.push("relay_instagram_webhooks");
        if on {
            let has_token = verify_token.is_some()
                || state
                    .store()
                    .instagram_relay(&row.id)
                    .await?
                    .is_some_and(|r| r.verify_token_enc.is_some());
            if !has_token {
                return Err(Error::Invalid(
                    "relay_instagram_webhooks needs a verify_token: give the string you enter as \"Verify token\" in the App Dashboard's webhook settings".into(),
                ));
            }
            if row.webhook_url.is_none() {
                return Err(Error::Invalid(
                    "relay_instagram_webhooks needs a webhook_url on the app to deliver the events to; set one in the same request".into(),
                ));
            }
        }
    }
    if req.rotate_webhook_secret && row.webhook_url.is_none() {
        return Err(Error::Invalid(
            "rotate_webhook_secret needs a webhook_url on the app; set one in the same request"
                .into(),
        ));
    }
    if changed.is_empty() && !req.rotate_webhook_secret {
        return Err(Error::Invalid(
            "nothing to change: give at least one of name, client_secret, scopes, redirect_uri, return_origins, webhook_url, rotate_webhook_secret, relay_instagram_webhooks, verify_token".into(),
        ));
    }
    // A webhook added now needs a secret; an existing one keeps its own unless rotated.
    let webhook_secret = if row.webhook_url.is_some() && (!had_webhook || req.rotate_webhook_secret)
    {
        changed.push("webhook_secret");
        Some(new_webhook_secret(state, &row.id)?)
    } else {
        None
    };
    // A rotated secret keeps signing beside the new one for the grace period, so the
    // receiver can switch without refusing a delivery; a removed webhook forgets both.
    let previous_webhook_secret = if webhook_secret.is_some() && had_webhook {
        retire_webhook_secret(state, &row.id)
            .await?
            .map(|sealed| (sealed, state.now().saturating_add(grace_secs(state))))
    } else {
        None
    };
    let forget_previous = row.webhook_url.is_none() && had_webhook;
    let updated = audit::entry(
        state,
        actor,
        "app.updated",
        None,
        Some(id),
        json!({"changed": changed}),
    );
    let mut tx = state.store().begin().await?;
    if !tx.update_app(&row).await? {
        return Err(Error::not_found("app", id));
    }
    if let Some((_, sealed)) = &webhook_secret {
        tx.set_app_webhook_secret(&row.id, sealed).await?;
    }
    if let Some((sealed, until)) = &previous_webhook_secret {
        tx.set_previous_webhook_secret(&row.id, Some((sealed, *until)))
            .await?;
    } else if forget_previous {
        tx.set_previous_webhook_secret(&row.id, None).await?;
    }
    if let Some(sealed) = &previous_secret {
        let grace = i64::try_from(state.config().meta.previous_secret_grace.as_secs())
            .unwrap_or(i64::MAX / 4);
        tx.set_previous_client_secret(&row.id, sealed, state.now().saturating_add(grace))
            .await?;
    }
    if req.relay_instagram_webhooks.is_some() || verify_token.is_some() {
        tx.set_instagram_relay(
            &row.id,
            req.relay_instagram_webhooks,
            verify_token.as_deref(),
        )
        .await?;
    }
    tx.append_audit(&[updated]).await?;
    tx.commit().await?;
    Ok(Updated {
        row,
        changed,
        webhook_secret: webhook_secret.map(|(shown, _)| shown),
    })
}

pub async fn get(state: &AppState, id: &str) -> Result<AppRow> {
    state
        .store()
        .get_app(id)
        .await?
        .ok_or_else(|| Error::not_found("app", id))
}

pub fn client_secret(state: &AppState, app: &AppRow) -> Result<instagram_api::ClientSecret> {
    let s = state
        .vault()
        .open_string(&secret_aad(&app.id), &app.client_secret_enc)?;
    Ok(instagram_api::ClientSecret::new(
        s.expose_secret().to_string(),
    ))
}

/// A new webhook signing secret: shown once to the caller, stored sealed.
fn grace_secs(state: &AppState) -> i64 {
    i64::try_from(state.config().webhooks.secret_rotation_grace.as_secs()).unwrap_or(i64::MAX / 4)
}

/// The current webhook secret, resealed for the previous-secret column; `None` when there
/// is none or it no longer opens (its key is gone): nothing to keep signing with.
async fn retire_webhook_secret(state: &AppState, app_id: &str) -> Result<Option<Vec<u8>>> {
    let Some(sealed) = state.store().app_webhook_secret(app_id).await? else {
        return Ok(None);
    };
    let Ok(secret) = state.vault().open(&webhook_secret_aad(app_id), &sealed) else {
        return Ok(None);
    };
    Ok(Some(
        state
            .vault()
            .seal(&previous_webhook_secret_aad(app_id), &secret)?,
    ))
}

fn new_webhook_secret(state: &AppState, app_id: &str) -> Result<(String, Vec<u8>)> {
    let secret = format!("whsec_{}", igbroker_core::secrets::random_token());
    let sealed = state
        .vault()
        .seal(&webhook_secret_aad(app_id), secret.as_bytes())?;
    Ok((secret, sealed))
}

/// Apps in id order after `after`; `only` (a key limited to some apps) narrows in
/// the query, so pages stay full.
pub async fn list(
    state: &AppState,
    only: Option<&[String]>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<AppRow>> {
    Ok(state.store().list_apps(only, after, limit).await?)
}

/// Soft-deletes an app (refused while it has live accounts), audited as `app.deleted`.
pub async fn delete(state: &AppState, actor: &str, id: &str) -> Result<()> {
    get(state, id).await?;
    let deleted = audit::entry(state, actor, "app.deleted", None, Some(id), json!({}));
    let mut tx = state.store().begin().await?;
    if !tx.delete_app(id, state.now()).await? {
        return Err(Error::not_found("app", id));
    }
    tx.append_audit(&[deleted]).await?;
    tx.commit().await?;
    Ok(())
}
