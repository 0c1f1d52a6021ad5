//! A recognisable token, code and secret forced through every error path: none may show up in
//! an error's Display or Debug, in its source chain, or in any log line at TRACE level.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Canned, ECHO, Mock};
use futures::StreamExt;
use instagram_api::{
    AccessToken, AppCredentials, AuthorizationCode, Callback, Client, ClientSecret, Config,
    ContainerRequest, Error, InsightsQuery, MediaQuery, Method, PollOptions, RawRequest,
    TokenPlacement, parse_callback_query,
};

const TOKEN: &str = "canaryTOKENq7Zx";
const SHAPED_TOKEN: &str = "IGAAcanaryShapedTokenq7Zx0123456789";
const CODE: &str = "canaryCODEq7Zx";
const SECRET: &str = "canarySECRETq7Zx";

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn leaks(text: &str) -> bool {
    text.to_lowercase().contains("canary")
}

#[track_caller]
fn assert_clean(label: &str, err: &Error) {
    let mut texts = vec![format!("{err}"), format!("{err:?}"), format!("{err:#?}")];
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        texts.push(format!("{s} {s:?}"));
        source = s.source();
    }
    if let Some(envelope) = err.to_graph_envelope() {
        texts.push(envelope.to_string());
    }
    for t in texts {
        assert!(!leaks(&t), "{label}: secret in error text: {t}");
    }
}

