//! Every call of the client against the real `instagram-sandbox`, served on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use instagram_api::{
    AccessToken, AppCredentials, AuthorizeRequest, Callback, Client, ClientSecret, Config,
    ContainerRequest, ContainerStatusCode, Error, InsightsQuery, LongLivedToken, MediaQuery,
    NetworkErrorKind, PollOptions, PublishingErrorKind, RawRequest, ReauthReason, ShortLivedToken,
    TokenPlacement, parse_callback,
};
use instagram_sandbox::control_client::{
    AppSpec, Consent, ControlClient, ExchangeShape, FaultSpec, RefreshMode, SandboxUser, UserEvent,
    UserSpec,
};
use instagram_sandbox::{Sandbox, SandboxOptions, serve};
use tokio::sync::oneshot;

const REDIRECT: &str = "https://app.example.com/ig/callback";
const ALL_SCOPES: &[&str] = &[
    "instagram_business_basic",
    "instagram_business_content_publish",
    "instagram_business_manage_messages",
    "instagram_business_manage_comments",
    "instagram_business_manage_insights",
];
const DAY: i64 = 86_400;

struct Env {
    sandbox: Sandbox,
    base: url::Url,
    /// For the consent page, which a browser would load.
    http: reqwest::Client,
    /// The sandbox's control API.
    sb: ControlClient,
    client: Client,
    _stop: oneshot::Sender<()>,
}

struct Account {
    app: AppCredentials,
    user: SandboxUser,
    short: ShortLivedToken,
    long: LongLivedToken,
}

impl Env {
    async fn start() -> Self {
        let sandbox = Sandbox::new(SandboxOptions::default()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, sandbox.clone(), async move {
            let _ = rx.await;
        }));
        let base: url::Url = format!("http://{addr}/").parse().unwrap();
        let client = Client::new(Config::for_base_url(base.clone())).unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            sandbox,
            http,
            sb: ControlClient::new(format!("http://{addr}")),
            base,
            client,
            _stop: tx,
        }
    }

    fn config(&self) -> Config {
        Config::for_base_url(self.base.clone())
    }

    /// An app redirecting to `REDIRECT`, with `spec`'s other settings.
    async fn app(&self, spec: AppSpec) -> AppCredentials {
        let app = self
            .sb
            .create_app(&AppSpec {
                redirect_uris: vec![REDIRECT.into()],
                ..spec
            })
            .await
            .unwrap();
        AppCredentials {
            client_id: app.client_id,
            client_secret: ClientSecret::new(app.client_secret.unwrap()),
        }
    }

    async fn user(&self, username: &str, media: u32) -> SandboxUser {
        self.sb
            .create_user(&UserSpec::named(username).with_media(media))
            .await
            .unwrap()
    }

    /// Headless consent: the redirect Instagram would send the browser to.
    async fn authorize(
        &self,
        app: &AppCredentials,
        username: &str,
        scopes: &[&str],
        decision: &str,
    ) -> url::Url {
        self.sb
            .authorize(&Consent {
                client_id: app.client_id.clone(),
                redirect_uri: REDIRECT.into(),
                scope: scopes.join(","),
                state: Some("st-1".into()),
                username: Some(username.into()),
                decision: decision.into(),
                granted_scopes: None,
            })
            .await
            .unwrap()
            .parse()
            .unwrap()
    }

    async fn connect_with(
        &self,
        app_spec: AppSpec,
        username: &str,
        media: u32,
        scopes: &[&str],
    ) -> Account {
        let app = self.app(app_spec).await;
        let user = self.user(username, media).await;
        let Callback::Code { code, .. } =
            parse_callback(&self.authorize(&app, username, scopes, "allow").await).unwrap()
        else {
            panic!("consent was given")
        };
        let short = self
            .client
            .exchange_code(&app, REDIRECT, &code)
            .await
            .unwrap();
        let long = self
            .client
            .exchange_long_lived(&app.client_secret, &short.access_token)
            .await
            .unwrap();
        Account {
            app,
            user,
            short,
            long,
        }
    }

    async fn connect(&self, username: &str, media: u32) -> Account {
        self.connect_with(AppSpec::default(), username, media, ALL_SCOPES)
            .await
    }

    fn advance(&self, secs: i64) {
        self.sandbox.clock().advance(secs);
    }

    async fn fault(&self, spec: FaultSpec) {
        self.sb.add_fault(&spec).await.unwrap();
    }
}

