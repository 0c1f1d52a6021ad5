//! Rate-limit usage reported in `X-App-Usage` and `X-Business-Use-Case-Usage`.
//!
//! Both headers carry JSON whose numbers are **percentages** of the allowance, except
//! `estimated_time_to_regain_access`, which is in **minutes**. Their absence is normal: Meta
//! only sends them once enough calls were made.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

/// Header with Platform rate-limit usage.
pub const APP_USAGE_HEADER: &str = "x-app-usage";
/// Header with Business-Use-Case rate-limit usage (Instagram's limits live here).
pub const BUSINESS_USAGE_HEADER: &str = "x-business-use-case-usage";

/// Usage parsed from one response's headers.
///
/// ```
/// use instagram_api::Usage;
/// use std::time::Duration;
///
/// let usage = Usage::parse(
///     Some(r#"{"call_count":28,"total_time":25,"total_cputime":25}"#),
///     Some(r#"{"17841400000000001":[{"type":"instagram","call_count":97,
///            "total_cputime":23,"total_time":23,"estimated_time_to_regain_access":5}]}"#),
/// );
/// assert_eq!(usage.app.as_ref().and_then(|a| a.call_count), Some(28));
/// assert_eq!(usage.max_percent(), Some(97));
/// assert_eq!(usage.regain_access_in(), Some(Duration::from_secs(300)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// `X-App-Usage`, when present and well-formed.
    pub app: Option<AppUsage>,
    /// One entry per (business object, type) pair in `X-Business-Use-Case-Usage`.
    pub business: Vec<BusinessUsage>,
}

/// Platform rate-limit usage, in percent of the allowance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppUsage {
    /// Share of allowed calls used.
    pub call_count: Option<u32>,
    /// Share of allowed total time used.
    pub total_time: Option<u32>,
    /// Share of allowed CPU time used.
    pub total_cputime: Option<u32>,
}

/// Business-Use-Case rate-limit usage for one business object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusinessUsage {
    /// The header's object key (for Instagram, the account id the limit is counted against).
    pub business_id: String,
    /// `type`: `instagram`, `pages`, `messenger`, `ads_insights`, …
    pub usage_type: Option<String>,
    /// Share of allowed calls used, percent.
    pub call_count: Option<u32>,
    /// Share of allotted CPU time used, percent.
    pub total_cputime: Option<u32>,
    /// Share of allotted total time used, percent.
    pub total_time: Option<u32>,
    /// How long until throttling ends (sent in minutes; zero when not throttled).
    pub estimated_time_to_regain_access: Option<Duration>,
}

impl Usage {
    /// Reads both headers; malformed values are ignored (they are advisory).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Self::parse(get(APP_USAGE_HEADER), get(BUSINESS_USAGE_HEADER))
    }

    /// Parses the raw header values.
    pub fn parse(app_usage: Option<&str>, business_usage: Option<&str>) -> Self {
        Self {
            app: app_usage.and_then(AppUsage::parse),
            business: business_usage.map(BusinessUsage::parse).unwrap_or_default(),
        }
    }

    /// True when neither header was present (or both were unreadable).
    pub fn is_empty(&self) -> bool {
        self.app.is_none() && self.business.is_empty()
    }

    /// The highest percentage in either header: throttling may start once any reaches 100.
    pub fn max_percent(&self) -> Option<u32> {
        let app = self
            .app
            .iter()
            .flat_map(|a| [a.call_count, a.total_time, a.total_cputime]);
        let business = self
            .business
            .iter()
            .flat_map(|b| [b.call_count, b.total_time, b.total_cputime]);
        app.chain(business).flatten().max()
    }

    /// The longest positive `estimated_time_to_regain_access`, if any entry is throttled.
    pub fn regain_access_in(&self) -> Option<Duration> {
        self.business
            .iter()
            .filter_map(|b| b.estimated_time_to_regain_access)
            .filter(|d| !d.is_zero())
            .max()
    }
}

impl AppUsage {
    /// Parses an `X-App-Usage` value.
    pub fn parse(value: &str) -> Option<Self> {
        let Value::Object(map) = serde_json::from_str::<Value>(value).ok()? else {
            return None;
        };
        Some(Self {
            call_count: map.get("call_count").and_then(percent),
            total_time: map.get("total_time").and_then(percent),
            total_cputime: map.get("total_cputime").and_then(percent),
        })
    }
}

impl BusinessUsage {
    /// Parses an `X-Business-Use-Case-Usage` value into one entry per array element.
    pub fn parse(value: &str) -> Vec<Self> {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(value) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (business_id, entries) in map {
            let entries = match entries {
                Value::Array(a) => a,
                // Tolerate a single object where an array is documented.
                obj @ Value::Object(_) => vec![obj],
                _ => continue,
            };
            for entry in entries {
                let Value::Object(e) = entry else { continue };
                out.push(Self {
                    business_id: business_id.clone(),
                    usage_type: e.get("type").and_then(Value::as_str).map(str::to_owned),
                    call_count: e.get("call_count").and_then(percent),
                    total_cputime: e.get("total_cputime").and_then(percent),
                    total_time: e.get("total_time").and_then(percent),
                    estimated_time_to_regain_access: e
                        .get("estimated_time_to_regain_access")
                        .and_then(number)
                        .map(|minutes| Duration::from_secs(minutes.saturating_mul(60))),
                });
            }
        }
        out
    }
}

/// Percentages are integers in every sample, but floats and numeric strings cost nothing to accept.
fn percent(v: &Value) -> Option<u32> {
    number(v).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                // Saturating float-to-int cast is the intended rounding here.
                .map(|f| f.round() as u64)
        }),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|f| number(&Value::from(f))),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_digest_samples() {
        let app =
            AppUsage::parse(r#"{"call_count":28,"total_time":25,"total_cputime":25}"#).unwrap();
        assert_eq!(
            app,
            AppUsage {
                call_count: Some(28),
                total_time: Some(25),
                total_cputime: Some(25)
            }
        );
        let b = BusinessUsage::parse(
            r#"{"17841400000000001":[{"type":"instagram","call_count":97,"total_cputime":23,"total_time":23,"estimated_time_to_regain_access":0}]}"#,
        );
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].business_id, "17841400000000001");
        assert_eq!(b[0].usage_type.as_deref(), Some("instagram"));
        assert_eq!(b[0].call_count, Some(97));
        assert_eq!(b[0].estimated_time_to_regain_access, Some(Duration::ZERO));
    }

    #[test]
    fn tolerates_garbage() {
        assert!(AppUsage::parse("not json").is_none());
        assert!(BusinessUsage::parse("[1,2]").is_empty());
        let u = Usage::parse(
            Some(r#"{"call_count":"12.6"}"#),
            Some(r#"{"1":{"type":"x","call_count":1.4}}"#),
        );
        assert_eq!(u.app.unwrap().call_count, Some(13));
        assert_eq!(u.business[0].call_count, Some(1));
        assert!(Usage::default().is_empty());
    }

    #[test]
    fn regain_takes_the_longest_wait() {
        let u = Usage::parse(
            None,
            Some(
                r#"{"1":[{"estimated_time_to_regain_access":2}],"2":[{"estimated_time_to_regain_access":7},{"estimated_time_to_regain_access":0}]}"#,
            ),
        );
        assert_eq!(u.regain_access_in(), Some(Duration::from_secs(420)));
    }
}