/// Every way a response can fail, each one reflecting the request back at the client.
fn hostile_answers() -> Vec<(&'static str, Canned)> {
    vec![
        (
            "flat oauth",
            Canned::json(
                400,
                format!(
                    r#"{{"error_type":"OAuthException {ECHO}","code":400,"error_message":"bad {ECHO}"}}"#
                ),
            ),
        ),
        (
            "oauth2",
            Canned::json(
                400,
                format!(r#"{{"error":"{ECHO}","error_description":"{ECHO}"}}"#),
            ),
        ),
        (
            "graph reauth",
            Canned::json(
                400,
                format!(
                    r#"{{"error":{{"message":"{ECHO}","type":"OAuthException {ECHO}","code":190,"error_subcode":463,"error_user_title":"{ECHO}","error_user_msg":"{ECHO}","fbtrace_id":"{ECHO}"}}}}"#
                ),
            ),
        ),
        (
            "graph rate",
            Canned::json(
                400,
                format!(r#"{{"error":{{"message":"{ECHO}","type":"X","code":80002}}}}"#),
            ),
        ),
        (
            "graph perm",
            Canned::json(
                403,
                format!(r#"{{"error":{{"message":"(#200) {ECHO}","type":"X","code":200}}}}"#),
            ),
        ),
        (
            "graph publish",
            Canned::json(
                400,
                format!(
                    r#"{{"error":{{"message":"{ECHO}","type":"X","code":9007,"error_subcode":2207027}}}}"#
                ),
            ),
        ),
        (
            "graph transient",
            Canned::json(
                500,
                format!(r#"{{"error":{{"message":"{ECHO}","code":2,"is_transient":true}}}}"#),
            ),
        ),
        (
            "graph bad",
            Canned::json(
                400,
                format!(r#"{{"error":{{"message":"{ECHO}","code":100}}}}"#),
            ),
        ),
        (
            "graph in 200",
            Canned::json(
                200,
                format!(r#"{{"error":{{"message":"{ECHO}","code":1}}}}"#),
            ),
        ),
        (
            "html 503",
            Canned::json(503, format!("<html>{ECHO}</html>")),
        ),
        ("429", Canned::json(429, ECHO).header("retry-after", "3")),
        (
            "redirect",
            Canned::json(302, "").header("location", &format!("http://127.0.0.1:9/?{ECHO}")),
        ),
        (
            "malformed 200",
            Canned::json(200, format!("not json {ECHO}")),
        ),
        (
            "wrong types",
            Canned::json(
                200,
                format!(
                    r#"{{"access_token":7,"user_id":"{ECHO}","expires_in":"{ECHO}","id":1,"is_comment_enabled":"{ECHO}","status_code":3,"data":"{ECHO}"}}"#
                ),
            ),
        ),
        (
            "slow",
            Canned::json(200, "{}").delayed(Duration::from_secs(2)),
        ),
    ]
}

fn paths() -> [(&'static str, &'static str); 10] {
    [
        ("POST", "/oauth/access_token"),
        ("GET", "/access_token"),
        ("GET", "/refresh_access_token"),
        ("GET", "/v24.0/me"),
        ("GET", "/v24.0/me/media"),
        ("POST", "/v24.0/me/media"),
        ("GET", "/v24.0/c1"),
        ("POST", "/v24.0/me/media_publish"),
        ("GET", "/v24.0/me/insights"),
        ("POST", "/v24.0/cm/replies"),
    ]
}

async fn every_call(client: &Client, label: &str) -> Vec<(String, Error)> {
    let app = AppCredentials {
        client_id: "1".into(),
        client_secret: ClientSecret::new(SECRET),
    };
    let mut errors = Vec::new();
    let mut push = |name: &str, r: Result<(), Error>| match r {
        Ok(()) => {}
        Err(e) => errors.push((format!("{label}/{name}"), e)),
    };
    for token in [AccessToken::new(TOKEN), AccessToken::new(SHAPED_TOKEN)] {
        push(
            "exchange_code",
            client
                .exchange_code(&app, "https://x/cb", &AuthorizationCode::new(CODE))
                .await
                .map(drop),
        );
        push(
            "exchange_long_lived",
            client
                .exchange_long_lived(&app.client_secret, &token)
                .await
                .map(drop),
        );
        push("refresh", client.refresh(&token).await.map(drop));
        push("me", client.me(&token, &[]).await.map(drop));
        let first = client
            .media_stream(&token, "me", &MediaQuery::default())
            .next()
            .await;
        push("media_stream", first.map(|r| r.map(drop)).unwrap_or(Ok(())));
        push(
            "create_container",
            client
                .create_container(&token, "me", &ContainerRequest::image("https://x/a.jpg"))
                .await
                .map(drop),
        );
        let poll = PollOptions {
            timeout: Duration::from_millis(50),
            initial_interval: Duration::from_millis(5),
            ..Default::default()
        };
        push(
            "wait_for_container",
            client
                .wait_for_container(&token, "c1", &poll)
                .await
                .map(drop),
        );
        push(
            "publish_container",
            client.publish_container(&token, "me", "c1").await.map(drop),
        );
        let q = InsightsQuery {
            metrics: vec!["reach".into()],
            ..Default::default()
        };
        push(
            "user_insights",
            client.user_insights(&token, "me", &q).await.map(drop),
        );
        push(
            "reply",
            client.reply_to_comment(&token, "cm", "hi").await.map(drop),
        );
        push(
            "raw",
            client
                .raw(&token, RawRequest::get("me", vec![]))
                .await
                .map(drop),
        );
        let token_in_path = format!("{}/media", token.expose_secret());
        push(
            "raw path",
            client
                .raw(&token, RawRequest::get(token_in_path, vec![]))
                .await
                .map(drop),
        );
        push(
            "raw reserved",
            client
                .raw(
                    &token,
                    RawRequest {
                        method: Method::GET,
                        path: "me".into(),
                        params: vec![("access_token".into(), TOKEN.into())],
                    },
                )
                .await
                .map(drop),
        );
    }
    errors
}

#[test]
fn canary_never_leaks() {
    let logs = Buffer::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the only subscriber in this test binary");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mock = Mock::start_isolated();
        let mut seen = 0;
        for (answer, canned) in hostile_answers() {
            for (method, path) in paths() {
                mock.set(method, path, canned.clone());
            }
            for placement in [TokenPlacement::Header, TokenPlacement::Query] {
                let mut config = mock.config();
                config.request_timeout = Duration::from_millis(300);
                let client = Client::new(config)
                    .unwrap()
                    .with_token_placement(placement)
                    .with_appsecret_proof(ClientSecret::new(SECRET));
                for (name, err) in every_call(&client, &format!("{answer}/{placement:?}")).await {
                    assert_clean(&name, &err);
                    seen += 1;
                }
            }
        }
        assert!(seen > 300, "only {seen} errors were produced");

        // A paging link that carries a token and then fails.
        let base = mock.base.as_str().trim_end_matches('/');
        mock.set(
            "GET",
            "/v24.0/me/media",
            Canned::json(200, format!(r#"{{"data":[{{"id":"1"}}],"paging":{{"next":"{base}/v24.0/p2?access_token={TOKEN}"}}}}"#)),
        );
        mock.set("GET", "/v24.0/p2", Canned::json(500, format!(r#"{{"error":{{"message":"{ECHO}","code":1}}}}"#)));
        let client = Client::new(mock.config()).unwrap();
        let results: Vec<_> = client.media_stream(&AccessToken::new(TOKEN), "me", &MediaQuery::default()).collect().await;
        let err = results.into_iter().find_map(Result::err).expect("page 2 fails");
        assert_clean("paging", &err);
        assert!(!mock.requests().iter().any(|r| r.path == "/v24.0/p2" && r.query_value("access_token").is_some()));

        // Unusable links: not a URL, or the same page again.
        for next in [format!("not a url {TOKEN}"), format!("{base}/v24.0/me/media?access_token={TOKEN}")] {
            mock.set("GET", "/v24.0/me/media", Canned::json(200, format!(r#"{{"data":[],"paging":{{"next":"{next}"}}}}"#)));
            let results: Vec<_> = client.media_stream(&AccessToken::new(TOKEN), "me", &MediaQuery::default()).collect().await;
            let err = results.into_iter().find_map(Result::err);
            let err = match err {
                Some(e) => e,
                // The same link once more is only noticed on the second page.
                None => panic!("{next}: the stream ended without an error"),
            };
            assert!(matches!(err, Error::Paging { .. }), "{err:?}");
            assert_clean("paging link", &err);
        }

        // Container status texts are Instagram's words; a reflected token must not survive.
        mock.set("GET", "/v24.0/c1", Canned::json(200, format!(r#"{{"status_code":"ERROR","status":"Error {ECHO} code 2207026"}}"#)));
        let err = client.wait_for_container(&AccessToken::new(TOKEN), "c1", &PollOptions::default()).await.unwrap_err();
        assert_clean("container status", &err);

        // Nothing listens: connect errors, with secrets in the query string.
        let (_closed, addr) = common::closed_port();
        let dead = Client::new(Config::for_base_url(format!("http://{addr}/").parse().unwrap())).unwrap();
        for (name, err) in every_call(&dead, "refused").await {
            assert!(matches!(err, Error::Network { .. } | Error::InvalidRequest { .. }), "{name}: {err:?}");
            assert_clean(&name, &err);
        }
    });

    // Credentials in a configured URL are refused without being repeated.
    let config = Config {
        graph_url: format!("https://{SECRET}:{TOKEN}@graph.example.com/")
            .parse()
            .unwrap(),
        ..Config::default()
    };
    assert_clean("config", &Client::new(config).unwrap_err());

    // The callback parser never repeats the code.
    for q in [
        format!("code={CODE}&code={CODE}"),
        format!("code={CODE}&error=x"),
        format!("state={CODE}x&code="),
    ] {
        let err = parse_callback_query(&q).unwrap_err();
        assert_clean("callback", &err);
    }

    // Debug of everything that holds a secret.
    let cb = parse_callback_query(&format!("code={CODE}#_&state=s")).unwrap();
    assert!(matches!(&cb, Callback::Code { code, .. } if code.expose_secret() == CODE));
    let short = instagram_api::decode_short_lived_token(
        format!(r#"{{"access_token":"{TOKEN}","user_id":1}}"#).as_bytes(),
    )
    .unwrap();
    let long = instagram_api::decode_long_lived_token(
        format!(r#"{{"access_token":"{TOKEN}","expires_in":1}}"#).as_bytes(),
    )
    .unwrap();
    let app = AppCredentials {
        client_id: "1".into(),
        client_secret: ClientSecret::new(SECRET),
    };
    let client = Client::new(Config::default())
        .unwrap()
        .with_appsecret_proof(ClientSecret::new(SECRET));
    for text in [
        format!("{cb:?} {short:?} {long:?} {app:?} {client:?}"),
        format!("{cb:#?} {short:#?} {long:#?} {app:#?} {client:#?}"),
    ] {
        assert!(!leaks(&text), "Debug leaks: {text}");
    }

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("instagram call failed"),
        "the client logged nothing?"
    );
    for line in logs.lines() {
        assert!(!leaks(line), "log line leaks: {line}");
    }
}