/// Polling uses real time while containers finish on the sandbox clock: move it along.
fn keep_clock_moving(sandbox: &Sandbox) -> tokio::task::JoinHandle<()> {
    let clock = sandbox.clock();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            clock.advance(2);
        }
    })
}

fn fast_poll() -> PollOptions {
    PollOptions {
        initial_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(50),
        multiplier: 2,
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn login_exchange_long_lived_and_me() {
    let env = Env::start().await;
    let app = env.app(AppSpec::default()).await;
    let user = env.user("acme_shop", 3).await;

    let login = env.client.authorize_url(&AuthorizeRequest {
        client_id: app.client_id.clone(),
        redirect_uri: REDIRECT.into(),
        scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        state: "st-1".into(),
        enable_fb_login: Some(false),
        force_reauth: Some(true),
    });
    let page = env.http.get(login).send().await.unwrap();
    assert_eq!(
        page.status(),
        200,
        "the sandbox accepts the authorize URL as built"
    );

    let location = env.authorize(&app, "acme_shop", ALL_SCOPES, "allow").await;
    assert!(location.as_str().ends_with("#_"));
    let Callback::Code { code, state } = parse_callback(&location).unwrap() else {
        panic!("allowed")
    };
    assert_eq!(state.as_deref(), Some("st-1"));

    let short = env
        .client
        .exchange_code(&app, REDIRECT, &code)
        .await
        .unwrap();
    assert!(
        short.user_id.bytes().all(|b| b.is_ascii_digit()),
        "{}",
        short.user_id
    );
    let granted: HashSet<&str> = short.permissions.iter().map(String::as_str).collect();
    assert_eq!(granted, ALL_SCOPES.iter().copied().collect());

    let long = env
        .client
        .exchange_long_lived(&app.client_secret, &short.access_token)
        .await
        .unwrap();
    assert_eq!(long.token_type.as_deref(), Some("bearer"));
    assert!(
        (5_000_000..=5_184_000).contains(&long.expires_in),
        "{}",
        long.expires_in
    );

    let me = env.client.me(&long.access_token, &[]).await.unwrap();
    assert_eq!(me.id, short.user_id, "the exchange's user_id is /me's id");
    assert_eq!(me.user_id.as_deref(), Some(user.user_id.as_str()));
    assert_eq!(me.username.as_deref(), Some("acme_shop"));
    assert_eq!(me.media_count, Some(3));
    assert!(me.account_type.is_some() && me.followers_count.is_some());

    let me = env
        .client
        .me(&long.access_token, &["user_id", "username"])
        .await
        .unwrap();
    assert_eq!(me.name, None, "only the requested fields come back");

    // The short-lived token works on Graph too, and so does the query-string placement.
    let q = env
        .client
        .clone()
        .with_token_placement(TokenPlacement::Query);
    assert_eq!(
        q.me(&short.access_token, &["id"]).await.unwrap().id,
        short.user_id
    );
}

#[tokio::test]
async fn documented_data_envelope() {
    let env = Env::start().await;
    let acc = env
        .connect_with(
            AppSpec {
                exchange_shape: Some(ExchangeShape::Data),
                ..AppSpec::default()
            },
            "data_shape",
            0,
            ALL_SCOPES,
        )
        .await;
    assert!(!acc.short.user_id.is_empty());
    assert_eq!(acc.short.permissions.len(), ALL_SCOPES.len());
    let me = env
        .client
        .me(&acc.long.access_token, &["id"])
        .await
        .unwrap();
    assert_eq!(me.id, acc.short.user_id);
}

#[tokio::test]
async fn denial_and_spent_codes() {
    let env = Env::start().await;
    let app = env.app(AppSpec::default()).await;
    env.user("shy", 0).await;

    let denied = parse_callback(
        &env.authorize(&app, "shy", &["instagram_business_basic"], "deny")
            .await,
    )
    .unwrap();
    let Callback::Denied {
        error,
        error_reason,
        error_description,
        state,
    } = denied
    else {
        panic!("denied")
    };
    assert_eq!(error, "access_denied");
    assert_eq!(error_reason.as_deref(), Some("user_denied"));
    assert_eq!(
        error_description.as_deref(),
        Some("The user denied your request")
    );
    assert_eq!(state.as_deref(), Some("st-1"));

    let Callback::Code { code, .. } = parse_callback(
        &env.authorize(&app, "shy", &["instagram_business_basic"], "allow")
            .await,
    )
    .unwrap() else {
        panic!("allowed")
    };
    let wrong_redirect = env
        .client
        .exchange_code(&app, "https://app.example.com/other", &code)
        .await
        .unwrap_err();
    assert!(
        matches!(wrong_redirect, Error::OAuth { code: 400, .. }),
        "{wrong_redirect:?}"
    );

    let wrong_secret = AppCredentials {
        client_id: app.client_id.clone(),
        client_secret: ClientSecret::new("nope"),
    };
    let e = env
        .client
        .exchange_code(&wrong_secret, REDIRECT, &code)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::OAuth { .. }), "{e:?}");

    // Whether or not the failed attempts burnt it, a code never works twice.
    let first = env.client.exchange_code(&app, REDIRECT, &code).await;
    let second = env
        .client
        .exchange_code(&app, REDIRECT, &code)
        .await
        .unwrap_err();
    assert!(first.is_ok() || matches!(first, Err(Error::OAuth { .. })));
    assert!(
        matches!(second, Error::OAuth { code: 400, .. }),
        "{second:?}"
    );
    assert!(!second.is_transient());
}

