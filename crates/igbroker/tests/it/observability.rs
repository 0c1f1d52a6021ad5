//! What an operator sees on `/metrics`: requests by route template and status with latency
//! histograms, Instagram calls by endpoint and Meta error code, each app's reported usage
//! and the tokens expiring within a week; and no account id, token or user input in labels.
use super::common::*;
use instagram_sandbox::control_client::FaultSpec;
use reqwest::{Method, StatusCode};

async fn metrics_text(env: &TestEnv) -> String {
    let resp = env
        .http
        .get(format!("{}/metrics", env.broker))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

/// The value of the first line starting with `prefix` (a metric name and its labels).
fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn metrics_show_routes_upstream_calls_usage_and_expiry(env: TestEnv) {
    let account = env.connect(USER, "metrics-user").await;
    let (st, _) = env.get(&format!("/v1/accounts/{account}")).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = env.get("/v1/accounts/acc_nope").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // An Instagram error with a Graph code, through the proxy.
    env.fault(FaultSpec::graph_error("/me/media", 100).times(1))
        .await;
    let (st, _) = env
        .api(
            Method::GET,
            &format!("/v1/accounts/{account}/graph/me/media"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Long-lived tokens last 60 days: 54 days on, this one expires within the week.
    env.advance(54 * 86_400);
    // Usage: Instagram's reported share for the app, recorded when it is high.
    env.state
        .store()
        .record_budget(&igbroker_store::BudgetRow {
            scope: format!("app:{}", env.app_id),
            used_pct: 93,
            regain_at: None,
            held_until: None,
            hold_code: None,
            updated_at: env.state.now(),
        })
        .await
        .unwrap();

    let text = metrics_text(&env).await;
    let ok = value(
        &text,
        r#"igbroker_http_requests_total{method="GET",route="/v1/accounts/{id}",status="200"}"#,
    );
    assert!(
        ok.is_some_and(|n| n >= 1.0),
        "no request count by route template"
    );
    let missing = value(
        &text,
        r#"igbroker_http_requests_total{method="GET",route="/v1/accounts/{id}",status="404"}"#,
    );
    assert!(missing.is_some_and(|n| n >= 1.0), "no count of the 404");
    assert!(
        text.lines().any(
            |l| l.starts_with("igbroker_http_request_duration_seconds_bucket{")
                && l.contains(r#"route="/v1/accounts/{id}""#)
                && l.contains(r#"le="0.005""#)
        ),
        "no latency histogram by route"
    );
    let upstream = value(
        &text,
        r#"instagram_api_calls_total{endpoint="graph:me/media",status="400",code="100"}"#,
    );
    assert!(
        upstream.is_some_and(|n| n >= 1.0),
        "no upstream count by endpoint and code"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("instagram_api_call_duration_seconds_bucket{")),
        "no upstream latency histogram"
    );
    let usage = value(
        &text,
        &format!(
            r#"igbroker_instagram_usage_percent{{app_id="{}"}}"#,
            env.app_id
        ),
    );
    assert_eq!(usage, Some(93.0), "usage per app");
    assert!(
        value(&text, "igbroker_tokens_expiring_within_7d ").is_some_and(|n| n >= 1.0),
        "tokens expiring within 7 days"
    );
    // Labels name templates, never the ids in the paths.
    assert!(!text.contains(&account), "an account id reached /metrics");
    assert!(
        !text.contains("acc_nope"),
        "a caller's input reached /metrics"
    );
}

both_backends!(metrics, metrics_show_routes_upstream_calls_usage_and_expiry);
