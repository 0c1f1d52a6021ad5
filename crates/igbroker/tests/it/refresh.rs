//! The refresh engine against the real sandbox: due work, failures of each
//! kind, joining refreshes in flight, and webhooks to the owning service.

use crate::common;
use std::sync::{Arc, Mutex};

use crate::common::{Backend, TestEnv, USER, events, receiver, s, signatures, signed_with};
use axum::body::Bytes;
use instagram_sandbox::control_client::{FaultSpec, UserEvent};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DAY: i64 = 86_400;

fn unix(v: &Value) -> i64 {
    time::OffsetDateTime::parse(
        v.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp()
}

async fn due_refresh(env: TestEnv) {
    let id = env.connect(USER, "u").await;
    let before = env.account(&id).await;
    let due = unix(&before["token"]["next_refresh_at"]);
    let expires = unix(&before["token"]["expires_at"]);
    assert!(
        due <= expires - 20 * DAY && due > expires - 20 * DAY - DAY / 2,
        "due {due} expires {expires}"
    );

    // Not due yet: nothing happens.
    env.advance(30 * DAY);
    assert_eq!(env.run_scheduler().await.attempts(), 0);
    assert!(env.sandbox_calls("/refresh_access_token").await.is_empty());

    env.advance(11 * DAY);
    let stats = env.run_scheduler().await;
    assert_eq!(stats.refreshed, 1, "{stats:?}");
    assert_eq!(env.sandbox_calls("/refresh_access_token").await.len(), 1);
    let after = env.account(&id).await;
    assert!(unix(&after["token"]["expires_at"]) > expires);
    assert!(unix(&after["token"]["next_refresh_at"]) > due + 30 * DAY);
    assert_eq!(after["token"]["refresh_state"], "idle");
    // Done: running again does nothing.
    assert_eq!(env.run_scheduler().await.attempts(), 0);
    let leases = env
        .state
        .store()
        .count_expired_leases(env.clock.now_unix() + 10 * 60 * DAY)
        .await
        .unwrap();
    assert_eq!(leases, 0, "no lease may linger after the work is done");
}
both_backends!(due_tokens_are_refreshed_once, due_refresh);

async fn transient_then_success(env: TestEnv) {
    let id = env.connect(USER, "u").await;
    env.advance(41 * DAY);
    env.fault(FaultSpec::status("/refresh_access_token", 503).times(1))
        .await;
    let stats = env.run_scheduler().await;
    assert_eq!(stats.transient, 1, "{stats:?}");
    let acc = env.account(&id).await;
    assert_eq!(acc["status"], "active");
    assert_eq!(acc["token"]["refresh_state"], "backing_off");
    assert!(acc["token"]["last_error"].is_string());
    let retry = unix(&acc["token"]["next_refresh_at"]);
    assert!(
        retry > env.clock.now_unix(),
        "a transient failure backs off"
    );
    env.advance(retry - env.clock.now_unix());
    let stats = env.run_scheduler().await;
    assert_eq!(stats.refreshed, 1, "{stats:?}");
    let acc = env.account(&id).await;
    assert_eq!(acc["token"]["refresh_state"], "idle");
    assert!(acc["token"]["last_error"].is_null());
}
both_backends!(
    transient_failure_backs_off_then_succeeds,
    transient_then_success
);

async fn expired_while_backing_off(env: TestEnv) {
    let id = env.connect(USER, "u").await;
    env.advance(41 * DAY);
    env.fault(FaultSpec::status("/refresh_access_token", 500))
        .await;
    // Keep failing until the token runs out.
    for _ in 0..200 {
        let acc = env.account(&id).await;
        if acc["status"] != "active" {
            break;
        }
        let next = unix(&acc["token"]["next_refresh_at"]);
        env.advance((next - env.clock.now_unix()).max(1));
        env.run_scheduler().await;
    }
    let acc = env.account(&id).await;
    assert_eq!(acc["status"], "reauth_required", "{acc}");
    assert_eq!(acc["status_reason"], "expired");
    let (st, v) = env.get(&format!("/v1/accounts/{id}/token")).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "reauth_required");
}
both_backends!(
    a_token_that_expires_while_backing_off_needs_reauth,
    expired_while_backing_off
);

async fn non_transient_is_failing(env: TestEnv) {
    let id = env.connect(USER, "u").await;
    env.advance(41 * DAY);
    env.fault(
        FaultSpec::graph_error("/refresh_access_token", 100)
            .with_status(400)
            .times(1),
    )
    .await;
    let stats = env.run_scheduler().await;
    assert_eq!(stats.failing, 1, "{stats:?}");
    let acc = env.account(&id).await;
    assert_eq!(
        acc["status"], "active",
        "a non-auth error leaves the status alone"
    );
    assert_eq!(acc["token"]["refresh_state"], "failing");
    let retry = unix(&acc["token"]["next_refresh_at"]);
    assert!(retry - env.clock.now_unix() >= 3600, "a long backoff");
}
both_backends!(
    other_errors_mark_failing_and_keep_status,
    non_transient_is_failing
);