#[tokio::test]
async fn refresh_windows() {
    let env = Env::start().await;
    let acc = env.connect("refresher", 0).await;

    let young = env
        .client
        .refresh(&acc.long.access_token)
        .await
        .unwrap_err();
    assert!(
        matches!(young, Error::BadRequest { code: 100, .. }),
        "younger than 24 h: {young:?}"
    );

    env.advance(DAY + 60);
    let fresh = env.client.refresh(&acc.long.access_token).await.unwrap();
    assert_eq!(
        fresh.access_token.expose_secret(),
        acc.long.access_token.expose_secret(),
        "default: same string"
    );
    assert!(fresh.expires_in > 5_000_000);

    // Another app that hands out new strings; the old one stays valid.
    let acc2 = env
        .connect_with(
            AppSpec {
                refresh_mode: Some(RefreshMode::New),
                ..AppSpec::default()
            },
            "refresher2",
            0,
            ALL_SCOPES,
        )
        .await;
    env.advance(DAY + 60);
    let fresh2 = env.client.refresh(&acc2.long.access_token).await.unwrap();
    assert_ne!(
        fresh2.access_token.expose_secret(),
        acc2.long.access_token.expose_secret()
    );
    env.client.me(&fresh2.access_token, &["id"]).await.unwrap();
    env.client
        .me(&acc2.long.access_token, &["id"])
        .await
        .unwrap();

    // The first refresh (a day and a bit ago) pushed expiry 60 days out: 58 more are fine.
    env.advance(58 * DAY);
    env.client.me(&fresh.access_token, &["id"]).await.unwrap();
}

