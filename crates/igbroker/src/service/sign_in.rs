//! Dashboard sign-ins: who may sign in (an API key with `admin` for every app, or the
//! configured admin password), and the server-side sessions that follow. A session is
//! a random secret the browser keeps; the database keeps only its SHA-256, so every
//! replica recognises it and a database leak signs nobody in. Opening and ending a
//! session commit together with their audit entries.

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use igbroker_core::ApiScope;
use igbroker_core::secrets::{random_token, sha256_hex};
use igbroker_store::UiSessionRow;
use serde_json::json;

use crate::service::audit;
use crate::service::error::{Error, Result};
use crate::state::AppState;

/// How long a one-time sign-in link (the demo prints one) stays usable.
pub const LINK_TTL_SECS: i64 = 15 * 60;

/// What the sign-in form may carry.
pub enum Credential<'a> {
    ApiKey(&'a str),
    Password(&'a str),
}

/// Who signed in: the actor the audit log names, and the key that did, if one did
/// (revoking it ends the session).
pub struct Identity {
    pub actor: String,
    pub api_key_id: Option<String>,
}

/// A session just opened: the secret for the browser's cookie (never stored).
pub struct Opened {
    pub secret: String,
    pub ttl_secs: i64,
}

fn refused() -> Error {
    Error::Unauthorized(
        "sign-in refused: use an API key with the `admin` scope for every app, or the admin password"
            .into(),
    )
}

/// Checks a credential. A key must hold `admin` for every app: the dashboard shows and
/// changes everything.
pub async fn authenticate(state: &AppState, cred: Credential<'_>) -> Result<Identity> {
    match cred {
        Credential::ApiKey(key) => {
            let row = state
                .store()
                .find_api_key(&sha256_hex(key.trim()))
                .await?
                .ok_or_else(refused)?;
            let scopes = ApiScope::parse_list(&[row.scopes.as_str()])
                .map_err(|e| Error::Internal(e.to_string()))?;
            if !scopes.contains(&ApiScope::Admin) || !row.app_ids.trim().is_empty() {
                return Err(refused());
            }
            Ok(Identity {
                actor: format!("ui:api_key:{}", row.id),
                api_key_id: Some(row.id),
            })
        }
        Credential::Password(pw) => {
            let hash = state.config().ui.admin_password_hash.trim();
            if hash.is_empty() {
                return Err(Error::Unauthorized(
                    "no admin password is configured (ui.admin_password_hash); sign in with an admin API key".into(),
                ));
            }
            let parsed = PasswordHash::new(hash)
                .map_err(|_| Error::Internal("ui.admin_password_hash is not valid".into()))?;
            Argon2::default()
                .verify_password(pw.as_bytes(), &parsed)
                .map_err(|_| refused())?;
            Ok(Identity {
                actor: "ui:admin".to_string(),
                api_key_id: None,
            })
        }
    }
}

fn session_ttl(state: &AppState) -> i64 {
    i64::try_from(state.config().ui.session_ttl.as_secs()).unwrap_or(43_200)
}

/// Expired sessions and links go at the next sign-in; failing to remove them is no reason
/// to refuse one.
async fn prune(state: &AppState, now: i64) {
    if let Err(e) = state.store().prune_ui_sessions(now).await {
        tracing::warn!(error = %e, "could not prune expired dashboard sessions");
    }
}

/// Opens a session for `who`; the session and its `ui.signed_in` entry commit together.
pub async fn open(state: &AppState, who: Identity) -> Result<Opened> {
    let now = state.now();
    prune(state, now).await;
    let secret = random_token();
    let ttl_secs = session_ttl(state);
    let entry = audit::entry(state, &who.actor, "ui.signed_in", None, None, json!({}));
    let mut tx = state.store().begin().await?;
    tx.insert_ui_session(&UiSessionRow {
        id_hash: sha256_hex(&secret),
        kind: "session".into(),
        actor: who.actor,
        api_key_id: who.api_key_id,
        created_at: now,
        expires_at: now + ttl_secs,
    })
    .await?;
    tx.append_audit(&[entry]).await?;
    tx.commit().await?;
    Ok(Opened { secret, ttl_secs })
}

/// Uses up a one-time link and opens a session as the actor it names: the link's removal,
/// the session and the `ui.signed_in` entry commit together, so a failed sign-in leaves
/// the link usable and a used link opens exactly one session.
pub async fn open_by_link(state: &AppState, link_secret: &str) -> Result<Opened> {
    let now = state.now();
    prune(state, now).await;
    let secret = random_token();
    let ttl_secs = session_ttl(state);
    let mut tx = state.store().begin().await?;
    let Some(link) = tx.take_ui_link(&sha256_hex(link_secret), now).await? else {
        return Err(Error::Unauthorized(
            "this sign-in link was already used or has expired; sign in with an admin API key"
                .into(),
        ));
    };
    let entry = audit::entry(
        state,
        &link.actor,
        "ui.signed_in",
        None,
        None,
        json!({"via": "one-time link"}),
    );
    tx.insert_ui_session(&UiSessionRow {
        id_hash: sha256_hex(&secret),
        kind: "session".into(),
        actor: link.actor,
        api_key_id: None,
        created_at: now,
        expires_at: now + ttl_secs,
    })
    .await?;
    tx.append_audit(&[entry]).await?;
    tx.commit().await?;
    Ok(Opened { secret, ttl_secs })
}

/// A one-time link that opens a session as `actor` (the demo prints one).
pub async fn create_link(state: &AppState, actor: &str) -> Result<String> {
    let secret = random_token();
    let now = state.now();
    state
        .store()
        .insert_ui_session(&UiSessionRow {
            id_hash: sha256_hex(&secret),
            kind: "link".into(),
            actor: actor.to_string(),
            api_key_id: None,
            created_at: now,
            expires_at: now + LINK_TTL_SECS,
        })
        .await?;
    Ok(format!(
        "{}/ui/sign-in/link/{secret}",
        state.config().public_url.trim_end_matches('/')
    ))
}

/// The actor of a live session, if `secret` is one (a session opened with a key ends when
/// the key is revoked).
pub async fn find(state: &AppState, secret: &str) -> Result<Option<String>> {
    Ok(state
        .store()
        .find_ui_session(&sha256_hex(secret), state.now())
        .await?
        .map(|row| row.actor))
}

/// Ends a session in the database (not only in one browser), with its `ui.signed_out`
/// entry in the same transaction.
pub async fn close(state: &AppState, secret: &str, actor: &str) -> Result<()> {
    let entry = audit::entry(state, actor, "ui.signed_out", None, None, json!({}));
    let mut tx = state.store().begin().await?;
    if tx.delete_ui_session(&sha256_hex(secret)).await? {
        tx.append_audit(&[entry]).await?;
    }
    tx.commit().await?;
    Ok(())
}
