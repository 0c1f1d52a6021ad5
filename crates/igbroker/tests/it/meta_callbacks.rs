//! Revocation from every side: Meta's deauthorize and data-deletion callbacks sent by the
//! sandbox, forged callbacks, client-secret rotation, and usage anomalies over a simulated
//! week on the shared clock. SQLite and PostgreSQL.

use crate::common::{
    Backend, Inbox, OTHER_USER, RETURN_ORIGIN, TestEnv, USER, contains, events, receiver, s,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use igbroker_core::signed_request::sign;
use instagram_sandbox::control_client::{AppSpec, UserEvent};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// An app registered in the sandbox (whose client secret the test knows, to sign its own
/// callbacks) and in the broker with a webhook, with the sandbox sending Meta's callbacks to
/// the broker's URLs for it.
struct MetaApp {
    app_id: String,
    client_id: String,
    client_secret: String,
    webhook_secret: String,
    inbox: Inbox,
}

impl MetaApp {
    fn deauthorize_url(&self, env: &TestEnv) -> String {
        format!("{}/meta/deauthorize/{}", env.broker, self.app_id)
    }
    fn deletion_url(&self, env: &TestEnv) -> String {
        format!("{}/meta/data-deletion/{}", env.broker, self.app_id)
    }
    fn events(&self) -> Vec<Value> {
        events(&self.inbox, &self.webhook_secret)
    }
}

async fn meta_app(env: &TestEnv) -> MetaApp {
    let redirect_uri = format!("{}/oauth/callback", env.broker);
    let sb_app = env
        .sb
        .create_app(&AppSpec::redirecting_to(&redirect_uri))
        .await
        .unwrap();
    let client_id = sb_app.client_id;
    let client_secret = sb_app.client_secret.expect("a new app's secret");
    let (webhook_url, inbox) = receiver().await;
    let (st, app) = env
        .api(
            Method::POST,
            "/v1/apps",
            Some(json!({
                "name": "Meta app",
                "client_id": client_id,
                "client_secret": client_secret,
                "scopes": ["instagram_business_basic"],
                "return_origins": [RETURN_ORIGIN],
                "webhook_url": webhook_url,
            })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{app}");
    let app = MetaApp {
        app_id: s(&app["id"]),
        client_id,
        client_secret,
        webhook_secret: s(&app["webhook_secret"]),
        inbox,
    };
    // What an operator pastes into the App Dashboard.
    env.sb
        .create_app(
            &AppSpec::redirecting_to(redirect_uri)
                .with_client_id(&app.client_id)
                .with_meta_callbacks(app.deauthorize_url(env), app.deletion_url(env)),
        )
        .await
        .unwrap();
    app
}

/// A user event in the sandbox (as if the user acted in Instagram's settings); returns the
/// sandbox's report of the callback it delivered.
async fn user_event(env: &TestEnv, username: &str, event: UserEvent) -> Value {
    let id = env
        .sb
        .user_named(username)
        .await
        .unwrap()
        .expect("sandbox user")
        .id;
    let v = env.sb.user_event(&id, &event).await.unwrap();
    let deliveries = v["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{v}");
    deliveries[0].clone()
}

async fn post_form(env: &TestEnv, url: &str, body: String) -> (StatusCode, Value) {
    let resp = env
        .http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let st = resp.status();
    (st, resp.json().await.unwrap_or(Value::Null))
}

fn form(signed_request: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("signed_request", signed_request)
        .finish()
}

async fn audit(env: &TestEnv, query: &str) -> Vec<Value> {
    let (st, v) = env.get(&format!("/v1/audit?limit=500&{query}")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["data"].as_array().unwrap().clone()
}

async fn chain_intact(env: &TestEnv) {
    let check = env.state.store().verify_audit().await.unwrap();
    assert!(
        matches!(check, igbroker_store::ChainCheck::Intact { .. }),
        "{check:?}"
    );
}

/// Checkpoints SQLite's WAL into the database file, so the scan below sees what a copy of
/// the files would hold after the change (the WAL is scanned too, before and after).
async fn checkpoint(env: &TestEnv) {
    if env.database_url.starts_with("sqlite") {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(env.state.store().pool())
            .await
            .unwrap();
    }
}

/// Every table's rows as text (blobs left out), on either backend.
async fn all_rows_text(env: &TestEnv) -> String {
    let pool = env.state.store().pool();
    let mut out = String::new();
    if env.database_url.starts_with("sqlite") {
        let tables: Vec<String> = sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
        for t in tables {
            let cols: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT name FROM pragma_table_info('{t}')"
            )))
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
            let expr = cols
                .iter()
                .map(|c| format!("CASE typeof(\"{c}\") WHEN 'blob' THEN '' ELSE coalesce(CAST(\"{c}\" AS TEXT), '') END"))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT coalesce(group_concat({expr}, char(10)), '') FROM \"{t}\""
            )))
            .fetch_one(pool)
            .await
            .unwrap();
            out.push_str(&format!("[{t}]\n{text}\n"));
        }
    } else {
        let tables: Vec<String> = sqlx::query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
        for t in tables {
            let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT coalesce(string_agg(x::text, E'\\n'), '') FROM \"{t}\" x"
            )))
            .fetch_one(pool)
            .await
            .unwrap();
            out.push_str(&format!("[{t}]\n{text}\n"));
        }
    }
    out
}