#[tokio::test]
async fn expiry_and_invalidation_need_reauth() {
    let env = Env::start().await;
    let expired = env.connect("old_timer", 0).await;
    let moved = env.connect("pw_changer", 0).await;
    let removed = env.connect("app_remover", 0).await;

    // A short-lived token cannot be exchanged after its hour.
    let app = env.app(AppSpec::default()).await;
    env.user("late", 0).await;
    let Callback::Code { code, .. } = parse_callback(
        &env.authorize(&app, "late", &["instagram_business_basic"], "allow")
            .await,
    )
    .unwrap() else {
        panic!()
    };
    let short = env
        .client
        .exchange_code(&app, REDIRECT, &code)
        .await
        .unwrap();
    env.advance(3_700);
    let e = env
        .client
        .exchange_long_lived(&app.client_secret, &short.access_token)
        .await
        .unwrap_err();
    assert!(e.requires_reauth(), "{e:?}");

    env.sb
        .user_event(&moved.user.id, &UserEvent::PasswordChanged)
        .await
        .unwrap();
    let e = env
        .client
        .me(&moved.long.access_token, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Reauth {
                code: 190,
                reason: ReauthReason::PasswordChanged,
                ..
            }
        ),
        "{e:?}"
    );

    env.sb
        .user_event(
            &removed.user.id,
            &UserEvent::Deauthorize { client_id: None },
        )
        .await
        .unwrap();
    let e = env
        .client
        .me(&removed.long.access_token, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Reauth {
                code: 190,
                reason: ReauthReason::AppRemoved,
                ..
            }
        ),
        "{e:?}"
    );

    env.advance(61 * DAY);
    let e = env
        .client
        .me(&expired.long.access_token, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Reauth {
                code: 190,
                subcode: Some(463),
                reason: ReauthReason::Expired,
                ..
            }
        ),
        "{e:?}"
    );
    let e = env
        .client
        .refresh(&expired.long.access_token)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Reauth {
                reason: ReauthReason::Expired,
                ..
            }
        ),
        "an expired token never refreshes: {e:?}"
    );
    assert!(e.details().unwrap().fbtrace_id.is_some());
}

#[tokio::test]
async fn tokens_are_rejected_on_the_facebook_host() {
    let env = Env::start().await;
    let acc = env.connect("ig_only", 0).await;
    let mut config = env.config();
    config.graph_url = env.base.join("_fb/").unwrap();
    let e = Client::new(config)
        .unwrap()
        .me(&acc.long.access_token, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Reauth { code: 190, ref message, .. } if message.contains("Cannot parse access token")),
        "{e:?}"
    );
}

#[tokio::test]
async fn faults_usage_and_rate_limits() {
    let env = Env::start().await;
    let acc = env
        .connect_with(
            AppSpec {
                rate_limit_calls: Some(6),
                rate_limit_code: Some(80002),
                ..AppSpec::default()
            },
            "busy",
            2,
            ALL_SCOPES,
        )
        .await;
    let token = &acc.long.access_token;

    let resp = env
        .client
        .raw(
            token,
            RawRequest::get("me", vec![("fields".into(), "id,username".into())]),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body["username"], "busy");
    assert!(
        resp.usage.app.is_some() && !resp.usage.business.is_empty(),
        "{:?}",
        resp.usage
    );

    env.fault(FaultSpec::graph_error("/me", 2).transient().times(1))
        .await;
    let e = env.client.me(token, &[]).await.unwrap_err();
    assert!(
        matches!(e, Error::Transient { code: Some(2), .. }) && e.is_transient(),
        "{e:?}"
    );

    env.fault(FaultSpec::status("/me", 503).times(1)).await;
    let e = env.client.me(token, &[]).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(e.http_status(), Some(503));

    env.fault(FaultSpec::latency("/me", 1500).times(1)).await;
    let mut slow = env.config();
    slow.request_timeout = Duration::from_millis(300);
    let e = Client::new(slow).unwrap().me(token, &[]).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Network {
                kind: NetworkErrorKind::Timeout,
                ..
            }
        ),
        "{e:?}"
    );

    env.fault(FaultSpec::reset("/me").times(1)).await;
    let e = env.client.me(token, &[]).await.unwrap_err();
    assert!(
        matches!(e, Error::Network { .. }) && e.is_transient(),
        "{e:?}"
    );

    // The budget of 6 calls per window is spent by now (faulted calls count or not).
    let mut limited = None;
    for _ in 0..10 {
        match env.client.me(token, &["id"]).await {
            Ok(_) => {}
            Err(e) => {
                limited = Some(e);
                break;
            }
        }
    }
    let e = limited.expect("the app's rate limit kicks in");
    assert!(matches!(e, Error::RateLimited { code: 80002, .. }), "{e:?}");
    assert!(e.is_transient());
    assert!(e.usage().is_some_and(|u| !u.business.is_empty()), "{e:?}");
}

