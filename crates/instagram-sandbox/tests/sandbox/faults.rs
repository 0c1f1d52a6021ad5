//! Fault injection: statuses, Graph errors, latency, resets, before and after the call.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

async fn fault(t: &TestSandbox, body: serde_json::Value) -> String {
    let r = t.post_json("/_sandbox/faults", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn status_and_graph_error_faults_by_count() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    fault(
        &t,
        json!({ "path": "/me", "kind": "status", "status": 503, "count": 1 }),
    )
    .await;
    let r = t.graph("/v24.0/me", &long, &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);

    fault(
        &t,
        json!({ "path": "/me", "kind": "graph_error", "code": 2, "count": 2 }),
    )
    .await;
    for _ in 0..2 {
        let r = t.graph("/me", &long, &[]).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_graph_error(&r, 2, None);
        assert_eq!(r.body["error"]["is_transient"], true);
    }
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);

    fault(&t, json!({ "path": "/oauth/access_token", "kind": "graph_error", "message": "Invalid platform app", "count": 1 })).await;
    let r = t
        .post_form("/oauth/access_token", &[("client_id", "1")])
        .await;
    assert_eq!(
        r.body,
        json!({ "error_type": "OAuthException", "code": 400, "error_message": "Invalid platform app" })
    );

    // Method filter and probability 0 never fire; probability 1 always does.
    fault(
        &t,
        json!({ "path": "/me", "method": "POST", "kind": "status", "status": 500 }),
    )
    .await;
    fault(
        &t,
        json!({ "path": "/me", "kind": "status", "status": 500, "probability": 0.0 }),
    )
    .await;
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);
    let id = fault(&t, json!({ "path": "/me", "kind": "graph_error", "code": 190, "subcode": 463, "probability": 1.0 })).await;
    assert_graph_error(&t.graph("/me", &long, &[]).await, 190, Some(463));
    assert_graph_error(&t.graph("/me", &long, &[]).await, 190, Some(463));
    let del = TestSandbox::read(
        t.http
            .delete(t.url(&format!("/_sandbox/faults/{id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(del.status, StatusCode::OK);
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);
    let listed = t.get("/_sandbox/faults").await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 2);
    TestSandbox::read(
        t.http
            .delete(t.url("/_sandbox/faults"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(t.get("/_sandbox/faults").await.body["data"], json!([]));
}

#[tokio::test]
async fn latency_and_reset_faults() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    fault(
        &t,
        json!({ "path": "/me", "kind": "latency", "latency_ms": 300, "count": 1 }),
    )
    .await;
    let start = Instant::now();
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_millis(300));

    fault(&t, json!({ "path": "/me", "kind": "reset", "count": 1 })).await;
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
        json!({ "path": "/refresh_access_token", "kind": "status", "status": 502, "phase": "after", "count": 1 }),
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
        calls
            .iter()
            .map(|c| c["status"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![502, 400]
    );
}

#[tokio::test]
async fn bad_fault_specs_are_refused() {
    let t = TestSandbox::start().await;
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
