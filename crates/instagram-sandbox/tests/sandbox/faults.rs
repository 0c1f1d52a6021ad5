//! Fault injection: statuses, Graph errors, latency, resets, before and after the call.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

async fn fault(t: &TestSandbox, spec: FaultSpec) -> String {
    t.control.add_fault(&spec).await.unwrap()
}

#[tokio::test]
async fn status_and_graph_error_faults_by_count() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    fault(&t, FaultSpec::status("/me", 503).times(1)).await;
    let r = t.graph("/v24.0/me", &long, &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);

    fault(&t, FaultSpec::graph_error("/me", 2).times(2)).await;
    for _ in 0..2 {
        let r = t.graph("/me", &long, &[]).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_graph_error(&r, 2, None);
        assert_eq!(r.body["error"]["is_transient"], true);
    }
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);

    fault(
        &t,
        FaultSpec {
            message: Some("Invalid platform app".into()),
            ..FaultSpec::on("/oauth/access_token", FaultKind::GraphError).times(1)
        },
    )
    .await;
    let r = t
        .post_form("/oauth/access_token", &[("client_id", "1")])
        .await;
    assert_eq!(
        r.body,
        json!({ "error_type": "OAuthException", "code": 400, "error_message": "Invalid platform app" })
    );

    // Method filter and probability 0 never fire; probability 1 always does.
    fault(&t, FaultSpec::status("/me", 500).method("POST")).await;
    fault(&t, FaultSpec::status("/me", 500).with_probability(0.0)).await;
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);
    let id = fault(
        &t,
        FaultSpec {
            subcode: Some(463),
            ..FaultSpec::graph_error("/me", 190).with_probability(1.0)
        },
    )
    .await;
    assert_graph_error(&t.graph("/me", &long, &[]).await, 190, Some(463));
    assert_graph_error(&t.graph("/me", &long, &[]).await, 190, Some(463));
    t.control.remove_fault(&id).await.unwrap();
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);
    assert_eq!(t.control.faults().await.unwrap().len(), 2);
    t.control.clear_faults().await.unwrap();
    assert!(t.control.faults().await.unwrap().is_empty());
}

#[tokio::test]
async fn latency_and_reset_faults() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    fault(&t, FaultSpec::latency("/me", 300).times(1)).await;
    let start = Instant::now();
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_millis(300));

    fault(&t, FaultSpec::reset("/me").times(1)).await;
    let res = async {
        let resp = t
            .http
            .get(t.url("/me"))
            .query(&[("access_token", &long)])
            .send()
            .await?;
        resp.bytes().await
    }
    .await;
    assert!(res.is_err(), "a reset must fail the call: {res:?}");
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn after_phase_faults_lose_the_answer_but_the_call_took_effect() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    t.advance(86_400).await;
    fault(
        &t,
        FaultSpec::status("/refresh_access_token", 502)
            .after()
            .times(1),
    )
    .await;
    let lost = t
        .get_q(
            "/refresh_access_token",
            &[("grant_type", "ig_refresh_token"), ("access_token", &long)],
        )
        .await;
    assert_eq!(lost.status, StatusCode::BAD_GATEWAY);
    // The refresh happened: the token is now young again.
    let again = t
        .get_q(
            "/refresh_access_token",
            &[("grant_type", "ig_refresh_token"), ("access_token", &long)],
        )
        .await;
    assert_graph_error(&again, 100, None);
    let calls = t.calls("/refresh_access_token").await;
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        vec![502, 400]
    );
}

#[tokio::test]
async fn bad_fault_specs_are_refused() {
    let t = TestSandbox::start().await;
    // Raw on purpose: malformed specs (unknown kind, missing fields) the typed client cannot build.
    for body in [
        json!({ "path": "me", "kind": "status" }),
        json!({ "path": "/me", "kind": "explode" }),
        json!({ "path": "/me", "kind": "status", "probability": 2.0 }),
        json!({ "path": "/me", "kind": "status", "count": 1, "probability": 0.5 }),
        json!({ "path": "/me", "kind": "latency" }),
    ] {
        let r = t.post_json("/_sandbox/faults", &body).await;
        assert!(r.status.is_client_error(), "{body}");
    }
}