async fn token_enc(env: &TestEnv, account_id: &str) -> Option<Vec<u8>> {
    sqlx::query_scalar("SELECT token_enc FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_one(env.state.store().pool())
        .await
        .unwrap()
}

// --- deauthorize -------------------------------------------------------------------------

async fn deauthorize(env: TestEnv) {
    let app = meta_app(&env).await;
    let acc = env.connect_to(&app.app_id, USER, "customer-1").await;
    let other = env.connect_to(&app.app_id, OTHER_USER, "customer-2").await;
    env.run_scheduler().await;
    let (st, tok) = env.get(&format!("/v1/accounts/{acc}/token")).await;
    assert_eq!(st, StatusCode::OK, "{tok}");
    let token = s(&tok["access_token"]);
    let sealed = token_enc(&env, &acc).await.expect("a sealed token before");

    let delivery = user_event(&env, USER, UserEvent::deauthorize(&app.client_id)).await;
    assert_eq!(delivery["status"], 200, "{delivery}");
    assert_eq!(delivery["url"], app.deauthorize_url(&env).as_str());

    let a = env.account(&acc).await;
    assert_eq!(a["status"], "revoked", "{a}");
    assert_eq!(env.account(&other).await["status"], "active");
    let (st, v) = env.get(&format!("/v1/accounts/{acc}/token")).await;
    assert_eq!(
        (st, s(&v["error"]["code"])),
        (StatusCode::CONFLICT, "revoked".into())
    );
    assert!(
        token_enc(&env, &acc).await.is_none(),
        "token ciphertext destroyed"
    );

    let entries = audit(
        &env,
        &format!("account_id={acc}&action=account.deauthorized"),
    )
    .await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["actor"], "meta");

    env.run_scheduler().await;
    let evs = app.events();
    let deauth = of_type(&evs, "account.deauthorized");
    assert_eq!(deauth.len(), 1, "{evs:?}");
    assert_eq!(deauth[0]["data"]["account_id"], acc.as_str());
    assert_eq!(deauth[0]["data"]["end_user"], "customer-1");

    // Meta retries: the same callback again changes nothing and emits nothing.
    let again = user_event(&env, USER, UserEvent::deauthorize(&app.client_id)).await;
    assert_eq!(again["status"], 200, "{again}");
    env.run_scheduler().await;
    assert_eq!(of_type(&app.events(), "account.deauthorized").len(), 1);
    assert_eq!(
        audit(
            &env,
            &format!("account_id={acc}&action=account.deauthorized")
        )
        .await
        .len(),
        1
    );

    if env.database_url.starts_with("sqlite") {
        checkpoint(&env).await;
        let files = env.files();
        // Positive control: the scan finds what the database does hold in plain text.
        assert!(
            files.iter().any(|(_, b)| contains(b, b"customer-2")),
            "the scan cannot see plain text"
        );
        for (name, bytes) in &files {
            assert!(!contains(bytes, token.as_bytes()), "token in {name}");
            assert!(!contains(bytes, &sealed), "token ciphertext left in {name}");
        }
    }
    chain_intact(&env).await;
}
both_backends!(a_user_removing_the_app_revokes_the_account, deauthorize);

