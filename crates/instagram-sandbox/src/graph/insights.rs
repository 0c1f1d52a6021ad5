//! Account and media insights. Values are deterministic per account, metric and day, so
//! tests can rely on them being stable while they still vary like real data.

use axum::http::Method;
use serde_json::{Value, json};

use super::{Ctx, GraphResult};
use crate::errors::GraphError;
use crate::ids::sha256;
use crate::state::{SCOPE_INSIGHTS, State};
use crate::timefmt::graph_timestamp;

/// Metrics `/{ig-user-id}/insights` accepts, with their titles.
const USER_METRICS: &[(&str, &str)] = &[
    ("reach", "Accounts reached"),
    ("views", "Views"),
    ("accounts_engaged", "Accounts engaged"),
    ("total_interactions", "Content interactions"),
    ("likes", "Likes"),
    ("comments", "Comments"),
    ("shares", "Shares"),
    ("saves", "Saves"),
    ("replies", "Replies"),
    ("profile_links_taps", "Profile links taps"),
    ("follows_and_unfollows", "Follows and unfollows"),
    ("follower_count", "Follower count"),
    ("online_followers", "Online followers"),
    ("website_clicks", "Website clicks"),
    ("profile_views", "Profile views"),
];

/// Metrics that only exist as totals and need `metric_type=total_value`.
const TOTAL_ONLY: &[&str] = &[
    "views",
    "accounts_engaged",
    "total_interactions",
    "likes",
    "comments",
    "shares",
    "saves",
    "replies",
    "profile_links_taps",
    "follows_and_unfollows",
    "website_clicks",
    "profile_views",
];

const MEDIA_METRICS: &[(&str, &str)] = &[
    ("views", "Views"),
    ("reach", "Accounts reached"),
    ("likes", "Likes"),
    ("comments", "Comments"),
    ("shares", "Shares"),
    ("saved", "Saves"),
    ("total_interactions", "Interactions"),
    ("follows", "Follows"),
    ("profile_visits", "Profile visits"),
    ("profile_activity", "Profile activity"),
    ("replies", "Replies"),
    ("ig_reels_avg_watch_time", "Average watch time"),
    ("ig_reels_video_view_total_time", "Total watch time"),
];

const REELS_ONLY: &[&str] = &["ig_reels_avg_watch_time", "ig_reels_video_view_total_time"];

/// Deprecated on April 21, 2025 (all versions); `video_views` is also refused.
const DEPRECATED: &[&str] = &[
    "impressions",
    "plays",
    "clips_replays_count",
    "ig_reels_aggregated_all_plays_count",
    "video_views",
];

fn value_for(seed: &str, metric: &str, day: i64, max: u64) -> u64 {
    let h = sha256(&format!("{seed}/{metric}/{day}"));
    let n = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    n % max.max(1)
}

fn metrics_param(
    ctx: &Ctx<'_>,
    known: &[(&str, &str)],
) -> Result<Vec<(String, String)>, GraphError> {
    let raw = ctx
        .param("metric")
        .ok_or_else(|| GraphError::param("(#100) The parameter metric is required"))?;
    let mut out = Vec::new();
    for (i, m) in raw
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .enumerate()
    {
        if DEPRECATED.contains(&m) {
            return Err(GraphError::param(format!(
                "(#100) Starting from version v22.0 and above, the {m} metric is no longer supported. Please use views instead."
            )));
        }
        let title = known
            .iter()
            .find(|(k, _)| *k == m)
            .map(|(_, t)| (*t).to_owned())
            .ok_or_else(|| {
                let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
                GraphError::param(format!(
                    "(#100) metric[{i}] must be one of the following values: {}",
                    names.join(", ")
                ))
            })?;
        out.push((m.to_owned(), title));
    }
    if out.is_empty() {
        return Err(GraphError::param("(#100) The parameter metric is required"));
    }
    Ok(out)
}

fn need_insights(ctx: &Ctx<'_>) -> Result<(), GraphError> {
    if *ctx.method() != Method::GET {
        return Err(GraphError::unsupported_method(ctx.method().as_str()));
    }
    ctx.require_scope(SCOPE_INSIGHTS, GraphError::permission_10())
}

