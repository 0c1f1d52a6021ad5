//! Instagram's rate limits, respected before they bite. Every Graph answer's `X-App-Usage`
//! and `X-Business-Use-Case-Usage` update the app's and the account's budget, shared by the
//! replicas through the database. Above `[instagram] throttle_at_percent` a proxied call
//! (one that can wait) is answered 429 here instead of spending what token refreshes need;
//! after a throttling error (codes 4, 17, 32, 613, 800xx, or an HTTP 429) nothing that can
//! wait goes to Instagram for that app or account until the time Instagram gave, since
//! calling on would only extend the block. Refreshes do not pass through here.

use std::time::Duration;

use igbroker_store::{AccountRow, BudgetRow};
use instagram_api::Usage;

use crate::service::error::{Error, Result};
use crate::state::AppState;

/// A reported share is a reading of Instagram's rolling window: it holds calls back for this
/// long, after which one call may go to learn the new figure.
const REPORT_HOLDS_SECS: i64 = 60;
/// Below this share nothing is written: most calls cost no database write.
const RECORD_FROM_PCT: i64 = 50;
/// The hold after a throttling error when Instagram gave no time.
const DEFAULT_HOLD_SECS: i64 = 60;

fn scopes(acc: &AccountRow) -> [String; 2] {
    [format!("app:{}", acc.app_id), format!("account:{}", acc.id)]
}

fn whose(scope: &str) -> &'static str {
    if scope.starts_with("app:") {
        "this app"
    } else {
        "this account"
    }
}

/// Refuses the call when Instagram's budget for the app or the account is spent or held;
/// answers the budgets read, for [`observe`].
pub async fn admit(state: &AppState, acc: &AccountRow) -> Result<Vec<BudgetRow>> {
    let [app, account] = scopes(acc);
    let rows = state.store().budgets(&[&app, &account]).await?;
    let now = state.now();
    let threshold = i64::from(state.config().instagram.throttle_at_percent);
    // A hold outranks a usage figure: its time is Instagram's own.
    for r in &rows {
        if let Some(until) = r.held_until.filter(|u| *u > now) {
            return Err(Error::RateLimited {
                message: format!(
                    "Instagram throttled {} (error code {}); the broker holds calls until {} so the block is not extended",
                    whose(&r.scope),
                    r.hold_code.unwrap_or(0),
                    crate::util::rfc3339(until)
                ),
                retry_after_secs: (until - now).max(1) as u64,
            });
        }
    }
    for r in &rows {
        let fresh_until = r.updated_at + REPORT_HOLDS_SECS;
        if r.used_pct >= threshold && now < fresh_until {
            let wait = r
                .regain_at
                .filter(|t| *t > now)
                .unwrap_or(fresh_until)
                .saturating_sub(now)
                .max(1);
            return Err(Error::RateLimited {
                message: format!(
                    "{} has used {}% of Instagram's rate limit; above {threshold}% the broker holds calls that can wait, keeping the rest for token refreshes",
                    whose(&r.scope),
                    r.used_pct
                ),
                retry_after_secs: wait as u64,
            });
        }
    }
    Ok(rows)
}

/// Which scope a throttling error code blocks: 4 is the app's platform limit; the others
/// are counted per user or per business object, here the account.
fn hold_scope(code: i64) -> Option<usize> {
    match code {
        4 => Some(0),
        17 | 32 | 613 | 429 | 80000..=80099 => Some(1),
        _ => None,
    }
}

/// Records what one answer (or error) said of the budgets.
pub async fn observe(
    state: &AppState,
    acc: &AccountRow,
    before: &[BudgetRow],
    usage: Option<&Usage>,
    throttled: Option<(i64, Option<Duration>)>,
) -> Result<()> {
    let now = state.now();
    let regain = usage.and_then(Usage::regain_access_in);
    let app_pct = usage.and_then(|u| u.app.as_ref()).and_then(|a| {
        [a.call_count, a.total_time, a.total_cputime]
            .into_iter()
            .flatten()
            .max()
    });
    let account_pct = usage.and_then(|u| {
        u.business
            .iter()
            .flat_map(|b| [b.call_count, b.total_time, b.total_cputime])
            .flatten()
            .max()
    });
    let hold = throttled.and_then(|(code, retry_after)| {
        let secs = regain
            .or(retry_after)
            .map_or(DEFAULT_HOLD_SECS, |d| d.as_secs().max(1) as i64);
        hold_scope(code).map(|i| (i, code, now + secs))
    });
    for (i, (scope, pct)) in scopes(acc)
        .into_iter()
        .zip([app_pct, account_pct])
        .enumerate()
    {
        let held = hold.filter(|(at, _, _)| *at == i);
        let previous = before.iter().find(|r| r.scope == scope);
        let pct = pct.map(i64::from);
        let worth_writing = held.is_some()
            || pct.is_some_and(|p| p >= RECORD_FROM_PCT)
            || previous.is_some_and(|r| pct.is_some_and(|p| p != r.used_pct));
        if !worth_writing {
            continue;
        }
        let row = BudgetRow {
            used_pct: pct.or(previous.map(|r| r.used_pct)).unwrap_or(100),
            regain_at: regain.map(|d| now + d.as_secs() as i64),
            held_until: held.map(|(_, _, until)| until),
            hold_code: held.map(|(_, code, _)| code),
            updated_at: now,
            scope,
        };
        if row.held_until.is_some() {
            metrics::counter!("igbroker_upstream_holds_total", "scope" => if i == 0 { "app" } else { "account" })
                .increment(1);
            tracing::warn!(account_id = %acc.id, app_id = %acc.app_id, code = row.hold_code, held_until = row.held_until, "Instagram throttled; holding calls that can wait");
        }
        state.store().record_budget(&row).await?;
    }
    Ok(())
}