async fn rate_limit_holds_app(env: TestEnv) {
    let a = env.connect(USER, "a").await;
    let b = env.connect(common::OTHER_USER, "b").await;
    env.advance(41 * DAY);
    env.fault(
        FaultSpec::graph_error("/refresh_access_token", 80002)
            .with_status(400)
            .times(1),
    )
    .await;
    let stats = env.run_scheduler().await;
    // The first call is throttled; the app is then held, so the other account waits too.
    assert_eq!(stats.transient, 1, "{stats:?}");
    assert_eq!(stats.refreshed, 0, "{stats:?}");
    assert_eq!(env.sandbox_calls("/refresh_access_token").await.len(), 1);
    env.advance(6 * 3600);
    let stats = env.run_scheduler().await;
    assert_eq!(stats.refreshed, 2, "{stats:?}");
    for id in [a, b] {
        assert_eq!(env.account(&id).await["token"]["refresh_state"], "idle");
    }
}
// One refresh at a time, so that the second account is claimed after the hold.
both_backends_with!(rate_limits_hold_the_whole_app, rate_limit_holds_app, |c| {
    c.refresh.concurrency = 1
});

async fn short_lease_given_back(env: TestEnv) {
    let accounts = env.seed(3, 45 * DAY).await;
    // Every refresh takes 1.5 s, one at a time: the second and third accounts,
    // claimed together with the first, wait for the slot.
    env.fault(FaultSpec::latency("/refresh_access_token", 1500))
        .await;
    let state = env.state.clone();
    let run = tokio::spawn(async move {
        igbroker::worker::scheduler::Scheduler::new(state)
            .run_until_idle(|_| {})
            .await
            .unwrap()
    });
    let store = env.state.store();
    let far = env.clock.now_unix() + 365 * DAY;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.count_expired_leases(far).await.unwrap() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduler never claimed the three"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // While the first call is in flight, time passes until the leases of the
    // waiting two no longer cover a whole call to Instagram.
    let lease = igbroker::service::refresh::lease_secs(&env.state);
    let call = igbroker::service::refresh::upstream_secs(&env.state);
    env.advance(lease - call);
    let stats = run.await.unwrap();
    assert!(
        stats.deferred >= 2,
        "the waiting accounts must be given back, not called under a short lease: {stats:?}"
    );
    // Claimed again under fresh leases, each refreshed once.
    assert_eq!(stats.refreshed, 3, "{stats:?}");
    assert_eq!(env.sandbox_calls("/refresh_access_token").await.len(), 3);
    for a in &accounts {
        assert_eq!(
            env.account(&a.account_id).await["token"]["refresh_state"],
            "idle"
        );
    }
}
both_backends_with!(
    a_claimed_account_whose_lease_ran_short_is_given_back_uncalled,
    short_lease_given_back,
    |c| c.refresh.concurrency = 1
);

async fn budget_limits_each_window(env: TestEnv) {
    env.seed(12, 45 * DAY).await;
    // Two replicas share the app's budget of 5 a minute: a second broker on the same
    // database, with its own pool, node id and in-memory state.
    let clock: Arc<dyn igbroker_core::Clock> =
        Arc::new(igbroker::clock::SandboxClockAdapter(env.clock.clone()));
    let other = igbroker::server::build_state(env.state.config().clone(), clock)
        .await
        .unwrap();
    assert_ne!(other.node_id(), env.state.node_id());
    let run = |env: &TestEnv| {
        let a = igbroker::worker::scheduler::Scheduler::new(env.state.clone());
        let b = igbroker::worker::scheduler::Scheduler::new(other.clone());
        async move {
            let (x, y) = tokio::join!(a.run_until_idle(|_| {}), b.run_until_idle(|_| {}));
            (x.unwrap(), y.unwrap())
        }
    };
    let mut total = 0;
    for (window, expected) in [(0, 5), (1, 5), (2, 2)] {
        let (x, y) = run(&env).await;
        assert_eq!(
            x.refreshed + y.refreshed,
            expected,
            "window {window}: {x:?} {y:?}"
        );
        total += expected;
        assert_eq!(
            env.sandbox_calls("/refresh_access_token").await.len() as u64,
            total,
            "window {window}: the budget caps calls to Instagram"
        );
        env.advance(61);
    }
    let (x, y) = run(&env).await;
    assert_eq!(x.attempts() + y.attempts(), 0, "all done: {x:?} {y:?}");
}
both_backends_with!(
    the_per_app_budget_caps_refreshes_per_minute_across_replicas,
    budget_limits_each_window,
    |c| c.refresh.app_budget_per_minute = 5
);

