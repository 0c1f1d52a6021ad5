//! Usage anomalies: learning each account's usual use from the audit log, raising
//! `account.anomaly` when an hour departs from it, and suspending and resuming accounts.
//!
//! The audit log already records every token read and Graph call, so the read path pays
//! nothing for this: a worker reads the new entries in batches under a lease (one replica at
//! a time), and each batch's baselines, alarms, suspensions and cursor commit together.

use std::collections::{BTreeMap, HashSet};

use igbroker_core::AccountStatus;
use igbroker_core::anomaly::{AnomalyPolicy, Baseline, interval_of, new_reader_is_signal};
use igbroker_store::{AccountRow, BaselineRow, UsageEntry};
use serde_json::json;

use crate::config::AnomalyAction;
use crate::service::error::{Error, Result};
use crate::service::{accounts, audit, events};
use crate::state::AppState;

/// The actor of the entries the detector writes.
pub const ACTOR: &str = "system:anomaly";

/// The audit actions that are uses of an account's token.
const USES: [&str; 2] = ["token.read", "graph.call"];

/// Audit entries read per batch.
const BATCH: i64 = 2000;

fn to_row(account_id: &str, b: &Baseline) -> BaselineRow {
    let micros = |v: f64| (v * 1e6).round().clamp(0.0, i64::MAX as f64) as i64;
    BaselineRow {
        account_id: account_id.to_string(),
        mean_micros: micros(b.mean),
        dev_micros: micros(b.dev),
        first_interval: b.first_interval,
        folded_through: b.folded_through,
        current_interval: b.current_interval,
        current_count: b.current_count.try_into().unwrap_or(i64::MAX),
        flagged_interval: b.flagged_interval,
    }
}

fn from_row(r: &BaselineRow) -> Baseline {
    Baseline {
        mean: r.mean_micros as f64 / 1e6,
        dev: r.dev_micros as f64 / 1e6,
        first_interval: r.first_interval,
        folded_through: r.folded_through,
        current_interval: r.current_interval,
        current_count: u64::try_from(r.current_count).unwrap_or(0),
        flagged_interval: r.flagged_interval,
    }
}

pub fn policy(state: &AppState) -> AnomalyPolicy {
    let c = &state.config().anomaly;
    AnomalyPolicy {
        factor: c.factor,
        min_per_hour: c.min_per_hour,
        ..AnomalyPolicy::default()
    }
}

/// What one pass over the audit log found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Audit entries read (0: nothing new, or another replica holds the lease).
    pub entries: usize,
    pub anomalies: usize,
    pub suspended: usize,
}

enum Signal {
    Rate {
        count: u64,
        threshold: f64,
        interval: i64,
    },
    NewReader {
        actor_kind: &'static str,
    },
}