#[tokio::test]
async fn media_pages_and_streams() {
    let env = Env::start().await;
    let acc = env.connect("gallery", 23).await;
    let token = &acc.long.access_token;

    let query = MediaQuery {
        limit: Some(5),
        ..Default::default()
    };
    let all: Vec<_> = env
        .client
        .media_stream(token, "me", &query)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 23);
    assert_eq!(
        all.iter()
            .map(|m| m.id.as_str())
            .collect::<HashSet<_>>()
            .len(),
        23,
        "no duplicates"
    );
    assert!(
        all.iter()
            .all(|m| m.caption.is_some() && m.timestamp.is_some() && m.media_type.is_some())
    );

    let professional = acc.user.user_id.as_str();
    let first = env
        .client
        .media_page(token, professional, &query)
        .await
        .unwrap();
    assert_eq!(first.data.len(), 5);
    let second = env
        .client
        .next_page(token, &first)
        .await
        .unwrap()
        .expect("more pages");
    assert_eq!(second.data.len(), 5);
    assert_ne!(first.data[0].id, second.data[0].id);
    assert!(!first.next_url().unwrap().contains("access_token"));

    let one = env
        .client
        .media(
            token,
            &all[0].id,
            &["id", "caption", "permalink", "like_count"],
        )
        .await
        .unwrap();
    assert_eq!(one.id, all[0].id);
    assert_eq!(one.caption, all[0].caption);

    let raw = env
        .client
        .raw(
            token,
            RawRequest::get("me/media", vec![("limit".into(), "2".into())]),
        )
        .await
        .unwrap();
    assert_eq!(raw.body["data"].as_array().unwrap().len(), 2);
    if let Some(next) = raw.body["paging"]["next"].as_str() {
        assert!(!next.contains("access_token"));
    }

    let stories: Vec<_> = env
        .client
        .stories_stream(token, "me", &[])
        .try_collect()
        .await
        .unwrap();
    assert!(stories.is_empty());
}

#[tokio::test]
async fn publish_image_step_by_step() {
    let env = Env::start().await;
    let acc = env.connect("publisher", 0).await;
    let token = &acc.long.access_token;
    let ig = acc.user.user_id.as_str();

    let before = env
        .client
        .content_publishing_limit(token, ig, None)
        .await
        .unwrap();
    assert_eq!(before.quota_usage, Some(0));
    assert!(
        before
            .rate_limit_settings
            .as_ref()
            .and_then(|c| c.quota_total)
            .is_some()
    );
    assert_eq!(before.remaining(), Some(100));

    let post = ContainerRequest::image("https://cdn.example.com/launch.jpg")
        .caption("Launch day")
        .alt_text("rocket");
    let container = env.client.create_container(token, ig, &post).await.unwrap();
    let status = env
        .client
        .container_status(token, &container)
        .await
        .unwrap();
    assert_eq!(status.status_code, Some(ContainerStatusCode::InProgress));

    let early = env
        .client
        .publish_container(token, ig, &container)
        .await
        .unwrap_err();
    assert!(
        matches!(
            early,
            Error::Publishing {
                kind: PublishingErrorKind::NotReady,
                code: Some(9007),
                ..
            }
        ),
        "{early:?}"
    );
    assert!(early.is_transient());

    env.advance(30);
    let finished = env
        .client
        .wait_for_container(token, &container, &fast_poll())
        .await
        .unwrap();
    assert_eq!(finished.status_code, Some(ContainerStatusCode::Finished));
    let media_id = env
        .client
        .publish_container(token, ig, &container)
        .await
        .unwrap();

    let status = env
        .client
        .container_status(token, &container)
        .await
        .unwrap();
    assert_eq!(status.status_code, Some(ContainerStatusCode::Published));
    let media = env
        .client
        .media(
            token,
            &media_id,
            &["id", "caption", "media_type", "media_product_type"],
        )
        .await
        .unwrap();
    assert_eq!(media.caption.as_deref(), Some("Launch day"));
    assert_eq!(media.media_type.as_deref(), Some("IMAGE"));

    let after = env
        .client
        .content_publishing_limit(token, ig, None)
        .await
        .unwrap();
    assert_eq!(after.quota_usage, Some(1));
}

