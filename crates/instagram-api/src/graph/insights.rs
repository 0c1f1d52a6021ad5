//! Account and media insights.
//!
//! A metric comes back either as a series (`values[]`) or as a single total
//! (`total_value`, optionally broken down); both shapes can appear in one answer.

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::client::Client;
use crate::error::Error;
use crate::secrets::AccessToken;

/// One metric of an insights answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Insight {
    /// Metric name, e.g. `reach`.
    pub name: String,
    /// `day`, `week`, `days_28`, `lifetime`.
    #[serde(default)]
    pub period: Option<String>,
    /// Human-readable title.
    #[serde(default)]
    pub title: Option<String>,
    /// Human-readable description.
    #[serde(default)]
    pub description: Option<String>,
    /// Graph id of the metric.
    #[serde(default)]
    pub id: Option<String>,
    /// Series shape.
    #[serde(default)]
    pub values: Vec<InsightValue>,
    /// Total shape.
    #[serde(default)]
    pub total_value: Option<TotalValue>,
}

impl Insight {
    /// A single number for the metric: `total_value.value`, else the sum of the numeric
    /// `values[]`.
    pub fn total(&self) -> Option<i64> {
        if let Some(t) = self.total_value.as_ref().and_then(|t| t.value.as_i64()) {
            return Some(t);
        }
        let numbers: Vec<i64> = self
            .values
            .iter()
            .filter_map(InsightValue::as_i64)
            .collect();
        (!numbers.is_empty()).then(|| numbers.iter().sum())
    }
}

/// One point of a series.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct InsightValue {
    /// Usually a number; an object for metrics such as `online_followers`.
    #[serde(default)]
    pub value: Value,
    /// End of the period, e.g. `2026-05-02T07:00:00+0000`.
    #[serde(default)]
    pub end_time: Option<String>,
}

impl InsightValue {
    /// The value when it is an integer.
    pub fn as_i64(&self) -> Option<i64> {
        self.value.as_i64()
    }
}

/// `total_value` of a metric.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TotalValue {
    /// The total.
    #[serde(default)]
    pub value: Value,
    /// Breakdowns, when one was requested.
    #[serde(default)]
    pub breakdowns: Vec<Breakdown>,
}

/// A breakdown of a total, e.g. by `media_product_type`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Breakdown {
    /// Dimensions, e.g. `["media_product_type"]`.
    #[serde(default)]
    pub dimension_keys: Vec<String>,
    /// One row per combination of dimension values.
    #[serde(default)]
    pub results: Vec<BreakdownResult>,
}

/// One row of a breakdown.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BreakdownResult {
    /// Values for `dimension_keys`, e.g. `["REEL"]`.
    #[serde(default)]
    pub dimension_values: Vec<String>,
    /// The number.
    #[serde(default)]
    pub value: Value,
}

/// Parameters of `GET /{ig-user-id}/insights`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsightsQuery {
    /// Metrics, e.g. `reach`, `views`, `follower_count` (sent comma-separated).
    pub metrics: Vec<String>,
    /// `day`, `week`, `days_28`, `lifetime`.
    pub period: Option<String>,
    /// `total_value` or `time_series`.
    pub metric_type: Option<String>,
    /// Breakdown dimension(s), e.g. `media_product_type`.
    pub breakdown: Option<String>,
    /// Demographics timeframe, e.g. `last_30_days`.
    pub timeframe: Option<String>,
    /// Range start (Unix seconds).
    pub since: Option<i64>,
    /// Range end (Unix seconds).
    pub until: Option<i64>,
}

impl InsightsQuery {
    fn params(&self) -> Result<Vec<(String, String)>, Error> {
        if self.metrics.is_empty() {
            return Err(Error::invalid_request("at least one metric is required"));
        }
        let mut p = vec![("metric".to_owned(), self.metrics.join(","))];
        let optional = [
            ("period", self.period.clone()),
            ("metric_type", self.metric_type.clone()),
            ("breakdown", self.breakdown.clone()),
            ("timeframe", self.timeframe.clone()),
            ("since", self.since.map(|s| s.to_string())),
            ("until", self.until.map(|s| s.to_string())),
        ];
        p.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), v?))),
        );
        Ok(p)
    }
}

#[derive(Deserialize)]
struct InsightsEnvelope {
    #[serde(default)]
    data: Vec<Insight>,
}

impl Client {
    /// `GET /{ig-user-id}/insights` — needs `instagram_business_manage_insights`.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/doc_sandbox.rs"));
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let sb = doc_sandbox::start().await;
    /// # let client = sb.client.clone();
    /// # let token = sb.token().await;
    /// use instagram_api::InsightsQuery;
    ///
    /// let query = InsightsQuery {
    ///     metrics: vec!["reach".into(), "views".into()],
    ///     period: Some("day".into()),
    ///     metric_type: Some("total_value".into()),
    ///     ..Default::default()
    /// };
    /// for metric in client.user_insights(&token, "me", &query).await? {
    ///     assert!(metric.total().is_some(), "{} has a total", metric.name);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn user_insights(
        &self,
        token: &AccessToken,
        ig_user_id: &str,
        query: &InsightsQuery,
    ) -> Result<Vec<Insight>, Error> {
        let params = query.params()?;
        let env: InsightsEnvelope = self
            .graph(
                "user_insights",
                Method::GET,
                token,
                &[ig_user_id, "insights"],
                params,
            )
            .await?;
        Ok(env.data)
    }

    /// `GET /{media-id}/insights?metric=…` — lifetime totals of one media object.
    pub async fn media_insights(
        &self,
        token: &AccessToken,
        media_id: &str,
        metrics: &[&str],
    ) -> Result<Vec<Insight>, Error> {
        if metrics.is_empty() {
            return Err(Error::invalid_request("at least one metric is required"));
        }
        let params = vec![("metric".to_owned(), metrics.join(","))];
        let env: InsightsEnvelope = self
            .graph(
                "media_insights",
                Method::GET,
                token,
                &[media_id, "insights"],
                params,
            )
            .await?;
        Ok(env.data)
    }
}

/// Decodes an insights answer (`{"data": [...]}`).
///
/// ```
/// let body = br#"{"data":[
///   {"name":"reach","period":"day","total_value":{"value":120}},
///   {"name":"follower_count","period":"day","values":[{"value":4,"end_time":"2026-05-02T07:00:00+0000"}]}]}"#;
/// let metrics = instagram_api::decode_insights(body)?;
/// assert_eq!(metrics[0].total(), Some(120));
/// assert_eq!(metrics[1].values[0].as_i64(), Some(4));
/// # Ok::<(), instagram_api::Error>(())
/// ```
pub fn decode_insights(body: &[u8]) -> Result<Vec<Insight>, Error> {
    serde_json::from_slice::<InsightsEnvelope>(body)
        .map(|e| e.data)
        .map_err(|e| Error::decode(200, &e, &[]))
}
