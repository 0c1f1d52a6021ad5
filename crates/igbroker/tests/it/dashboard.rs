//! The dashboard's security, through real HTTP on loopback against the real sandbox,
//! on SQLite and PostgreSQL: who may sign in, the session cookie, CSRF, the
//! Content-Security-Policy, and that no page ever shows a token or a secret.

use crate::common::{Backend, TestEnv, USER, s};
use igbroker_core::secrets::sha256_hex;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A browser without JavaScript: keeps the cookies it is given, follows no redirect.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn new(env: &TestEnv) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: env.broker.clone(),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all("set-cookie") {
            let text = v.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (k, val) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !val.is_empty() {
                self.cookies.push((k.to_string(), val.to_string()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        let (st, h) = (resp.status(), resp.headers().clone());
        (st, h, resp.text().await.unwrap())
    }

    async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        let (st, h) = (resp.status(), resp.headers().clone());
        (st, h, resp.text().await.unwrap())
    }

    /// Fills the sign-in form as a person would: its CSRF token comes with the page.
    async fn sign_in(
        &mut self,
        field: &str,
        secret: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let (st, _, html) = self.get("/ui/sign-in").await;
        assert_eq!(st, StatusCode::OK);
        let csrf = csrf_of(&html);
        self.post("/ui/sign-in", &[("csrf", &csrf), (field, secret)])
            .await
    }
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_string()
}

fn location(h: &reqwest::header::HeaderMap) -> &str {
    h.get("location").map(|v| v.to_str().unwrap()).unwrap_or("")
}

async fn api_key(env: &TestEnv, scopes: &[&str], app_ids: &[&str]) -> String {
    let (st, v) = env
        .api(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "t", "scopes": scopes, "app_ids": app_ids})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    s(&v["key"])
}

async fn only_admin_keys_sign_in(env: TestEnv) {
    // Anonymous: every page sends to the sign-in form.
    let mut b = Browser::new(&env);
    for path in ["/ui", "/ui/accounts", "/ui/apps", "/ui/connect"] {
        let (st, h, _) = b.get(path).await;
        assert_eq!(st, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&h), "/ui/sign-in", "{path}");
    }

    let reader = api_key(&env, &["accounts:read", "tokens:read"], &[]).await;
    let limited_admin = api_key(&env, &["admin"], &[&env.app_id]).await;
    for (what, key) in [
        ("a key without admin", reader.as_str()),
        ("an admin key limited to one app", limited_admin.as_str()),
        ("an unknown key", "igb_not_a_key"),
        ("a password while none is configured", ""),
    ] {
        let mut b = Browser::new(&env);
        let (st, h, html) = if key.is_empty() {
            b.sign_in("password", "guess").await
        } else {
            b.sign_in("api_key", key).await
        };
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{what}: {html}");
        assert!(
            h.get("set-cookie").is_none() || !b.cookie_header().contains("igb_session"),
            "{what}"
        );
        assert!(
            html.contains("signin-error"),
            "{what}: the refusal is explained"
        );
        let (st, _, _) = b.get("/ui").await;
        assert_eq!(st, StatusCode::SEE_OTHER, "{what} opened no session");
    }

    // The sign-in form refuses a post without its own CSRF token (login CSRF).
    let mut b = Browser::new(&env);
    let (st, _, _) = b.post("/ui/sign-in", &[("api_key", &env.admin_key)]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(!b.cookie_header().contains("igb_session"));

    // An admin key signs in: the cookie is HttpOnly, SameSite=Strict, not Secure over http.
    // (A second one: the broker keeps its last unrestricted admin key from being revoked.)
    let second_admin = api_key(&env, &["admin"], &[]).await;
    let mut b = Browser::new(&env);
    let (st, h, _) = b.sign_in("api_key", &second_admin).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(location(&h), "/ui");
    let set = h
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("igb_session="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{flag} missing: {set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    let (st, _, html) = b.get("/ui").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("<h1>Overview</h1>"));

    // Only the cookie's hash is stored.
    let secret = b
        .cookies
        .iter()
        .find(|(k, _)| k == "igb_session")
        .map(|(_, v)| v.clone())
        .unwrap();
    let hashes: Vec<String> =
        sqlx::query_scalar("SELECT id_hash FROM ui_sessions WHERE kind = 'session'")
            .fetch_all(env.state.store().pool())
            .await
            .unwrap();
    assert_eq!(hashes, vec![sha256_hex(&secret)]);

    // Signed in as the key's actor, audited; revoking the key ends the session.
    let (_, audit) = env.get("/v1/audit?action=ui.signed_in").await;
    assert!(
        s(&audit["data"][0]["actor"]).starts_with("ui:api_key:key_"),
        "{audit}"
    );
    let (_, keys) = env.get("/v1/api-keys").await;
    let admin_id = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| audit["data"][0]["actor"] == format!("ui:api_key:{}", s(&k["id"])))
        .map(|k| s(&k["id"]))
        .unwrap();
    let (st, _) = env
        .api(Method::DELETE, &format!("/v1/api-keys/{admin_id}"), None)
        .await;
    assert!(st.is_success(), "{st}");
    let (st, h, _) = b.get("/ui").await;
    assert_eq!((st, location(&h)), (StatusCode::SEE_OTHER, "/ui/sign-in"));
}
both_backends!(only_admin_keys_sign_in_, only_admin_keys_sign_in);

