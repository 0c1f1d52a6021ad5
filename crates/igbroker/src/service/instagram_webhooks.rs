//! Instagram's webhooks, relayed to the service that owns each account.
//!
//! Meta calls one callback URL per app (`/meta/webhooks/{app_id}`): a verification GET when
//! the URL is saved in the App Dashboard, then signed POSTs. Each POST is checked against the
//! app's Instagram App Secret over the raw body before anything is parsed; each entry names
//! the Instagram professional account (`entry[].id`, the `user_id` of `/me`), which maps to
//! the broker's accounts of that app; each change becomes one `instagram.webhook` event in the
//! owning service's signed outbox, naming the broker's account and end user. Entries of
//! accounts the broker does not hold are counted and dropped.

use std::collections::HashMap;

use hmac::{KeyInit, Mac};
use igbroker_core::{AccountStatus, InstagramScope};
use igbroker_store::{AccountFilter, AccountRow, RelayTarget};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::service::error::{Error, Result};
use crate::service::events::{self, Subject};
use crate::service::{accounts, apps};
use crate::state::AppState;

/// The header Meta signs event notifications with.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// Larger bodies are refused before the signature is computed.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Why a POST's signature was refused. None of these say what the right signature would be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request has no X-Hub-Signature-256 header; Meta signs every event notification")]
    Missing,
    #[error("X-Hub-Signature-256 must be `sha256=` followed by 64 hex digits")]
    Malformed,
    #[error(
        "X-Hub-Signature-256 does not match the body: it was not signed with this app's Instagram App Secret"
    )]
    Mismatch,
}

/// Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>` in constant
/// time (`Mac::verify_slice`).
pub fn verify_signature(
    app_secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.map(str::trim).ok_or(SignatureError::Missing)?;
    let hex_sig = header
        .strip_prefix("sha256=")
        .or_else(|| header.strip_prefix("SHA256="))
        .ok_or(SignatureError::Malformed)?;
    if hex_sig.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let sig = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(app_secret)
        .map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| SignatureError::Mismatch)
}

/// What a verification GET should be answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// 200 with this body (the challenge, echoed).
    Accept(String),
    /// 403: the verify token is not this app's.
    WrongToken,
    /// 400: not a subscription verification at all.
    NotAVerification(&'static str),
}

/// Meta's handshake: `hub.mode=subscribe`, `hub.verify_token` equal to the app's (compared in
/// constant time), `hub.challenge` echoed back as the body.
pub fn verification(
    mode: Option<&str>,
    challenge: Option<&str>,
    token: Option<&str>,
    expected_token: Option<&str>,
) -> Verification {
    if mode != Some("subscribe") {
        return Verification::NotAVerification("hub.mode must be `subscribe`");
    }
    let Some(challenge) = challenge.filter(|c| !c.is_empty() && c.len() <= 256) else {
        return Verification::NotAVerification("hub.challenge is missing");
    };
    let (Some(token), Some(expected)) = (token, expected_token) else {
        return Verification::WrongToken;
    };
    // Digests first, so the comparison neither stops early nor reveals the length.
    let a = Sha256::digest(token.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    if bool::from(a.as_slice().ct_eq(b.as_slice())) {
        Verification::Accept(challenge.to_string())
    } else {
        Verification::WrongToken
    }
}

/// One change of one entry, ready to be relayed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The Instagram professional account id (`entry[].id`), as a string.
    pub ig_user_id: String,
    pub object: String,
    pub time: Option<i64>,
    pub field: String,
    pub value: Value,
}

/// Why a signed body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body has no `entry` list")]
    NoEntries,
}

/// The changes of a notification, in order. Meta's single-object form
/// (`{"object", "entry": [...]}`) and the array form its Instagram examples print are both
/// read; messaging entries (`entry[].messaging[]`) become one `messages` change per item.
/// Entries without an account id are skipped.
pub fn changes(body: &[u8]) -> Result<Vec<Change>, PayloadError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        // serde's message names a line and column, never the body's content.
        PayloadError::NotJson(format!("line {} column {}", e.line(), e.column()))
    })?;
    let notifications: Vec<&Value> = match &v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::new();
    let mut saw_entries = false;
    for n in notifications {
        let object = n
            .get("object")
            .and_then(Value::as_str)
            .unwrap_or("instagram")
            .to_string();
        let Some(entries) = n.get("entry").and_then(Value::as_array) else {
            continue;
        };
        saw_entries = true;
        for entry in entries {
            let Some(ig_user_id) = id_string(entry.get("id")) else {
                continue;
            };
            let time = entry.get("time").and_then(Value::as_i64);
            for c in entry
                .get("changes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push(Change {
                    ig_user_id: ig_user_id.clone(),
                    object: object.clone(),
                    time,
                    field: c
                        .get("field")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown")
                        .to_string(),
                    value: c.get("value").cloned().unwrap_or(Value::Null),
                });
            }
            for m in entry
                .get("messaging")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push(Change {
                    ig_user_id: ig_user_id.clone(),
                    object: object.clone(),
                    time,
                    field: "messages".to_string(),
                    value: m.clone(),
                });
            }
        }
    }
    if !saw_entries {
        return Err(PayloadError::NoEntries);
    }
    Ok(out)
}

