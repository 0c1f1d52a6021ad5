//! Checklist rows 1–4: authorize, code exchange, long-lived exchange, refresh.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

fn authorize_query<'a>(
    client_id: &'a str,
    redirect: &'a str,
    scope: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("response_type", "code"),
        ("scope", scope),
        ("state", "k9s8d7"),
        // Hints real embed URLs carry; the sandbox must accept and ignore them.
        ("force_reauth", "true"),
        ("force_authentication", "1"),
        ("enable_fb_login", "0"),
    ]
}

#[tokio::test]
async fn authorize_page_lists_users_scopes_and_buttons() {
    let t = TestSandbox::start().await;
    let app = t
        .app(AppSpec {
            name: Some("Acme Scheduler".into()),
            ..spec()
        })
        .await;
    t.user("acme_shop").await;
    t.user("other_brand").await;
    let cid = app["client_id"].as_str().unwrap();
    for path in ["/oauth/authorize", "//oauth/authorize/"] {
        let r = t
            .get_q(path, &authorize_query(cid, REDIRECT, ALL_SCOPES))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        for needle in [
            "Acme Scheduler",
            "@acme_shop",
            "@other_brand",
            "method=\"post\" action=\"/oauth/authorize\"",
            "name=\"scope_instagram_business_content_publish\"",
            "value=\"allow\"",
            "value=\"deny\"",
            "value=\"k9s8d7\"",
        ] {
            assert!(r.text.contains(needle), "{needle} missing from the page");
        }
    }
}

#[tokio::test]
async fn authorize_page_refuses_unknown_client_redirect_and_scopes() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    let cid = app["client_id"].as_str().unwrap();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            authorize_query("999", REDIRECT, ALL_SCOPES),
            "Invalid platform app",
        ),
        // Exact match only: a trailing slash is another URI.
        (
            authorize_query(cid, "https://app.example.com/ig/callback/", ALL_SCOPES),
            "Invalid redirect_uri",
        ),
        (
            authorize_query(
                cid,
                REDIRECT,
                "instagram_business_basic,business_content_publish",
            ),
            "Invalid Scopes: business_content_publish",
        ),
        (
            authorize_query(cid, REDIRECT, "instagram_business_content_publish"),
            "instagram_business_basic is required",
        ),
    ];
    for (q, needle) in cases {
        let r = t.get_q("/oauth/authorize", &q).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text.contains(needle), "{needle} not in {}", r.text);
        assert!(r.headers.get("location").is_none());
    }
    let mut q = authorize_query(cid, REDIRECT, ALL_SCOPES);
    q.retain(|(k, _)| *k != "response_type");
    let r = t.get_q("/oauth/authorize", &q).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn consent_form_allow_redirects_with_code_and_unticked_scopes_are_not_granted() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    t.user("acme_shop").await;
    let cid = app["client_id"].as_str().unwrap();
    let r = t
        .post_form(
            "/oauth/authorize",
            &[
                ("client_id", cid),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
                ("scope", ALL_SCOPES),
                ("state", "k9s8d7"),
                ("username", "acme_shop"),
                ("scope_instagram_business_content_publish", "on"),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let location = r.headers["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{REDIRECT}?code=AQ")),
        "{location}"
    );
    assert!(location.ends_with("&state=k9s8d7#_"), "{location}");
    let code = code_from_location(&location);
    let ex = t.exchange(&app, &code).await;
    assert_eq!(ex.status, StatusCode::OK, "{}", ex.text);
    assert_eq!(
        ex.body["permissions"],
        json!([
            "instagram_business_basic",
            "instagram_business_content_publish"
        ])
    );
}