async fn every_form_needs_its_csrf_token(env: TestEnv) {
    let acc = env.connect(USER, "user-1").await;
    let mut b = Browser::new(&env);
    b.sign_in("api_key", &env.admin_key).await;
    let (_, _, page) = b.get(&format!("/ui/accounts/{acc}/revoke")).await;
    let csrf = csrf_of(&page);

    let mut other = Browser::new(&env);
    other.sign_in("api_key", &env.admin_key).await;
    let (_, _, other_page) = other.get("/ui").await;
    let foreign = csrf_of(&other_page);
    assert_ne!(csrf, foreign, "each session has its own token");

    let revoke = format!("/ui/accounts/{acc}/revoke");
    for (what, form) in [
        ("no token", vec![("confirm", "yes")]),
        ("an empty token", vec![("csrf", ""), ("confirm", "yes")]),
        (
            "another session's token",
            vec![("csrf", foreign.as_str()), ("confirm", "yes")],
        ),
    ] {
        let (st, _, html) = b.post(&revoke, &form).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{what}");
        assert!(html.contains("CSRF"), "{what}: {html}");
    }
    for path in [
        format!("/ui/accounts/{acc}/refresh"),
        format!("/ui/accounts/{acc}/reconnect"),
        "/ui/connect".to_string(),
        "/ui/sign-out".to_string(),
    ] {
        let (st, _, _) = b
            .post(
                &path,
                &[("csrf", "0".repeat(64).as_str()), ("app_id", &env.app_id)],
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{path}");
    }
    // A form without the confirmation changes nothing either.
    let (st, _, _) = b.post(&revoke, &[("csrf", csrf.as_str())]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(env.account(&acc).await["status"], "active");

    // With its token and the confirmation, it revokes, audited with the signed-in actor.
    let (st, h, _) = b
        .post(&revoke, &[("csrf", csrf.as_str()), ("confirm", "yes")])
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(location(&h), format!("/ui/accounts/{acc}?done=revoked"));
    assert_eq!(env.account(&acc).await["status"], "revoked");
    let (_, audit) = env
        .get(&format!(
            "/v1/audit?account_id={acc}&action=account.revoked"
        ))
        .await;
    assert!(
        s(&audit["data"][0]["actor"]).starts_with("ui:api_key:"),
        "{audit}"
    );

    // Signing out ends the session in the database, not only in this browser.
    let kept = b.cookie_header();
    let (_, _, home) = b.get("/ui").await;
    let (st, _, _) = b
        .post("/ui/sign-out", &[("csrf", csrf_of(&home).as_str())])
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let replay = b
        .http
        .get(format!("{}/ui", env.broker))
        .header("cookie", kept)
        .send()
        .await
        .unwrap();
    assert_eq!(
        replay.status(),
        StatusCode::SEE_OTHER,
        "a stolen cookie dies with sign-out"
    );
}
both_backends!(
    every_form_needs_its_csrf_token_,
    every_form_needs_its_csrf_token
);

async fn pages_carry_a_strict_csp_and_never_a_token(env: TestEnv) {
    let acc = env.connect(USER, "user-1").await;
    let (_, tok) = env.get(&format!("/v1/accounts/{acc}/token")).await;
    let token = s(&tok["access_token"]);
    assert!(token.len() > 20);
    let mut b = Browser::new(&env);
    b.sign_in("api_key", &env.admin_key).await;
    let (_, _, page) = b.get(&format!("/ui/accounts/{acc}")).await;
    let (st, h, _) = b
        .post(
            &format!("/ui/accounts/{acc}/reconnect"),
            &[("csrf", csrf_of(&page).as_str())],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let reconnect_page = location(&h).to_string();
    let (_, _, connect_page) = b.get("/ui/connect").await;
    let (_, h, _) = b
        .post(
            "/ui/connect",
            &[
                ("csrf", csrf_of(&connect_page).as_str()),
                ("app_id", env.app_id.as_str()),
                ("end_user", "u-2"),
            ],
        )
        .await;
    let session_page = location(&h).to_string();
    assert!(
        session_page.starts_with("/ui/connect/cs_"),
        "{session_page}"
    );

    let pages = [
        "/ui/sign-in".to_string(),
        "/ui".into(),
        "/ui/accounts".into(),
        "/ui/accounts?q=shop&status=active".into(),
        format!("/ui/accounts/{acc}"),
        reconnect_page,
        format!("/ui/accounts/{acc}/revoke"),
        "/ui/apps".into(),
        format!("/ui/apps/{}", env.app_id),
        "/ui/connect".into(),
        session_page,
        "/ui/accounts/acc_does_not_exist".into(),
    ];
    let secrets = [token.as_str(), env.admin_key.as_str()];
    for path in &pages {
        let (st, h, html) = b.get(path).await;
        assert!(
            st.is_success() || st == StatusCode::NOT_FOUND,
            "{path}: {st}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("script-src"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(!html.contains("<script"), "{path}: no script at all");
        for secret in secrets {
            assert!(!html.contains(secret), "{path} shows a secret");
        }
        if html.contains("<form method=\"post\"") {
            assert!(
                html.contains("name=\"csrf\""),
                "{path}: a form without CSRF token"
            );
        }
    }

    // The account page shows the account, its timeline and the re-connect link.
    let (_, _, html) = b.get(&format!("/ui/accounts/{acc}")).await;
    assert!(html.contains(&format!("@{USER}")));
    assert!(html.contains("<svg id=\"timeline\""));

    // The page after Instagram's redirect names the app and the account; same headers.
    let created = env
        .session(json!({"app_id": env.app_id, "end_user": "u-3"}))
        .await;
    let cb = env
        .consent(&s(&created["connect_url"]), USER, "allow")
        .await;
    let resp = env.callback(&cb).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("Your Instagram account is connected"),
        "{html}"
    );
    assert!(html.contains(&format!("@{USER}")));
    assert!(
        !html.contains("Back to the dashboard"),
        "only a signed-in admin gets the dashboard link"
    );
    assert!(!html.contains(&token));
    let denied = env.session(json!({"app_id": env.app_id})).await;
    let cb = env.consent(&s(&denied["connect_url"]), USER, "deny").await;
    let html = env.callback(&cb).await.text().await.unwrap();
    assert!(html.contains("You did not allow access"), "{html}");
}
both_backends!(
    pages_carry_a_strict_csp_and_never_a_token_,
    pages_carry_a_strict_csp_and_never_a_token
);

async fn accounts_page_searches_filters_and_pages(env: TestEnv) {
    env.seed(60, 0).await;
    let mut b = Browser::new(&env);
    b.sign_in("api_key", &env.admin_key).await;
    let rows = |html: &str| html.matches("<tr data-account=").count();
    let (st, _, first) = b.get("/ui/accounts").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(rows(&first), 50);
    let start = first
        .find("rel=\"next\"")
        .map(|_| first.find("href=\"/ui/accounts?cursor=").unwrap() + 6)
        .unwrap();
    let next = first[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let (_, _, second) = b.get(&next).await;
    assert_eq!(rows(&second), 10);
    assert!(!second.contains("rel=\"next\""));
    let (_, _, none) = b.get("/ui/accounts?status=revoked").await;
    assert_eq!(rows(&none), 0);
    assert!(none.contains("id=\"no-accounts\""));
    let (_, _, found) = b
        .get("/ui/accounts?q=bulk_&app=".to_string().as_str())
        .await;
    assert_eq!(rows(&found), 50);
    let (_, _, nobody) = b.get("/ui/accounts?q=nobody_here").await;
    assert_eq!(rows(&nobody), 0);
    let (st, _, bad) = b.get("/ui/accounts?status=gone").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(bad.contains("status `gone` is not one of"), "{bad}");
}
both_backends!(
    accounts_page_searches_filters_and_pages_,
    accounts_page_searches_filters_and_pages
);

async fn secure_cookie_over_https(env: TestEnv) {
    let mut b = Browser::new(&env);
    let (_, h, _) = b.get("/ui/sign-in").await;
    let pre = h["set-cookie"].to_str().unwrap();
    assert!(
        pre.starts_with("__Host-igb_signin=") && pre.contains("; Secure"),
        "{pre}"
    );
    let (st, h, _) = b.sign_in("api_key", &env.admin_key).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let set = h["set-cookie"].to_str().unwrap();
    assert!(set.starts_with("__Host-igb_session="), "{set}");
    for flag in ["; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/"] {
        assert!(set.contains(flag), "{flag}: {set}");
    }
}
both_backends_with!(secure_cookie_over_https_, secure_cookie_over_https, |c| {
    c.public_url = "https://broker.example".into();
});

fn password_hash(pw: &str) -> String {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(pw.as_bytes())
        .unwrap()
        .to_string()
}

async fn the_admin_password_signs_in(env: TestEnv) {
    let mut b = Browser::new(&env);
    let (st, _, html) = b.sign_in("password", "wrong horse").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{html}");
    let (st, _, _) = b.sign_in("password", "correct horse").await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, _, html) = b.get("/ui").await;
    assert!(html.contains("ui:admin"));
}
both_backends_with!(
    the_admin_password_signs_in_,
    the_admin_password_signs_in,
    |c| {
        c.ui.admin_password_hash = password_hash("correct horse");
    }
);

async fn a_sign_in_link_works_once(env: TestEnv) {
    let link = igbroker::service::sign_in::create_link(&env.state, "ui:test")
        .await
        .unwrap();
    let path = link.strip_prefix(&env.broker).unwrap().to_string();
    let mut b = Browser::new(&env);
    let (st, h, _) = b.get(&format!("{path}?next=//evil.example/ui")).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(
        location(&h),
        "/ui",
        "a sign-in never leads off the dashboard"
    );
    let (st, _, _) = b.get("/ui").await;
    assert_eq!(st, StatusCode::OK);
    let mut again = Browser::new(&env);
    let (st, _, html) = again.get(&path).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(html.contains("already used or has expired"));
    let stored: Vec<String> = sqlx::query_scalar("SELECT id_hash FROM ui_sessions")
        .fetch_all(env.state.store().pool())
        .await
        .unwrap();
    let secret = path.rsplit('/').next().unwrap();
    assert!(
        stored.iter().all(|h| h != secret),
        "the link is stored hashed only"
    );
}
both_backends!(a_sign_in_link_works_once_, a_sign_in_link_works_once);

async fn hostile_input_answers_as_a_page(env: TestEnv) {
    let mut b = Browser::new(&env);
    b.sign_in("api_key", &env.admin_key).await;
    // A body that is not a form, and a cursor that is not one, are refused as pages that
    // say what was wrong, with the page policy; nothing changes.
    let resp = b
        .http
        .post(format!("{}/ui/connect", env.broker))
        .header("cookie", b.cookie_header())
        .header("content-type", "application/json")
        .body("{\"app_id\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("the form sent is not one this page takes"),
        "{html}"
    );
    let (_, sessions) = env.get("/v1/audit?action=connect_session.created").await;
    assert_eq!(sessions["data"].as_array().unwrap().len(), 0);
    let (st, _, html) = b.get("/ui/accounts?cursor=%3Cscript%3E").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{html}");
    assert!(!html.contains("<script>"), "input is escaped");
    // Another id, or one of another kind, is a plain 404 page.
    for path in [
        "/ui/apps/app_0000",
        "/ui/connect/cs_nope",
        "/ui/accounts/acc_x/revoke",
    ] {
        let (st, _, html) = b.get(path).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {html}");
    }
}
both_backends!(
    hostile_input_answers_as_a_page_,
    hostile_input_answers_as_a_page
);

async fn wrong_sign_ins_slow_an_address_down(env: TestEnv) {
    // Wrong passwords and used-up links count against the address as wrong API keys do
    // (burst 3 here); then even the right key waits.
    let mut b = Browser::new(&env);
    for _ in 0..2 {
        let (st, _, _) = b.sign_in("password", "guess").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let (st, _, _) = b.get("/ui/sign-in/link/not-a-link").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, h, html) = b.sign_in("api_key", &env.admin_key).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{html}");
    assert!(h.get("retry-after").is_some());
    assert!(html.contains("too many failed sign-ins"), "{html}");
    assert!(!b.cookie_header().contains("igb_session"));
    // One allowance per address: the API waits for it as well.
    let (st, _) = env.get("/v1/apps").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
}
both_backends_with!(
    wrong_sign_ins_slow_an_address_down_,
    wrong_sign_ins_slow_an_address_down,
    |c| {
        c.ui.admin_password_hash = password_hash("correct horse");
        c.limits.failed_auth_burst = 3;
        c.limits.failed_auth_per_second = 0.01;
    }
);

/// The app page shows the doctor's checks without probing Instagram on every view: the
/// report is kept while the app is unchanged, and made again after a change or five minutes.
async fn app_page_reuses_the_doctor_report(env: TestEnv) {
    let mut b = Browser::new(&env);
    b.sign_in("api_key", &env.admin_key).await;
    let page = format!("/ui/apps/{}", env.app_id);
    let probes = || async { env.sb.calls_to("/oauth/access_token").await.unwrap().len() };
    let before = probes().await;
    let (st, _, html) = b.get(&page).await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("id=\"doctor\""), "{html}");
    let first = probes().await;
    assert_eq!(first, before + 1, "the first view runs the checks");
    for _ in 0..3 {
        let (st, _, again) = b.get(&page).await;
        assert_eq!(st, StatusCode::OK);
        assert!(again.contains("id=\"doctor\""));
    }
    assert_eq!(
        probes().await,
        first,
        "views of an unchanged app reuse the report"
    );

    let (st, v) = env
        .api(
            Method::PATCH,
            &format!("/v1/apps/{}", env.app_id),
            Some(json!({"name": "Renamed app"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    b.get(&page).await;
    let changed = probes().await;
    assert_eq!(changed, first + 1, "a changed app is checked again");
    b.get(&page).await;
    assert_eq!(probes().await, changed);

    env.advance(igbroker::service::doctor::REPORT_TTL_SECS);
    b.get(&page).await;
    assert_eq!(probes().await, changed + 1, "an old report is made again");
}
both_backends!(
    app_page_reuses_the_doctor_report_,
    app_page_reuses_the_doctor_report
);