/// Ids arrive as strings, occasionally as numbers; 17-digit ids fit a u64 exactly.
fn id_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

/// The webhook fields an account can be subscribed to with the scopes it granted.
pub fn subscribable_fields(scopes: &[InstagramScope]) -> Vec<&'static str> {
    let has = |s: &str| scopes.iter().any(|x| x.as_str() == s);
    let mut fields = Vec::new();
    if has("instagram_business_manage_comments") {
        fields.extend(["comments", "mentions"]);
    }
    if has("instagram_business_manage_messages") {
        fields.push("messages");
    }
    if has("instagram_business_basic") {
        fields.push("story_insights");
    }
    fields
}

// ---------------------------------------------------------------------------------------------
// The service: verification, relay, subscriptions, the PATCH that turns relaying on.

/// The callback URL to enter in the App Dashboard's webhook settings for this app.
pub fn callback_url(state: &AppState, app_id: &str) -> String {
    format!(
        "{}/meta/webhooks/{app_id}",
        state.config().public_url.trim_end_matches('/')
    )
}

/// Answers Meta's verification GET for an app: its verify token decides. An app without a
/// verify token refuses every verification.
pub async fn verify(
    state: &AppState,
    app_id: &str,
    mode: Option<&str>,
    challenge: Option<&str>,
    token: Option<&str>,
) -> Result<Verification> {
    apps::get(state, app_id).await?;
    let settings = state
        .store()
        .instagram_relay(app_id)
        .await?
        .ok_or_else(|| Error::not_found("app", app_id))?;
    let expected = match &settings.verify_token_enc {
        Some(sealed) => Some(
            state
                .vault()
                .open_string(&apps::verify_token_aad(app_id), sealed)?,
        ),
        None => None,
    };
    let answer = verification(
        mode,
        challenge,
        token,
        expected.as_ref().map(|t| t.expose_secret()),
    );
    if answer == Verification::WrongToken {
        tracing::warn!(
            app_id,
            "webhook verification refused: wrong or missing verify token"
        );
    }
    Ok(answer)
}

/// What one notification became.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RelayReport {
    /// Changes in the notification.
    pub changes: usize,
    /// Events queued for the owning service (one per change and account).
    pub relayed: usize,
    /// Changes dropped: no account of this app holds the Instagram account, relaying is
    /// off, or the app has no webhook to deliver to.
    pub dropped: usize,
}

fn dropped(reason: &'static str, n: usize) {
    metrics::counter!("igbroker_instagram_webhook_changes_total", "result" => reason)
        .increment(n as u64);
}