#[tokio::test]
async fn consent_form_deny_redirects_with_the_three_denial_parameters() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    t.user("acme_shop").await;
    let r = t
        .post_form(
            "/oauth/authorize",
            &[
                ("client_id", app["client_id"].as_str().unwrap()),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
                ("scope", ALL_SCOPES),
                ("state", "k9s8d7"),
                ("username", "acme_shop"),
                ("decision", "deny"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!(
            "{REDIRECT}?error=access_denied&error_reason=user_denied&error_description=The+user+denied+your+request&state=k9s8d7"
        )
    );
}

#[tokio::test]
async fn consent_form_can_log_in_as_a_new_user() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    let r = t
        .post_form(
            "/oauth/authorize",
            &[
                ("client_id", app["client_id"].as_str().unwrap()),
                ("redirect_uri", REDIRECT),
                ("scope", "instagram_business_basic"),
                ("new_username", "fresh_face"),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    let users = t.control.users().await.unwrap();
    assert_eq!(users[0].username, "fresh_face");
}

#[tokio::test]
async fn headless_authorize_allow_and_deny() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    t.user("acme_shop").await;
    let location = t.consent(&app, "acme_shop", ALL_SCOPES, "s 1/2").await;
    let q = query_of(&location);
    assert_eq!(q[0].0, "code");
    assert_eq!(q[1], ("state".to_owned(), "s 1/2".to_owned()));
    // Raw: `scope` as a JSON list, a form the typed client never sends.
    let deny = t
        .post_json(
            "/_sandbox/authorize",
            &json!({
                "client_id": app["client_id"], "redirect_uri": REDIRECT,
                "scope": ["instagram_business_basic"], "state": "x", "decision": "deny",
            }),
        )
        .await;
    let q = query_of(deny.body["location"].as_str().unwrap());
    assert_eq!(
        q,
        vec![
            ("error".to_owned(), "access_denied".to_owned()),
            ("error_reason".to_owned(), "user_denied".to_owned()),
            (
                "error_description".to_owned(),
                "The user denied your request".to_owned()
            ),
            ("state".to_owned(), "x".to_owned()),
        ]
    );
    let unknown = t
        .control
        .authorize(&Consent {
            client_id: app["client_id"].as_str().unwrap().to_owned(),
            redirect_uri: REDIRECT.into(),
            scope: "instagram_business_basic".into(),
            state: None,
            username: Some("nobody".into()),
            decision: "allow".into(),
            granted_scopes: None,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), Some(StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn code_exchange_is_flat_with_a_lossless_numeric_user_id() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    t.user("acme_shop").await;
    let code = t
        .code_for(
            &app,
            "acme_shop",
            "instagram_business_basic,instagram_business_content_publish",
        )
        .await;
    let r = t.exchange(&app, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_same_shape(&fixture("code_exchange_flat.json"), &r.body);
    assert!(r.body["access_token"].as_str().unwrap().starts_with("IGAA"));
    let uid = r.body["user_id"].as_u64().expect("user_id is an integer");
    assert_eq!(uid.to_string().len(), 17);
    assert!(r.text.contains(&format!("\"user_id\":{uid}")), "{}", r.text);
    // Above 2^53 and odd: a float-based decoder cannot hold it.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let lossy = (uid as f64) as u64;
    assert_ne!(lossy, uid);
    let user = t.control.user("acme_shop").await.unwrap();
    assert_eq!(
        user.scoped_ids[app["client_id"].as_str().unwrap()],
        uid.to_string()
    );
    // No expires_in for the short-lived token, as documented.
    assert!(r.body.get("expires_in").is_none());
}

#[tokio::test]
async fn code_exchange_accepts_multipart_and_the_documented_data_shape() {
    let t = TestSandbox::start().await;
    let app = t
        .app(AppSpec {
            exchange_shape: Some(ExchangeShape::Data),
            ..spec()
        })
        .await;
    t.user("acme_shop").await;
    let code = t.code_for(&app, "acme_shop", ALL_SCOPES).await;
    let r = t
        .post_multipart(
            "/oauth/access_token",
            &[
                ("client_id", app["client_id"].as_str().unwrap()),
                ("client_secret", app["client_secret"].as_str().unwrap()),
                ("grant_type", "authorization_code"),
                ("redirect_uri", REDIRECT),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_same_shape(&fixture("code_exchange_data.json"), &r.body);
    let perms = r.body["data"][0]["permissions"].as_str().unwrap();
    assert!(perms.starts_with("instagram_business_basic,"));
}

#[tokio::test]
async fn code_is_single_use_bound_and_expires_after_an_hour() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    let other = t.app(spec()).await;
    t.user("acme_shop").await;

    let code = t.code_for(&app, "acme_shop", ALL_SCOPES).await;
    // The `#_` suffix is not part of the code.
    let r = t.exchange(&app, &format!("{code}#_")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body, fixture("code_exchange_error.json"));
    // Another app cannot redeem it.
    let r = t.exchange(&other, &code).await;
    assert_eq!(
        r.body["error_message"],
        "Matching code was not found or was already used."
    );
    // Another redirect URI cannot either.
    let r = t
        .post_form(
            "/oauth/access_token",
            &[
                ("client_id", app["client_id"].as_str().unwrap()),
                ("client_secret", app["client_secret"].as_str().unwrap()),
                ("grant_type", "authorization_code"),
                ("redirect_uri", "https://app.example.com/ig/callback/"),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["error_message"],
        fixture("oauth_messages.json")["exchange_redirect_mismatch"]
    );

    assert_eq!(t.exchange(&app, &code).await.status, StatusCode::OK);
    let again = t.exchange(&app, &code).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_same_shape(&fixture("code_exchange_error.json"), &again.body);
    assert_eq!(
        again.body["error_message"],
        fixture("oauth_messages.json")["exchange_code_used"]
    );

    let late = t.code_for(&app, "acme_shop", ALL_SCOPES).await;
    t.advance(3599).await;
    let fresh = t.code_for(&app, "acme_shop", ALL_SCOPES).await;
    t.advance(2).await;
    assert_eq!(
        t.exchange(&app, &late).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(t.exchange(&app, &fresh).await.status, StatusCode::OK);
}

#[tokio::test]
async fn code_exchange_flat_errors() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    t.user("acme_shop").await;
    let code = t.code_for(&app, "acme_shop", ALL_SCOPES).await;
    let cid = app["client_id"].as_str().unwrap();
    let secret = app["client_secret"].as_str().unwrap();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("client_secret", secret),
                ("grant_type", "authorization_code"),
            ],
            "Missing required field client_id",
        ),
        (
            vec![
                ("client_id", "1234"),
                ("client_secret", secret),
                ("grant_type", "authorization_code"),
                ("redirect_uri", REDIRECT),
                ("code", &code),
            ],
            "Invalid platform app",
        ),
        (
            vec![
                ("client_id", cid),
                ("client_secret", "wrong"),
                ("grant_type", "authorization_code"),
                ("redirect_uri", REDIRECT),
                ("code", &code),
            ],
            "Invalid Client Secret",
        ),
        (
            vec![
                ("client_id", cid),
                ("client_secret", secret),
                ("grant_type", "password"),
                ("redirect_uri", REDIRECT),
                ("code", &code),
            ],
            "Invalid grant_type",
        ),
    ];
    for (form, message) in cases {
        let r = t.post_form("/oauth/access_token", &form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_same_shape(&fixture("code_exchange_error.json"), &r.body);
        assert_eq!(r.body["error_message"], message);
        assert_eq!(r.body["code"], 400);
    }
    // The failures above did not burn the code.
    assert_eq!(t.exchange(&app, &code).await.status, StatusCode::OK);
    let get = t.get("/oauth/access_token").await;
    assert_eq!(get.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        get.body["error"]["message"],
        fixture("oauth_messages.json")["exchange_get"]
    );
}

#[tokio::test]
async fn long_lived_exchange() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    t.user("acme_shop").await;
    let short = t.short_token(&app, "acme_shop", ALL_SCOPES).await;
    let secret = app["client_secret"].as_str().unwrap();
    let r = t
        .get_q(
            "/access_token",
            &[
                ("grant_type", "ig_exchange_token"),
                ("client_secret", secret),
                ("access_token", &short),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_same_shape(&fixture("long_lived_token.json"), &r.body);
    assert_eq!(r.body["token_type"], "bearer");
    assert_eq!(r.body["expires_in"], 5_184_000);
    let long = r.body["access_token"].as_str().unwrap();
    assert!(long.starts_with("IGAA") && long != short);

    let wrong = t
        .get_q(
            "/access_token",
            &[
                ("grant_type", "ig_exchange_token"),
                ("client_secret", "nope"),
                ("access_token", &short),
            ],
        )
        .await;
    assert_graph_error(&wrong, 101, None);
    let missing = t
        .get_q(
            "/access_token",
            &[
                ("grant_type", "ig_exchange_token"),
                ("access_token", &short),
            ],
        )
        .await;
    assert_graph_error(&missing, 100, None);
    let long_again = t
        .get_q(
            "/access_token",
            &[
                ("grant_type", "ig_exchange_token"),
                ("client_secret", secret),
                ("access_token", long),
            ],
        )
        .await;
    assert_graph_error(&long_again, 100, None);

    // The short-lived token lives one hour; then it cannot be exchanged.
    t.advance(3600).await;
    let expired = t
        .get_q(
            "/access_token",
            &[
                ("grant_type", "ig_exchange_token"),
                ("client_secret", secret),
                ("access_token", &short),
            ],
        )
        .await;
    assert_graph_error(&expired, 190, Some(463));
}

#[tokio::test]
async fn token_ttl_secs_shortens_long_lived_tokens() {
    let t = TestSandbox::start().await;
    let app = t
        .app(AppSpec {
            token_ttl_secs: Some(172_800),
            ..spec()
        })
        .await;
    t.user("acme_shop").await;
    let short = t.short_token(&app, "acme_shop", ALL_SCOPES).await;
    let r = t
        .get_q(
            "/access_token",
            &[
                ("grant_type", "ig_exchange_token"),
                ("client_secret", app["client_secret"].as_str().unwrap()),
                ("access_token", &short),
            ],
        )
        .await;
    assert_eq!(r.body["expires_in"], 172_800);
}

async fn refresh(t: &TestSandbox, token: &str) -> Resp {
    t.get_q(
        "/refresh_access_token",
        &[("grant_type", "ig_refresh_token"), ("access_token", token)],
    )
    .await
}

#[tokio::test]
async fn refresh_same_string_after_24_hours_from_last_issue() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;

    let young = refresh(&t, &long).await;
    assert_eq!(young.status, StatusCode::BAD_REQUEST);
    assert_graph_error(&young, 100, None);
    assert_eq!(young.body["error"]["type"], "IGApiException");

    t.advance(86_400).await;
    let r = refresh(&t, &long).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_same_shape(&fixture("refresh_token.json"), &r.body);
    assert_eq!(r.body["access_token"], json!(long));
    assert_eq!(r.body["expires_in"], 5_184_000);

    // Age counts from the last refresh: refreshing again at once is refused.
    assert_eq!(refresh(&t, &long).await.status, StatusCode::BAD_REQUEST);
    // The new expiry is 60 days from the refresh: 59 days later the token still works.
    t.advance(59 * 86_400).await;
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);
    t.advance(86_400).await;
    let gone = refresh(&t, &long).await;
    assert_graph_error(&gone, 190, Some(463));
    let msg = gone.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Error validating access token: Session has expired on "),
        "{msg}"
    );
    assert!(msg.contains(". The current time is "), "{msg}");
}

#[tokio::test]
async fn refresh_new_mode_issues_a_new_string_and_keeps_the_old_one() {
    let t = TestSandbox::start().await;
    let app = t
        .app(AppSpec {
            refresh_mode: Some(RefreshMode::New),
            ..spec()
        })
        .await;
    t.user("acme_shop").await;
    let long = t.long_token(&app, "acme_shop", ALL_SCOPES).await;
    t.advance(86_400 * 2).await;
    let r = refresh(&t, &long).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let fresh = r.body["access_token"].as_str().unwrap();
    assert_ne!(fresh, long);
    assert_eq!(t.graph("/me", fresh, &[]).await.status, StatusCode::OK);
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);
    // The old string keeps its own expiry (60 days from issue), the new one its own.
    t.advance(58 * 86_400 + 1).await;
    assert_graph_error(&t.graph("/me", &long, &[]).await, 190, Some(463));
    assert_eq!(t.graph("/me", fresh, &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn refresh_young_noop_returns_the_same_token_and_expiry() {
    let t = TestSandbox::start().await;
    let app = t
        .app(AppSpec {
            young_refresh: Some(YoungRefresh::Noop),
            ..spec()
        })
        .await;
    t.user("acme_shop").await;
    let long = t.long_token(&app, "acme_shop", ALL_SCOPES).await;
    t.advance(3600).await;
    let r = refresh(&t, &long).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["access_token"], json!(long));
    assert_eq!(r.body["expires_in"], 5_184_000 - 3600);
}

#[tokio::test]
async fn refresh_is_get_only_and_needs_a_long_lived_token() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    t.user("acme_shop").await;
    let short = t.short_token(&app, "acme_shop", ALL_SCOPES).await;
    let post = t
        .post_form(
            "/refresh_access_token",
            &[("grant_type", "ig_refresh_token"), ("access_token", &short)],
        )
        .await;
    assert_eq!(post.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        post.body["error"]["message"],
        "Unsupported request - method type: post"
    );
    assert_same_shape(&fixture("graph_error_unsupported_get.json"), &post.body);
    let r = refresh(&t, &short).await;
    assert_graph_error(&r, 100, None);
    let bad_grant = t
        .get_q(
            "/refresh_access_token",
            &[
                ("grant_type", "ig_exchange_token"),
                ("access_token", &short),
            ],
        )
        .await;
    assert_graph_error(&bad_grant, 100, None);
    let unknown = refresh(&t, "IGAAnotatokenthesandboxissued").await;
    assert_graph_error(&unknown, 190, None);
}

#[tokio::test]
async fn token_endpoints_accept_a_version_prefix_and_stray_slashes() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    t.advance(86_400).await;
    let r = t
        .get_q(
            "/v24.0//refresh_access_token/",
            &[("grant_type", "ig_refresh_token"), ("access_token", &long)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let body: &Value = &r.body;
    assert_eq!(body["token_type"], "bearer");
}