#[tokio::test]
async fn publish_reel_story_and_carousel() {
    let env = Env::start().await;
    let acc = env.connect("creator", 0).await;
    let token = &acc.long.access_token;
    let ticker = keep_clock_moving(&env.sandbox);

    let reel = ContainerRequest::reel("https://cdn.example.com/clip.mp4")
        .caption("Reel")
        .share_to_feed(true);
    let done = env
        .client
        .publish(token, "me", &reel, &fast_poll())
        .await
        .unwrap();
    let m = env
        .client
        .media(token, &done.media_id, &["media_type", "media_product_type"])
        .await
        .unwrap();
    assert_eq!(m.media_product_type.as_deref(), Some("REELS"));

    let story = ContainerRequest::story_image("https://cdn.example.com/story.jpg");
    let done = env
        .client
        .publish(token, "me", &story, &fast_poll())
        .await
        .unwrap();
    let m = env
        .client
        .media(token, &done.media_id, &["media_product_type"])
        .await
        .unwrap();
    assert_eq!(m.media_product_type.as_deref(), Some("STORY"));
    let stories: Vec<_> = env
        .client
        .stories_stream(token, "me", &[])
        .try_collect()
        .await
        .unwrap();
    assert!(stories.iter().any(|s| s.id == done.media_id));

    let video_story = ContainerRequest::story_video("https://cdn.example.com/story.mp4");
    env.client
        .publish(token, "me", &video_story, &fast_poll())
        .await
        .unwrap();

    let items = [
        ContainerRequest::carousel_image("https://cdn.example.com/1.jpg"),
        ContainerRequest::carousel_image("https://cdn.example.com/2.jpg"),
        ContainerRequest::carousel_video("https://cdn.example.com/3.mp4"),
    ];
    let done = env
        .client
        .publish_carousel(token, "me", &items, Some("Three"), &fast_poll())
        .await
        .unwrap();
    ticker.abort();
    let m = env
        .client
        .media(token, &done.media_id, &["media_type", "caption"])
        .await
        .unwrap();
    assert_eq!(m.media_type.as_deref(), Some("CAROUSEL_ALBUM"));
    let children = env
        .client
        .media_children(token, &done.media_id, &[])
        .await
        .unwrap();
    assert_eq!(children.len(), 3);
    assert!(children.iter().all(|c| !c.id.is_empty()));

    let limit = env
        .client
        .content_publishing_limit(token, "me", None)
        .await
        .unwrap();
    assert_eq!(
        limit.quota_usage,
        Some(4),
        "reel, two stories, carousel: {limit:?}"
    );
}