async fn joins_in_flight(env: TestEnv) {
    let id = env.connect(USER, "u").await;
    env.advance(2 * DAY);
    env.fault(FaultSpec::latency("/refresh_access_token", 400).times(1))
        .await;
    let path = format!("/v1/accounts/{id}/refresh");
    let (a, b, c) = tokio::join!(
        env.api(Method::POST, &path, None),
        env.api(Method::POST, &path, None),
        env.api(Method::POST, &path, None)
    );
    for (st, v) in [&a, &b, &c] {
        assert_eq!(*st, StatusCode::OK, "{v}");
    }
    assert_eq!(a.1["token"]["expires_at"], b.1["token"]["expires_at"]);
    assert_eq!(a.1["token"]["expires_at"], c.1["token"]["expires_at"]);
    assert_eq!(
        env.sandbox_calls("/refresh_access_token").await.len(),
        1,
        "concurrent refreshes join one upstream call"
    );
}
both_backends!(on_demand_refresh_joins_the_one_in_flight, joins_in_flight);

async fn app_webhook_changes(env: TestEnv) {
    let app = env.register_app(json!({})).await;
    assert!(app.get("webhook_secret").is_none());
    let app_id = s(&app["id"]);
    let path = format!("/v1/apps/{app_id}");

    // Bad input is refused, naming what was wrong, and changes nothing.
    for (body, code, says) in [
        (json!({}), StatusCode::BAD_REQUEST, "nothing to change"),
        (json!({"webhook": "x"}), StatusCode::BAD_REQUEST, "webhook"),
        (
            json!({"webhook_url": "ftp://x"}),
            StatusCode::BAD_REQUEST,
            "webhook_url",
        ),
        (
            json!({"rotate_webhook_secret": true}),
            StatusCode::BAD_REQUEST,
            "webhook_url",
        ),
        (
            json!({"scopes": ["instagram_business_nope"]}),
            StatusCode::BAD_REQUEST,
            "instagram_business_nope",
        ),
    ] {
        let (st, v) = env.api(Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(st, code, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{body}: {v}"
        );
    }
    let (st, _) = env
        .api(
            Method::PATCH,
            "/v1/apps/app_00000000000000000000000000000000",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // A webhook added later gets a secret, shown once, and receives events.
    let (url, got) = receiver().await;
    let (st, v) = env
        .api(
            Method::PATCH,
            &path,
            Some(json!({"webhook_url": url, "name": "renamed"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "renamed");
    assert_eq!(v["webhook_url"], url.as_str());
    let first = s(&v["webhook_secret"]);
    assert!(first.starts_with("whsec_"));
    let a = env.connect_to(&app_id, USER, "a").await;
    env.run_scheduler().await;
    let ev = events(&got, &first);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["data"]["account_id"], a);

    // Rotated: later deliveries are signed with the new secret and, for the grace period,
    // the replaced one too, so a receiver still holding it keeps accepting them.
    let (st, v) = env
        .api(
            Method::PATCH,
            &path,
            Some(json!({"rotate_webhook_secret": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let second = s(&v["webhook_secret"]);
    assert_ne!(first, second);
    got.lock().unwrap().clear();
    let (st, _) = env
        .api(Method::DELETE, &format!("/v1/accounts/{a}"), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    env.run_scheduler().await;
    let ev = events(&got, &second);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["type"], "account.revoked");
    for (h, body) in got.lock().unwrap().iter() {
        assert_eq!(signatures(h).len(), 2, "two signatures during the grace");
        assert!(
            signed_with(h, body, &first),
            "the rotated-out secret still verifies during the grace"
        );
    }

    // After the grace (a day by default) only the new secret signs.
    got.lock().unwrap().clear();
    env.advance(86_400 + 60);
    let c = env.connect_to(&app_id, USER, "after-grace").await;
    env.run_scheduler().await;
    let ev = events(&got, &second);
    assert!(
        ev.iter().any(|e| e["data"]["account_id"] == c.as_str()),
        "{ev:?}"
    );
    for (h, body) in got.lock().unwrap().iter() {
        assert_eq!(signatures(h).len(), 1, "one signature after the grace");
        assert!(
            !signed_with(h, body, &first),
            "the rotated-out secret no longer verifies"
        );
    }

    // Removed: nothing more is sent.
    let (st, v) = env
        .api(Method::PATCH, &path, Some(json!({"webhook_url": null})))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(
        v["webhook_url"].is_null() && v.get("webhook_secret").is_none(),
        "{v}"
    );
    got.lock().unwrap().clear();
    env.connect_to(&app_id, USER, "b").await;
    env.run_scheduler().await;
    assert!(got.lock().unwrap().is_empty(), "no webhook once removed");

    // Each change is audited by field name; values (secrets above all) stay out.
    let audit = env
        .state
        .store()
        .list_audit(None, Some("app.updated"), None, 0, 100)
        .await
        .unwrap();
    assert_eq!(audit.len(), 3);
    assert!(audit[0].detail.contains("webhook_url") && audit[0].detail.contains("webhook_secret"));
    for e in &audit {
        assert!(!e.detail.contains(&first) && !e.detail.contains(&second));
    }
}
both_backends!(
    an_apps_webhook_is_added_rotated_and_removed,
    app_webhook_changes
);

async fn reauth_flow(env: TestEnv) {
    let (url, got) = receiver().await;
    let app = env.register_app(json!({"webhook_url": url})).await;
    let secret = s(&app["webhook_secret"]);
    assert!(secret.starts_with("whsec_"));
    let app_id = s(&app["id"]);
    let id = env.connect_to(&app_id, USER, "u").await;
    env.run_scheduler().await;
    let ev = events(&got, &secret);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["type"], "account.connected");
    assert_eq!(ev[0]["data"]["account_id"], id);

    // The user changes their password: Instagram answers 190/460.
    env.sb
        .user_event(USER, &UserEvent::PasswordChanged)
        .await
        .unwrap();
    env.advance(41 * DAY);
    let stats = env.run_scheduler().await;
    assert_eq!(stats.reauth_required, 1, "{stats:?}");
    let acc = env.account(&id).await;
    assert_eq!(acc["status"], "reauth_required");
    assert_eq!(acc["status_reason"], "password_changed");
    let ev = events(&got, &secret);
    let reauth = ev
        .iter()
        .find(|e| e["type"] == "account.reauth_required")
        .expect("reauth event");
    assert_eq!(reauth["data"]["reason"], "password_changed");
    let link = s(&reauth["data"]["reconnect"]["connect_url"]);

    // The offered link restores the same account.
    let cb = env.consent(&link, USER, "allow").await;
    assert!(env.callback(&cb).await.status().is_success());
    let acc = env.account(&id).await;
    assert_eq!(acc["status"], "active");
    env.run_scheduler().await;
    let ev = events(&got, &secret);
    assert!(
        ev.iter()
            .any(|e| e["type"] == "account.recovered" && e["data"]["account_id"] == id),
        "{ev:?}"
    );

    let (st, _) = env
        .api(Method::DELETE, &format!("/v1/accounts/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    env.run_scheduler().await;
    let ev = events(&got, &secret);
    assert!(ev.iter().any(|e| e["type"] == "account.revoked"), "{ev:?}");
    // Every delivery is logged.
    let outbox = env
        .state
        .store()
        .list_outbox(Some(&app_id), 100)
        .await
        .unwrap();
    assert_eq!(outbox.len(), 4);
    assert!(outbox.iter().all(|o| o.delivered_at.is_some()));
}
both_backends!(
    reauth_is_announced_with_a_reconnect_link_that_restores_the_account,
    reauth_flow
);

async fn webhook_retries(env: TestEnv) {
    // A receiver that is down at first (its port refuses connections): the event waits in
    // the outbox and is retried once the same port listens.
    let (socket, addr) = common::closed_port();
    let url = format!("http://{addr}/hook");
    let app = env.register_app(json!({"webhook_url": url})).await;
    let app_id = s(&app["id"]);
    env.connect_to(&app_id, USER, "u").await;
    let stats = env.run_scheduler().await;
    assert_eq!(stats.webhooks_failed, 1, "{stats:?}");
    let outbox = env
        .state
        .store()
        .list_outbox(Some(&app_id), 10)
        .await
        .unwrap();
    assert_eq!(outbox[0].attempts, 1);
    assert!(outbox[0].delivered_at.is_none());

    let got: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let sink = got.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let l = socket.listen(64).unwrap();
    tokio::spawn(async move { axum::serve(l, router).await });
    env.advance(3600);
    let stats = env.run_scheduler().await;
    assert_eq!(stats.webhooks_delivered, 1, "{stats:?}");
    assert_eq!(got.lock().unwrap().len(), 1);
    let deliveries = env
        .state
        .store()
        .list_deliveries(&outbox[0].id)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries[0].error.is_some());
    assert_eq!(deliveries[1].status_code, Some(200));
}
both_backends!(webhooks_are_retried_and_logged, webhook_retries);
