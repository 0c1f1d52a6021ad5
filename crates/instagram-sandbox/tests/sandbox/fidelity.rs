//! Behaviour corrected against public reports of the live platform: Standard Access
//! non-testers, Meta's error codes for unknown objects / aliases / paths, throttling code 32,
//! today's publishing rules, OAuth wording, and webhooks with Meta's verification handshake.
//! Expected texts come from `tests/fixtures/` (see its README).

use std::sync::{Arc, Mutex};

use axum::extract::{Query, Request, State};
use axum::http::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::common::*;

fn messages() -> Value {
    fixture("oauth_messages.json")
}

fn error_message(fixture_name: &str) -> String {
    fixture(fixture_name)["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The answer every Graph call gets for a non-tester of a Standard Access app.
fn assert_not_approved(r: &Resp) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_graph_error(r, 100, None);
    let expected = fixture("graph_error_not_approved_for_user.json");
    assert_eq!(r.body["error"]["message"], expected["error"]["message"]);
    assert_eq!(r.body["error"]["type"], expected["error"]["type"]);
}

#[tokio::test]
async fn standard_access_non_tester_logs_in_then_every_graph_call_fails() {
    let t = TestSandbox::start().await;
    let app = t.app(spec().standard_access(&["tester_one"])).await;
    t.user("tester_one").await;
    t.user_with(UserSpec::named("stranger").with_media(2)).await;

    // The consent page lets the stranger through, as Meta does.
    let page = t
        .post_form(
            "/oauth/authorize",
            &[
                ("client_id", app["client_id"].as_str().unwrap()),
                ("redirect_uri", REDIRECT),
                ("scope", ALL_SCOPES),
                ("username", "stranger"),
                ("decision", "allow"),
                ("scope_instagram_business_content_publish", "on"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FOUND, "{}", page.text);

    // The code exchange succeeds with every permission granted.
    let code = t.code_for(&app, "stranger", ALL_SCOPES).await;
    let ex = t.exchange(&app, &code).await;
    assert_eq!(ex.status, StatusCode::OK, "{}", ex.text);
    let perms: Vec<&str> = ex.body["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(perms, ALL_SCOPES.split(',').collect::<Vec<_>>());
    let short = ex.body["access_token"].as_str().unwrap().to_owned();

    // Then nothing on the Graph host works: the long-lived exchange, refresh, /me, edges.
    let long = t
        .get_q(
            "/access_token",
            &[
                ("grant_type", "ig_exchange_token"),
                ("client_secret", app["client_secret"].as_str().unwrap()),
                ("access_token", &short),
            ],
        )
        .await;
    assert_not_approved(&long);
    let refresh = t
        .get_q(
            "/refresh_access_token",
            &[("grant_type", "ig_refresh_token"), ("access_token", &short)],
        )
        .await;
    assert_not_approved(&refresh);
    assert_not_approved(&t.graph("/me", &short, &[("fields", "user_id")]).await);
    assert_not_approved(&t.graph("/v24.0/me/media", &short, &[]).await);

    // A tester of the same app is served.
    let tester = t.long_token(&app, "tester_one", ALL_SCOPES).await;
    assert_eq!(t.graph("/me", &tester, &[]).await.status, StatusCode::OK);

    // Adding the account as a tester fixes the same token at once.
    let cid = app["client_id"].as_str().unwrap();
    t.app(
        spec()
            .with_client_id(cid)
            .standard_access(&["tester_one", "stranger"]),
    )
    .await;
    assert_eq!(t.graph("/me", &short, &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_objects_aliases_and_paths_answer_with_metas_codes() {
    let t = TestSandbox::start().await;
    let (app, _user, long) = t.connected(1).await;
    let media_id = t.graph("/me/media", &long, &[]).await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Unknown numeric id: 100/33 with Meta's text.
    let unknown = "17841400000000099";
    let r = t.graph(&format!("/{unknown}"), &long, &[]).await;
    assert_graph_error(&r, 100, Some(33));
    assert_same_shape(&fixture("graph_error_unknown_object.json"), &r.body);
    assert_eq!(
        r.body["error"]["message"],
        error_message("graph_error_unknown_object.json")
    );

    // Another account's media looks exactly the same; a POST names its method.
    t.user_with(UserSpec::named("rival").with_media(1)).await;
    let rival = t.long_token(&app, "rival", ALL_SCOPES).await;
    let theirs = t.graph("/me/media", &rival, &[]).await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t.graph(&format!("/{theirs}"), &long, &[]).await;
    assert_eq!(
        r.body["error"]["message"],
        error_message("graph_error_unknown_object.json").replace(unknown, &theirs)
    );
    let r = t
        .graph_post(&format!("/{theirs}"), &long, &[("hide", "true")])
        .await;
    assert_graph_error(&r, 100, Some(33));
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unsupported post request. Object with ID"),
        "{}",
        r.text
    );

    // A name where an id belongs is an alias: 803, and only then.
    let r = t.graph("/acme_shop", &long, &[]).await;
    assert_graph_error(&r, 803, None);
    assert_eq!(
        r.body["error"]["message"],
        error_message("graph_error_unknown_alias.json")
    );

    // Unknown path components: 2500, for an unknown edge and for extra segments.
    let r = t
        .graph(&format!("/{media_id}/insights/impressions/day"), &long, &[])
        .await;
    assert_graph_error(&r, 2500, None);
    assert_eq!(
        r.body["error"]["message"],
        error_message("graph_error_unknown_path.json")
    );
    assert_eq!(r.body["error"]["type"], "IGApiException");
    let r = t.graph("/me/feed", &long, &[]).await;
    assert_graph_error(&r, 2500, None);
    assert_eq!(r.body["error"]["message"], "Unknown path components: /feed");
}

#[tokio::test]
async fn throttling_code_32_is_producible_apart_from_80002() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    t.control
        .add_fault(&FaultSpec::graph_error("/me", 32).times(1))
        .await
        .unwrap();
    let r = t.graph("/me", &long, &[]).await;
    assert_graph_error(&r, 32, None);
    let expected = fixture("graph_error_page_rate_limit.json");
    assert_eq!(r.body["error"]["message"], expected["error"]["message"]);
    assert_eq!(r.body["error"]["type"], expected["error"]["type"]);
    assert_eq!(r.body["error"]["is_transient"], true);
    assert_eq!(t.graph("/me", &long, &[]).await.status, StatusCode::OK);

    // An app can also be throttled with 32 when its budget runs out.
    let app = t
        .app(AppSpec {
            rate_limit_calls: Some(1),
            rate_limit_code: Some(32),
            ..spec()
        })
        .await;
    let tok = t.long_token(&app, "acme_shop", ALL_SCOPES).await;
    assert_eq!(t.graph("/me", &tok, &[]).await.status, StatusCode::OK);
    let r = t.graph("/me", &tok, &[]).await;
    assert_graph_error(&r, 32, None);
    assert_ne!(r.body["error"]["code"], 80002);
}

#[tokio::test]
async fn standalone_feed_video_is_refused_and_carousel_video_is_not() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    let r = t
        .graph_post(
            "/me/media",
            &long,
            &[
                ("media_type", "VIDEO"),
                ("video_url", "https://cdn.example.com/v.mp4"),
            ],
        )
        .await;
    assert_graph_error(&r, 100, None);
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("REELS") && msg.contains("carousel"), "{msg}");

    let item = t
        .graph_post(
            "/me/media",
            &long,
            &[
                ("media_type", "VIDEO"),
                ("video_url", "https://cdn.example.com/v.mp4"),
                ("is_carousel_item", "true"),
            ],
        )
        .await;
    assert_eq!(item.status, StatusCode::OK, "{}", item.text);
    let reel = t
        .graph_post(
            "/me/media",
            &long,
            &[
                ("media_type", "REELS"),
                ("video_url", "https://cdn.example.com/v.mp4"),
            ],
        )
        .await;
    assert_eq!(reel.status, StatusCode::OK, "{}", reel.text);
}

#[tokio::test]
async fn publishing_limit_answers_rate_limit_settings() {
    let t = TestSandbox::start().await;
    let (_app, _user, long) = t.connected(0).await;
    let r = t
        .graph(
            "/me/content_publishing_limit",
            &long,
            &[("fields", "quota_usage,rate_limit_settings")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let expected = fixture("content_publishing_limit_rate_limit_settings.json");
    assert_same_shape(&expected, &r.body);
    assert_eq!(
        r.body["data"][0]["rate_limit_settings"],
        expected["data"][0]["rate_limit_settings"]
    );
    assert_eq!(r.body["data"][0]["quota_usage"], 0);
    assert!(r.body["data"][0].get("config").is_none());
}

#[tokio::test]
async fn oauth_errors_use_metas_wording() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    t.user("acme_shop").await;
    let cid = app["client_id"].as_str().unwrap();
    let m = messages();

    let page = t
        .get_q(
            "/oauth/authorize",
            &[
                ("client_id", cid),
                ("redirect_uri", "https://evil.example.com/cb"),
                ("response_type", "code"),
                ("scope", "instagram_business_basic"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.text
            .contains(m["authorize_invalid_redirect_uri"].as_str().unwrap()),
        "{}",
        page.text
    );
    let page = t
        .get_q(
            "/oauth/authorize",
            &[
                ("client_id", "1234"),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
                ("scope", "instagram_business_basic"),
            ],
        )
        .await;
    assert!(
        page.text
            .contains(m["authorize_invalid_platform_app"].as_str().unwrap()),
        "{}",
        page.text
    );

    let code = t.code_for(&app, "acme_shop", ALL_SCOPES).await;
    let r = t.exchange(&app, "AQnotacodethesandboxissued").await;
    assert_eq!(r.body["error_message"], m["exchange_code_not_found"]);
    assert_eq!(t.exchange(&app, &code).await.status, StatusCode::OK);
    let r = t.exchange(&app, &code).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error_message"], m["exchange_code_used"]);

    // A GET to the exchange is the wrong method, answered in Graph's envelope.
    let r = t
        .get_q(
            "/oauth/access_token",
            &[("client_id", cid), ("code", code.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["message"], m["exchange_get"]);
    assert_eq!(r.body["error"]["code"], 100);
}

async fn exchange_with_redirect(t: &TestSandbox, app: &Value, code: &str, redirect: &str) -> Resp {
    t.post_form(
        "/oauth/access_token",
        &[
            ("client_id", app["client_id"].as_str().unwrap()),
            ("client_secret", app["client_secret"].as_str().unwrap()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect),
            ("code", code),
        ],
    )
    .await
}

#[tokio::test]
async fn a_failed_exchange_burns_the_code_only_when_the_app_says_so() {
    let t = TestSandbox::start().await;
    t.user("acme_shop").await;
    let m = messages();
    let wrong = "https://app.example.com/ig/callback/";

    let keeps = t.app(spec()).await;
    assert_eq!(keeps["failed_exchange_burns_code"], false);
    let code = t.code_for(&keeps, "acme_shop", ALL_SCOPES).await;
    let r = exchange_with_redirect(&t, &keeps, &code, wrong).await;
    assert_eq!(r.body["error_message"], m["exchange_redirect_mismatch"]);
    let r = exchange_with_redirect(&t, &keeps, &code, REDIRECT).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let burns = t
        .app(AppSpec {
            failed_exchange_burns_code: Some(true),
            ..spec()
        })
        .await;
    assert_eq!(burns["failed_exchange_burns_code"], true);
    let code = t.code_for(&burns, "acme_shop", ALL_SCOPES).await;
    let r = exchange_with_redirect(&t, &burns, &code, wrong).await;
    assert_eq!(r.body["error_message"], m["exchange_redirect_mismatch"]);
    let r = exchange_with_redirect(&t, &burns, &code, REDIRECT).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error_message"], m["exchange_code_used"]);
}

// ---------------------------------------------------------------------------------------------
// Webhooks

const VERIFY_TOKEN: &str = "vt-canary-7f3a";

type QueryPairs = Vec<(String, String)>;

#[derive(Clone, Default)]
struct Hook {
    /// The query of every verification GET.
    gets: Arc<Mutex<Vec<QueryPairs>>>,
    posts: Arc<Mutex<Vec<Received>>>,
    /// What a GET answers instead of the challenge, when set.
    wrong_body: Arc<Mutex<Option<String>>>,
}

/// A service's webhook endpoint: answers Meta's verification when the verify token matches
/// (403 otherwise) and records the events POSTed to it.
async fn start_hook() -> (String, Hook, oneshot::Sender<()>) {
    async fn handle(
        State(h): State<Hook>,
        Query(q): Query<Vec<(String, String)>>,
        req: Request,
    ) -> (axum::http::StatusCode, String) {
        if req.method() == Method::GET {
            h.gets.lock().unwrap().push(q.clone());
            let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            if get("hub.mode").as_deref() != Some("subscribe")
                || get("hub.verify_token").as_deref() != Some(VERIFY_TOKEN)
            {
                return (axum::http::StatusCode::FORBIDDEN, "forbidden".into());
            }
            if let Some(b) = h.wrong_body.lock().unwrap().clone() {
                return (axum::http::StatusCode::OK, b);
            }
            return (
                axum::http::StatusCode::OK,
                get("hub.challenge").unwrap_or_default(),
            );
        }
        let headers = req.headers().clone();
        let path = req.uri().path().to_owned();
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec();
        h.posts.lock().unwrap().push(Received {
            path,
            headers,
            body,
        });
        (axum::http::StatusCode::OK, "EVENT_RECEIVED".into())
    }
    let hook = Hook::default();
    let router = axum::Router::new()
        .fallback(handle)
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    (format!("http://{addr}/hooks/instagram"), hook, tx)
}

#[tokio::test]
async fn webhook_subscription_is_verified_with_the_challenge() {
    let t = TestSandbox::start().await;
    let app = t.app(spec()).await;
    let cid = app["client_id"].as_str().unwrap();
    let (url, hook, _stop) = start_hook().await;
    let refused = |e: ControlClientError| match e {
        ControlClientError::Status { status, body, .. } => (status, body.to_string()),
        other => panic!("{other}"),
    };

    // A wrong verify token: the callback refuses, nothing is saved, the token is not echoed.
    let (status, text) = refused(
        t.control
            .subscribe_webhooks(
                cid,
                &WebhookSubscription::new(&url, "not-it", &["comments"]),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("403"), "{text}");
    assert!(!text.contains("not-it"), "{text}");
    assert!(t.control.webhook_subscription(cid).await.unwrap()["callback_url"].is_null());

    // A callback that answers 200 without echoing the challenge is refused too.
    *hook.wrong_body.lock().unwrap() = Some("ok".into());
    let (status, text) = refused(
        t.control
            .subscribe_webhooks(
                cid,
                &WebhookSubscription::new(&url, VERIFY_TOKEN, &["comments"]),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("does not match challenge"), "{text}");
    assert!(!text.contains(VERIFY_TOKEN), "{text}");
    *hook.wrong_body.lock().unwrap() = None;

    // Echoing it saves the subscription.
    let r = t
        .control
        .subscribe_webhooks(
            cid,
            &WebhookSubscription::new(&url, VERIFY_TOKEN, &["comments", "mentions"]),
        )
        .await
        .unwrap();
    assert_eq!(r["fields"], json!(["comments", "mentions"]));
    let saved = t.control.webhook_subscription(cid).await.unwrap();
    assert_eq!(saved["callback_url"], json!(url));
    assert!(!saved.to_string().contains(VERIFY_TOKEN));

    let gets = hook.gets.lock().unwrap().clone();
    assert_eq!(gets.len(), 3);
    let last = &gets[2];
    let get = |k: &str| last.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("hub.mode"), Some("subscribe"));
    assert_eq!(get("hub.verify_token"), Some(VERIFY_TOKEN));
    assert!(get("hub.challenge").unwrap().parse::<u64>().is_ok());
    assert_ne!(gets[1], gets[2], "each verification sends a new challenge");

    // Unknown fields and apps are refused before anything is sent.
    let r = t
        .control
        .subscribe_webhooks(
            cid,
            &WebhookSubscription::new(&url, VERIFY_TOKEN, &["feed"]),
        )
        .await
        .unwrap_err();
    assert_eq!(r.status(), Some(StatusCode::BAD_REQUEST));
    let r = t
        .control
        .subscribe_webhooks(
            "404404",
            &WebhookSubscription::new(&url, VERIFY_TOKEN, &["comments"]),
        )
        .await
        .unwrap_err();
    assert_eq!(r.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(hook.gets.lock().unwrap().len(), 3);
}

fn verify_hub_signature(r: &Received, secret: &str) -> Value {
    let header = r.headers["x-hub-signature-256"].to_str().unwrap();
    let expected = format!("sha256={}", hex::encode(hmac(secret.as_bytes(), &r.body)));
    assert_eq!(header, expected);
    serde_json::from_slice(&r.body).unwrap()
}

async fn event(t: &TestSandbox, event: UserEvent) -> Value {
    t.control.user_event("acme_shop", &event).await.unwrap()
}

#[tokio::test]
async fn webhook_events_are_signed_and_carry_metas_fields() {
    let t = TestSandbox::start().await;
    let (app, user, long) = t.connected(1).await;
    let cid = app["client_id"].as_str().unwrap();
    let secret = app["client_secret"].as_str().unwrap();
    let ig_id = user["user_id"].as_str().unwrap();
    let (url, hook, _stop) = start_hook().await;
    t.control
        .subscribe_webhooks(
            cid,
            &WebhookSubscription::new(
                &url,
                VERIFY_TOKEN,
                &["comments", "mentions", "story_insights"],
            ),
        )
        .await
        .unwrap();

    // Nothing is sent until the account's token enables the fields.
    event(&t, bare_comment()).await;
    assert!(hook.posts.lock().unwrap().is_empty());
    let sub = t
        .graph_post(
            "/me/subscribed_apps",
            &long,
            &[("subscribed_fields", "comments,mentions,story_insights")],
        )
        .await;
    assert_eq!(sub.body, json!({ "success": true }));

    // A comment: from.self_ig_scoped_id, no parent_id.
    let ev = event(&t, UserEvent::comment("Love it", "a_fan")).await;
    let comment_id = ev["comment_id"].as_str().unwrap().to_owned();
    let got = std::mem::take(&mut *hook.posts.lock().unwrap());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/hooks/instagram");
    let payload = verify_hub_signature(&got[0], secret);
    assert_same_shape(&fixture("webhook_comment.json"), &payload);
    assert_eq!(payload["entry"][0]["id"], ig_id);
    let value = &payload["entry"][0]["changes"][0]["value"];
    assert_eq!(value["id"], json!(comment_id));
    assert!(value["from"]["self_ig_scoped_id"].is_string(), "{payload}");
    assert!(value.get("parent_id").is_none());

    // A reply carries parent_id, on the parent's media.
    let ev = event(
        &t,
        UserEvent::Comment {
            media_id: None,
            parent_id: Some(comment_id.clone()),
            text: Some("Thanks!".into()),
            from_username: Some("a_fan".into()),
        },
    )
    .await;
    let got = std::mem::take(&mut *hook.posts.lock().unwrap());
    let payload = verify_hub_signature(&got[0], secret);
    assert_same_shape(&fixture("webhook_comment_reply.json"), &payload);
    let reply = &payload["entry"][0]["changes"][0]["value"];
    assert_eq!(reply["parent_id"], json!(comment_id));
    assert_eq!(reply["id"], ev["comment_id"]);
    assert_eq!(
        reply["from"]["self_ig_scoped_id"], value["from"]["self_ig_scoped_id"],
        "one commenter, one scoped id per app"
    );
    let replies = t.graph(&format!("/{comment_id}/replies"), &long, &[]).await;
    assert_eq!(replies.body["data"][0]["id"], ev["comment_id"]);

    // A mention.
    event(&t, mention_by(Some("a_fan"))).await;
    let got = std::mem::take(&mut *hook.posts.lock().unwrap());
    let payload = verify_hub_signature(&got[0], secret);
    assert_same_shape(&fixture("webhook_mention.json"), &payload);
    assert_eq!(payload["entry"][0]["changes"][0]["field"], "mentions");

    // Story insights need a story.
    let r = t
        .control
        .user_event("acme_shop", &UserEvent::StoryInsights { media_id: None })
        .await
        .unwrap_err();
    assert_eq!(r.status(), Some(StatusCode::NOT_FOUND), "{r}");
    let c = t
        .graph_post(
            "/me/media",
            &long,
            &[
                ("media_type", "STORIES"),
                ("image_url", "https://cdn.example.com/s.jpg"),
            ],
        )
        .await;
    t.advance(5).await;
    let story = t
        .graph_post(
            "/me/media_publish",
            &long,
            &[("creation_id", c.body["id"].as_str().unwrap())],
        )
        .await;
    assert_eq!(story.status, StatusCode::OK, "{}", story.text);
    event(&t, UserEvent::StoryInsights { media_id: None }).await;
    let got = std::mem::take(&mut *hook.posts.lock().unwrap());
    let payload = verify_hub_signature(&got[0], secret);
    assert_same_shape(&fixture("webhook_story_insights.json"), &payload);
    assert_eq!(
        payload["entry"][0]["changes"][0]["value"]["media_id"],
        story.body["id"]
    );
}

#[tokio::test]
async fn webhook_events_go_only_to_apps_subscribed_to_the_field() {
    let t = TestSandbox::start().await;
    let (app, _user, long) = t.connected(1).await;
    let cid = app["client_id"].as_str().unwrap();
    let (url, hook, _stop) = start_hook().await;
    // Raw: `fields` as one comma-separated string, a form the typed client never sends.
    let r = t
        .post_json(
            &format!("/_sandbox/apps/{cid}/webhooks"),
            &json!({ "callback_url": url, "verify_token": VERIFY_TOKEN, "fields": "comments" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    t.graph_post(
        "/me/subscribed_apps",
        &long,
        &[("subscribed_fields", "comments,mentions")],
    )
    .await;
    // The app did not subscribe to mentions: nothing is sent.
    let ev = event(&t, mention_by(None)).await;
    assert_eq!(ev["deliveries"], json!([]));
    assert!(hook.posts.lock().unwrap().is_empty());
    let ev = event(&t, bare_comment()).await;
    assert_eq!(ev["deliveries"][0]["status"], 200);
    assert_eq!(hook.posts.lock().unwrap().len(), 1);
}