#[tokio::test]
async fn failed_and_expired_containers() {
    let env = Env::start().await;
    let acc = env.connect("unlucky", 0).await;
    let token = &acc.long.access_token;

    env.fault(
        FaultSpec::container_error("/me/media")
            .method("POST")
            .times(1),
    )
    .await;
    let container = env
        .client
        .create_container(token, "me", &ContainerRequest::image("https://x/1.jpg"))
        .await
        .unwrap();
    env.advance(60);
    let e = env
        .client
        .wait_for_container(token, &container, &fast_poll())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Publishing { ref container_id, .. } if container_id.as_deref() == Some(container.as_str())),
        "{e:?}"
    );
    assert!(!e.is_transient());

    let stale = env
        .client
        .create_container(token, "me", &ContainerRequest::image("https://x/2.jpg"))
        .await
        .unwrap();
    env.advance(DAY + 60);
    let e = env
        .client
        .wait_for_container(token, &stale, &fast_poll())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Publishing {
                kind: PublishingErrorKind::ContainerExpired,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn insights_both_shapes_and_missing_permission() {
    let env = Env::start().await;
    let acc = env.connect("analyst", 3).await;
    let token = &acc.long.access_token;

    let q = InsightsQuery {
        metrics: vec!["reach".into(), "views".into()],
        period: Some("day".into()),
        metric_type: Some("total_value".into()),
        ..Default::default()
    };
    let metrics = env.client.user_insights(token, "me", &q).await.unwrap();
    assert_eq!(
        metrics.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["reach", "views"]
    );
    assert!(metrics.iter().all(|m| m.total().is_some()), "{metrics:?}");

    let q = InsightsQuery {
        metrics: vec!["follower_count".into()],
        period: Some("day".into()),
        ..Default::default()
    };
    let series = env.client.user_insights(token, "me", &q).await.unwrap();
    assert!(
        !series[0].values.is_empty() || series[0].total_value.is_some(),
        "{series:?}"
    );

    let media: Vec<_> = env
        .client
        .media_stream(token, "me", &MediaQuery::default())
        .try_collect()
        .await
        .unwrap();
    let m = env
        .client
        .media_insights(token, &media[0].id, &["reach", "likes", "saved"])
        .await
        .unwrap();
    assert_eq!(m.len(), 3);
    assert!(m.iter().all(|i| i.total().is_some()), "{m:?}");

    let basic = env
        .connect_with(
            AppSpec::default(),
            "basic_only",
            1,
            &["instagram_business_basic"],
        )
        .await;
    let e = env
        .client
        .user_insights(
            &basic.long.access_token,
            "me",
            &InsightsQuery {
                metrics: vec!["reach".into()],
                period: Some("day".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    // Instagram answers (#10) without naming the permission, or (#200) naming it.
    match &e {
        Error::MissingPermission { code: 10, .. } => {}
        Error::MissingPermission {
            permission: Some(p),
            ..
        } => assert_eq!(p, "instagram_business_manage_insights"),
        other => panic!("{other:?}"),
    }
    assert!(!e.is_transient() && !e.requires_reauth());
}

#[tokio::test]
async fn comments_moderation() {
    let env = Env::start().await;
    let acc = env.connect("moderated", 2).await;
    let token = &acc.long.access_token;
    let event = env
        .sb
        .user_event(&acc.user.id, &UserEvent::comment("Love it", "fan1"))
        .await
        .unwrap();
    let comment_id = event["comment_id"].as_str().unwrap().to_owned();
    let media_id = event["media_id"].as_str().unwrap().to_owned();

    let comments: Vec<_> = env
        .client
        .comments_stream(token, &media_id, &[])
        .try_collect()
        .await
        .unwrap();
    let c = comments
        .iter()
        .find(|c| c.id == comment_id)
        .expect("listed");
    assert_eq!(c.text.as_deref(), Some("Love it"));
    assert_eq!(c.username.as_deref(), Some("fan1"));

    let page = env
        .client
        .comments_page(token, &media_id, &["id", "text"], Some(10))
        .await
        .unwrap();
    assert!(page.data.iter().any(|c| c.id == comment_id));

    let reply_id = env
        .client
        .reply_to_comment(token, &comment_id, "Thank you!")
        .await
        .unwrap();
    let replies: Vec<_> = env
        .client
        .replies_stream(token, &comment_id, &[])
        .try_collect()
        .await
        .unwrap();
    assert!(
        replies
            .iter()
            .any(|r| r.id == reply_id && r.text.as_deref() == Some("Thank you!"))
    );

    let top = env
        .client
        .comment_on_media(token, &media_id, "Pinned info")
        .await
        .unwrap();
    assert!(!top.is_empty());

    env.client
        .hide_comment(token, &comment_id, true)
        .await
        .unwrap();
    let hidden = env
        .client
        .raw(
            token,
            RawRequest::get(comment_id.clone(), vec![("fields".into(), "hidden".into())]),
        )
        .await
        .unwrap();
    assert_eq!(hidden.body["hidden"], true);
    env.client
        .hide_comment(token, &comment_id, false)
        .await
        .unwrap();

    env.client.delete_comment(token, &reply_id).await.unwrap();
    let replies: Vec<_> = env
        .client
        .replies_stream(token, &comment_id, &[])
        .try_collect()
        .await
        .unwrap();
    assert!(replies.iter().all(|r| r.id != reply_id));
}

#[tokio::test]
async fn webhook_subscriptions() {
    let env = Env::start().await;
    let acc = env.connect("hooked", 0).await;
    let token = &acc.long.access_token;

    assert!(
        env.client
            .subscribed_apps(token, "me")
            .await
            .unwrap()
            .is_empty()
    );
    env.client
        .subscribe_app(token, "me", &["comments", "messages"])
        .await
        .unwrap();
    let apps = env.client.subscribed_apps(token, "me").await.unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].subscribed_fields, ["comments", "messages"]);
    assert_eq!(apps[0].id.as_deref(), Some(acc.app.client_id.as_str()));

    env.client.unsubscribe_app(token, "me").await.unwrap();
    assert!(
        env.client
            .subscribed_apps(token, "me")
            .await
            .unwrap()
            .is_empty()
    );

    let e = env
        .client
        .subscribe_app(token, "me", &["nonsense"])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BadRequest { code: 100, .. }), "{e:?}");
}

