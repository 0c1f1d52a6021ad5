//! The authorization flow: connect sessions, the redirect to Instagram, the
//! callback that exchanges the code (once, however often the browser calls
//! back), importing a token obtained elsewhere, and marking an account as
//! needing to connect again. Every account change here commits with its audit
//! entry, its event and (for a callback) its session's outcome.

use std::time::Duration;

use igbroker_core::secrets::{random_token, sha256_hex};
use igbroker_core::urls::check_return_url;
use igbroker_core::{AccountStatus, ConnectSessionStatus, IdKind, InstagramScope, PrefixedId};
use igbroker_store::{AccountRow, AppRow, ConnectSessionRow, NewAccount, TokenUpdate};
use igbroker_vault::Aad;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::service::apps::scope_names;
use crate::service::error::{Error, Result, describe_code};
use crate::service::events::{self, ReconnectOffer, Subject};
use crate::service::{accounts, apps, audit, instagram_webhooks};
use crate::state::AppState;
use crate::util::rfc3339;

/// How long a connect link (and its state) lives.
pub const SESSION_TTL_SECS: i64 = 3600;
/// A re-connect link offered in an event lives longer than an interactive one.
pub const RECONNECT_TTL_SECS: i64 = 7 * 86_400;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
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
    /// What the error means and what fixes it, for codes that need more than their name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<&'static str>,
}