pub fn user_insights(ctx: &Ctx<'_>) -> GraphResult {
    need_insights(ctx)?;
    let metrics = metrics_param(ctx, USER_METRICS)?;
    let period = ctx
        .param("period")
        .ok_or_else(|| GraphError::param("(#100) The parameter period is required"))?;
    if !matches!(period, "day" | "week" | "days_28" | "lifetime") {
        return Err(GraphError::param(
            "(#100) period must be one of the following values: day, week, days_28, lifetime",
        ));
    }
    let total = match ctx.param("metric_type") {
        None | Some("time_series") => false,
        Some("total_value") => true,
        Some(_) => {
            return Err(GraphError::param(
                "(#100) metric_type must be one of the following values: time_series, total_value",
            ));
        }
    };
    let needing_total: Vec<&str> = metrics
        .iter()
        .map(|(m, _)| m.as_str())
        .filter(|m| TOTAL_ONLY.contains(m))
        .collect();
    if !total && !needing_total.is_empty() {
        return Err(GraphError::param(format!(
            "(#100) The following metrics ({}) should be specified with parameter metric_type=total_value",
            needing_total.join(", ")
        )));
    }
    let ts = |name: &str| -> Result<Option<i64>, GraphError> {
        ctx.param(name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    GraphError::param(format!("(#100) Param {name} must be a unix timestamp"))
                })
            })
            .transpose()
    };
    let until = ts("until")?.unwrap_or(ctx.now);
    let since = ts("since")?.unwrap_or(until - 2 * 86_400);
    if until < since || until - since > 30 * 86_400 {
        return Err(GraphError::param(
            "(#100) There cannot be more than 30 days (2592000 s) between since and until",
        ));
    }
    let breakdown = ctx.param("breakdown");
    let uid = ctx.rec.user_id.clone();
    let followers = ctx
        .sb
        .read(|st: &State| st.users.get(&uid).map_or(0, |u| u.followers_count));
    let mut data = Vec::new();
    for (m, title) in &metrics {
        // Meta withholds these for accounts with fewer than 100 followers.
        if followers < 100 && (m == "follower_count" || m == "online_followers") {
            continue;
        }
        let mut entry = json!({
            "name": m,
            "period": period,
            "title": title,
            "description": format!("The number of {} for the period", title.to_lowercase()),
            "id": format!("{uid}/insights/{m}/{period}"),
        });
        if total {
            let value = value_for(&uid, m, since / 86_400, 500);
            let mut tv = json!({ "value": value });
            if let Some(b) = breakdown {
                let keys: Vec<&str> = b.split(',').map(str::trim).collect();
                tv["breakdowns"] = json!([{
                    "dimension_keys": keys,
                    "results": [
                        { "dimension_values": keys.iter().map(|_| "sandbox_a").collect::<Vec<_>>(), "value": value / 2 },
                        { "dimension_values": keys.iter().map(|_| "sandbox_b").collect::<Vec<_>>(), "value": value - value / 2 },
                    ],
                }]);
            }
            entry["total_value"] = tv;
        } else {
            let first_day = since.div_euclid(86_400) + 1;
            let last_day = until.div_euclid(86_400);
            let values: Vec<Value> = (first_day..=last_day.max(first_day))
                .map(|d| {
                    json!({
                        "value": value_for(&uid, m, d, 500),
                        // Meta reports day ends at 07:00 UTC (midnight Pacific daylight time).
                        "end_time": graph_timestamp(d * 86_400 + 7 * 3600),
                    })
                })
                .collect();
            entry["values"] = json!(values);
        }
        data.push(entry);
    }
    Ok(json!({ "data": data }))
}

pub fn media_insights(ctx: &Ctx<'_>, media_id: &str) -> GraphResult {
    need_insights(ctx)?;
    let metrics = metrics_param(ctx, MEDIA_METRICS)?;
    let product = ctx
        .sb
        .read(|st| st.media.get(media_id).map(|m| m.media_product_type.clone()))
        .ok_or_else(|| GraphError::no_such_object(media_id))?;
    let mut data = Vec::new();
    for (m, title) in &metrics {
        if REELS_ONLY.contains(&m.as_str()) && product != "REELS" {
            return Err(GraphError::param(format!(
                "(#100) The Media Insights API does not support the {m} metric for this media product type."
            )));
        }
        data.push(json!({
            "name": m,
            "period": "lifetime",
            "values": [{ "value": value_for(media_id, m, 0, 1000) }],
            "title": title,
            "description": format!("The number of {} of this media", title.to_lowercase()),
            "id": format!("{media_id}/insights/{m}/lifetime"),
        }));
    }
    Ok(json!({ "data": data }))
}
