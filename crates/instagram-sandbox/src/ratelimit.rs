//! Business-Use-Case budgets per app + user over a rolling window, the usage headers that
//! report them, and the throttling errors once they are spent.

use std::collections::{HashMap, VecDeque};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::errors::{GraphError, IGAPI, OAUTH};
use crate::state::RateLimit;

/// The window is tracked in this many slots, so old calls leave it in steps, not all at once.
const SLOTS: i64 = 24;

#[derive(Default)]
pub struct RateTable {
    buckets: HashMap<String, VecDeque<(i64, u32)>>,
}

#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Percentage of the budget used (may exceed 100 when throttled).
    pub pct: u32,
    pub regain_minutes: i64,
    pub throttled: bool,
}

impl RateTable {
    /// Counts one call against `key` at `now`, unless the budget is already spent.
    pub fn hit(&mut self, key: &str, now: i64, limit: &RateLimit) -> Usage {
        let window = limit.window_secs.max(1);
        let slot_len = (window / SLOTS).max(1);
        let calls = limit.calls.max(1);
        let bucket = self.buckets.entry(key.to_owned()).or_default();
        while bucket
            .front()
            .is_some_and(|(start, _)| start + window <= now)
        {
            bucket.pop_front();
        }
        let used: u32 = bucket.iter().map(|(_, n)| *n).sum();
        if used >= calls {
            let oldest = bucket.front().map_or(now, |(start, _)| *start);
            let wait = (oldest + window - now).max(1);
            return Usage {
                pct: pct(used, calls),
                regain_minutes: (wait + 59) / 60,
                throttled: true,
            };
        }
        let slot = now - now.rem_euclid(slot_len);
        match bucket.back_mut() {
            Some((start, n)) if *start == slot => *n += 1,
            _ => bucket.push_back((slot, 1)),
        }
        Usage {
            pct: pct(used + 1, calls),
            regain_minutes: 0,
            throttled: false,
        }
    }

    pub fn reset(&mut self) {
        self.buckets.clear();
    }
}

fn pct(used: u32, calls: u32) -> u32 {
    u32::try_from(u64::from(used) * 100 / u64::from(calls)).unwrap_or(u32::MAX)
}

/// `X-App-Usage` and `X-Business-Use-Case-Usage` (type `instagram`, keyed by the professional
/// account id), the two headers real clients parse.
pub fn usage_headers(headers: &mut HeaderMap, usage: Usage, ig_user_id: &str) {
    let time_pct = usage.pct * 3 / 5;
    let cpu_pct = usage.pct / 2;
    // Formatted directly: this runs on every Graph call, including the hot `/me`.
    let app = format!(
        "{{\"call_count\":{},\"total_time\":{time_pct},\"total_cputime\":{cpu_pct}}}",
        usage.pct
    );
    let buc = format!(
        "{{{}:[{{\"type\":\"instagram\",\"call_count\":{},\"total_cputime\":{cpu_pct},\"total_time\":{time_pct},\"estimated_time_to_regain_access\":{}}}]}}",
        serde_json::Value::from(ig_user_id),
        usage.pct,
        usage.regain_minutes
    );
    if let Ok(v) = HeaderValue::from_str(&app) {
        headers.insert(HeaderName::from_static("x-app-usage"), v);
    }
    if let Ok(v) = HeaderValue::from_str(&buc) {
        headers.insert(HeaderName::from_static("x-business-use-case-usage"), v);
    }
}

/// Code 32, the Pages-API limit: its own throttle, distinct from Instagram's 80002.
pub const PAGE_LIMIT_MESSAGE: &str = "(#32) Page request limit reached. There have been too many calls to this Page account. Wait a bit and try again.";

/// The error answered once a budget is spent, by the code the app is configured to throttle with.
pub fn throttled_error(code: i64) -> GraphError {
    let (kind, message) = match code {
        4 => (OAUTH, "(#4) Application request limit reached"),
        17 => (OAUTH, "(#17) User request limit reached"),
        32 => (OAUTH, PAGE_LIMIT_MESSAGE),
        613 => (
            IGAPI,
            "(#613) Calls to this api have exceeded the rate limit.",
        ),
        _ => (
            OAUTH,
            "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
        ),
    };
    let code = if matches!(code, 4 | 17 | 32 | 613) {
        code
    } else {
        80002
    };
    GraphError::new(kind, code, message).transient(true)
}

/// The bucket a call counts against: app-wide for code 4 (an app-level limit), else the
/// app + user pair that Meta's Instagram BUC limit is counted per.
pub fn bucket_key(limit: &RateLimit, client_id: &str, user_id: &str) -> String {
    if limit.code == 4 {
        client_id.to_owned()
    } else {
        format!("{client_id}:{user_id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_climbs_throttles_and_recovers() {
        let mut t = RateTable::default();
        let limit = RateLimit {
            calls: 4,
            window_secs: 3600,
            code: 80002,
        };
        let pcts: Vec<u32> = (0..4).map(|_| t.hit("k", 1000, &limit).pct).collect();
        assert_eq!(pcts, vec![25, 50, 75, 100]);
        let u = t.hit("k", 1000, &limit);
        assert!(u.throttled);
        assert!((1..=60).contains(&u.regain_minutes), "{}", u.regain_minutes);
        let later = t.hit("k", 1000 + 3600, &limit);
        assert!(!later.throttled);
        assert_eq!(later.pct, 25);
    }
}
