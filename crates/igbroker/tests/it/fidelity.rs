//! Where the live platform differs from a naive emulator: a Standard Access app's non-tester
//! connects and refreshes end with an explained `app_not_approved_for_user`, and Instagram's
//! own webhooks are verified, checked and relayed to the owning service as signed events.

use crate::common::{Backend, OTHER_USER, RETURN_ORIGIN, TestEnv, USER, events, receiver, s};
use hmac::{KeyInit, Mac};
use instagram_sandbox::control_client::{AppSpec, UserEvent, WebhookSubscription};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DAY: i64 = 86_400;
const VERIFY_TOKEN: &str = "vt-canary-5d1e0c";

fn hub_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A sandbox app and its broker registration, with the secrets the test needs.
struct RelayApp {
    app_id: String,
    client_id: String,
    client_secret: String,
    webhook_secret: String,
}

async fn relay_app(env: &TestEnv, webhook_url: &str) -> RelayApp {
    let redirect_uri = format!("{}/oauth/callback", env.broker);
    let sb_app = env
        .sb
        .create_app(&AppSpec::redirecting_to(redirect_uri))
        .await
        .unwrap();
    let client_secret = sb_app.client_secret.clone().expect("a new app's secret");
    let (st, app) = env
        .api(
            Method::POST,
            "/v1/apps",
            Some(json!({
                "name": "Relaying app",
                "client_id": sb_app.client_id,
                "client_secret": client_secret,
                "scopes": ["instagram_business_basic", "instagram_business_manage_comments"],
                "return_origins": [RETURN_ORIGIN],
                "webhook_url": webhook_url,
            })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{app}");
    RelayApp {
        app_id: s(&app["id"]),
        client_id: sb_app.client_id,
        client_secret,
        webhook_secret: s(&app["webhook_secret"]),
    }
}

async fn enable_relay(env: &TestEnv, app_id: &str) -> Value {
    let (st, v) = env
        .api(
            Method::PATCH,
            &format!("/v1/apps/{app_id}"),
            Some(json!({"relay_instagram_webhooks": true, "verify_token": VERIFY_TOKEN})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

async fn outbox_len(env: &TestEnv, app_id: &str) -> usize {
    env.state
        .store()
        .list_outbox(Some(app_id), 500)
        .await
        .unwrap()
        .len()
}

async fn notify(
    env: &TestEnv,
    app_id: &str,
    body: &[u8],
    signature: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = env
        .http
        .post(format!("{}/meta/webhooks/{app_id}", env.broker))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

// ---------------------------------------------------------------------------------------------
// Standard Access, non-testers

async fn set_sandbox_testers(env: &TestEnv, testers: &[&str]) {
    let redirect_uri = format!("{}/oauth/callback", env.broker);
    env.sb
        .create_app(
            &AppSpec::redirecting_to(redirect_uri)
                .with_client_id(&env.client_id)
                .standard_access(testers),
        )
        .await
        .unwrap();
}

fn says_both_fixes(text: &str) {
    assert!(
        text.contains("tester") && text.contains("Advanced Access"),
        "the explanation must name both fixes: {text}"
    );
}

async fn non_tester_connect(env: TestEnv) {
    // Standard Access: only OTHER_USER is a tester.
    set_sandbox_testers(&env, &[OTHER_USER]).await;
    let created = env
        .session(json!({"app_id": env.app_id, "end_user": "u-1",
                        "return_url": format!("{RETURN_ORIGIN}/done")}))
        .await;
    let cb = env
        .consent(created["connect_url"].as_str().unwrap(), USER, "allow")
        .await;
    let resp = env.callback(&cb).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(q["status"], "error", "{location}");
    assert_eq!(q["error"], "app_not_approved_for_user", "{location}");
    says_both_fixes(&q["error_description"]);

    let (_, sess) = env
        .get(&format!("/v1/connect-sessions/{}", s(&created["id"])))
        .await;
    assert_eq!(sess["status"], "error", "{sess}");
    assert_eq!(sess["error"], "app_not_approved_for_user");
    says_both_fixes(sess["error_description"].as_str().unwrap());

    // No account, active or otherwise.
    let (_, accounts) = env
        .get(&format!("/v1/accounts?app_id={}", env.app_id))
        .await;
    assert_eq!(accounts["data"], json!([]), "{accounts}");

    // `apps doctor` explains it.
    let d = igbroker::service::doctor::run(&env.state, &env.app_id)
        .await
        .unwrap();
    assert!(!d.ok);
    let problem = d
        .problems()
        .find(|p| p.contains("app_not_approved_for_user"))
        .expect("a problem naming the error");
    says_both_fixes(problem);

    // A tester connects; when the account stops being one, refreshing says why.
    let id = env.connect(OTHER_USER, "u-2").await;
    set_sandbox_testers(&env, &[]).await;
    env.advance(DAY + 60);
    let (st, v) = env
        .api(Method::POST, &format!("/v1/accounts/{id}/refresh"), None)
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "app_not_approved_for_user", "{v}");
    says_both_fixes(v["error"]["message"].as_str().unwrap());
    let acc = env.account(&id).await;
    assert_eq!(
        acc["status"], "active",
        "neither revoked nor re-auth: {acc}"
    );
    let last = acc["token"]["last_error"].as_str().unwrap();
    assert!(last.starts_with("app_not_approved_for_user"), "{last}");
    says_both_fixes(last);
}
both_backends!(
    a_non_tester_connect_ends_with_the_explained_error_and_no_account,
    non_tester_connect
);

// ---------------------------------------------------------------------------------------------
// Instagram webhooks relayed

async fn comment_relayed(env: TestEnv) {
    let (hook_url, got) = receiver().await;
    let app = relay_app(&env, &hook_url).await;
    let account_id = env.connect_to(&app.app_id, USER, "end-user-7").await;

    // Turning relaying on subscribes the connected account (`/me/subscribed_apps`).
    let v = enable_relay(&env, &app.app_id).await;
    assert_eq!(v["relay_instagram_webhooks"], true, "{v}");
    assert_eq!(v["relay_subscriptions"]["subscribed"], 1, "{v}");
    assert!(!v.to_string().contains(VERIFY_TOKEN), "{v}");
    let callback = s(&v["instagram_webhook_url"]);
    assert_eq!(
        callback,
        format!("{}/meta/webhooks/{}", env.broker, app.app_id)
    );
    let subs = env.sandbox_calls("/me/subscribed_apps").await;
    assert!(
        subs.iter().any(|c| c.method == "POST" && c.status == 200),
        "{subs:?}"
    );

    // Meta verifies the callback URL with the verify token (the sandbox does as Meta does).
    env.sb
        .subscribe_webhooks(
            &app.client_id,
            &WebhookSubscription::new(&callback, VERIFY_TOKEN, &["comments"]),
        )
        .await
        .unwrap();

    // A comment on the account's post reaches the owning service, naming the broker's account.
    let before = outbox_len(&env, &app.app_id).await;
    let ev = env
        .sb
        .user_event(USER, &UserEvent::comment("Where can I buy this?", "a_fan"))
        .await
        .unwrap();
    assert_eq!(ev["deliveries"][0]["status"], 200, "{ev}");
    assert_eq!(ev["deliveries"][0]["response"]["relayed"], 1, "{ev}");
    assert_eq!(outbox_len(&env, &app.app_id).await, before + 1);
    env.run_scheduler().await;
    let delivered = events(&got, &app.webhook_secret);
    let relayed: Vec<&Value> = delivered
        .iter()
        .filter(|e| e["type"] == "instagram.webhook")
        .collect();
    assert_eq!(relayed.len(), 1, "{delivered:?}");
    let data = &relayed[0]["data"];
    assert_eq!(data["account_id"], account_id);
    assert_eq!(data["end_user"], "end-user-7");
    assert_eq!(data["app_id"], app.app_id);
    assert_eq!(data["field"], "comments");
    assert_eq!(data["value"]["text"], "Where can I buy this?");
    assert_eq!(data["value"]["id"], ev["comment_id"]);
    assert_eq!(
        data["ig_user_id"],
        env.account(&account_id).await["ig_user_id"]
    );
}
both_backends!(
    a_sandbox_comment_reaches_the_owning_service_as_a_signed_event,
    comment_relayed
);

async fn forged_and_unknown(env: TestEnv) {
    let (hook_url, got) = receiver().await;
    let app = relay_app(&env, &hook_url).await;
    let other = relay_app(&env, &hook_url).await;
    let account_id = env.connect_to(&app.app_id, USER, "u").await;
    enable_relay(&env, &app.app_id).await;
    let ig_user_id = s(&env.account(&account_id).await["ig_user_id"]);
    let body = json!({"object": "instagram", "entry": [{"id": ig_user_id, "time": 1_714_651_200,
        "changes": [{"field": "comments", "value": {"id": "1789", "text": "forged"}}]}]})
    .to_string();
    let before = outbox_len(&env, &app.app_id).await;

    // Forged: a wrong secret, another app's secret, a tampered body, no header at all.
    let wrong = hub_signature("not-the-app-secret", body.as_bytes());
    let others = hub_signature(&other.client_secret, body.as_bytes());
    let tampered = hub_signature(
        &app.client_secret,
        body.replace("forged", "edited").as_bytes(),
    );
    for sig in [
        Some(wrong.as_str()),
        Some(others.as_str()),
        Some(tampered.as_str()),
        Some("sha256=zz"),
        None,
    ] {
        let (st, v) = notify(&env, &app.app_id, body.as_bytes(), sig).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{sig:?}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("X-Hub-Signature-256"),
            "{v}"
        );
    }
    assert_eq!(
        outbox_len(&env, &app.app_id).await,
        before,
        "nothing relayed"
    );

    // Signed right, an account the broker does not hold: counted and dropped.
    let unknown = body.replace(&ig_user_id, "17841499999999999");
    let sig = hub_signature(&app.client_secret, unknown.as_bytes());
    let (st, v) = notify(&env, &app.app_id, unknown.as_bytes(), Some(&sig)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"changes": 1, "relayed": 0, "dropped": 1}));
    assert_eq!(outbox_len(&env, &app.app_id).await, before);

    // The same entry at another app of this broker maps to nothing there.
    let sig = hub_signature(&other.client_secret, body.as_bytes());
    let (st, v) = notify(&env, &other.app_id, body.as_bytes(), Some(&sig)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["relayed"], 0, "relaying is off for that app: {v}");
    assert_eq!(outbox_len(&env, &other.app_id).await, 0);

    // Signed right and known: relayed once.
    let sig = hub_signature(&app.client_secret, body.as_bytes());
    let (st, v) = notify(&env, &app.app_id, body.as_bytes(), Some(&sig)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["relayed"], 1, "{v}");
    env.run_scheduler().await;
    let delivered = events(&got, &app.webhook_secret);
    let texts: Vec<&Value> = delivered
        .iter()
        .filter(|e| e["type"] == "instagram.webhook")
        .map(|e| &e["data"]["value"]["text"])
        .collect();
    assert_eq!(texts, vec![&json!("forged")]);

    // The metrics count what was dropped.
    let m = env
        .http
        .get(format!("{}/metrics", env.broker))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.lines().any(
            |l| l.starts_with("igbroker_instagram_webhook_changes_total")
                && l.contains("unknown_account")
        ),
        "{m}"
    );
}
both_backends!(
    a_forged_signature_is_refused_and_relays_nothing,
    forged_and_unknown
);

async fn verification(env: TestEnv) {
    let (hook_url, _got) = receiver().await;
    let app = relay_app(&env, &hook_url).await;
    let url = format!("{}/meta/webhooks/{}", env.broker, app.app_id);
    let get = |token: &'static str| {
        let http = env.http.clone();
        let url = url.clone();
        async move {
            let resp = http
                .get(&url)
                .query(&[
                    ("hub.mode", "subscribe"),
                    ("hub.challenge", "1158201444"),
                    ("hub.verify_token", token),
                ])
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, resp.text().await.unwrap())
        }
    };
    // No verify token yet: every verification is refused.
    assert_eq!(get(VERIFY_TOKEN).await.0, StatusCode::FORBIDDEN);
    enable_relay(&env, &app.app_id).await;
    let (st, body) = get("a-wrong-token").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(
        !body.contains("1158201444") && !body.contains(VERIFY_TOKEN),
        "{body}"
    );
    let (st, body) = get(VERIFY_TOKEN).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, "1158201444");
    // Another app's verify token does not open this one, and unknown apps are 404.
    let other = relay_app(&env, &hook_url).await;
    let resp = env
        .http
        .get(format!("{}/meta/webhooks/{}", env.broker, other.app_id))
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", "7"),
            ("hub.verify_token", VERIFY_TOKEN),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = env
        .http
        .get(format!("{}/meta/webhooks/app_nonexistent", env.broker))
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", "7"),
            ("hub.verify_token", VERIFY_TOKEN),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Relaying needs a verify token and a webhook to deliver to; bad tokens are refused.
    let bare = env.register_app(json!({})).await;
    for (body, says) in [
        (json!({"relay_instagram_webhooks": true}), "verify_token"),
        (
            json!({"relay_instagram_webhooks": true, "verify_token": "vt"}),
            "webhook_url",
        ),
        (json!({"verify_token": "has space"}), "verify_token"),
    ] {
        let (st, v) = env
            .api(
                Method::PATCH,
                &format!("/v1/apps/{}", s(&bare["id"])),
                Some(body),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
    // The verify token is sealed: not in the database file in clear.
    if env.database_url.starts_with("sqlite") {
        for (name, bytes) in env.files() {
            assert!(
                !bytes
                    .windows(VERIFY_TOKEN.len())
                    .any(|w| w == VERIFY_TOKEN.as_bytes()),
                "{name} holds the verify token in clear"
            );
        }
    }
}
both_backends!(
    a_verification_get_with_a_wrong_verify_token_is_refused,
    verification
);
