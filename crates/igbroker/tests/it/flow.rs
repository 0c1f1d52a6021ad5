//! The token's life through the broker's HTTP API, against the real sandbox,
//! on SQLite and PostgreSQL.

use crate::common::{Backend, OTHER_USER, RETURN_ORIGIN, TestEnv, USER, contains, s};
use instagram_sandbox::control_client::FaultSpec;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DAY: i64 = 86_400;

fn is_rfc3339_utc(v: &serde_json::Value) -> bool {
    v.as_str().is_some_and(|t| {
        t.ends_with('Z')
            && time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .is_ok()
    })
}

fn unix(v: &serde_json::Value) -> i64 {
    time::OffsetDateTime::parse(
        v.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp()
}

async fn whole_story(env: TestEnv) {
    let acc_id = env.connect(USER, "user-1").await;
    assert!(acc_id.starts_with("acc_"), "{acc_id}");

    let (st, acc) = env.get(&format!("/v1/accounts/{acc_id}")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(acc["status"], "active");
    assert_eq!(acc["app_id"], env.app_id);
    assert_eq!(acc["end_user"], "user-1");
    assert_eq!(acc["username"], USER);
    assert!(
        acc["ig_user_id"]
            .as_str()
            .is_some_and(|i| i.starts_with("17841")),
        "{acc}"
    );
    assert!(acc["ig_scoped_id"].is_string());
    assert_ne!(acc["ig_user_id"], acc["ig_scoped_id"]);
    assert!(is_rfc3339_utc(&acc["token"]["expires_at"]), "{acc}");
    assert!(is_rfc3339_utc(&acc["token"]["next_refresh_at"]), "{acc}");
    assert_eq!(acc["token"]["refresh_state"], "idle");
    assert!(
        acc["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("instagram_business_basic"))
    );

    // About 60 days of life.
    let exp = time::OffsetDateTime::parse(
        acc["token"]["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    let life = exp - env.clock.now_unix();
    assert!((59 * DAY..=60 * DAY + 60).contains(&life), "life {life}");

    let (st, tok) = env.get(&format!("/v1/accounts/{acc_id}/token")).await;
    assert_eq!(st, StatusCode::OK, "{tok}");
    let token = s(&tok["access_token"]);
    assert!(token.len() > 20);
    assert_eq!(tok["expires_at"], acc["token"]["expires_at"]);

    let (st, me) = env
        .get(&format!(
            "/v1/accounts/{acc_id}/graph/me?fields=user_id,username"
        ))
        .await;
    assert_eq!(st, StatusCode::OK, "{me}");
    assert_eq!(me["username"], USER);
    assert_eq!(me["user_id"], acc["ig_user_id"]);

    // The token never sits in the database in plaintext; the same scan does find the
    // account id, which is stored in clear.
    let stored = env.stored_bytes();
    assert!(
        stored.iter().any(|(_, b)| contains(b, acc_id.as_bytes())),
        "the scan sees the stored rows"
    );
    for (name, bytes) in &stored {
        assert!(!contains(bytes, token.as_bytes()), "token found in {name}");
    }

    env.advance(30 * DAY);
    let (st, refreshed) = env
        .api(
            Method::POST,
            &format!("/v1/accounts/{acc_id}/refresh"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{refreshed}");
    assert!(refreshed["token"]["expires_at"].as_str() > acc["token"]["expires_at"].as_str());
    assert!(is_rfc3339_utc(&refreshed["token"]["refreshed_at"]));

    let (st, rev) = env
        .api(Method::DELETE, &format!("/v1/accounts/{acc_id}"), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(rev["status"], "revoked");
    assert_eq!(rev["upstream_revoked"], false);
    let (st, err) = env.get(&format!("/v1/accounts/{acc_id}/token")).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(err["error"]["code"], "revoked");
    assert!(err["error"]["request_id"].is_string());
    let row = env
        .state
        .store()
        .get_account(&acc_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.token_enc.is_none(),
        "revocation must destroy the ciphertext"
    );
}
both_backends!(whole_story_connect_read_proxy_refresh_revoke, whole_story);

async fn denial(env: TestEnv) {
    let sess = env
        .session(json!({"app_id": env.app_id, "return_url": format!("{RETURN_ORIGIN}/done")}))
        .await;
    let cb = env
        .consent(sess["connect_url"].as_str().unwrap(), USER, "deny")
        .await;
    let q: std::collections::HashMap<String, String> = cb.query_pairs().into_owned().collect();
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    let resp = env.callback(&cb).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(&format!("{RETURN_ORIGIN}/done?")), "{loc}");
    assert!(loc.contains("status=denied"), "{loc}");
    assert!(!loc.contains("account_id"), "{loc}");
    let (_, v) = env
        .get(&format!("/v1/connect-sessions/{}", s(&sess["id"])))
        .await;
    assert_eq!(v["status"], "denied");
    let (_, list) = env.get("/v1/accounts").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
}
both_backends!(denial_redirects_with_status_denied_and_no_account, denial);

async fn replay(env: TestEnv) {
    let sess = env
        .session(json!({"app_id": env.app_id, "return_url": format!("{RETURN_ORIGIN}/done")}))
        .await;
    let cb = env
        .consent(sess["connect_url"].as_str().unwrap(), USER, "allow")
        .await;
    // A prefetch and the real navigation arrive together, then a reload later. The code
    // exchange is slowed so that the second arrives while the first is still exchanging.
    env.fault(FaultSpec::latency("/oauth/access_token", 500).times(1))
        .await;
    let (a, b) = tokio::join!(env.callback(&cb), env.callback(&cb));
    let c = env.callback(&cb).await;
    let locs: Vec<String> = [a, b, c]
        .iter()
        .map(|r| {
            assert_eq!(r.status(), StatusCode::FOUND);
            r.headers()["location"].to_str().unwrap().to_string()
        })
        .collect();
    assert!(locs[0].contains("status=connected"), "{}", locs[0]);
    assert_eq!(locs[0], locs[1]);
    assert_eq!(locs[0], locs[2]);
    let (_, list) = env.get("/v1/accounts").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let exchanges = env.sandbox_calls("/oauth/access_token").await;
    assert_eq!(
        exchanges.len(),
        1,
        "the code must be exchanged once: {exchanges:?}"
    );
}
both_backends!(
    replayed_callback_exchanges_once_and_repeats_the_outcome,
    replay
);

async fn state_other_code(env: TestEnv) {
    let cb = consented(&env).await;
    assert!(env.callback(&cb).await.status().is_success());
    let other = with_param(&cb, "code", "AQDifferentCode");
    let resp = env.callback(&other).await;
    refused(resp, StatusCode::BAD_REQUEST, "state_used").await;
}
both_backends!(same_state_with_another_code_is_state_used, state_other_code);

async fn unknown_state(env: TestEnv) {
    let url = url::Url::parse(&format!(
        "{}/oauth/callback?code=AQxyz&state=never-issued",
        env.broker
    ))
    .unwrap();
    let resp = env.callback(&url).await;
    refused(resp, StatusCode::BAD_REQUEST, "invalid_state").await;
    let url = url::Url::parse(&format!("{}/oauth/callback?code=AQxyz", env.broker)).unwrap();
    assert_eq!(env.callback(&url).await.status(), StatusCode::BAD_REQUEST);
    let exchanges = env.sandbox_calls("/oauth/access_token").await;
    assert!(
        exchanges.is_empty(),
        "an unknown state must not reach Instagram"
    );
}
both_backends!(
    unknown_state_is_refused_without_calling_instagram,
    unknown_state
);

async fn code_with_fragment(env: TestEnv) {
    let cb = consented(&env).await;
    let bad = with_param(&cb, "code", &format!("{}#_", param(&cb, "code")));
    let resp = env.callback(&bad).await;
    let v = refused(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(s(&v["error"]["message"]).contains('#'));
    // The session is untouched: the clean code still works.
    assert!(env.callback(&cb).await.status().is_success());
}
both_backends!(
    code_containing_hash_is_refused_and_loses_nothing,
    code_with_fragment
);

async fn api_keys(env: TestEnv) {
    let resp = env
        .http
        .get(format!("{}/v1/accounts", env.broker))
        .send()
        .await
        .unwrap();
    let v = refused(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(v["error"]["request_id"].is_string());
    let resp = env
        .http
        .get(format!("{}/v1/accounts", env.broker))
        .bearer_auth("igb_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let (st, key) = env
        .api(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "reader", "scopes": ["accounts:read"]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{key}");
    let reader = s(&key["key"]);
    let acc_id = env.connect(USER, "u").await;
    let resp = env
        .http
        .get(format!("{}/v1/accounts/{acc_id}/token", env.broker))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::FORBIDDEN, "missing_scope").await;
    let resp = env
        .http
        .get(format!("{}/v1/accounts/{acc_id}", env.broker))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let (st, _) = env
        .api(
            Method::DELETE,
            &format!("/v1/api-keys/{}", s(&key["id"])),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let resp = env
        .http
        .get(format!("{}/v1/accounts/{acc_id}", env.broker))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Keys are stored as hashes only.
    for (name, bytes) in env.files() {
        assert!(
            !contains(&bytes, reader.as_bytes()),
            "API key found in {name}"
        );
        assert!(
            !contains(&bytes, env.admin_key.as_bytes()),
            "admin key found in {name}"
        );
    }
}
both_backends!(api_keys_authenticate_and_scope, api_keys);

async fn too_young(env: TestEnv) {
    let acc_id = env.connect(USER, "u").await;
    env.advance(3600);
    let (st, v) = env
        .api(
            Method::POST,
            &format!("/v1/accounts/{acc_id}/refresh"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "token_too_young");
    assert!(env.sandbox_calls("/refresh_access_token").await.is_empty());
    env.advance(DAY);
    let (st, v) = env
        .api(
            Method::POST,
            &format!("/v1/accounts/{acc_id}/refresh"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(env.sandbox_calls("/refresh_access_token").await.len(), 1);
}
both_backends!(
    refresh_of_a_young_token_is_refused_before_instagram,
    too_young
);

async fn reconnect_same_identity(env: TestEnv) {
    let first = env.connect(USER, "u").await;
    let before = env.account(&first).await;
    let (_, old_token) = env.get(&format!("/v1/accounts/{first}/token")).await;
    // What the broker knew goes stale: the user renamed themselves since.
    sqlx::query("UPDATE accounts SET username = 'old_name' WHERE id = $1")
        .bind(&first)
        .execute(env.state.store().pool())
        .await
        .unwrap();
    assert_eq!(env.account(&first).await["username"], "old_name");
    env.advance(2 * DAY);
    let again = env.connect(USER, "u").await;
    assert_eq!(
        first, again,
        "same Instagram user, app and end user is the same account"
    );
    let after = env.account(&again).await;
    let (_, new_token) = env.get(&format!("/v1/accounts/{again}/token")).await;
    assert_ne!(
        new_token["access_token"], old_token["access_token"],
        "the new token replaces the old"
    );
    assert!(
        unix(&after["token"]["expires_at"]) >= unix(&before["token"]["expires_at"]) + 2 * DAY,
        "the expiry follows the new token: {before} -> {after}"
    );
    assert_eq!(after["username"], USER, "the username is read again");
    let other_user = env.connect(USER, "someone-else").await;
    assert_ne!(first, other_user);
    let other_ig = env.connect(OTHER_USER, "u").await;
    assert_ne!(first, other_ig);
    // A re-connect session for an account completed by another Instagram user fails.
    let sess = env
        .session(json!({"app_id": env.app_id, "account_id": first, "return_url": format!("{RETURN_ORIGIN}/x")}))
        .await;
    let cb = env
        .consent(sess["connect_url"].as_str().unwrap(), OTHER_USER, "allow")
        .await;
    let resp = env.callback(&cb).await;
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        loc.contains("status=error") && loc.contains("error=account_mismatch"),
        "{loc}"
    );
}
both_backends!(
    connecting_again_updates_the_same_account,
    reconnect_same_identity
);

async fn bad_input(env: TestEnv) {
    let (st, v) = env
        .api(Method::POST, "/v1/apps", Some(json!({"name": "x", "client_id": "1", "client_secret": "s", "scopes": ["business_basic"]})))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        s(&v["error"]["message"]).contains("instagram_business_basic"),
        "{v}"
    );
    let (st, v) = env
        .api(
            Method::POST,
            "/v1/connect-sessions",
            Some(json!({"app_id": "app_nope"})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let (st, v) = env
        .api(
            Method::POST,
            "/v1/connect-sessions",
            Some(json!({"app_id": env.app_id, "return_url": "https://evil.example/"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(s(&v["error"]["message"]).contains("return_origins"), "{v}");
    let resp = env
        .http
        .post(format!("{}/v1/apps", env.broker))
        .bearer_auth(&env.admin_key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    let (st, v) = env.get("/v1/accounts?limit=0").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}
both_backends!(bad_input_gets_clear_errors, bad_input);

async fn audit_api(env: TestEnv) {
    let acc = env.connect(USER, "u").await;
    let (st, tok) = env.get(&format!("/v1/accounts/{acc}/token")).await;
    assert_eq!(st, StatusCode::OK);
    let token = s(&tok["access_token"]);

    let (st, v) = env.get(&format!("/v1/audit?account_id={acc}")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let entries = v["data"].as_array().unwrap();
    assert!(
        entries.iter().all(|e| e["account_id"] == acc.as_str()),
        "{v}"
    );
    let read = entries
        .iter()
        .find(|e| e["action"] == "token.read")
        .expect("the token read is audited");
    assert!(
        read["actor"].as_str().unwrap().starts_with("api_key:"),
        "{read}"
    );
    assert!(!v.to_string().contains(&token), "no token in the audit log");

    // Pages follow each other in chain order without overlap.
    let (st, first) = env.get("/v1/audit?limit=1").await;
    assert_eq!(st, StatusCode::OK, "{first}");
    let cursor = s(&first["next_cursor"]);
    let (_, second) = env.get(&format!("/v1/audit?limit=1&cursor={cursor}")).await;
    let (a, b) = (&first["data"][0], &second["data"][0]);
    assert_eq!(
        b["prev_hash"], a["hash"],
        "the second page continues the chain"
    );
    assert!(b["seq"].as_i64() > a["seq"].as_i64());

    let (_, v) = env.get("/v1/audit?action=token.read").await;
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] == "token.read")
    );
    let (_, v) = env.get("/v1/audit?since=2999-01-01T00:00:00Z").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 0);
    let (st, v) = env.get("/v1/audit?since=yesterday").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("yesterday"),
        "{v}"
    );
    let (st, _) = env.get("/v1/audit?cursor=!!").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Reading the log takes audit:read.
    let (_, key) = env
        .api(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "reader", "scopes": ["accounts:read"]})),
        )
        .await;
    let resp = env
        .http
        .get(format!("{}/v1/audit", env.broker))
        .bearer_auth(s(&key["key"]))
        .send()
        .await
        .unwrap();
    refused(resp, StatusCode::FORBIDDEN, "missing_scope").await;
}
both_backends!(the_audit_log_is_readable_by_page_and_filter, audit_api);

async fn paging(env: TestEnv) {
    let mut ids = Vec::new();
    for end_user in ["a", "b", "c"] {
        ids.push(env.connect(USER, end_user).await);
    }
    let (st, p1) = env.get("/v1/accounts?limit=2").await;
    assert_eq!(st, StatusCode::OK, "{p1}");
    assert_eq!(p1["data"].as_array().unwrap().len(), 2);
    let cursor = s(&p1["next_cursor"]);
    let (st, p2) = env
        .get(&format!("/v1/accounts?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(st, StatusCode::OK, "{p2}");
    assert_eq!(p2["data"].as_array().unwrap().len(), 1);
    assert!(p2["next_cursor"].is_null());
    let mut seen: Vec<String> = p1["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["data"].as_array().unwrap())
        .map(|a| s(&a["id"]))
        .collect();
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids, "two pages hold each account once");
    for path in [
        "/v1/apps?limit=1",
        "/v1/api-keys?limit=1",
        "/v1/audit?limit=1",
    ] {
        let (st, v) = env.get(path).await;
        assert_eq!(st, StatusCode::OK, "{path}: {v}");
        assert_eq!(v["data"].as_array().unwrap().len(), 1, "{path}: {v}");
    }
    for bad in ["0", "501", "ten"] {
        let (st, v) = env.get(&format!("/v1/accounts?limit={bad}")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(bad), "{v}");
    }
}
both_backends!(lists_page_with_limit_and_cursor, paging);

async fn redirect_uri_kept_per_session(env: TestEnv) {
    let sess = env
        .session(json!({"app_id": env.app_id, "end_user": "u"}))
        .await;
    // The app's redirect URI changes while the user is on Instagram's consent page.
    let (st, v) = env
        .api(
            Method::PATCH,
            &format!("/v1/apps/{}", env.app_id),
            Some(json!({"redirect_uri": "https://elsewhere.example/oauth/callback"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The session finishes with the URI it started with: Instagram compares the
    // exchange's redirect_uri with the authorize request's, byte for byte.
    let cb = env.consent(&s(&sess["connect_url"]), USER, "allow").await;
    let resp = env.callback(&cb).await;
    assert!(resp.status().is_success() || resp.status().is_redirection());
    let (_, done) = env
        .get(&format!("/v1/connect-sessions/{}", s(&sess["id"])))
        .await;
    assert_eq!(done["status"], "connected", "{done}");
}
both_backends!(
    a_connect_session_keeps_the_redirect_uri_it_started_with,
    redirect_uri_kept_per_session
);

async fn metrics_page(env: TestEnv) {
    let acc = env.connect(USER, "u").await;
    let (_, tok) = env.get(&format!("/v1/accounts/{acc}/token")).await;
    let token = s(&tok["access_token"]);
    let (st, _) = env.get(&format!("/v1/accounts/{acc}/graph/me")).await;
    assert_eq!(st, StatusCode::OK);
    // A refresh that fails for good (code 100) counts as failing.
    env.clock.advance(41 * 86_400);
    env.fault(
        FaultSpec::graph_error("/refresh_access_token", 100)
            .with_status(400)
            .times(1),
    )
    .await;
    env.run_scheduler().await;

    let g = env
        .state
        .store()
        .account_gauges(env.clock.now_unix())
        .await
        .unwrap();
    assert_eq!(g.by_status, vec![("active".to_string(), 1)]);
    assert_eq!(g.failing, 1);
    assert_eq!(g.due, 0, "backing off long, not due now");

    // No API key: Prometheus scrapes it as is.
    let resp = env
        .http
        .get(format!("{}/metrics", env.broker))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    for line in [
        "igbroker_accounts{status=\"active\"}",
        "igbroker_accounts{status=\"reauth_required\"}",
        "igbroker_accounts_refresh_failing",
        "igbroker_accounts_refresh_due",
        "igbroker_webhooks_pending",
        "igbroker_token_reads_total",
        "igbroker_graph_calls_total{result=\"ok\"}",
        "igbroker_refresh_total{outcome=\"failing\"}",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(!text.contains(&token), "a token on /metrics");
    assert!(!text.contains(&acc), "an account id on /metrics");
}
both_backends!(metrics_are_served_for_prometheus_without_ids, metrics_page);

/// A connect session lasts an hour: its link opened later, or its callback returned later,
/// is refused as expired, and Instagram is never asked to exchange the code.
async fn expired_session(env: TestEnv) {
    let late_link = env.session(json!({"app_id": env.app_id})).await;
    let in_time = env.session(json!({"app_id": env.app_id})).await;
    let cb = env
        .consent(in_time["connect_url"].as_str().unwrap(), USER, "allow")
        .await;
    env.advance(3601);

    let resp = env
        .http
        .get(late_link["connect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "no redirect to Instagram"
    );
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_state", "{v}");
    assert!(s(&v["error"]["message"]).contains("expired"), "{v}");

    let resp = env.callback(&cb).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_state", "{v}");
    assert!(s(&v["error"]["message"]).contains("expired"), "{v}");
    assert!(env.sandbox_calls("/oauth/access_token").await.is_empty());
    let (_, sess) = env
        .get(&format!("/v1/connect-sessions/{}", s(&in_time["id"])))
        .await;
    assert_ne!(sess["status"], "connected", "{sess}");
    assert!(sess["account_id"].is_null(), "{sess}");
    let (_, list) = env.get("/v1/accounts").await;
    assert!(list["data"].as_array().unwrap().is_empty(), "{list}");
}
both_backends!(
    an_expired_connect_session_is_refused_at_link_and_callback,
    expired_session
);

/// A key limited to one app reaches that app's accounts and nothing of another app's.
async fn key_limited_to_an_app(env: TestEnv) {
    let other = env.register_app(json!({})).await;
    let other_app = s(&other["id"]);
    let mine = env.connect(USER, "u").await;
    let theirs = env.connect_to(&other_app, USER, "u").await;
    let (st, key) = env
        .api(
            Method::POST,
            "/v1/api-keys",
            Some(
                json!({"name": "limited", "scopes": ["accounts:read", "tokens:read", "connect"],
                        "app_ids": [env.app_id]}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{key}");
    let limited = s(&key["key"]);
    let call = |method: Method, path: String, body: Option<serde_json::Value>| {
        let mut req = env
            .http
            .request(method, format!("{}{path}", env.broker))
            .bearer_auth(&limited);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.unwrap();
            let st = resp.status();
            (st, resp.text().await.unwrap())
        }
    };
    let (st, body) = call(Method::GET, format!("/v1/accounts/{mine}"), None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, body) = call(Method::GET, format!("/v1/accounts/{mine}/token"), None).await;
    assert_eq!(st, StatusCode::OK, "{body}");

    let (_, their_token) = env.get(&format!("/v1/accounts/{theirs}/token")).await;
    let their_token = s(&their_token["access_token"]);
    for (method, path, body) in [
        (Method::GET, format!("/v1/accounts/{theirs}"), None),
        (Method::GET, format!("/v1/accounts/{theirs}/token"), None),
        (
            Method::POST,
            "/v1/connect-sessions".to_string(),
            Some(json!({"app_id": other_app})),
        ),
    ] {
        let (st, text) = call(method.clone(), path.clone(), body).await;
        assert!(
            st == StatusCode::FORBIDDEN || st == StatusCode::NOT_FOUND,
            "{method} {path}: {st} {text}"
        );
        assert!(
            !text.contains(&their_token),
            "{method} {path}: a token leaked"
        );
    }
}
both_backends!(
    a_key_limited_to_an_app_reaches_only_that_app,
    key_limited_to_an_app
);

/// A token read close to expiry refreshes first, before the scheduler has run; a read past
/// expiry hands out nothing and marks the account for re-authorization.
async fn read_near_and_past_expiry(env: TestEnv) {
    let near = env.connect(USER, "near").await;
    let expires = unix(&env.account(&near).await["token"]["expires_at"]);
    // Twelve hours before expiry: within `read_refresh_within` (a day).
    env.advance(expires - env.clock.now_unix() - 12 * 3600);
    assert!(env.sandbox_calls("/refresh_access_token").await.is_empty());
    let (st, tok) = env.get(&format!("/v1/accounts/{near}/token")).await;
    assert_eq!(st, StatusCode::OK, "{tok}");
    assert_eq!(env.sandbox_calls("/refresh_access_token").await.len(), 1);
    assert!(
        unix(&tok["expires_at"]) > expires + 50 * DAY,
        "the token handed out is the refreshed one: {tok}"
    );

    let past = env.connect(OTHER_USER, "past").await;
    let expires = unix(&env.account(&past).await["token"]["expires_at"]);
    env.advance(expires - env.clock.now_unix() + 60);
    let (st, v) = env.get(&format!("/v1/accounts/{past}/token")).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "reauth_required", "{v}");
    assert!(v.get("access_token").is_none(), "{v}");
    assert_eq!(env.account(&past).await["status"], "reauth_required");
}
both_backends!(
    a_token_read_refreshes_near_expiry_and_refuses_past_it,
    read_near_and_past_expiry
);

/// A connect session for the test's app, consented to by `USER`: the callback URL to follow.
async fn consented(env: &TestEnv) -> url::Url {
    let sess = env.session(json!({"app_id": env.app_id})).await;
    env.consent(sess["connect_url"].as_str().unwrap(), USER, "allow")
        .await
}

/// Asserts the answer is `status` with the error `code`; returns the body for more checks.
async fn refused(resp: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(resp.status(), status);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], code, "{v}");
    v
}

/// The query parameter `name` of `url`.
fn param(url: &url::Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

/// `url` with its query parameter `name` set to `value` (the others kept, in order).
fn with_param(url: &url::Url, name: &str, value: &str) -> url::Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    let mut out = url.clone();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}
