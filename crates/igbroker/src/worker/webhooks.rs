//! Delivering queued events: signed, retried with backoff, every attempt logged.
//! Events are written by the service layer on the transaction of their change;
//! this only sends what was committed.

use std::time::Instant;

use igbroker_core::{IdKind, PrefixedId};
use igbroker_store::{OutboxRow, WebhookDelivery};

use crate::service::Result;
use crate::service::apps::{previous_webhook_secret_aad, webhook_secret_aad};
use crate::service::events::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use crate::state::AppState;

/// Attempts before a delivery is given up (spread over about a day).
pub const MAX_ATTEMPTS: i64 = 12;

/// Delivers one leased outbox row and records the attempt.
pub async fn deliver(
    state: &AppState,
    http: &reqwest::Client,
    row: &OutboxRow,
    owner: &str,
) -> Result<bool> {
    let started = Instant::now();
    let now = state.now();
    let app = state.store().get_app(&row.app_id).await?;
    let target = app.as_ref().and_then(|a| a.webhook_url.clone());
    let secrets = state.store().app_webhook_secrets(&row.app_id).await?;
    let secret = match &secrets.current {
        Some(sealed) => Some(
            state
                .vault()
                .open(&webhook_secret_aad(&row.app_id), sealed)?,
        ),
        None => None,
    };
    // A rotated-out secret signs too until its grace ends; one that no longer opens
    // (its key retired) is skipped rather than failing the delivery.
    let previous = secrets
        .previous
        .filter(|(_, until)| *until > now)
        .and_then(|(sealed, _)| {
            state
                .vault()
                .open(&previous_webhook_secret_aad(&row.app_id), &sealed)
                .ok()
        });
    // The destination is checked now, on what the name resolves to now; the client's
    // resolver checks again the addresses it connects to.
    let refused = match &target {
        Some(url) => crate::webhook_net::check_destination(state.webhook_policy(), url)
            .await
            .err(),
        None => None,
    };
    let (ok, status_code, error) = match (target, secret) {
        _ if refused.is_some() => (
            false,
            None,
            refused.map(|r| format!("delivery refused: {r}")),
        ),
        (Some(url), Some(secret)) => {
            let body = row.payload.as_bytes().to_vec();
            let mut signature = sign(&secret, now, &body);
            if let Some(previous) = &previous {
                signature = format!("{signature}, {}", sign(previous, now, &body));
            }
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
                    Some(format!(
                        "delivery failed: {}",
                        crate::webhook_net::describe(e)
                    )),
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
