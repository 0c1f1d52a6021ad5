//! The authorization flow: connect sessions, the redirect to Instagram, and the
//! callback that exchanges the code (once, however often the browser calls back).

use std::time::Duration;

use igbroker_core::secrets::{random_token, sha256_hex};
use igbroker_core::urls::check_return_url;
use igbroker_core::{AccountStatus, IdKind, InstagramScope, PrefixedId};
use igbroker_store::{AccountRow, AppRow, ConnectSessionRow, NewAccount, TokenUpdate};
use igbroker_vault::Aad;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::ApiError;
use crate::service::{accounts, apps, audit, webhooks};
use crate::state::AppState;
use crate::util::rfc3339;

/// How long a connect link (and its state) lives.
pub const SESSION_TTL_SECS: i64 = 3600;

#[derive(Debug, Deserialize)]
pub struct NewSession {
    pub app_id: String,
    #[serde(default)]
    pub end_user: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub return_url: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SessionView {
    pub id: String,
    pub app_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_url: Option<String>,
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_user: Option<String>,
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SessionView {
    pub fn from_row(state: &AppState, s: &ConnectSessionRow) -> SessionView {
        let status = match s.status.as_str() {
            "exchanging" => "pending",
            other => other,
        };
        SessionView {
            id: s.id.clone(),
            app_id: s.app_id.clone(),
            status: status.to_string(),
            connect_url: (status == "pending").then(|| connect_url(state, &s.id)),
            expires_at: rfc3339(s.expires_at),
            end_user: (!s.end_user.is_empty()).then(|| s.end_user.clone()),
            scopes: apps::split_list(&s.scopes),
            account_id: s.result_account_id.clone().or_else(|| s.account_id.clone()),
            error: s.error.clone(),
        }
    }
}

pub fn connect_url(state: &AppState, id: &str) -> String {
    format!(
        "{}/connect/{id}",
        state.config().public_url.trim_end_matches('/')
    )
}

fn state_aad(id: &str) -> Aad<'_> {
    Aad::new("connect_sessions", id, "state")
}

pub async fn create(state: &AppState, req: NewSession) -> Result<ConnectSessionRow, ApiError> {
    let app = apps::get(state, &req.app_id).await?;
    let app_scopes =
        InstagramScope::parse_list(&app.scopes).map_err(|e| ApiError::Internal(e.to_string()))?;
    let scopes = match &req.scopes {
        None => app_scopes.clone(),
        Some(list) => {
            let asked = InstagramScope::parse_requested(list)
                .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
            if let Some(extra) = asked.iter().find(|s| !app_scopes.contains(s)) {
                return Err(ApiError::InvalidRequest(format!(
                    "scope `{extra}` is not registered for app {}; ask only for scopes the app declares",
                    app.id
                )));
            }
            asked
        }
    };
    let origins: Vec<String> = serde_json::from_str(&app.return_origins).unwrap_or_default();
    let return_url = match &req.return_url {
        Some(u) => Some(
            check_return_url(u, &origins).map_err(|e| ApiError::InvalidRequest(e.to_string()))?,
        ),
        None => None,
    };
    let mut end_user = req.end_user.clone().unwrap_or_default();
    if end_user.len() > 200 {
        return Err(ApiError::InvalidRequest(
            "end_user must be at most 200 characters".into(),
        ));
    }
    if let Some(acc_id) = &req.account_id {
        let acc = accounts::get(state, acc_id).await?;
        if acc.app_id != app.id {
            return Err(ApiError::InvalidRequest(format!(
                "account {acc_id} belongs to another app than {}",
                app.id
            )));
        }
        if acc.status == AccountStatus::Revoked.as_str() {
            return Err(ApiError::not_active(AccountStatus::Revoked));
        }
        if req.end_user.is_none() {
            end_user = acc.end_user.clone();
        } else if end_user != acc.end_user {
            return Err(ApiError::InvalidRequest(format!(
                "end_user differs from account {acc_id}'s end user"
            )));
        }
    }
    insert_session(
        state,
        &app,
        end_user,
        InstagramScope::join(&scopes),
        return_url,
        req.account_id.clone(),
        SESSION_TTL_SECS,
    )
    .await
}

/// A re-connect link for an account, offered when it needs re-authorization.
pub async fn create_reconnect(
    state: &AppState,
    acc: &AccountRow,
    ttl_secs: i64,
) -> Result<ConnectSessionRow, ApiError> {
    let app = apps::get(state, &acc.app_id).await?;
    insert_session(
        state,
        &app,
        acc.end_user.clone(),
        acc.scopes.clone(),
        None,
        Some(acc.id.clone()),
        ttl_secs,
    )
    .await
}

/// A pending session with a fresh `state`, kept sealed (the connect link sends
/// it again) and hashed (the callback looks it up).
async fn insert_session(
    state: &AppState,
    app: &AppRow,
    end_user: String,
    scopes: String,
    return_url: Option<String>,
    account_id: Option<String>,
    ttl_secs: i64,
) -> Result<ConnectSessionRow, ApiError> {
    let id = PrefixedId::generate(IdKind::ConnectSession).into_string();
    let secret_state = random_token();
    let now = state.now();
    let row = ConnectSessionRow {
        id: id.clone(),
        app_id: app.id.clone(),
        end_user,
        scopes,
        return_url,
        account_id,
        state_hash: sha256_hex(&secret_state),
        state_enc: state.vault().seal_str(&state_aad(&id), &secret_state)?,
        status: "pending".into(),
        code_hash: None,
        result_account_id: None,
        error: None,
        created_at: now,
        expires_at: now + ttl_secs,
        completed_at: None,
        redirect_uri: Some(app.redirect_uri.clone()),
    };
    state.store().insert_connect_session(&row).await?;
    Ok(row)
}

pub async fn get(state: &AppState, id: &str) -> Result<ConnectSessionRow, ApiError> {
    state
        .store()
        .get_connect_session(id)
        .await?
        .ok_or_else(|| ApiError::not_found("connect session", id))
}

/// The redirect URI a session started with; sessions from before that was
/// kept use the app's.
fn redirect_uri_of<'a>(session: &'a ConnectSessionRow, app: &'a AppRow) -> &'a str {
    session.redirect_uri.as_deref().unwrap_or(&app.redirect_uri)
}

/// Where `/connect/{id}` sends the browser.
pub async fn authorize_redirect(state: &AppState, id: &str) -> Result<String, ApiError> {
    let session = get(state, id).await?;
    if session.status != "pending" && session.status != "exchanging" {
        return Err(ApiError::Conflict(format!(
            "this connect link was already used (status {}); ask for a new one",
            session.status
        )));
    }
    if session.expires_at <= state.now() {
        return Err(ApiError::InvalidState(
            "this connect link has expired; ask for a new one".into(),
        ));
    }
    let app = apps::get(state, &session.app_id).await?;
    let secret_state = state
        .vault()
        .open_string(&state_aad(&session.id), &session.state_enc)?;
    let req = instagram_api::AuthorizeRequest {
        client_id: app.client_id.clone(),
        redirect_uri: redirect_uri_of(&session, &app).to_string(),
        scopes: apps::split_list(&session.scopes),
        state: secret_state.expose_secret().to_string(),
        enable_fb_login: None,
        // A re-connect must not silently reuse whatever Instagram session the browser has.
        force_reauth: session.account_id.as_ref().map(|_| true),
    };
    Ok(state.instagram().authorize_url(&req).to_string())
}

/// The query Instagram sends back to the redirect URI.
#[derive(Debug, Deserialize, Default)]
pub struct CallbackQuery {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_reason: Option<String>,
    pub error_description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub session_id: String,
    pub status: String,
    pub account_id: Option<String>,
    pub error: Option<String>,
    pub return_url: Option<String>,
}

impl Outcome {
    fn from_row(s: &ConnectSessionRow) -> Outcome {
        Outcome {
            session_id: s.id.clone(),
            status: s.status.clone(),
            account_id: s.result_account_id.clone(),
            error: s.error.clone(),
            return_url: s.return_url.clone(),
        }
    }

