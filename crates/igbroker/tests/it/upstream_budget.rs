//! Instagram's rate limits, respected at the broker: usage reports above the threshold hold
//! proxied calls (refreshes still pass), a throttling error holds every call that can wait
//! until Instagram's regain time without a single call reaching Instagram meanwhile, and a
//! transient failure is retried for a read, never for a write. The budget others spent (a
//! second system using the same app) counts, as it does at Meta.
use super::common::*;
use instagram_sandbox::control_client::{AppSpec, FaultSpec};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// An app whose sandbox budget is `calls` per hour, and an account connected to it.
async fn limited_account(env: &TestEnv, calls: u32) -> (String, String) {
    let sb_app = env
        .sb
        .create_app(&AppSpec {
            rate_limit_calls: Some(calls),
            rate_limit_window_secs: Some(3600),
            ..AppSpec::redirecting_to(format!("{}/oauth/callback", env.broker))
        })
        .await
        .unwrap();
    let (st, app) = env
        .api(
            Method::POST,
            "/v1/apps",
            Some(json!({
                "name": "Limited app",
                "client_id": sb_app.client_id,
                "client_secret": sb_app.client_secret,
                "scopes": ["instagram_business_basic"],
                "return_origins": [RETURN_ORIGIN],
            })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{app}");
    let account = env.connect_to(&s(&app["id"]), USER, "budget-user").await;
    (s(&app["id"]), account)
}

/// Calls Instagram directly with the account's token, as another system of the same app
/// would: the broker does not see these calls, only their effect on the budget.
async fn spend_elsewhere(env: &TestEnv, account: &str, calls: u32) {
    let (_, tok) = env.get(&format!("/v1/accounts/{account}/token")).await;
    let token = s(&tok["access_token"]);
    let version = env.state.config().instagram.graph_version.clone();
    for _ in 0..calls {
        env.http
            .get(format!("{}/{version}/me", env.sandbox))
            .query(&[("fields", "id"), ("access_token", token.as_str())])
            .send()
            .await
            .unwrap();
    }
}

async fn proxied_me(
    env: &TestEnv,
    account: &str,
) -> (StatusCode, serde_json::Value, Option<String>) {
    let resp = env
        .http
        .get(format!(
            "{}/v1/accounts/{account}/graph/me?fields=id",
            env.broker
        ))
        .bearer_auth(&env.admin_key)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, resp.json().await.unwrap(), retry)
}

async fn high_usage_holds_proxied_calls_but_not_refreshes(env: TestEnv) {
    let (_, account) = limited_account(&env, 20).await;
    // Old enough to refresh: Instagram refuses tokens younger than a day.
    env.advance(25 * 3600);
    // 18 of 20 calls spent elsewhere; the broker's call is the 19th: 95% used.
    spend_elsewhere(&env, &account, 18).await;
    let (st, body, _) = proxied_me(&env, &account).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let before = env.sandbox_calls("/me").await.len();
    for _ in 0..3 {
        let (st, body, retry) = proxied_me(&env, &account).await;
        assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error"]["code"], "rate_limited");
        let message = s(&body["error"]["message"]);
        assert!(message.contains("95%"), "{message}");
        let retry: u64 = retry.expect("Retry-After").parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
    }
    assert_eq!(
        env.sandbox_calls("/me").await.len(),
        before,
        "held calls reached Instagram"
    );
    // A refresh keeps the headroom the proxy left.
    let (st, body) = env
        .api(
            Method::POST,
            &format!("/v1/accounts/{account}/refresh"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    // Once the report is old, one call goes to learn the new figure.
    env.advance(61);
    let (st, body, _) = proxied_me(&env, &account).await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

async fn a_throttling_error_holds_every_call_until_the_regain_time(env: TestEnv) {
    let (_, account) = limited_account(&env, 5).await;
    spend_elsewhere(&env, &account, 5).await;
    // The budget is spent: Instagram answers 80002 with its regain estimate.
    let (st, body, retry) = proxied_me(&env, &account).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let first_wait: i64 = retry.expect("Retry-After").parse().unwrap();
    assert!(first_wait >= 60, "Retry-After {first_wait}");
    let seen = env.sandbox_calls("/me").await.len();
    for _ in 0..5 {
        let (st, body, retry) = proxied_me(&env, &account).await;
        assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{body}");
        let message = s(&body["error"]["message"]);
        assert!(message.contains("80002"), "{message}");
        assert!(retry.is_some());
    }
    assert_eq!(
        env.sandbox_calls("/me").await.len(),
        seen,
        "a call reached Instagram during the hold"
    );
    // The hold is in the database: another replica (here, the same store read afresh) sees it.
    let rows = env
        .state
        .store()
        .budgets(&[&format!("account:{account}"), "app:none"])
        .await
        .unwrap();
    assert_eq!(rows[0].hold_code, Some(80002));
    // After the regain time, calls flow again.
    env.advance(3601);
    let (st, body, _) = proxied_me(&env, &account).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(env.sandbox_calls("/me").await.len(), seen + 1);
}

async fn transient_failures_are_retried_for_reads_only(env: TestEnv) {
    let account = env.connect(USER, "retry-user").await;
    env.fault(FaultSpec::status("/me", 500).method("GET").times(1))
        .await;
    let before = env.sandbox_calls("/me").await.len();
    let (st, body, _) = proxied_me(&env, &account).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        env.sandbox_calls("/me").await.len(),
        before + 2,
        "one failure, one retry"
    );

    // A write is not retried: Instagram may have done it.
    let path = "/me/media_publish";
    env.fault(FaultSpec::status(path, 500).method("POST").times(1))
        .await;
    let before = env.sandbox_calls(path).await.len();
    let (st, body) = env
        .api(
            Method::POST,
            &format!("/v1/accounts/{account}/graph/me/media_publish"),
            Some(json!({"creation_id": "17890000000000000"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(
        env.sandbox_calls(path).await.len(),
        before + 1,
        "a write was retried"
    );
}

async fn a_held_account_does_not_publish(env: TestEnv) {
    let account = env.connect(USER, "held-publisher").await;
    env.state
        .store()
        .record_budget(&igbroker_store::BudgetRow {
            scope: format!("account:{account}"),
            used_pct: 100,
            regain_at: None,
            held_until: Some(env.state.now() + 600),
            hold_code: Some(80002),
            updated_at: env.state.now(),
        })
        .await
        .unwrap();
    let seen = env.sandbox_calls_after(0).await.len();
    let resp = env
        .http
        .post(format!("{}/v1/accounts/{account}/media", env.broker))
        .bearer_auth(&env.admin_key)
        .header("Idempotency-Key", "held-1")
        .json(&json!({"type": "image", "image_url": "https://cdn.example.com/a.jpg"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_some());
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(s(&body["error"]["message"]).contains("80002"), "{body}");
    assert_eq!(
        env.sandbox_calls_after(0).await.len(),
        seen,
        "the publish reached Instagram"
    );
}

both_backends!(held_publish, a_held_account_does_not_publish);
both_backends!(high_usage, high_usage_holds_proxied_calls_but_not_refreshes);
both_backends!(
    throttling_hold,
    a_throttling_error_holds_every_call_until_the_regain_time
);
both_backends!(
    transient_retry,
    transient_failures_are_retried_for_reads_only
);
