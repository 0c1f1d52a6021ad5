//! Refreshing one account's token under the account's lease, so that no two
//! callers (or replicas) ever refresh the same token at once, and classifying
//! what Instagram answered. Used by on-demand refresh and by the scheduler.

use std::time::Duration;

use igbroker_core::{AccountStatus, RefreshCheck};
use igbroker_core::{IdKind, PrefixedId};
use igbroker_store::{AccountRow, AuditEntry, RefreshCommit, TokenUpdate};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::service::error::{APP_NOT_APPROVED, APP_NOT_APPROVED_CODE, Error, Result};
use crate::service::{accounts, connect};
use crate::state::AppState;

/// A lease outlives the upstream timeout, so a result is never written after
/// another holder could have taken over.
pub fn lease_secs(state: &AppState) -> i64 {
    upstream_secs(state) * 2 + 10
}

/// The longest one call to Instagram can take (connect plus request timeout).
pub fn upstream_secs(state: &AppState) -> i64 {
    let ig = &state.config().instagram;
    i64::try_from((ig.request_timeout + ig.connect_timeout).as_secs()).unwrap_or(30)
}

/// Whether a lease taken earlier still covers a whole call to Instagram started
/// now. One that does not could end mid-call and let another replica call too.
pub fn lease_covers_call(state: &AppState, lease_until: Option<i64>) -> bool {
    lease_until.is_some_and(|until| until - state.now() > upstream_secs(state) + 5)
}

/// What became of one refresh attempt.
#[derive(Debug)]
pub enum Outcome {
    Refreshed(Box<AccountRow>),
    /// Retry later (recorded with a backoff); `app_hold`: the whole app is held.
    Transient {
        message: String,
        retry_after: Option<Duration>,
        app_hold: bool,
    },
    /// 190, 102 or an expired token: the user must log in again.
    ReauthRequired {
        reason: String,
    },
    /// Neither transient nor re-auth: long backoff, alert, status unchanged.
    Failing {
        message: String,
        /// The app has Standard Access and the account is not a tester.
        not_approved: bool,
    },
    /// The lease ran out before the result could be written; nothing was stored.
    LeaseLost,
    /// Not attempted: the app is held; due again when the hold ends.
    Deferred,
}

/// Who marks an account `reauth_required` when a refresh finds it must connect again.
const REAUTH_ACTOR: &str = "system:refresh";

/// An active account whose token has not expired; an expired one is marked
/// `reauth_required` on the spot so that nobody is handed a dead token.
pub async fn require_usable(state: &AppState, id: &str) -> Result<AccountRow> {
    let acc = accounts::get(state, id).await?;
    if acc.status != AccountStatus::Active {
        return Err(Error::NotActive(acc.status));
    }
    if acc.expires_at.is_some_and(|e| e <= state.now()) {
        connect::mark_reauth(state, &acc, "expired", REAUTH_ACTOR).await?;
        return Err(Error::NotActive(AccountStatus::ReauthRequired));
    }
    Ok(acc)
}

/// On-demand refresh: ignores the window, never the minimum age; joins a
/// refresh already in flight instead of starting another.
pub async fn refresh_now(state: &AppState, id: &str, actor: &str) -> Result<AccountRow> {
    let acc = require_usable(state, id).await?;
    let (Some(issued), Some(expires)) = (acc.issued_at, acc.expires_at) else {
        return Err(Error::Internal(format!("account {id} has no token times")));
    };
    match state.policy().check(state.now(), issued, expires) {
        RefreshCheck::TooYoung { ready_at } => {
            return Err(Error::TooYoung { ready_at });
        }
        RefreshCheck::Expired => {
            connect::mark_reauth(state, &acc, "expired", REAUTH_ACTOR).await?;
            return Err(Error::NotActive(AccountStatus::ReauthRequired));
        }
        RefreshCheck::Allowed => {}
    }
    let owner = lease_owner(state);
    let now = state.now();
    if !state
        .store()
        .acquire_refresh_lease(id, &owner, now, now + lease_secs(state))
        .await?
    {
        return join_in_flight(state, id).await;
    }
    match refresh_leased(state, &acc, &owner, actor, &CommitSink::Direct, None).await? {
        Outcome::Refreshed(acc) => Ok(*acc),
        Outcome::ReauthRequired { .. } => Err(Error::NotActive(AccountStatus::ReauthRequired)),
        Outcome::Transient {
            message,
            retry_after: Some(d),
            ..
        } => Err(Error::RateLimited {
            message: format!("Instagram is rate limiting this app: {message}"),
            retry_after_secs: d.as_secs().max(1),
        }),
        Outcome::Failing {
            not_approved: true, ..
        } => Err(Error::AppNotApprovedForUser { step: "refresh" }),
        Outcome::Transient { message, .. } | Outcome::Failing { message, .. } => Err(
            Error::UpstreamRefused(format!("Instagram refused the refresh: {message}")),
        ),
        Outcome::Deferred => Err(Error::RateLimited {
            message: "Instagram is rate limiting this app; refreshes of it wait".into(),
            retry_after_secs: 60,
        }),
        Outcome::LeaseLost => Err(Error::Unavailable(
            "the refresh took longer than its lease; the result was not stored, retry".into(),
        )),
    }
}

