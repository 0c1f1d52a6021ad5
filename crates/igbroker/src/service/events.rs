//! Events for the service that owns an account: the one place their payloads
//! are built and signed. An event is an outbox row written on the transaction of
//! the change it reports; `worker::webhooks` delivers it after the commit.

use hmac::{KeyInit, Mac};
use igbroker_core::{IdKind, PrefixedId};
use igbroker_store::{AccountRow, OutboxRow};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::service::apps;
use crate::service::error::Result;
use crate::state::AppState;
use crate::util::rfc3339;

pub const SIGNATURE_HEADER: &str = "x-igbroker-signature";
pub const TIMESTAMP_HEADER: &str = "x-igbroker-timestamp";
pub const ACCOUNT_CONNECTED: &str = "account.connected";
pub const ACCOUNT_RECOVERED: &str = "account.recovered";
pub const ACCOUNT_REVOKED: &str = "account.revoked";
pub const ACCOUNT_REAUTH_REQUIRED: &str = "account.reauth_required";
pub const ACCOUNT_DEAUTHORIZED: &str = "account.deauthorized";
pub const ACCOUNT_DELETED: &str = "account.deleted";
pub const ACCOUNT_ANOMALY: &str = "account.anomaly";
/// One change of an Instagram webhook notification, relayed for an account.
pub const INSTAGRAM_WEBHOOK: &str = "instagram.webhook";

/// The signature a receiver recomputes: HMAC-SHA256 over `{timestamp}.{body}`,
/// keyed with the app's webhook secret, as `sha256=<hex>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A re-connect link offered with an event, so the owning service can send the
/// user straight back.
pub struct ReconnectOffer {
    pub session_id: String,
    pub connect_url: String,
    pub expires_at: i64,
}

/// Who an account event is about.
pub struct Subject<'a> {
    pub account_id: &'a str,
    pub app_id: &'a str,
    /// Empty when the connecting service named no end user.
    pub end_user: &'a str,
    pub ig_user_id: &'a str,
    pub username: Option<&'a str>,
}

impl<'a> From<&'a AccountRow> for Subject<'a> {
    fn from(a: &'a AccountRow) -> Self {
        Subject {
            account_id: &a.id,
            app_id: &a.app_id,
            end_user: &a.end_user,
            ig_user_id: &a.ig_user_id,
            username: a.username.as_deref(),
        }
    }
}

/// Whether the app wants events at all (it has a webhook and is not deleted).
pub async fn wanted(state: &AppState, app_id: &str) -> Result<bool> {
    match apps::get(state, app_id).await {
        Ok(app) => Ok(app.webhook_url.is_some()),
        Err(crate::service::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The outbox row for `event` about an account, or None when its app has no
/// webhook. `extra` adds fields to `data`. Built before the change's transaction
/// begins (it reads the app), then written on it.
pub async fn account_event(
    state: &AppState,
    event: &str,
    acc: Subject<'_>,
    extra: Value,
    reconnect: Option<&ReconnectOffer>,
) -> Result<Option<OutboxRow>> {
    if !wanted(state, acc.app_id).await? {
        return Ok(None);
    }
    let now = state.now();
    let mut data = json!({
        "account_id": acc.account_id,
        "app_id": acc.app_id,
        "end_user": (!acc.end_user.is_empty()).then_some(acc.end_user),
        "ig_user_id": acc.ig_user_id,
        "username": acc.username,
    });
    if let (Value::Object(d), Value::Object(e)) = (&mut data, extra) {
        d.extend(e);
    }
    if let Some(r) = reconnect {
        data["reconnect"] = json!({
            "session_id": r.session_id,
            "connect_url": r.connect_url,
            "expires_at": rfc3339(r.expires_at),
        });
    }
    let id = PrefixedId::generate(IdKind::Audit)
        .into_string()
        .replacen("aud_", "evt_", 1);
    let payload = json!({"id": id, "type": event, "created_at": rfc3339(now), "data": data});
    Ok(Some(OutboxRow {
        id,
        app_id: acc.app_id.to_string(),
        event: event.to_string(),
        account_id: Some(acc.account_id.to_string()),
        payload: payload.to_string(),
        created_at: now,
        attempts: 0,
        next_attempt_at: now,
        delivered_at: None,
        failed_at: None,
        last_error: None,
    }))
}

/// `account.deleted`: the account and every record of its user are gone, so the event names
/// only broker ids (the owning service maps the account id to its own user).
pub async fn deleted_event(
    state: &AppState,
    account_id: &str,
    app_id: &str,
    confirmation_code: &str,
) -> Result<Option<OutboxRow>> {
    if !wanted(state, app_id).await? {
        return Ok(None);
    }
    let now = state.now();
    let id = PrefixedId::generate(IdKind::Audit)
        .into_string()
        .replacen("aud_", "evt_", 1);
    let payload = json!({"id": id, "type": ACCOUNT_DELETED, "created_at": rfc3339(now), "data": {
        "account_id": account_id,
        "app_id": app_id,
        "reason": "data_deletion_request",
        "confirmation_code": confirmation_code,
    }});
    Ok(Some(OutboxRow {
        id,
        app_id: app_id.to_string(),
        event: ACCOUNT_DELETED.to_string(),
        account_id: Some(account_id.to_string()),
        payload: payload.to_string(),
        created_at: now,
        attempts: 0,
        next_attempt_at: now,
        delivered_at: None,
        failed_at: None,
        last_error: None,
    }))
}