impl SessionView {
    pub fn from_row(state: &AppState, s: &ConnectSessionRow) -> SessionView {
        let status = match s.status {
            ConnectSessionStatus::Exchanging => ConnectSessionStatus::Pending,
            other => other,
        }
        .as_str();
        SessionView {
            id: s.id.clone(),
            app_id: s.app_id.clone(),
            status: status.to_string(),
            connect_url: (status == "pending").then(|| connect_url(state, &s.id)),
            expires_at: rfc3339(s.expires_at),
            end_user: (!s.end_user.is_empty()).then(|| s.end_user.clone()),
            scopes: scope_names(&s.scopes),
            account_id: s.result_account_id.clone().or_else(|| s.account_id.clone()),
            error: s.error.clone(),
            error_description: s.error.as_deref().and_then(describe_code),
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

pub async fn create(state: &AppState, req: NewSession) -> Result<ConnectSessionRow> {
    let row = prepare(state, &req).await?;
    state.store().insert_connect_session(&row).await?;
    Ok(row)
}

/// Like [`create`], for a person acting in the dashboard: the session and its
/// `connect_session.created` entry naming `actor` commit together.
pub async fn create_by(
    state: &AppState,
    req: NewSession,
    actor: &str,
) -> Result<ConnectSessionRow> {
    let row = prepare(state, &req).await?;
    let mut detail = json!({"session_id": row.id});
    if row.account_id.is_some() {
        detail["reconnect"] = json!(true);
    }
    let entry = audit::entry(
        state,
        actor,
        "connect_session.created",
        row.account_id.as_deref(),
        Some(&row.app_id),
        detail,
    );
    let mut tx = state.store().begin().await?;
    tx.insert_connect_session(&row).await?;
    tx.append_audit(&[entry]).await?;
    tx.commit().await?;
    Ok(row)
}

/// Checks a session request against its app (and account) and builds the session.
async fn prepare(state: &AppState, req: &NewSession) -> Result<ConnectSessionRow> {
    let app = apps::get(state, &req.app_id).await?;
    let app_scopes = app.scopes.clone();
    let scopes = match &req.scopes {
        None => app_scopes.clone(),
        Some(list) => {
            let asked =
                InstagramScope::parse_requested(list).map_err(|e| Error::Invalid(e.to_string()))?;
            if let Some(extra) = asked.iter().find(|s| !app_scopes.contains(s)) {
                return Err(Error::Invalid(format!(
                    "scope `{extra}` is not registered for app {}; ask only for scopes the app declares",
                    app.id
                )));
            }
            asked
        }
    };
    let return_url = match &req.return_url {
        Some(u) => Some(
            check_return_url(u, &app.return_origins).map_err(|e| Error::Invalid(e.to_string()))?,
        ),
        None => None,
    };
    let mut end_user = req.end_user.clone().unwrap_or_default();
    if end_user.len() > 200 {
        return Err(Error::Invalid(
            "end_user must be at most 200 characters".into(),
        ));
    }
    if let Some(acc_id) = &req.account_id {
        let acc = accounts::get(state, acc_id).await?;
        if acc.app_id != app.id {
            return Err(Error::Invalid(format!(
                "account {acc_id} belongs to another app than {}",
                app.id
            )));
        }
        if acc.status == AccountStatus::Revoked {
            return Err(Error::NotActive(AccountStatus::Revoked));
        }
        if req.end_user.is_none() {
            end_user = acc.end_user.clone();
        } else if end_user != acc.end_user {
            return Err(Error::Invalid(format!(
                "end_user differs from account {acc_id}'s end user"
            )));
        }
    }
    new_session(
        state,
        &app,
        end_user,
        scopes,
        return_url,
        req.account_id.clone(),
        SESSION_TTL_SECS,
    )
}

/// A pending session with a fresh `state`, kept sealed (the connect link sends
/// it again) and hashed (the callback looks it up). Not yet stored.
fn new_session(
    state: &AppState,
    app: &AppRow,
    end_user: String,
    scopes: Vec<InstagramScope>,
    return_url: Option<String>,
    account_id: Option<String>,
    ttl_secs: i64,
) -> Result<ConnectSessionRow> {
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
        status: ConnectSessionStatus::Pending,
        code_hash: None,
        result_account_id: None,
        error: None,
        created_at: now,
        expires_at: now + ttl_secs,
        completed_at: None,
        redirect_uri: Some(app.redirect_uri.clone()),
    };
    Ok(row)
}

pub async fn get(state: &AppState, id: &str) -> Result<ConnectSessionRow> {
    state
        .store()
        .get_connect_session(id)
        .await?
        .ok_or_else(|| Error::not_found("connect session", id))
}

/// The redirect URI a session started with; sessions from before that was
/// kept use the app's.
fn redirect_uri_of<'a>(session: &'a ConnectSessionRow, app: &'a AppRow) -> &'a str {
    session.redirect_uri.as_deref().unwrap_or(&app.redirect_uri)
}

/// Where `/connect/{id}` sends the browser.
pub async fn authorize_redirect(state: &AppState, id: &str) -> Result<String> {
    let session = get(state, id).await?;
    if !session.status.is_open() {
        return Err(Error::Conflict(format!(
            "this connect link was already used (status {}); ask for a new one",
            session.status
        )));
    }
    if session.expires_at <= state.now() {
        return Err(Error::InvalidState(
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
        scopes: scope_names(&session.scopes),
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
    pub status: ConnectSessionStatus,
    pub account_id: Option<String>,
    pub error: Option<String>,
    pub return_url: Option<String>,
}

impl Outcome {
    fn from_row(s: &ConnectSessionRow) -> Outcome {
        Outcome {
            session_id: s.id.clone(),
            status: s.status,
            account_id: s.result_account_id.clone(),
            error: s.error.clone(),
            return_url: s.return_url.clone(),
        }
    }

    /// `return_url?session_id=…&status=…&account_id=…|error=…[&error_description=…]`.
    pub fn redirect_location(&self) -> Option<String> {
        let base = self.return_url.as_ref()?;
        let mut url = url::Url::parse(base).ok()?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("session_id", &self.session_id);
            q.append_pair("status", self.status.as_str());
            if let Some(a) = &self.account_id {
                q.append_pair("account_id", a);
            }
            if let Some(e) = &self.error {
                q.append_pair("error", e);
                if let Some(d) = describe_code(e) {
                    q.append_pair("error_description", d);
                }
            }
        }
        Some(url.to_string())
    }
}

pub async fn handle_callback(state: &AppState, q: CallbackQuery) -> Result<Outcome> {
    let raw_state = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::InvalidState("the callback carries no `state`; start from a connect link".into())
        })?;
    let session = state
        .store()
        .find_connect_session_by_state(&sha256_hex(raw_state))
        .await?
        .ok_or_else(|| {
            Error::InvalidState("unknown `state`: this callback does not belong to a connect session of this broker".into())
        })?;

    if let Some(error) = q.error.as_deref() {
        return handle_denial(state, &session, error, &q).await;
    }
    let code = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::Invalid("the callback has neither `code` nor `error`".into()))?;
    if code.contains('#') {
        return Err(Error::Invalid(
            "the code contains `#`: strip Instagram's `#_` suffix before sending it".into(),
        ));
    }
    let code_hash = sha256_hex(code);

    if session.status != ConnectSessionStatus::Pending {
        return replay(state, session, &code_hash).await;
    }
    if session.expires_at <= state.now() {
        return Err(Error::InvalidState(
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

    match exchange(state, &session, code).await {
        Ok((app, token)) => {
            let detail = json!({"session_id": session.id});
            let done = store_connected(
                state,
                &app,
                &session.end_user,
                session.account_id.as_deref(),
                token,
                Record {
                    actor: "instagram:callback",
                    action: "account.connected",
                    detail: detail.clone(),
                    event_extra: detail,
                    event_only_when_new: false,
                    session_id: Some(&session.id),
                },
            )
            .await;
            match done {
                Ok((account_id, _)) => instagram_webhooks::after_connect(state, &account_id).await,
                Err(e) => fail_session(state, &session, &e).await?,
            }
        }
        Err(e) => fail_session(state, &session, &e).await?,
    }
    let fresh = get(state, &session.id).await?;
    Ok(Outcome::from_row(&fresh))
}

/// A failed exchange: the session records the error code, nothing else changes.
async fn fail_session(state: &AppState, session: &ConnectSessionRow, e: &Error) -> Result<()> {
    tracing::warn!(session_id = %session.id, error = %e, "connect session failed");
    state
        .store()
        .finish_connect_session(
            &session.id,
            ConnectSessionStatus::Error,
            None,
            Some(e.code()),
            state.now(),
        )
        .await?;
    Ok(())
}

async fn handle_denial(
    state: &AppState,
    session: &ConnectSessionRow,
    error: &str,
    q: &CallbackQuery,
) -> Result<Outcome> {
    match session.status {
        ConnectSessionStatus::Pending => {
            let reason = q.error_reason.as_deref().unwrap_or(error);
            tracing::info!(session_id = %session.id, reason = %reason, description = ?q.error_description, "user denied authorization");
            let code = if error == "access_denied" {
                "access_denied"
            } else {
                "authorization_error"
            };
            state
                .store()
                .finish_connect_session(
                    &session.id,
                    ConnectSessionStatus::Denied,
                    None,
                    Some(code),
                    state.now(),
                )
                .await?;
            let fresh = get(state, &session.id).await?;
            Ok(Outcome::from_row(&fresh))
        }
        ConnectSessionStatus::Denied => Ok(Outcome::from_row(session)),
        _ => Err(Error::StateUsed),
    }
}

/// Repeats the first outcome for the same code; another code is `state_used`.
async fn replay(
    state: &AppState,
    mut session: ConnectSessionRow,
    code_hash: &str,
) -> Result<Outcome> {
    // Not a secret comparison: both sides are hashes already stored server-side.
    if session.code_hash.as_deref() != Some(code_hash) {
        return Err(Error::StateUsed);
    }
    // The first request may still be exchanging; wait for its outcome (bounded).
    let deadline = tokio::time::Instant::now() + state.config().instagram.request_timeout * 3;
    while session.status == ConnectSessionStatus::Exchanging {
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Unavailable(
                "the first callback for this code is still exchanging it; retry shortly".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        session = get(state, &session.id).await?;
    }
    Ok(Outcome::from_row(&session))
}

/// Code → short-lived → long-lived → /me: the token and whose it is.
async fn exchange(
    state: &AppState,
    session: &ConnectSessionRow,
    code: &str,
) -> Result<(AppRow, ConnectedToken)> {
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
        .map_err(Error::upstream("code exchange"))?;
    let long = ig
        .exchange_long_lived(&secret, &short.access_token)
        .await
        .map_err(Error::upstream("long-lived exchange"))?;
    let profile = ig
        .me(&long.access_token, &["id", "user_id", "username"])
        .await
        .map_err(Error::upstream("profile lookup"))?;
    let ig_user_id = profile
        .user_id
        .clone()
        .unwrap_or_else(|| profile.id.clone());
    let ig_scoped_id = if profile.id.is_empty() {
        short.user_id.clone()
    } else {
        profile.id.clone()
    };
    let mut granted: Vec<InstagramScope> = short
        .permissions
        .iter()
        .filter_map(|p| p.parse::<InstagramScope>().ok())
        .collect();
    granted.sort();
    granted.dedup();
    let scopes = if granted.is_empty() {
        session.scopes.clone()
    } else {
        granted
    };
    let now = state.now();
    let expires_at = now + long.expires_in.max(0);
    let token = ConnectedToken {
        ig_user_id,
        ig_scoped_id,
        username: profile.username.clone(),
        scopes,
        token: long.access_token.expose_secret().to_string(),
        issued_at: now,
        expires_at,
    };
    Ok((app, token))
}

pub struct ConnectedToken {
    pub ig_user_id: String,
    pub ig_scoped_id: String,
    pub username: Option<String>,
    pub scopes: Vec<InstagramScope>,
    pub token: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// How a connected token is recorded: the audit entry, the event, and the
/// connect session it completes.
struct Record<'a> {
    actor: &'a str,
    action: &'static str,
    detail: Value,
    event_extra: Value,
    /// Imports tell the owning service only about accounts that are new.
    event_only_when_new: bool,
    session_id: Option<&'a str>,
}

/// Creates the account, or updates the one with the same identity (app, end user,
/// Instagram user), in one transaction with its audit entry, its event and the
/// session's outcome. Returns its id and whether it is new.
async fn store_connected(
    state: &AppState,
    app: &AppRow,
    end_user: &str,
    reconnect: Option<&str>,
    t: ConnectedToken,
    record: Record<'_>,
) -> Result<(String, bool)> {
    let existing: Option<AccountRow> = match reconnect {
        Some(id) => {
            let acc = accounts::get(state, id).await?;
            if acc.ig_user_id != t.ig_user_id {
                return Err(Error::AccountMismatch);
            }
            Some(acc)
        }
        None => None,
    };
    for _attempt in 0..3 {
        let now = state.now();
        let (id, previous) = match &existing {
            Some(a) => (a.id.clone(), Some(a.status)),
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
        let event_name = if previous == Some(AccountStatus::ReauthRequired) {
            events::ACCOUNT_RECOVERED
        } else {
            events::ACCOUNT_CONNECTED
        };
        let event = if is_new || !record.event_only_when_new {
            let subject = Subject {
                account_id: &id,
                app_id: &app.id,
                end_user,
                ig_user_id: &t.ig_user_id,
                username: t.username.as_deref(),
            };
            events::account_event(state, event_name, subject, record.event_extra.clone(), None)
                .await?
        } else {
            None
        };
        let entry = audit::entry(
            state,
            record.actor,
            record.action,
            Some(&id),
            Some(&app.id),
            record.detail.clone(),
        );
        let mut tx = state.store().begin().await?;
        if is_new {
            match tx.insert_account(&new, now).await {
                Ok(()) => {}
                // Another connect of the same identity won the race: update that one.
                Err(e) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        } else if !tx.reconnect_account(&new, now).await? {
            // Revoked meanwhile: look again (a new account, or the winner's).
            if existing.is_some() {
                return Err(Error::NotActive(AccountStatus::Revoked));
            }
            continue;
        }
        if let Some(session_id) = record.session_id {
            tx.finish_connect_session(
                session_id,
                ConnectSessionStatus::Connected,
                Some(&id),
                None,
                now,
            )
            .await?;
        }
        tx.append_audit(&[entry]).await?;
        if let Some(event) = &event {
            tx.enqueue_webhook(event).await?;
        }
        tx.commit().await?;
        state.wake_scheduler();
        return Ok((id, is_new));
    }
    Err(Error::Conflict(
        "the account changed while connecting; try again".into(),
    ))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct ImportRequest {
    pub app_id: String,
    #[schema(value_type = String, format = Password)]
    pub access_token: secrecy::SecretString,
    #[serde(default)]
    pub end_user: Option<String>,
    /// When the token was issued or last refreshed (RFC 3339); default now.
    /// Its age decides when it may be refreshed.
    #[serde(default)]
    pub issued_at: Option<String>,
}

/// Adopts a long-lived token obtained elsewhere, after checking it with `/me`.
/// Its expiry is taken as 60 days from `issued_at`: Instagram does not say.
pub async fn import(
    state: &AppState,
    req: ImportRequest,
    actor: &str,
) -> Result<(AccountRow, bool)> {
    let app = apps::get(state, &req.app_id).await?;
    let token = req.access_token.expose_secret().trim().to_string();
    if token.is_empty() || token.len() > 2048 || token.chars().any(char::is_whitespace) {
        return Err(Error::Invalid(
            "access_token must be a long-lived Instagram token".into(),
        ));
    }
    let now = state.now();
    let issued_at = match &req.issued_at {
        Some(t) => crate::util::parse_rfc3339(t)?,
        None => now,
    };
    if issued_at > now + 300 {
        return Err(Error::Invalid("issued_at lies in the future".into()));
    }
    let expires_at = issued_at + 60 * 86_400;
    if expires_at <= now {
        return Err(Error::Invalid(
            "a token issued 60 days ago or more has expired; connect the account instead".into(),
        ));
    }
    let ig_token = instagram_api::AccessToken::new(token.clone());
    let profile = state
        .instagram()
        .me(&ig_token, &["id", "user_id", "username"])
        .await
        .map_err(|e| match e {
            instagram_api::Error::Reauth { .. } => {
                Error::Invalid(format!("Instagram does not accept this token: {e}"))
            }
            other => Error::upstream("token check (/me)")(other),
        })?;
    let end_user = req.end_user.unwrap_or_default();
    let (id, created) = store_connected(
        state,
        &app,
        &end_user,
        None,
        ConnectedToken {
            ig_user_id: profile
                .user_id
                .clone()
                .unwrap_or_else(|| profile.id.clone()),
            ig_scoped_id: profile.id.clone(),
            username: profile.username.clone(),
            // Instagram does not tell which scopes a bare token carries: assume the app's.
            scopes: app.scopes.clone(),
            token,
            issued_at,
            expires_at,
        },
        Record {
            actor,
            action: "account.imported",
            detail: json!({}),
            event_extra: json!({"imported": true}),
            event_only_when_new: true,
            session_id: None,
        },
    )
    .await?;
    let acc = accounts::get(state, &id).await?;
    Ok((acc, created))
}

/// Marks the account `reauth_required` and tells the owning service, offering a
/// re-connect link that restores the same account: the status, the link's
/// session, the audit entry and the event commit together. False when the
/// account was not active (someone else marked it, or it was revoked).
pub async fn mark_reauth(
    state: &AppState,
    acc: &AccountRow,
    reason: &str,
    actor: &str,
) -> Result<bool> {
    let session = if events::wanted(state, &acc.app_id).await? {
        let app = apps::get(state, &acc.app_id).await?;
        Some(new_session(
            state,
            &app,
            acc.end_user.clone(),
            acc.scopes.clone(),
            None,
            Some(acc.id.clone()),
            RECONNECT_TTL_SECS,
        )?)
    } else {
        None
    };
    let offer = session.as_ref().map(|s| ReconnectOffer {
        session_id: s.id.clone(),
        connect_url: connect_url(state, &s.id),
        expires_at: s.expires_at,
    });
    let detail = json!({"reason": reason});
    let event = events::account_event(
        state,
        events::ACCOUNT_REAUTH_REQUIRED,
        acc.into(),
        detail.clone(),
        offer.as_ref(),
    )
    .await?;
    let entry = audit::entry(
        state,
        actor,
        "account.reauth_required",
        Some(&acc.id),
        Some(&acc.app_id),
        detail,
    );
    let mut tx = state.store().begin().await?;
    if !tx
        .mark_reauth_required(&acc.id, reason, state.now())
        .await?
    {
        return Ok(false);
    }
    if let (Some(session), Some(event)) = (&session, &event) {
        tx.insert_connect_session(session).await?;
        tx.enqueue_webhook(event).await?;
    }
    tx.append_audit(&[entry]).await?;
    tx.commit().await?;
    tracing::warn!(account_id = %acc.id, reason, "account needs re-authorization");
    metrics::counter!("igbroker_refresh_total", "outcome" => "reauth_required").increment(1);
    if event.is_some() {
        state.wake_scheduler();
    }
    Ok(true)
}