pub fn lease_owner(state: &AppState) -> String {
    format!("{}:{}", state.node_id(), uuid::Uuid::now_v7().simple())
}

/// Another holder is refreshing: wait for its lease to end and report its result.
async fn join_in_flight(state: &AppState, id: &str) -> Result<AccountRow> {
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(u64::try_from(lease_secs(state)).unwrap_or(60));
    loop {
        let acc = accounts::get(state, id).await?;
        let held = acc.lease_until.is_some_and(|t| t > state.now());
        if !held {
            if acc.status != AccountStatus::Active {
                return Err(Error::NotActive(acc.status));
            }
            return Ok(acc);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Unavailable(
                "a refresh of this account is still in flight; retry shortly".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Where a refreshed token is written: right away, or through the scheduler's
/// group-commit writer (`worker::commit_writer`), which stores many results in
/// one transaction.
pub enum CommitSink {
    Direct,
    Queue(mpsc::Sender<Pending>),
}

/// A result waiting for the group-commit writer, and where to say whether it was stored.
pub type Pending = (RefreshCommit, oneshot::Sender<Result<bool>>);

impl CommitSink {
    async fn commit(&self, state: &AppState, item: RefreshCommit) -> Result<bool> {
        match self {
            CommitSink::Direct => {
                let stored = state
                    .store()
                    .commit_refreshes(state.now(), std::slice::from_ref(&item))
                    .await?;
                Ok(stored.first().copied().unwrap_or(false))
            }
            CommitSink::Queue(tx) => {
                let stopped = || Error::Unavailable("the refresh writer stopped".into());
                let (ack, done) = oneshot::channel();
                tx.send((item, ack)).await.map_err(|_| stopped())?;
                done.await.map_err(|_| stopped())?
            }
        }
    }
}

/// Refreshes an account whose lease `owner` holds, and records the outcome.
/// The lease is always given back (by the write of the result or explicitly).
pub async fn refresh_leased(
    state: &AppState,
    acc: &AccountRow,
    owner: &str,
    actor: &str,
    sink: &CommitSink,
    upstream_permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<Outcome> {
    let result = attempt(state, acc, owner, actor, sink, upstream_permit).await;
    if !matches!(result, Ok(Outcome::Refreshed(_))) {
        // Already released by every recorded outcome; this covers errors in between.
        state.store().release_refresh_lease(&acc.id, owner).await?;
    }
    result
}

async fn attempt(
    state: &AppState,
    acc: &AccountRow,
    owner: &str,
    actor: &str,
    sink: &CommitSink,
    upstream_permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<Outcome> {
    let now = state.now();
    let expires = acc.expires_at.unwrap_or(0);
    if expires <= now {
        connect::mark_reauth(state, acc, "expired", REAUTH_ACTOR).await?;
        return Ok(Outcome::ReauthRequired {
            reason: "expired".into(),
        });
    }
    if let Some(until) = state.app_held_until(&acc.app_id) {
        state.store().defer_claimed(&acc.id, owner, until).await?;
        return Ok(Outcome::Deferred);
    }
    let token = accounts::open_token(state, acc)?;
    let token = instagram_api::AccessToken::new(token.expose_secret().to_string());
    match state.instagram().refresh(&token).await {
        Ok(fresh) => {
            // The concurrency limit is about calls to Instagram; storing the
            // result (batched by the writer) must not hold a slot. A failure
            // keeps it until classified, so that a hold is known before the
            // next call goes out.
            drop(upstream_permit);
            let now = state.now();
            let expires_at = now + fresh.expires_in.max(0);
            if expires_at <= expires {
                let message =
                    "Instagram answered the refresh without extending the expiry".to_string();
                record_failure(state, acc, owner, &message, false).await?;
                return Ok(Outcome::Failing {
                    message,
                    not_approved: false,
                });
            }
            let update = TokenUpdate {
                token_enc: state.vault().seal_str(
                    &accounts::token_aad(&acc.id),
                    fresh.access_token.expose_secret(),
                )?,
                key_version: i64::from(state.vault().current_version()),
                issued_at: now,
                expires_at,
                next_refresh_at: state.policy().next_refresh_at(&acc.id, now, expires_at),
            };
            let audit = AuditEntry {
                id: PrefixedId::generate(IdKind::Audit).into_string(),
                at: now,
                actor: actor.to_string(),
                action: "token.refreshed".into(),
                account_id: Some(acc.id.clone()),
                app_id: Some(acc.app_id.clone()),
                // Which replica refreshed, for following a token across a cluster.
                detail: json!({"expires_at": crate::util::rfc3339(expires_at), "replica": state.node_id()})
                    .to_string(),
            };
            let commit = RefreshCommit {
                account_id: acc.id.clone(),
                owner: owner.to_string(),
                token: update.clone(),
                audit,
            };
            if !sink.commit(state, commit).await? {
                tracing::warn!(account_id = %acc.id, "refresh lease lost before the result was stored");
                return Ok(Outcome::LeaseLost);
            }
            metrics::counter!("igbroker_refresh_total", "outcome" => "refreshed").increment(1);
            // What was just written, without reading it back.
            let mut row = acc.clone();
            row.token_enc = Some(update.token_enc);
            row.token_key_version = Some(update.key_version);
            row.issued_at = Some(now);
            row.expires_at = Some(expires_at);
            row.refreshed_at = Some(now);
            row.next_refresh_at = Some(update.next_refresh_at);
            row.refresh_attempts = 0;
            row.refresh_failing = false;
            row.backoff_until = None;
            row.last_error = None;
            row.lease_owner = None;
            row.lease_until = None;
            row.updated_at = now;
            Ok(Outcome::Refreshed(Box::new(row)))
        }
        Err(e) => {
            let outcome = classify(state, acc, owner, &e).await;
            drop(upstream_permit);
            outcome
        }
    }
}

async fn classify(
    state: &AppState,
    acc: &AccountRow,
    owner: &str,
    e: &instagram_api::Error,
) -> Result<Outcome> {
    if let instagram_api::Error::AppNotApprovedForUser { .. } = e {
        // Not the token's fault and not transient: the account keeps its status, and
        // `last_error` says which change to the app fixes it.
        let message = format!("{APP_NOT_APPROVED_CODE}: {APP_NOT_APPROVED}");
        record_failure(state, acc, owner, &message, false).await?;
        tracing::error!(account_id = %acc.id, app_id = %acc.app_id, "refresh refused: the app has Standard Access and the account is not a tester");
        metrics::counter!("igbroker_refresh_total", "outcome" => "failing").increment(1);
        return Ok(Outcome::Failing {
            message,
            not_approved: true,
        });
    }
    let message = e.to_string();
    if let instagram_api::Error::Reauth { reason, .. } = e {
        let why = reauth_reason(*reason);
        connect::mark_reauth(state, acc, why, REAUTH_ACTOR).await?;
        return Ok(Outcome::ReauthRequired { reason: why.into() });
    }
    if e.is_transient() {
        // Codes 4 and 80002 are about the whole app: hold every refresh of it.
        let retry_after = e.retry_after();
        let app_hold = matches!(e.graph_code(), Some(4 | 80002));
        if app_hold {
            let secs = retry_after.map(|d| d.as_secs()).unwrap_or(300).max(1);
            let until = state.now() + i64::try_from(secs).unwrap_or(300);
            state.hold_app(&acc.app_id, until);
            state
                .store()
                .hold_app(&acc.app_id, until, state.now())
                .await?;
            tracing::warn!(app_id = %acc.app_id, hold_secs = secs, "Instagram rate limited the app: holding its refreshes");
        }
        record_failure(state, acc, owner, &message, true).await?;
        metrics::counter!("igbroker_refresh_total", "outcome" => "transient").increment(1);
        return Ok(Outcome::Transient {
            message,
            retry_after,
            app_hold,
        });
    }
    record_failure(state, acc, owner, &message, false).await?;
    tracing::error!(account_id = %acc.id, app_id = %acc.app_id, error = %message, "refresh failing: neither transient nor re-auth; backing off long");
    metrics::counter!("igbroker_refresh_total", "outcome" => "failing").increment(1);
    Ok(Outcome::Failing {
        message,
        not_approved: false,
    })
}

/// The reason recorded on an account for each kind of re-auth error.
pub fn reauth_reason(r: instagram_api::ReauthReason) -> &'static str {
    match r {
        instagram_api::ReauthReason::Expired => "expired",
        instagram_api::ReauthReason::PasswordChanged => "password_changed",
        instagram_api::ReauthReason::AppRemoved => "app_removed",
        _ => "token_invalid",
    }
}

async fn record_failure(
    state: &AppState,
    acc: &AccountRow,
    owner: &str,
    message: &str,
    transient: bool,
) -> Result<()> {
    let now = state.now();
    let retry_at = state.policy().retry_at(
        &acc.id,
        now,
        acc.refresh_attempts,
        acc.expires_at.unwrap_or(now),
        transient,
    );
    state
        .store()
        .record_refresh_failure(&acc.id, owner, now, message, retry_at, !transient)
        .await?;
    state.wake_scheduler();
    Ok(())
}
