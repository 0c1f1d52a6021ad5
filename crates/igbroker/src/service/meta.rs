//! Meta's deauthorize and data-deletion callbacks: a user removed the app in Instagram's
//! settings, or asked Meta to have their data deleted.
//!
//! Both arrive as a `signed_request` verified with the app's client secret (or the previous
//! one during a rotation). The `user_id` in it is matched against both the professional id
//! and the app-scoped id, since Meta does not say which one Instagram-login callbacks carry.
//! Every change, its audit entries and its events commit in one transaction.

use igbroker_core::AccountStatus;
use igbroker_core::signed_request::{self, SignedRequest};
use igbroker_store::{AccountRow, DataDeletionRow, Deleted, OutboxRow};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::service::error::{Error, Result};
use crate::service::{apps, audit, events};
use crate::state::AppState;

/// The actor of every audit entry a callback writes.
pub const ACTOR: &str = "meta";

/// The URLs to register in the App Dashboard for an app.
pub fn callback_urls(public_url: &str, app_id: &str) -> (String, String) {
    let base = public_url.trim_end_matches('/');
    (
        format!("{base}/meta/deauthorize/{app_id}"),
        format!("{base}/meta/data-deletion/{app_id}"),
    )
}

pub fn status_url(public_url: &str, code: &str) -> String {
    format!(
        "{}/meta/data-deletion/status/{code}",
        public_url.trim_end_matches('/')
    )
}

/// Verifies `signed_request` for `app_id`; every refusal is `Invalid` with a message that
/// names what was wrong and never echoes the input or a secret.
async fn verify(state: &AppState, app_id: &str, signed: &str) -> Result<SignedRequest> {
    let app = match apps::get(state, app_id).await {
        Ok(app) => app,
        Err(Error::NotFound { .. }) => {
            return Err(Error::Invalid(format!(
                "no app `{}` in this broker: register the callback URLs `igbroker apps doctor` prints",
                app_id.chars().take(64).collect::<String>()
            )));
        }
        Err(e) => return Err(e),
    };
    let current = apps::client_secret(state, &app)?;
    let mut secrets = vec![current.expose_secret().as_bytes().to_vec()];
    if let Some((sealed, until)) = state.store().previous_client_secret(app_id).await?
        && until > state.now()
    {
        let previous = state
            .vault()
            .open_string(&apps::previous_secret_aad(app_id), &sealed)?;
        secrets.push(previous.expose_secret().as_bytes().to_vec());
    }
    let verified = signed_request::verify(signed, &secrets);
    for s in &mut secrets {
        zeroize::Zeroize::zeroize(s);
    }
    verified.map_err(|e| Error::Invalid(e.to_string()))
}

/// What a deauthorize callback did.
#[derive(Debug)]
pub struct Deauthorized {
    pub revoked: Vec<String>,
}

pub async fn deauthorize(state: &AppState, app_id: &str, signed: &str) -> Result<Deauthorized> {
    let req = verify(state, app_id, signed).await?;
    let live: Vec<AccountRow> = state
        .store()
        .accounts_of_instagram_user(app_id, &req.user_id)
        .await?
        .into_iter()
        .filter(|a| a.status != AccountStatus::Revoked)
        .collect();
    let detail = json!({"reason": "deauthorized", "issued_at": req.issued_at});
    let mut planned = Vec::with_capacity(live.len());
    for acc in &live {
        let event = events::account_event(
            state,
            events::ACCOUNT_DEAUTHORIZED,
            acc.into(),
            json!({"reason": "deauthorized"}),
            None,
        )
        .await?;
        let entry = audit::entry(
            state,
            ACTOR,
            "account.deauthorized",
            Some(&acc.id),
            Some(app_id),
            detail.clone(),
        );
        planned.push((acc.id.clone(), entry, event));
    }
    let now = state.now();
    let mut tx = state.store().begin().await?;
    let mut revoked = Vec::new();
    let mut entries = Vec::new();
    let mut outbox: Vec<OutboxRow> = Vec::new();
    for (id, entry, event) in planned {
        // Revoked meanwhile (a repeat racing this one): that one wrote the entry and event.
        if tx.revoke_account(&id, "deauthorized", now).await? {
            revoked.push(id);
            entries.push(entry);
            outbox.extend(event);
        }
    }
    if revoked.is_empty() {
        // Meta retries until it gets a 200, so an unknown user is answered and recorded;
        // the entry names no Instagram id.
        entries.push(audit::entry(
            state,
            ACTOR,
            "meta.deauthorize_unmatched",
            None,
            Some(app_id),
            json!({"issued_at": req.issued_at}),
        ));
    }
    tx.append_audit(&entries).await?;
    for e in &outbox {
        tx.enqueue_webhook(e).await?;
    }
    tx.commit().await?;
    if !outbox.is_empty() {
        state.wake_scheduler();
    }
    Ok(Deauthorized { revoked })
}

