//! User events: signed deauthorize and data-deletion callbacks, password changes (rows 6, 9).

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

fn signed_request_of(r: &Received) -> String {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&r.body).into_owned().collect();
    assert_eq!(form.len(), 1, "{form:?}");
    assert_eq!(form[0].0, "signed_request");
    form[0].1.clone()
}

#[tokio::test]
async fn deauthorize_posts_a_signed_request_and_tokens_then_fail_458() {
    let t = TestSandbox::start().await;
    let rx = Receiver::start().await;
    let app = t
        .app(AppSpec {
            deauthorize_url: Some(format!("{}/meta/deauthorize", rx.base)),
            ..spec()
        })
        .await;
    let other = t.app(spec()).await;
    t.user("acme_shop").await;
    let code = t.code_for(&app, "acme_shop", ALL_SCOPES).await;
    let scoped = t.exchange(&app, &code).await.body["user_id"]
        .as_u64()
        .unwrap();
    let long = t.long_token(&app, "acme_shop", ALL_SCOPES).await;
    let other_token = t.long_token(&other, "acme_shop", ALL_SCOPES).await;

    let ev = t
        .control
        .user_event(
            "acme_shop",
            &UserEvent::deauthorize(app["client_id"].as_str().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(ev["deliveries"][0]["status"], 200, "{ev}");
    assert!(ev["invalidated_tokens"].as_u64().unwrap() >= 2);
    let got = rx.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/meta/deauthorize");
    assert_eq!(
        got[0].headers["content-type"].to_str().unwrap(),
        "application/x-www-form-urlencoded"
    );
    let payload = verify_signed_request(
        &signed_request_of(&got[0]),
        app["client_secret"].as_str().unwrap(),
    );
    assert_same_shape(
        &fixture("signed_request_deauthorize_payload.json"),
        &payload,
    );
    assert_eq!(payload["user_id"], json!(scoped.to_string()));

    let r = t.graph("/me", &long, &[]).await;
    assert_graph_error(&r, 190, Some(458));
    assert_eq!(
        r.body["error"]["message"],
        json!(format!(
            "Error validating access token: The user has not authorized application {}.",
            app["client_id"].as_str().unwrap()
        ))
    );
    // Refresh is refused the same way; the other app is untouched.
    t.advance(86_400).await;
    let refresh = t
        .get_q(
            "/refresh_access_token",
            &[("grant_type", "ig_refresh_token"), ("access_token", &long)],
        )
        .await;
    assert_graph_error(&refresh, 190, Some(458));
    assert_eq!(
        t.graph("/me", &other_token, &[]).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn data_deletion_callback_gets_the_confirmation_back() {
    let t = TestSandbox::start().await;
    let rx = Receiver::start().await;
    let app = t
        .app(AppSpec {
            data_deletion_url: Some(format!("{}/meta/data-deletion", rx.base)),
            ..spec()
        })
        .await;
    t.user("acme_shop").await;
    let long = t.long_token(&app, "acme_shop", ALL_SCOPES).await;
    let ev = t
        .control
        .user_event("acme_shop", &UserEvent::DataDeletion { client_id: None })
        .await
        .unwrap();
    let d = &ev["deliveries"][0];
    assert_eq!(d["status"], 200);
    assert_eq!(d["response"]["confirmation_code"], "abc123");
    let got = rx.take();
    let payload = verify_signed_request(
        &signed_request_of(&got[0]),
        app["client_secret"].as_str().unwrap(),
    );
    assert_same_shape(
        &fixture("signed_request_data_deletion_payload.json"),
        &payload,
    );
    assert_eq!(
        payload["expires"].as_i64().unwrap() - payload["issued_at"].as_i64().unwrap(),
        3600
    );
    assert_graph_error(&t.graph("/me", &long, &[]).await, 190, Some(458));
}

#[tokio::test]
async fn password_change_invalidates_every_token_with_460() {
    let t = TestSandbox::start().await;
    let a = t.app(spec()).await;
    let b = t.app(spec()).await;
    t.user("acme_shop").await;
    let ta = t.long_token(&a, "acme_shop", ALL_SCOPES).await;
    let tb = t.long_token(&b, "acme_shop", ALL_SCOPES).await;
    t.control
        .user_event("acme_shop", &UserEvent::PasswordChanged)
        .await
        .unwrap();
    for tok in [&ta, &tb] {
        let r = t.graph("/me", tok, &[]).await;
        assert_graph_error(&r, 190, Some(460));
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("changed their password")
        );
    }
    // Logging in again gives working tokens.
    let fresh = t.long_token(&a, "acme_shop", ALL_SCOPES).await;
    assert_eq!(t.graph("/me", &fresh, &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn events_still_sign_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await;
    let app = {
        let t = TestSandbox::start_in(dir.path().to_owned()).await;
        let app = t
            .app(AppSpec {
                deauthorize_url: Some(format!("{}/meta/deauthorize", rx.base)),
                ..spec()
            })
            .await;
        t.user("acme_shop").await;
        t.long_token(&app, "acme_shop", ALL_SCOPES).await;
        app
    };
    let t = TestSandbox::start_in(dir.path().to_owned()).await;
    let ev = t
        .control
        .user_event("acme_shop", &UserEvent::Deauthorize { client_id: None })
        .await
        .unwrap();
    assert_eq!(ev["deliveries"][0]["status"], 200, "{ev}");
    let got = rx.take();
    verify_signed_request(
        &signed_request_of(&got[0]),
        app["client_secret"].as_str().unwrap(),
    );
}

#[tokio::test]
async fn bad_events_are_refused() {
    let t = TestSandbox::start().await;
    t.user("acme_shop").await;
    let r = t
        .control
        .user_event("nobody", &UserEvent::Deauthorize { client_id: None })
        .await
        .unwrap_err();
    assert_eq!(r.status(), Some(StatusCode::NOT_FOUND));
    // Raw: an event kind the typed client cannot name.
    let r = t
        .post_json(
            "/_sandbox/users/acme_shop/events",
            &json!({ "kind": "explode" }),
        )
        .await;
    assert!(r.status.is_client_error());
    let r = t
        .control
        .user_event(
            "acme_shop",
            &UserEvent::Comment {
                media_id: None,
                parent_id: None,
                text: None,
                from_username: None,
            },
        )
        .await
        .unwrap_err();
    let ControlClientError::Status { status, body, .. } = r else {
        panic!("{r}");
    };
    assert_eq!(status, StatusCode::BAD_REQUEST, "no media to comment on");
    assert!(body["error"]["message"].is_string(), "{body}");
}