    /// `return_url?session_id=…&status=…&account_id=…|error=…`.
    pub fn redirect_location(&self) -> Option<String> {
        let base = self.return_url.as_ref()?;
        let mut url = url::Url::parse(base).ok()?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("session_id", &self.session_id);
            q.append_pair("status", &self.status);
            if let Some(a) = &self.account_id {
                q.append_pair("account_id", a);
            }
            if let Some(e) = &self.error {
                q.append_pair("error", e);
            }
        }
        Some(url.to_string())
    }
}

pub async fn handle_callback(state: &AppState, q: CallbackQuery) -> Result<Outcome, ApiError> {
    let raw_state = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::InvalidState(
                "the callback carries no `state`; start from a connect link".into(),
            )
        })?;
    let session = state
        .store()
        .find_connect_session_by_state(&sha256_hex(raw_state))
        .await?
        .ok_or_else(|| {
            ApiError::InvalidState("unknown `state`: this callback does not belong to a connect session of this broker".into())
        })?;

    if let Some(error) = q.error.as_deref() {
        return handle_denial(state, &session, error, &q).await;
    }
    let code = q.code.as_deref().filter(|c| !c.is_empty()).ok_or_else(|| {
        ApiError::InvalidRequest("the callback has neither `code` nor `error`".into())
    })?;
    if code.contains('#') {
        return Err(ApiError::InvalidRequest(
            "the code contains `#`: strip Instagram's `#_` suffix before sending it".into(),
        ));
    }
    let code_hash = sha256_hex(code);

    if session.status != "pending" {
        return replay(state, session, &code_hash).await;
    }
    if session.expires_at <= state.now() {
        return Err(ApiError::InvalidState(
            "this connect session has expired; start a new one".into(),
        ));
    }
    if !state
        .store()
        .claim_connect_session(&session.id, &code_hash, state.now())
        .await?
    {
        // Someone (a prefetch, a double click, another replica) claimed it first.
        let fresh = get(state, &session.id).await?;
        return replay(state, fresh, &code_hash).await;
    }

    let result = exchange_and_store(state, &session, code).await;
    let now = state.now();
    let (status, account_id, error) = match &result {
        Ok((acc, _)) => ("connected", Some(acc.as_str()), None),
        Err(e) => ("error", None, Some(e.code())),
    };
    state
        .store()
        .finish_connect_session(&session.id, status, account_id, error, now)
        .await?;
    match result {
        Ok((acc, previous)) => {
            audit::record(
                state,
                "instagram:callback",
                "account.connected",
                Some(&acc),
                Some(&session.app_id),
                json!({"session_id": session.id}),
            )
            .await?;
            let event = if previous.as_deref() == Some("reauth_required") {
                "account.recovered"
            } else {
                "account.connected"
            };
            if let Some(row) = state.store().get_account(&acc).await? {
                webhooks::account_event(
                    state,
                    event,
                    &row,
                    json!({"session_id": session.id}),
                    false,
                )
                .await?;
            }
            state.wake_scheduler();
        }
        Err(e) => {
            tracing::warn!(session_id = %session.id, error = %e, "connect session failed");
        }
    }
    let fresh = get(state, &session.id).await?;
    Ok(Outcome::from_row(&fresh))
}

