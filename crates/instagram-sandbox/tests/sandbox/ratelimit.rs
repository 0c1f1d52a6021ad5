//! Usage headers and throttling (checklist row 8).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

fn header_json(r: &Resp, name: &str) -> Value {
    serde_json::from_str(r.headers[name].to_str().unwrap()).unwrap()
}

#[tokio::test]
async fn usage_headers_climb_then_80002_then_recover() {
    let t = TestSandbox::start().await;
    let app = t
        .app(AppSpec {
            rate_limit_calls: Some(4),
            rate_limit_window_secs: Some(3600),
            ..spec()
        })
        .await;
    let user = t.user("acme_shop").await;
    let long = t.long_token(&app, "acme_shop", ALL_SCOPES).await;
    let pid = user["user_id"].as_str().unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = t.graph("/me", &long, &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        let app_usage = header_json(&r, "x-app-usage");
        assert_same_shape(&fixture("x_app_usage.json"), &app_usage);
        let buc = header_json(&r, "x-business-use-case-usage");
        let mut fx = fixture("x_business_use_case_usage.json");
        let entry = fx["17841400000000001"].take();
        assert_same_shape(&json!({ pid: entry }), &buc);
        assert_eq!(buc[pid][0]["type"], "instagram");
        seen.push(buc[pid][0]["call_count"].as_u64().unwrap());
    }
    assert_eq!(seen, vec![25, 50, 75, 100]);
    let r = t.graph("/me", &long, &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_graph_error(&r, 80002, None);
    assert_eq!(r.body["error"]["is_transient"], true);
    let buc = header_json(&r, "x-business-use-case-usage");
    let wait = buc[pid][0]["estimated_time_to_regain_access"]
        .as_i64()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Token endpoints are not Graph calls and are not throttled.
    t.advance(86_400).await;
    let refresh = t
        .get_q(
            "/refresh_access_token",
            &[("grant_type", "ig_refresh_token"), ("access_token", &long)],
        )
        .await;
    assert_eq!(refresh.status, StatusCode::OK);
    let r = t.graph("/me", &long, &[]).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the window has passed: {}",
        r.text
    );
}

#[tokio::test]
async fn budgets_are_per_app_and_user_and_codes_are_configurable() {
    let t = TestSandbox::start().await;
    for (code, user) in [(4, "u_four"), (17, "u_seventeen"), (613, "u_six")] {
        let app = t
            .app(AppSpec {
                rate_limit_calls: Some(1),
                rate_limit_code: Some(code),
                ..spec()
            })
            .await;
        t.user(user).await;
        let tok = t.long_token(&app, user, ALL_SCOPES).await;
        assert_eq!(t.graph("/me", &tok, &[]).await.status, StatusCode::OK);
        let r = t.graph("/me", &tok, &[]).await;
        assert_graph_error(&r, code, None);
    }
    // Per user: another user of a throttled (code 80002) app still has budget.
    let app = t
        .app(AppSpec {
            rate_limit_calls: Some(1),
            ..spec()
        })
        .await;
    t.user("first").await;
    t.user("second").await;
    let a = t.long_token(&app, "first", ALL_SCOPES).await;
    let b = t.long_token(&app, "second", ALL_SCOPES).await;
    t.graph("/me", &a, &[]).await;
    assert_graph_error(&t.graph("/me", &a, &[]).await, 80002, None);
    assert_eq!(t.graph("/me", &b, &[]).await.status, StatusCode::OK);
    let bad = t
        .control
        .create_app(&AppSpec {
            rate_limit_code: Some(5),
            ..spec()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.status(), Some(StatusCode::BAD_REQUEST));
}