/// Reads the next batch of audit entries and acts on them. `owner` names the lease holder.
pub async fn scan(state: &AppState, owner: &str) -> Result<Scan> {
    let now = state.now();
    let Some(after) = state
        .store()
        .claim_usage_cursor(owner, now, now + 300)
        .await?
    else {
        return Ok(Scan::default());
    };
    let entries = state.store().usage_entries(after, BATCH).await?;
    let Some(last_seq) = entries.last().map(|e| e.seq) else {
        return Ok(Scan::default());
    };
    let policy = policy(state);
    // Per account, in log order: uses by interval, and the actors that used it.
    let mut by_account: BTreeMap<String, Vec<&UsageEntry>> = BTreeMap::new();
    for e in &entries {
        if let Some(acc) = &e.account_id
            && USES.contains(&e.action.as_str())
        {
            by_account.entry(acc.clone()).or_default().push(e);
        }
    }
    let mut baselines = Vec::new();
    let mut readers: Vec<(String, String, i64)> = Vec::new();
    let mut signals: Vec<(String, Signal)> = Vec::new();
    for (account_id, uses) in &by_account {
        let stored = state.store().usage_baseline(account_id).await?;
        let mut baseline = stored.as_ref().map(from_row);
        let mut seen: HashSet<&str> = HashSet::new();
        for e in uses {
            let interval = interval_of(e.at);
            if !seen.contains(e.actor.as_str()) {
                seen.insert(e.actor.as_str());
                if !state
                    .store()
                    .usage_reader_known(account_id, &e.actor)
                    .await?
                {
                    if new_reader_is_signal(baseline.as_ref(), interval, &policy) {
                        signals.push((
                            account_id.clone(),
                            Signal::NewReader {
                                actor_kind: actor_kind(&e.actor),
                            },
                        ));
                    }
                    readers.push((account_id.clone(), e.actor.clone(), e.at));
                }
            }
            let b = baseline.get_or_insert_with(|| Baseline::new(interval));
            if let Some(spike) = b.observe(interval, 1, &policy) {
                signals.push((
                    account_id.clone(),
                    Signal::Rate {
                        count: spike.count,
                        threshold: spike.threshold,
                        interval: spike.interval,
                    },
                ));
            }
        }
        if let Some(b) = baseline {
            baselines.push(to_row(account_id, &b));
        }
    }

    let suspend_on_rate = state.config().anomaly.action == AnomalyAction::Suspend;
    let mut planned = Vec::new();
    for (account_id, signal) in &signals {
        // An account deleted since its use was logged has nobody left to tell.
        let Some(acc) = state.store().get_account(account_id).await? else {
            continue;
        };
        let suspend = suspend_on_rate
            && matches!(signal, Signal::Rate { .. })
            && acc.status == AccountStatus::Active;
        let detail = match signal {
            Signal::Rate {
                count,
                threshold,
                interval,
            } => json!({
                "reason": "rate",
                "count": count,
                "threshold": threshold.ceil() as i64,
                "hour_starting": crate::util::rfc3339(interval * igbroker_core::anomaly::INTERVAL_SECS),
                "suspended": suspend,
            }),
            Signal::NewReader { actor_kind } => json!({
                "reason": "new_reader",
                "reader": actor_kind,
                "suspended": false,
            }),
        };
        let entry = audit::entry(
            state,
            ACTOR,
            "account.anomaly",
            Some(&acc.id),
            Some(&acc.app_id),
            detail.clone(),
        );
        let event =
            events::account_event(state, events::ACCOUNT_ANOMALY, (&acc).into(), detail, None)
                .await?;
        planned.push((acc, signal, suspend, entry, event));
    }

    let mut tx = state.store().begin().await?;
    for b in &baselines {
        tx.save_baseline(b).await?;
    }
    for (account_id, actor, at) in &readers {
        tx.add_usage_reader(account_id, actor, *at).await?;
    }
    let mut result = Scan {
        entries: entries.len(),
        ..Scan::default()
    };
    let mut entries_out = Vec::new();
    let mut outbox = Vec::new();
    let mut counted: Vec<&'static str> = Vec::new();
    for (acc, signal, suspend, entry, event) in planned {
        if suspend && tx.suspend_account(&acc.id, state.now()).await? {
            result.suspended += 1;
        }
        entries_out.push(entry);
        outbox.extend(event);
        result.anomalies += 1;
        counted.push(match signal {
            Signal::Rate { .. } => "rate",
            Signal::NewReader { .. } => "new_reader",
        });
    }
    tx.append_audit(&entries_out).await?;
    for e in &outbox {
        tx.enqueue_webhook(e).await?;
    }
    if !tx.advance_usage_cursor(owner, last_seq).await? {
        // Another replica took the lease over (this pass ran past it): its pass counts these.
        return Ok(Scan::default());
    }
    tx.commit().await?;
    for reason in counted {
        metrics::counter!("igbroker_anomalies_total", "reason" => reason).increment(1);
    }
    if !outbox.is_empty() {
        state.wake_scheduler();
    }
    Ok(result)
}

/// The kind of actor, for the event: never the key id of another service.
fn actor_kind(actor: &str) -> &'static str {
    if actor.starts_with("api_key:") {
        "api_key"
    } else if actor.starts_with("cli:") {
        "cli"
    } else {
        "other"
    }
}

/// Reads the audit log up to its end.
pub async fn scan_until_idle(state: &AppState, owner: &str) -> Result<Scan> {
    let mut total = Scan::default();
    loop {
        let s = scan(state, owner).await?;
        total.entries += s.entries;
        total.anomalies += s.anomalies;
        total.suspended += s.suspended;
        if s.entries < usize::try_from(BATCH).unwrap_or(usize::MAX) {
            state.store().release_usage_cursor(owner).await?;
            return Ok(total);
        }
    }
}

/// Stops token reads and Graph calls of an active account until it is resumed.
pub async fn suspend(state: &AppState, id: &str, actor: &str) -> Result<AccountRow> {
    let acc = accounts::get(state, id).await?;
    match acc.status {
        AccountStatus::Suspended => return Ok(acc),
        AccountStatus::Active => {}
        other => {
            return Err(Error::Conflict(format!(
                "only an active account can be suspended; this one is {other}"
            )));
        }
    }
    let entry = audit::entry(
        state,
        actor,
        "account.suspended",
        Some(&acc.id),
        Some(&acc.app_id),
        json!({}),
    );
    let mut tx = state.store().begin().await?;
    if tx.suspend_account(&acc.id, state.now()).await? {
        tx.append_audit(&[entry]).await?;
        tx.commit().await?;
    }
    accounts::get(state, id).await
}

/// Lets a suspended account be used again. Its usage history starts afresh, so that use
/// which really grew is learned instead of alarming every hour.
pub async fn resume(state: &AppState, id: &str, actor: &str) -> Result<AccountRow> {
    let acc = accounts::get(state, id).await?;
    match acc.status {
        AccountStatus::Active => return Ok(acc),
        AccountStatus::Suspended => {}
        other => {
            return Err(Error::Conflict(format!(
                "only a suspended account can be resumed; this one is {other}"
            )));
        }
    }
    let entry = audit::entry(
        state,
        actor,
        "account.resumed",
        Some(&acc.id),
        Some(&acc.app_id),
        json!({}),
    );
    let mut tx = state.store().begin().await?;
    if tx.resume_account(&acc.id, state.now()).await? {
        tx.reset_usage(&acc.id).await?;
        tx.append_audit(&[entry]).await?;
        tx.commit().await?;
    }
    accounts::get(state, id).await
}