async fn handle_denial(
    state: &AppState,
    session: &ConnectSessionRow,
    error: &str,
    q: &CallbackQuery,
) -> Result<Outcome, ApiError> {
    if session.status == "pending" {
        let reason = q.error_reason.as_deref().unwrap_or(error);
        tracing::info!(session_id = %session.id, reason = %reason, description = ?q.error_description, "user denied authorization");
        let code = if error == "access_denied" {
            "access_denied"
        } else {
            "authorization_error"
        };
        state
            .store()
            .finish_connect_session(&session.id, "denied", None, Some(code), state.now())
            .await?;
        let fresh = get(state, &session.id).await?;
        return Ok(Outcome::from_row(&fresh));
    }
    if session.status == "denied" {
        return Ok(Outcome::from_row(session));
    }
    Err(ApiError::StateUsed)
}

/// Repeats the first outcome for the same code; another code is `state_used`.
async fn replay(
    state: &AppState,
    mut session: ConnectSessionRow,
    code_hash: &str,
) -> Result<Outcome, ApiError> {
    // Not a secret comparison: both sides are hashes already stored server-side.
    if session.code_hash.as_deref() != Some(code_hash) {
        return Err(ApiError::StateUsed);
    }
    // The first request may still be exchanging; wait for its outcome (bounded).
    let deadline = tokio::time::Instant::now() + state.config().instagram.request_timeout * 3;
    while session.status == "exchanging" {
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Unavailable(
                "the first callback for this code is still exchanging it; retry shortly".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        session = get(state, &session.id).await?;
    }
    Ok(Outcome::from_row(&session))
}

/// Code → short-lived → long-lived → /me → stored account. Returns the account id.
async fn exchange_and_store(
    state: &AppState,
    session: &ConnectSessionRow,
    code: &str,
) -> Result<(String, Option<String>), ApiError> {
    let app = apps::get(state, &session.app_id).await?;
    let secret = apps::client_secret(state, &app)?;
    let ig = state.instagram();
    let creds = instagram_api::AppCredentials {
        client_id: app.client_id.clone(),
        client_secret: secret.clone(),
    };
    let code = instagram_api::AuthorizationCode::new(code.to_string());
    let short = ig
        .exchange_code(&creds, redirect_uri_of(session, &app), &code)
        .await
        .map_err(|e| upstream("code exchange", &e))?;
    let long = ig
        .exchange_long_lived(&secret, &short.access_token)
        .await
        .map_err(|e| upstream("long-lived exchange", &e))?;
    let profile = ig
        .me(&long.access_token, &["id", "user_id", "username"])
        .await
        .map_err(|e| upstream("profile lookup", &e))?;
    let ig_user_id = profile
        .user_id
        .clone()
        .unwrap_or_else(|| profile.id.clone());
    let ig_scoped_id = if profile.id.is_empty() {
        short.user_id.clone()
    } else {
        profile.id.clone()
    };
    let granted: Vec<InstagramScope> = short
        .permissions
        .iter()
        .filter_map(|p| p.parse::<InstagramScope>().ok())
        .collect();
    let scopes = if granted.is_empty() {
        session.scopes.clone()
    } else {
        let mut g = granted;
        g.sort();
        g.dedup();
        InstagramScope::join(&g)
    };
    let now = state.now();
    let expires_at = now + long.expires_in.max(0);
    connect_account(
        state,
        &app,
        &session.end_user,
        session.account_id.as_deref(),
        ConnectedToken {
            ig_user_id,
            ig_scoped_id,
            username: profile.username.clone(),
            scopes,
            token: long.access_token.expose_secret().to_string(),
            issued_at: now,
            expires_at,
        },
    )
    .await
}

pub struct ConnectedToken {
    pub ig_user_id: String,
    pub ig_scoped_id: String,
    pub username: Option<String>,
    pub scopes: String,
    pub token: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Creates the account, or updates the one with the same identity (CONTRACT §3).
/// Returns its id and its status before (None when it is new).
pub async fn connect_account(
    state: &AppState,
    app: &AppRow,
    end_user: &str,
    reconnect: Option<&str>,
    t: ConnectedToken,
) -> Result<(String, Option<String>), ApiError> {
    let existing: Option<AccountRow> = match reconnect {
        Some(id) => {
            let acc = accounts::get(state, id).await?;
            if acc.ig_user_id != t.ig_user_id {
                return Err(ApiError::AccountMismatch);
            }
            Some(acc)
        }
        None => {
            state
                .store()
                .find_live_account(&app.id, end_user, &t.ig_user_id)
                .await?
        }
    };
    let now = state.now();
    for _attempt in 0..3 {
        let (id, previous) = match &existing {
            Some(a) => (a.id.clone(), Some(a.status.clone())),
            None => match state
                .store()
                .find_live_account(&app.id, end_user, &t.ig_user_id)
                .await?
            {
                Some(a) => (a.id, Some(a.status)),
                None => (PrefixedId::generate(IdKind::Account).into_string(), None),
            },
        };
        let is_new = previous.is_none();
        let token = TokenUpdate {
            token_enc: state
                .vault()
                .seal_str(&accounts::token_aad(&id), &t.token)?,
            key_version: i64::from(state.vault().current_version()),
            issued_at: t.issued_at,
            expires_at: t.expires_at,
            next_refresh_at: state
                .policy()
                .next_refresh_at(&id, t.issued_at, t.expires_at),
        };
        let new = NewAccount {
            id: id.clone(),
            app_id: app.id.clone(),
            end_user: end_user.to_string(),
            ig_user_id: t.ig_user_id.clone(),
            ig_scoped_id: t.ig_scoped_id.clone(),
            username: t.username.clone(),
            scopes: t.scopes.clone(),
            token,
        };
        if is_new {
            match state.store().insert_account(&new, now).await {
                Ok(()) => return Ok((id, None)),
                // Another connect of the same identity won the race: update that one.
                Err(e) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        } else if state.store().reconnect_account(&new, now).await? {
            return Ok((id, previous));
        }
    }
    Err(ApiError::Conflict(
        "the account changed while connecting; try again".into(),
    ))
}

pub fn upstream(step: &str, e: &instagram_api::Error) -> ApiError {
    ApiError::Upstream(format!("Instagram refused the {step}: {e}"))
}