/// The hash under which a deletion request is found again when Meta repeats it.
fn subject_hash(app_id: &str, user_id: &str) -> String {
    igbroker_core::secrets::sha256_hex(&format!("{app_id}\n{user_id}"))
}

/// A confirmation code: 20 characters of A–Z and 0–9, easy to read out.
fn new_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    rand::RngExt::fill(&mut rand::rng(), &mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// Deletes every record of the Instagram user for the app and answers the confirmation
/// code; a repeated request answers the code of the first (and deletes whatever was
/// connected since).
pub async fn data_deletion(
    state: &AppState,
    app_id: &str,
    signed: &str,
) -> Result<DataDeletionRow> {
    let req = verify(state, app_id, signed).await?;
    let subject = subject_hash(app_id, &req.user_id);
    let accounts = state
        .store()
        .accounts_of_instagram_user(app_id, &req.user_id)
        .await?;
    let existing = state
        .store()
        .data_deletion_by_subject(app_id, &subject)
        .await?;
    if let Some(row) = &existing
        && accounts.is_empty()
    {
        return Ok(row.clone());
    }
    let now = state.now();
    let code = existing.as_ref().map_or_else(new_code, |r| r.code.clone());
    let mut entries = Vec::new();
    let mut outbox = Vec::new();
    for acc in &accounts {
        entries.push(audit::entry(
            state,
            ACTOR,
            "account.deleted",
            Some(&acc.id),
            Some(app_id),
            json!({"reason": "data_deletion_request", "confirmation_code": code}),
        ));
        outbox.extend(events::deleted_event(state, &acc.id, app_id, &code).await?);
    }
    if accounts.is_empty() {
        entries.push(audit::entry(
            state,
            ACTOR,
            "meta.data_deletion",
            None,
            Some(app_id),
            json!({"confirmation_code": code, "accounts": 0}),
        ));
    }
    let mut tx = state.store().begin().await?;
    let mut total = Deleted::default();
    for acc in &accounts {
        let d = tx.delete_account_records(&acc.id).await?;
        total.accounts += d.accounts;
        total.sessions += d.sessions;
        total.events += d.events;
    }
    let row = DataDeletionRow {
        code: code.clone(),
        app_id: app_id.to_string(),
        subject_hash: subject,
        requested_at: existing.as_ref().map_or(now, |r| r.requested_at),
        completed_at: Some(now),
        accounts_deleted: existing.as_ref().map_or(0, |r| r.accounts_deleted) + total.accounts,
        sessions_deleted: existing.as_ref().map_or(0, |r| r.sessions_deleted) + total.sessions,
        events_deleted: existing.as_ref().map_or(0, |r| r.events_deleted) + total.events,
    };
    tx.save_data_deletion(&row).await?;
    tx.append_audit(&entries).await?;
    for e in &outbox {
        tx.enqueue_webhook(e).await?;
    }
    tx.commit().await?;
    if !outbox.is_empty() {
        state.wake_scheduler();
    }
    Ok(row)
}

/// A deletion request by its confirmation code, for the public status page.
pub async fn deletion_status(state: &AppState, code: &str) -> Result<DataDeletionRow> {
    let valid =
        !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric());
    let not_found = || Error::not_found("data deletion request", "");
    if !valid {
        return Err(not_found());
    }
    state
        .store()
        .data_deletion(code)
        .await?
        .ok_or_else(not_found)
}

/// What a deletion removed, in words for the person who asked.
pub fn deleted_in_words(row: &DataDeletionRow) -> Vec<String> {
    let plural = |n: i64, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    if row.accounts_deleted == 0 {
        return vec![
            "We held no data about you for this app, so there was nothing to delete.".to_owned(),
        ];
    }
    let mut out = vec![format!(
        "{} connected to this app, with its access token (the key that let the app act for you) and profile details (your Instagram user ids and username)",
        plural(
            row.accounts_deleted,
            "Instagram account",
            "Instagram accounts"
        )
    )];
    if row.sessions_deleted > 0 {
        out.push(format!(
            "{} (records of you connecting your account)",
            plural(row.sessions_deleted, "sign-in session", "sign-in sessions")
        ));
    }
    out.push("the record of how often the app used your account".to_owned());
    if row.events_deleted > 0 {
        out.push(format!(
            "{} about your account",
            plural(
                row.events_deleted,
                "queued notification",
                "queued notifications"
            )
        ));
    }
    out
}