#[tokio::test]
async fn raw_calls_and_bad_requests() {
    let env = Env::start().await;
    let acc = env.connect("rawuser", 1).await;
    let token = &acc.long.access_token;

    let e = env.client.me(token, &["no_such_field"]).await.unwrap_err();
    assert!(matches!(e, Error::BadRequest { code: 100, .. }), "{e:?}");

    let e = env
        .client
        .media(token, "17800000000000000", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::BadRequest {
                code: 100,
                subcode: Some(33),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_unknown_object());
    let e = env
        .client
        .raw(token, RawRequest::get("me/no_such_edge", vec![]))
        .await
        .unwrap_err();
    assert_eq!(e.graph_code(), Some(2500), "{e:?}");

    let created = env
        .client
        .raw(
            token,
            RawRequest::post(
                "me/media",
                vec![("image_url".into(), "https://x/raw.jpg".into())],
            ),
        )
        .await
        .unwrap();
    assert!(created.body["id"].is_string());

    let versioned = env
        .client
        .raw(token, RawRequest::get("v25.0/me", vec![]))
        .await
        .unwrap();
    assert!(versioned.body["id"].is_string());

    let bad = AccessToken::new("IGAAthisIsNotAValidTokenAtAll");
    let e = env.client.me(&bad, &[]).await.unwrap_err();
    assert!(e.requires_reauth(), "{e:?}");
}

#[tokio::test]
async fn standard_access_non_tester_is_its_own_error_kind() {
    let env = Env::start().await;
    let app = env
        .app(AppSpec::default().standard_access(&["tester_one"]))
        .await;
    env.user("stranger", 1).await;
    let Callback::Code { code, .. } =
        parse_callback(&env.authorize(&app, "stranger", ALL_SCOPES, "allow").await).unwrap()
    else {
        panic!("consent was given")
    };
    // Login and exchange work, with every permission …
    let short = env
        .client
        .exchange_code(&app, REDIRECT, &code)
        .await
        .unwrap();
    assert_eq!(short.permissions.len(), ALL_SCOPES.len());
    // … and then every Graph call is refused, neither a bad request nor a dead token.
    let e = env
        .client
        .exchange_long_lived(&app.client_secret, &short.access_token)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::AppNotApprovedForUser { code: 100, .. }),
        "{e:?}"
    );
    assert!(!e.requires_reauth() && !e.is_transient());
    let text = e.to_string();
    assert!(
        text.contains("tester") && text.contains("Advanced Access"),
        "{text}"
    );
    let e = env
        .client
        .me(&short.access_token, &["user_id"])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AppNotApprovedForUser { .. }), "{e:?}");
}
