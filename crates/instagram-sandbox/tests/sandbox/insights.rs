//! Account and media insights.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn user_insights_time_series_and_totals() {
    let t = TestSandbox::start().await;
    let (_app, user, long) = t.connected(1).await;
    let pid = user["user_id"].as_str().unwrap();
    let series = t
        .graph(
            &format!("/v24.0/{pid}/insights"),
            &long,
            &[("metric", "reach,follower_count"), ("period", "day")],
        )
        .await;
    assert_eq!(series.status, StatusCode::OK, "{}", series.text);
    let data = series.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let fx = fixture("user_insights.json");
    assert_same_shape(&fx["data"][1], &data[1]);
    assert_eq!(data[0]["id"], json!(format!("{pid}/insights/reach/day")));
    assert!(
        data[0]["values"][0]["end_time"]
            .as_str()
            .unwrap()
            .ends_with("+0000")
    );

    let totals = t
        .graph(
            "/me/insights",
            &long,
            &[
                ("metric", "reach,views,accounts_engaged"),
                ("period", "day"),
                ("metric_type", "total_value"),
            ],
        )
        .await;
    assert_eq!(totals.status, StatusCode::OK, "{}", totals.text);
    assert_same_shape(&fx["data"][0], &totals.body["data"][0]);
    assert!(totals.body["data"][1]["total_value"]["value"].is_u64());
    // Stable across calls.
    let again = t
        .graph(
            "/me/insights",
            &long,
            &[
                ("metric", "reach,views,accounts_engaged"),
                ("period", "day"),
                ("metric_type", "total_value"),
            ],
        )
        .await;
    assert_eq!(again.body, totals.body);
}

#[tokio::test]
async fn user_insights_errors() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    t.user("acme_shop").await;
    let no_insights = t
        .long_token(
            &app,
            "acme_shop",
            "instagram_business_basic,instagram_business_content_publish",
        )
        .await;
    let r = t
        .graph(
            "/me/insights",
            &no_insights,
            &[("metric", "reach"), ("period", "day")],
        )
        .await;
    assert_graph_error(&r, 10, None);

    let long = t.long_token(&app, "acme_shop", ALL_SCOPES).await;
    let r = t
        .graph(
            "/me/insights",
            &long,
            &[("metric", "impressions"), ("period", "day")],
        )
        .await;
    assert_graph_error(&r, 100, None);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("impressions")
    );
    let r = t
        .graph(
            "/me/insights",
            &long,
            &[("metric", "reach,bogus"), ("period", "day")],
        )
        .await;
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("(#100) metric[1] must be one of")
    );
    let r = t
        .graph(
            "/me/insights",
            &long,
            &[("metric", "views"), ("period", "day")],
        )
        .await;
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("metric_type=total_value")
    );
    let r = t.graph("/me/insights", &long, &[("period", "day")]).await;
    assert_graph_error(&r, 100, None);
}

#[tokio::test]
async fn media_insights() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(1).await;
    let id = t.graph("/me/media", &long, &[]).await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t
        .graph(
            &format!("/{id}/insights"),
            &long,
            &[("metric", "views,reach,saved,total_interactions")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let d = r.body["data"].as_array().unwrap();
    assert_eq!(d.len(), 4);
    assert_eq!(d[0]["name"], "views");
    assert_eq!(d[0]["period"], "lifetime");
    assert!(d[0]["values"][0]["value"].is_u64());
    let reels_only = t
        .graph(
            &format!("/{id}/insights"),
            &long,
            &[("metric", "ig_reels_avg_watch_time")],
        )
        .await;
    assert_graph_error(&reels_only, 100, None);
    for gone in ["plays", "video_views", "impressions"] {
        let r = t
            .graph(&format!("/{id}/insights"), &long, &[("metric", gone)])
            .await;
        assert_graph_error(&r, 100, None);
    }
}