/// `user_id` may be the professional id or the app-scoped id; an unknown user is answered
/// 200 (Meta would retry otherwise) and audited; another app's account is never touched.
async fn deauthorize_matching(env: TestEnv) {
    let app = meta_app(&env).await;
    let second = meta_app(&env).await;
    let acc = env.connect_to(&app.app_id, USER, "c1").await;
    let same_user_other_app = env.connect_to(&second.app_id, USER, "c1").await;
    let ig_user_id = s(&env.account(&acc).await["ig_user_id"]);
    let now = env.clock.now_unix();
    let payload = json!({"user_id": ig_user_id, "algorithm": "HMAC-SHA256", "issued_at": now});
    let sr = sign(app.client_secret.as_bytes(), &payload.to_string());
    let (st, v) = post_form(&env, &app.deauthorize_url(&env), form(&sr)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(env.account(&acc).await["status"], "revoked");
    assert_eq!(env.account(&same_user_other_app).await["status"], "active");

    let before = audit(&env, "action=meta.deauthorize_unmatched").await.len();
    let unknown =
        json!({"user_id": "17841499999999999", "algorithm": "HMAC-SHA256", "issued_at": now});
    let sr = sign(app.client_secret.as_bytes(), &unknown.to_string());
    let (st, v) = post_form(&env, &app.deauthorize_url(&env), form(&sr)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let entries = audit(&env, "action=meta.deauthorize_unmatched").await;
    assert_eq!(entries.len(), before + 1, "{entries:?}");
    let last = entries.last().unwrap();
    assert_eq!(last["actor"], "meta");
    assert!(
        !last.to_string().contains("17841499999999999"),
        "audit names only broker ids: {last}"
    );

    // Signed with the right secret, but for the other app's URL: that app's secret differs.
    let sr = sign(app.client_secret.as_bytes(), &payload.to_string());
    let (st, v) = post_form(&env, &second.deauthorize_url(&env), form(&sr)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(env.account(&same_user_other_app).await["status"], "active");
    chain_intact(&env).await;
}
both_backends!(
    deauthorize_matches_either_id_and_answers_unknown_users,
    deauthorize_matching
);

// --- data deletion -----------------------------------------------------------------------

async fn data_deletion(env: TestEnv) {
    let app = meta_app(&env).await;
    let acc = env.connect_to(&app.app_id, USER, "customer-del").await;
    let keep = env
        .connect_to(&app.app_id, OTHER_USER, "customer-keep")
        .await;
    // Give the user some history: a token read and a Graph call through the broker.
    let (st, _) = env.get(&format!("/v1/accounts/{acc}/token")).await;
    assert_eq!(st, StatusCode::OK);
    let (st, me) = env
        .get(&format!("/v1/accounts/{acc}/graph/me?fields=id,username"))
        .await;
    assert_eq!(st, StatusCode::OK, "{me}");
    let a = env.account(&acc).await;
    // A call whose path names the user: the audit log keeps a placeholder instead.
    let (st, v) = env
        .get(&format!(
            "/v1/accounts/{acc}/graph/{}?fields=username",
            s(&a["ig_user_id"])
        ))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let identifiers = [
        s(&a["ig_user_id"]),
        s(&a["ig_scoped_id"]),
        s(&a["username"]),
        "customer-del".to_owned(),
    ];
    // And a publish request, as `POST /v1/accounts/{id}/media` keeps it.
    let now = env.state.now();
    let mut tx = env.state.store().begin().await.unwrap();
    assert!(
        tx.insert_publish_request(&igbroker_store::PublishRequestRow {
            account_id: acc.clone(),
            idem_key: "post-1".into(),
            body_hash: "0".repeat(64),
            kind: "image".into(),
            state: "in_progress".into(),
            stage: "containers".into(),
            lease_token: "t".into(),
            lease_until: now,
            container_id: None,
            media_id: None,
            permalink: None,
            error_code: None,
            error_message: None,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap()
    );
    tx.commit().await.unwrap();
    env.run_scheduler().await;
    assert!(
        all_rows_text(&env).await.contains(&identifiers[0]),
        "positive control"
    );

    let delivery = user_event(&env, USER, UserEvent::data_deletion(&app.client_id)).await;
    assert_eq!(delivery["status"], 200, "{delivery}");
    let answer = &delivery["response"];
    let code = s(&answer["confirmation_code"]);
    assert!(
        !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric()),
        "{answer}"
    );
    let url = s(&answer["url"]);
    assert_eq!(
        url,
        format!("{}/meta/data-deletion/status/{code}", env.broker)
    );

    // The status page, as JSON and as HTML: completed, in plain words, nobody named.
    let resp = env
        .http
        .get(&url)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let status: Value = resp.json().await.unwrap();
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["confirmation_code"], code.as_str());
    assert!(
        status["requested_at"].is_string() && status["completed_at"].is_string(),
        "{status}"
    );
    let deleted = status["deleted"].to_string();
    assert!(deleted.contains("Instagram account"), "{status}");
    let resp = env.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        resp.headers()
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains(&code) && html.contains("completed"), "{html}");
    for id in identifiers.iter().chain([&acc]) {
        assert!(
            !status.to_string().contains(id.as_str()),
            "status names {id}"
        );
        assert!(!html.contains(id.as_str()), "status page names {id}");
    }

    // No row of that user remains; the other user's account is untouched; the chain holds.
    let (st, _) = env.get(&format!("/v1/accounts/{acc}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(env.account(&keep).await["status"], "active");
    assert!(
        env.state
            .store()
            .publish_request(&acc, "post-1")
            .await
            .unwrap()
            .is_none(),
        "the account's publish requests are deleted"
    );
    let rows = all_rows_text(&env).await;
    for id in &identifiers {
        assert!(
            !rows.contains(id.as_str()),
            "{id} still in the database:\n{rows}"
        );
    }
    assert!(
        rows.contains("customer-keep"),
        "the scan sees the other user"
    );
    chain_intact(&env).await;
    if env.database_url.starts_with("sqlite") {
        checkpoint(&env).await;
        for (name, bytes) in env.files() {
            for id in &identifiers {
                assert!(!contains(&bytes, id.as_bytes()), "{id} left in {name}");
            }
        }
    }

    env.run_scheduler().await;
    let evs = app.events();
    let deleted = of_type(&evs, "account.deleted");
    assert_eq!(deleted.len(), 1, "{evs:?}");
    assert_eq!(deleted[0]["data"]["account_id"], acc.as_str());

    // Meta repeats the request: the same code, nothing new.
    let again = user_event(&env, USER, UserEvent::data_deletion(&app.client_id)).await;
    assert_eq!(
        again["response"]["confirmation_code"],
        code.as_str(),
        "{again}"
    );
    env.run_scheduler().await;
    assert_eq!(of_type(&app.events(), "account.deleted").len(), 1);

    let resp = env
        .http
        .get(format!(
            "{}/meta/data-deletion/status/NOSUCHCODE",
            env.broker
        ))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
both_backends!(
    a_data_deletion_request_deletes_every_record_of_the_user,
    data_deletion
);

// --- forged callbacks --------------------------------------------------------------------

/// What a refusal must leave as it was.
async fn snapshot(env: &TestEnv, acc: &str) -> (Value, usize, String) {
    let a = env.account(acc).await;
    let n = audit(env, "").await.len();
    (a, n, all_rows_text(env).await)
}

async fn forged(env: TestEnv) {
    let app = meta_app(&env).await;
    let acc = env.connect_to(&app.app_id, USER, "customer-f").await;
    let a = env.account(&acc).await;
    let uid = s(&a["ig_scoped_id"]);
    let now = env.clock.now_unix();
    let good = json!({"user_id": uid, "algorithm": "HMAC-SHA256", "issued_at": now}).to_string();
    let secret = app.client_secret.as_bytes();
    let signed = sign(secret, &good);
    let (sig, payload) = signed.split_once('.').unwrap();
    let altered = URL_SAFE_NO_PAD.encode(good.replace("HMAC-SHA256\"", "HMAC-SHA256\",\"x\":1"));
    let sha1_sig = {
        use hmac::{KeyInit, Mac};
        let body =
            URL_SAFE_NO_PAD.encode(json!({"user_id": uid, "algorithm": "HMAC-SHA1"}).to_string());
        let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret).unwrap();
        mac.update(body.as_bytes());
        format!(
            "{}.{body}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    let cases: Vec<(&str, String)> = vec![
        ("wrong secret", form(&sign(b"not-the-secret", &good))),
        (
            "payload altered after signing",
            form(&format!("{sig}.{altered}")),
        ),
        (
            "algorithm none",
            form(&sign(
                secret,
                &json!({"user_id": uid, "algorithm": "none"}).to_string(),
            )),
        ),
        ("algorithm HMAC-SHA1", form(&sha1_sig)),
        (
            "HMAC-SHA1 named, SHA-256 used",
            form(&sign(
                secret,
                &json!({"user_id": uid, "algorithm": "HMAC-SHA1"}).to_string(),
            )),
        ),
        ("bad base64", form(&format!("{sig}.{payload}$$"))),
        ("bad base64 signature", form(&format!("***.{payload}"))),
        ("no dot", form(&format!("{sig}{payload}"))),
        ("empty", form("")),
        ("no field", "other=1".to_owned()),
        ("1 MiB", form(&format!("{signed}{}", "A".repeat(1 << 20)))),
    ];
    let before = snapshot(&env, &acc).await;
    for url in [app.deauthorize_url(&env), app.deletion_url(&env)] {
        for (name, body) in &cases {
            let (st, v) = post_form(&env, &url, body.clone()).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{name} at {url}: {v}");
            assert_eq!(v["error"]["code"], "invalid_request", "{name}: {v}");
            let message = s(&v["error"]["message"]);
            assert!(
                message.contains("signed_request") || message.contains("body"),
                "{name}: {message}"
            );
            assert!(
                !message.contains(&app.client_secret),
                "{name}: secret in message"
            );
        }
        // An unknown app is refused too, and says so.
        let unknown = url.replace(&app.app_id, "app_00000000000000000000000000000000");
        let (st, v) = post_form(&env, &unknown, form(&signed)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    }
    let after = snapshot(&env, &acc).await;
    assert_eq!(before.0, after.0, "account changed");
    assert_eq!(before.1, after.1, "audit log changed");
    assert_eq!(before.2, after.2, "database changed");
    // The genuine article still works afterwards.
    let (st, v) = post_form(&env, &app.deauthorize_url(&env), form(&signed)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(env.account(&acc).await["status"], "revoked");
}
both_backends!(forged_callbacks_are_refused_and_change_nothing, forged);

// --- client-secret rotation --------------------------------------------------------------

async fn secret_rotation(env: TestEnv) {
    let app = meta_app(&env).await;
    let a = env.connect_to(&app.app_id, USER, "r1").await;
    let b = env.connect_to(&app.app_id, OTHER_USER, "r2").await;
    let (st, v) = env
        .api(
            Method::PATCH,
            &format!("/v1/apps/{}", app.app_id),
            Some(json!({"client_secret": "the-new-secret"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let payload = |acc: &Value| {
        json!({"user_id": s(&acc["ig_scoped_id"]), "algorithm": "HMAC-SHA256"}).to_string()
    };
    // Meta may still sign with the previous secret for a while: it verifies in the grace period.
    let old = sign(
        app.client_secret.as_bytes(),
        &payload(&env.account(&a).await),
    );
    let (st, v) = post_form(&env, &app.deauthorize_url(&env), form(&old)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(env.account(&a).await["status"], "revoked");
    // After the grace period only the new one does.
    env.advance(8 * 86_400);
    let old = sign(
        app.client_secret.as_bytes(),
        &payload(&env.account(&b).await),
    );
    let (st, v) = post_form(&env, &app.deauthorize_url(&env), form(&old)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(env.account(&b).await["status"], "active");
    let new = sign(b"the-new-secret", &payload(&env.account(&b).await));
    let (st, v) = post_form(&env, &app.deauthorize_url(&env), form(&new)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(env.account(&b).await["status"], "revoked");
}
both_backends!(
    the_previous_client_secret_verifies_for_a_grace_period,
    secret_rotation
);

// --- usage anomalies ---------------------------------------------------------------------

const HOUR: i64 = 3600;

async fn read_token(env: &TestEnv, key: &str, acc: &str) -> StatusCode {
    env.http
        .get(format!("{}/v1/accounts/{acc}/token", env.broker))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
}

/// `n` token reads of each account, concurrently.
async fn reads(env: &TestEnv, key: &str, plan: &[(&str, usize)]) {
    let mut calls = Vec::new();
    for (acc, n) in plan {
        for _ in 0..*n {
            calls.push(read_token(env, key, acc));
        }
    }
    for st in futures::future::join_all(calls).await {
        assert_eq!(st, StatusCode::OK);
    }
}

async fn week_then_burst(env: TestEnv) {
    let app = meta_app(&env).await;
    let steady = env.connect_to(&app.app_id, USER, "steady").await;
    let rhythm = env.connect_to(&app.app_id, OTHER_USER, "rhythm").await;
    let burst = env.seed(1, 0).await.remove(0).account_id;
    // The seeded account belongs to the default app; its events are not watched here.
    let key = env.admin_key.clone();
    // Start a minute into an hour on the shared clock, so each simulated hour's reads fall
    // in one hour of the detector's.
    let now = env.clock.now_unix();
    env.advance(HOUR - now.rem_euclid(HOUR) + 60);
    // A week: 8 reads an hour; 2 at night and 25 by day (above min_per_hour, but usual for
    // that account); and 4 on the account that will burst.
    for hour in 0..24 * 7 {
        let by_day = if (8..20).contains(&(hour % 24)) {
            25
        } else {
            2
        };
        reads(&env, &key, &[(&steady, 8), (&rhythm, by_day), (&burst, 4)]).await;
        env.advance(HOUR);
        if hour % 24 == 23 {
            igbroker::worker::anomaly::run_until_idle(&env.state)
                .await
                .unwrap();
        }
    }
    igbroker::worker::anomaly::run_until_idle(&env.state)
        .await
        .unwrap();
    assert!(
        audit(&env, "action=account.anomaly").await.is_empty(),
        "steady use flagged"
    );

    // 50 times the usual rate on one account.
    reads(&env, &key, &[(&steady, 8), (&rhythm, 25), (&burst, 200)]).await;
    igbroker::worker::anomaly::run_until_idle(&env.state)
        .await
        .unwrap();
    let flagged = audit(&env, "action=account.anomaly").await;
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!(flagged[0]["account_id"], burst.as_str());
    assert_eq!(flagged[0]["detail"]["reason"], "rate");
    assert_eq!(env.account(&burst).await["status"], "suspended");
    for acc in [&steady, &rhythm] {
        assert_eq!(env.account(acc).await["status"], "active");
    }
    let (st, v) = env.get(&format!("/v1/accounts/{burst}/token")).await;
    assert_eq!(
        (st, s(&v["error"]["code"])),
        (StatusCode::CONFLICT, "suspended".into())
    );
    let (st, v) = env.get(&format!("/v1/accounts/{burst}/graph/me")).await;
    assert_eq!(
        (st, s(&v["error"]["code"])),
        (StatusCode::CONFLICT, "suspended".into())
    );

    // A key without accounts:write cannot resume it.
    let (st, created) = env
        .api(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "reader", "scopes": ["tokens:read"]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let reader = s(&created["key"]);
    let resp = env
        .http
        .post(format!("{}/v1/accounts/{burst}/resume", env.broker))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let (st, v) = env
        .api(Method::POST, &format!("/v1/accounts/{burst}/resume"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "active");
    let (st, _) = env.get(&format!("/v1/accounts/{burst}/token")).await;
    assert_eq!(st, StatusCode::OK, "resume restores reads");
    assert_eq!(
        audit(&env, &format!("account_id={burst}&action=account.resumed"))
            .await
            .len(),
        1
    );

    // A key that never read this account before is a signal of its own (an alert only).
    assert_eq!(read_token(&env, &reader, &steady).await, StatusCode::OK);
    igbroker::worker::anomaly::run_until_idle(&env.state)
        .await
        .unwrap();
    let flagged = audit(&env, &format!("account_id={steady}&action=account.anomaly")).await;
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!(flagged[0]["detail"]["reason"], "new_reader");
    assert_eq!(env.account(&steady).await["status"], "active");
    env.run_scheduler().await;
    let anomalies = of_type(&app.events(), "account.anomaly").len();
    assert_eq!(
        anomalies, 1,
        "the steady account's owner hears of the new reader"
    );
}
both_backends_with!(
    a_burst_after_a_steady_week_suspends_that_account_alone,
    week_then_burst,
    |c| {
        c.anomaly.action = igbroker::config::AnomalyAction::Suspend;
        c.anomaly.min_per_hour = 5;
        // A simulated week of reads in a few seconds: the per-key rate limit is not under test.
        c.limits.per_key_per_second = 1_000_000;
        c.limits.per_key_burst = 1_000_000;
    }
);

// --- the command line --------------------------------------------------------------------

fn cli(env: &TestEnv, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_igbroker"))
        .args(args)
        .env("IGBROKER_DATABASE_URL", &env.database_url)
        .env("IGBROKER_KEYS__RING_FILE", env.dir.path().join("keys.toml"))
        .env("IGBROKER_PUBLIC_URL", "https://broker.example")
        .env("IGBROKER_LOG", "warn")
        .env_remove("IGBROKER_KEYS__RING")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// `apps doctor` prints the callback URLs to register; `accounts suspend|resume` hold and
/// release an account, audited with the operator as actor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_prints_callback_urls_and_suspends() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let acc = env.connect(USER, "cli-user").await;
    let out = cli(&env, &["apps", "doctor", &env.app_id]);
    let text = String::from_utf8_lossy(&out.stdout);
    for url in [
        format!("https://broker.example/meta/deauthorize/{}", env.app_id),
        format!("https://broker.example/meta/data-deletion/{}", env.app_id),
    ] {
        assert!(text.contains(&url), "{text}");
    }
    let out = cli(&env, &["apps", "doctor", &env.app_id, "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["callback_urls"]["data_deletion"],
        format!("https://broker.example/meta/data-deletion/{}", env.app_id)
    );

    let out = cli(&env, &["accounts", "suspend", &acc, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "suspended");
    let (st, v) = env.get(&format!("/v1/accounts/{acc}/token")).await;
    assert_eq!(
        (st, s(&v["error"]["code"])),
        (StatusCode::CONFLICT, "suspended".into())
    );
    let out = cli(&env, &["accounts", "resume", &acc, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (st, _) = env.get(&format!("/v1/accounts/{acc}/token")).await;
    assert_eq!(st, StatusCode::OK);
    for action in ["account.suspended", "account.resumed"] {
        let entries = audit(&env, &format!("account_id={acc}&action={action}")).await;
        assert_eq!(entries.len(), 1, "{action}");
        assert!(s(&entries[0]["actor"]).starts_with("cli:"), "{entries:?}");
    }
    // A key of another tenant (limited to another app) cannot hold this account.
    let other_app = s(&env.register_app(json!({})).await["id"]);
    let (st, created) = env
        .api(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "tenant-b", "scopes": ["accounts:write"], "app_ids": [other_app]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    for verb in ["suspend", "resume"] {
        let resp = env
            .http
            .post(format!("{}/v1/accounts/{acc}/{verb}", env.broker))
            .bearer_auth(s(&created["key"]))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::NOT_FOUND,
            "{verb}: another tenant's account looks missing"
        );
    }
    assert_eq!(env.account(&acc).await["status"], "active");
    // A revoked account cannot be suspended, and says why.
    let (st, _) = env
        .api(Method::DELETE, &format!("/v1/accounts/{acc}"), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let out = cli(&env, &["accounts", "suspend", &acc]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only an active account can be suspended"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
