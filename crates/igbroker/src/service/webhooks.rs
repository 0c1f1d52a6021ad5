//! Events for the service that owns an account, written to an outbox in the
//! database and delivered (signed, retried, logged) by the background worker.

use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use igbroker_core::{IdKind, PrefixedId};
use igbroker_store::{AccountRow, OutboxRow, WebhookDelivery};
use igbroker_vault::Aad;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::error::ApiError;
use crate::service::connect;
use crate::state::AppState;
use crate::util::rfc3339;

pub const SIGNATURE_HEADER: &str = "x-igbroker-signature";
pub const TIMESTAMP_HEADER: &str = "x-igbroker-timestamp";
/// Attempts before a delivery is given up (spread over about a day).
pub const MAX_ATTEMPTS: i64 = 12;
/// A re-connect link offered in an event lives longer than an interactive one.
pub const RECONNECT_TTL_SECS: i64 = 7 * 86_400;

pub fn secret_aad(app_id: &str) -> Aad<'_> {
    Aad::new("apps", app_id, "webhook_secret")
}

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

/// Queues `event` for the account's app, if the app has a webhook.
pub async fn account_event(
    state: &AppState,
    event: &str,
    acc: &AccountRow,
    extra: Value,
    offer_reconnect: bool,
) -> Result<(), ApiError> {
    let Some(app) = state.store().get_app(&acc.app_id).await? else {
        return Ok(());
    };
    if app.webhook_url.is_none() {
        return Ok(());
    }
    let now = state.now();
    let mut data = json!({
        "account_id": acc.id,
        "app_id": acc.app_id,
        "end_user": (!acc.end_user.is_empty()).then(|| acc.end_user.clone()),
        "ig_user_id": acc.ig_user_id,
        "username": acc.username,
    });
    if let (Value::Object(d), Value::Object(e)) = (&mut data, extra) {
        d.extend(e);
    }
    if offer_reconnect {
        let session = connect::create_reconnect(state, acc, RECONNECT_TTL_SECS).await?;
        data["reconnect"] = json!({
            "session_id": session.id,
            "connect_url": connect::connect_url(state, &session.id),
            "expires_at": rfc3339(session.expires_at),
        });
    }
    let id = PrefixedId::generate(IdKind::Audit)
        .into_string()
        .replacen("aud_", "evt_", 1);
    let payload = json!({"id": id, "type": event, "created_at": rfc3339(now), "data": data});
    state
        .store()
        .enqueue_webhook(&OutboxRow {
            id,
            app_id: acc.app_id.clone(),
            event: event.to_string(),
            account_id: Some(acc.id.clone()),
            payload: payload.to_string(),
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            delivered_at: None,
            failed_at: None,
            last_error: None,
        })
        .await?;
    state.wake_scheduler();
    Ok(())
}

/// Delivers one leased outbox row and records the attempt.
pub async fn deliver(
    state: &AppState,
    http: &reqwest::Client,
    row: &OutboxRow,
    owner: &str,
) -> Result<bool, ApiError> {
    let started = Instant::now();
    let now = state.now();
    let app = state.store().get_app(&row.app_id).await?;
    let target = app.as_ref().and_then(|a| a.webhook_url.clone());
    let secret = match state.store().app_webhook_secret(&row.app_id).await? {
        Some(sealed) => Some(state.vault().open(&secret_aad(&row.app_id), &sealed)?),
        None => None,
    };
    let (ok, status_code, error) = match (target, secret) {
        (Some(url), Some(secret)) => {
            let body = row.payload.as_bytes().to_vec();
            let signature = sign(&secret, now, &body);
            let result = http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("x-igbroker-event", &row.event)
                .header("x-igbroker-delivery", &row.id)
                .header(TIMESTAMP_HEADER, now.to_string())
                .header(SIGNATURE_HEADER, signature)
                .body(body)
                .send()
                .await;
            match result {
                Ok(resp) if resp.status().is_success() => {
                    (true, Some(i64::from(resp.status().as_u16())), None)
                }
                Ok(resp) => (
                    false,
                    Some(i64::from(resp.status().as_u16())),
                    Some(format!("the receiver answered {}", resp.status())),
                ),
                // Without the URL: it may carry credentials in its query.
                Err(e) => (
                    false,
                    None,
                    Some(format!("delivery failed: {}", e.without_url())),
                ),
            }
        }
        _ => (
            false,
            None,
            Some("the app no longer has a webhook URL and secret".to_string()),
        ),
    };
    let attempts = row.attempts + 1;
    let retry_at = if ok || attempts >= MAX_ATTEMPTS {
        None
    } else {
        Some(now + (30i64 << attempts.clamp(1, 12)).min(6 * 3600))
    };
    let delivery = WebhookDelivery {
        id: PrefixedId::generate(IdKind::Audit)
            .into_string()
            .replacen("aud_", "dlv_", 1),
        outbox_id: row.id.clone(),
        at: now,
        status_code,
        error: error.clone(),
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
    };
    state
        .store()
        .record_webhook_attempt(&delivery, owner, ok, retry_at)
        .await?;
    if let Some(e) = error {
        tracing::warn!(outbox_id = %row.id, event = %row.event, attempts, error = %e, "webhook delivery failed");
    }
    Ok(ok)
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// Generates, seals and stores a new webhook secret; returned once to the caller.
pub async fn new_secret(state: &AppState, app_id: &str) -> Result<String, ApiError> {
    let secret = format!("whsec_{}", igbroker_core::secrets::random_token());
    let sealed = state.vault().seal(&secret_aad(app_id), secret.as_bytes())?;
    state
        .store()
        .set_app_webhook_secret(app_id, &sealed)
        .await?;
    Ok(secret)
}