/// One signed notification from Meta: checked against the app's Instagram App Secret over
/// the raw body, then each change queued for the owning service on one transaction.
pub async fn relay(
    state: &AppState,
    app_id: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<RelayReport> {
    let app = apps::get(state, app_id).await?;
    if body.len() > MAX_BODY_BYTES {
        return Err(Error::Invalid(format!(
            "the notification is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    let secret = apps::client_secret(state, &app)?;
    if let Err(e) = verify_signature(secret.expose_secret().as_bytes(), body, signature) {
        tracing::warn!(app_id, error = %e, "webhook notification refused");
        metrics::counter!("igbroker_instagram_webhook_notifications_refused_total").increment(1);
        return Err(Error::Invalid(e.to_string()));
    }
    let changes = changes(body).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut report = RelayReport {
        changes: changes.len(),
        ..RelayReport::default()
    };
    let enabled = state
        .store()
        .instagram_relay(app_id)
        .await?
        .is_some_and(|r| r.enabled);
    if !enabled {
        report.dropped = changes.len();
        dropped("relay_disabled", changes.len());
        return Ok(report);
    }
    let mut targets: HashMap<String, Vec<RelayTarget>> = HashMap::new();
    let mut rows = Vec::new();
    for c in &changes {
        if !targets.contains_key(&c.ig_user_id) {
            let found = state.store().relay_targets(app_id, &c.ig_user_id).await?;
            targets.insert(c.ig_user_id.clone(), found);
        }
        let holders = targets
            .get(&c.ig_user_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if holders.is_empty() {
            report.dropped += 1;
            dropped("unknown_account", 1);
            continue;
        }
        let mut queued = 0;
        for t in holders {
            let subject = Subject {
                account_id: &t.id,
                app_id,
                end_user: &t.end_user,
                ig_user_id: &c.ig_user_id,
                username: t.username.as_deref(),
            };
            let extra = json!({
                "object": c.object,
                "field": c.field,
                "time": c.time,
                "value": c.value,
            });
            if let Some(row) =
                events::account_event(state, events::INSTAGRAM_WEBHOOK, subject, extra, None)
                    .await?
            {
                rows.push(row);
                queued += 1;
            }
        }
        if queued == 0 {
            report.dropped += 1;
            dropped("no_webhook", 1);
        } else {
            report.relayed += queued;
        }
    }
    if !rows.is_empty() {
        let mut tx = state.store().begin().await?;
        for row in &rows {
            tx.enqueue_webhook(row).await?;
        }
        tx.commit().await?;
        metrics::counter!("igbroker_instagram_webhook_changes_total", "result" => "relayed")
            .increment(rows.len() as u64);
        state.wake_scheduler();
    }
    Ok(report)
}

/// Enables the app's webhook fields for one account (`POST /me/subscribed_apps`), with the
/// fields its granted scopes allow. Returns the fields.
pub async fn subscribe_account(state: &AppState, acc: &AccountRow) -> Result<Vec<&'static str>> {
    let fields = subscribable_fields(&acc.scopes);
    if fields.is_empty() {
        return Ok(fields);
    }
    let token = accounts::open_token(state, acc)?;
    let token = instagram_api::AccessToken::new(token.expose_secret().to_string());
    state
        .instagram()
        .subscribe_app(&token, "me", &fields)
        .await
        .map_err(Error::upstream(
            "webhook subscription (/me/subscribed_apps)",
        ))?;
    Ok(fields)
}

/// After a connect: subscribes the account when its app relays webhooks. A failure is
/// logged, never fails the connect (the next `PATCH … relay_instagram_webhooks` retries).
pub async fn after_connect(state: &AppState, account_id: &str) {
    let result = async {
        let acc = accounts::get(state, account_id).await?;
        let on = state
            .store()
            .instagram_relay(&acc.app_id)
            .await?
            .is_some_and(|r| r.enabled);
        if on {
            subscribe_account(state, &acc).await?;
        }
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(account_id, error = %e, "could not subscribe the account to the app's webhooks");
    }
}

/// The outcome of subscribing an app's active accounts.
#[derive(Debug, Default, Clone, Serialize, utoipa::ToSchema)]
pub struct Subscriptions {
    pub subscribed: usize,
    pub failed: Vec<FailedSubscription>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FailedSubscription {
    pub account_id: String,
    pub error: String,
}

/// Subscribes every active account of the app, one page at a time.
pub async fn subscribe_all(state: &AppState, app_id: &str) -> Result<Subscriptions> {
    let filter = AccountFilter {
        app_id: Some(app_id.to_string()),
        end_user: None,
        status: Some(AccountStatus::Active),
        ..Default::default()
    };
    let mut out = Subscriptions::default();
    let mut after: Option<String> = None;
    loop {
        let page = accounts::list(state, &filter, after.as_deref(), 200).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for acc in &page {
            match subscribe_account(state, acc).await {
                Ok(_) => out.subscribed += 1,
                Err(e) => out.failed.push(FailedSubscription {
                    account_id: acc.id.clone(),
                    error: e.to_string(),
                }),
            }
        }
        if page.len() < 200 {
            break;
        }
    }
    Ok(out)
}

/// `PATCH /v1/apps/{id}`: the change (audited on its transaction), then, when relaying is
/// turned on, `/me/subscribed_apps` for each active account. The answer is the app, its new
/// webhook secret when there is one, and the relay's state.
pub async fn update_app(
    state: &AppState,
    actor: &str,
    id: &str,
    changes: apps::AppChanges,
) -> Result<AppUpdated> {
    let turning_on = changes.relay_instagram_webhooks == Some(true);
    let updated = apps::update(state, actor, id, changes).await?;
    let settings = state.store().instagram_relay(id).await?;
    let relay_subscriptions = match turning_on {
        true => Some(subscribe_all(state, id).await?),
        false => None,
    };
    Ok(AppUpdated {
        shown: apps::AppShown {
            app: apps::AppView::from_row(&updated.row),
            webhook_secret: updated.webhook_secret,
        },
        relay_instagram_webhooks: settings.as_ref().is_some_and(|r| r.enabled),
        verify_token_set: settings.is_some_and(|r| r.verify_token_enc.is_some()),
        instagram_webhook_url: callback_url(state, id),
        relay_subscriptions,
    })
}

/// `PATCH /v1/apps/{id}`'s answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AppUpdated {
    #[serde(flatten)]
    pub shown: apps::AppShown,
    pub relay_instagram_webhooks: bool,
    pub verify_token_set: bool,
    /// Where Meta must send this app's Instagram webhooks.
    pub instagram_webhook_url: String,
    /// Present when relaying was just turned on: each active account's subscription.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_subscriptions: Option<Subscriptions>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_are_checked_over_the_raw_body() {
        let body = br#"{"object":"instagram","entry":[]}"#;
        let good = sign(b"app-secret", body);
        assert_eq!(verify_signature(b"app-secret", body, Some(&good)), Ok(()));
        assert_eq!(
            verify_signature(b"other-secret", body, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        // The same JSON re-serialised is another body.
        let spaced = br#"{"object": "instagram", "entry": []}"#;
        assert_eq!(
            verify_signature(b"app-secret", spaced, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"app-secret", body, None),
            Err(SignatureError::Missing)
        );
        for bad in ["sha1=abc", "sha256=zz", "sha256=", &good[..good.len() - 2]] {
            assert_eq!(
                verify_signature(b"app-secret", body, Some(bad)),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn verification_echoes_the_challenge_only_for_the_right_token() {
        assert_eq!(
            verification(
                Some("subscribe"),
                Some("1158201444"),
                Some("vt"),
                Some("vt")
            ),
            Verification::Accept("1158201444".into())
        );
        assert_eq!(
            verification(Some("subscribe"), Some("1"), Some("vx"), Some("vt")),
            Verification::WrongToken
        );
        assert_eq!(
            verification(Some("subscribe"), Some("1"), Some("vt"), None),
            Verification::WrongToken
        );
        assert!(matches!(
            verification(Some("unsubscribe"), Some("1"), Some("vt"), Some("vt")),
            Verification::NotAVerification(_)
        ));
        assert!(matches!(
            verification(Some("subscribe"), None, Some("vt"), Some("vt")),
            Verification::NotAVerification(_)
        ));
    }

    #[test]
    fn changes_of_both_forms_and_messaging() {
        let single = br#"{"object":"instagram","entry":[{"id":"17841400000000001","time":1714651200,
            "changes":[{"field":"comments","value":{"id":"1","text":"hi"}},{"field":"mentions","value":{"media_id":"2"}}]}]}"#;
        let c = changes(single).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].ig_user_id, "17841400000000001");
        assert_eq!(c[0].field, "comments");
        assert_eq!(c[1].field, "mentions");
        assert_eq!(c[0].time, Some(1_714_651_200));

        let array = br#"[{"object":"instagram","entry":[{"id":17841400000000002,"time":1,
            "messaging":[{"sender":{"id":"9"},"message":{"text":"yo"}}]}]}]"#;
        let c = changes(array).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].ig_user_id, "17841400000000002");
        assert_eq!(c[0].field, "messages");

        assert!(matches!(
            changes(b"not json"),
            Err(PayloadError::NotJson(_))
        ));
        assert_eq!(
            changes(br#"{"object":"instagram"}"#),
            Err(PayloadError::NoEntries)
        );
    }

    #[test]
    fn fields_follow_the_granted_scopes() {
        let scopes = |list: &str| InstagramScope::parse_list(list).unwrap();
        assert_eq!(
            subscribable_fields(&scopes("instagram_business_basic")),
            vec!["story_insights"]
        );
        assert_eq!(
            subscribable_fields(&scopes(
                "instagram_business_basic,instagram_business_manage_comments"
            )),
            vec!["comments", "mentions", "story_insights"]
        );
    }
}
