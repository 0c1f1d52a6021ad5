//! Test harness: a sandbox on 127.0.0.1:0 and helpers that walk the OAuth steps.

use std::path::PathBuf;

pub use instagram_sandbox::control_client::{
    AppSpec, Call, Consent, ControlClient, ControlClientError, ExchangeShape, FaultKind, FaultSpec,
    RefreshMode, SeedSpec, UserEvent, UserSpec, WebhookSubscription, YoungRefresh,
};
use instagram_sandbox::{Sandbox, SandboxOptions, serve};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const REDIRECT: &str = "https://app.example.com/ig/callback";
pub const ALL_SCOPES: &str = "instagram_business_basic,instagram_business_content_publish,instagram_business_manage_messages,instagram_business_manage_comments,instagram_business_manage_insights";

pub struct TestSandbox {
    pub sb: Sandbox,
    pub base: String,
    pub http: reqwest::Client,
    /// The control API through its typed client.
    pub control: ControlClient,
    _stop: oneshot::Sender<()>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of `expected` exists in `actual` with the same JSON type, recursively (arrays are
/// compared by their first elements). Values are not compared: ids and tokens differ.
pub fn assert_same_shape(expected: &Value, actual: &Value) {
    fn walk(path: &str, e: &Value, a: &Value) {
        assert_eq!(
            type_name(e),
            type_name(a),
            "type of {path}: expected like {e}, got {a}"
        );
        match (e, a) {
            (Value::Object(eo), Value::Object(ao)) => {
                for (k, ev) in eo {
                    let av = ao
                        .get(k)
                        .unwrap_or_else(|| panic!("missing {path}.{k} in {a}"));
                    walk(&format!("{path}.{k}"), ev, av);
                }
            }
            (Value::Array(ea), Value::Array(aa)) => {
                if let (Some(e0), Some(a0)) = (ea.first(), aa.first()) {
                    walk(&format!("{path}[0]"), e0, a0);
                }
            }
            _ => {}
        }
    }
    walk("$", expected, actual);
}

impl TestSandbox {
    pub async fn start() -> Self {
        Self::start_with(SandboxOptions::default()).await
    }

    pub async fn start_in(dir: PathBuf) -> Self {
        Self::start_with(SandboxOptions {
            data_dir: Some(dir),
        })
        .await
    }

    pub async fn start_with(opts: SandboxOptions) -> Self {
        let sb = Sandbox::new(opts).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, sb.clone(), async move {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            sb,
            base: format!("http://{addr}"),
            control: ControlClient::with_http(format!("http://{addr}"), http.clone()),
            http,
            _stop: tx,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn read(resp: reqwest::Response) -> Resp {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        Self::read(self.http.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn get_q(&self, path: &str, query: &[(&str, &str)]) -> Resp {
        Self::read(
            self.http
                .get(self.url(path))
                .query(query)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        Self::read(
            self.http
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        Self::read(
            self.http
                .post(self.url(path))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_multipart(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        let boundary = "----sandboxboundary7MA4YWxkTrZu0gW";
        let mut body = String::new();
        for (k, v) in form {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        Self::read(
            self.http
                .post(self.url(path))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Registers an app through the typed control client; the answer as JSON, so that tests
    /// read `client_id` and `client_secret` as they read any other answer.
    pub async fn app(&self, spec: AppSpec) -> Value {
        let app = self.control.create_app(&spec).await.unwrap();
        serde_json::to_value(app).unwrap()
    }

    pub async fn user(&self, username: &str) -> Value {
        self.user_with(UserSpec::named(username)).await
    }

    pub async fn user_with(&self, spec: UserSpec) -> Value {
        let user = self.control.create_user(&spec).await.unwrap();
        serde_json::to_value(user).unwrap()
    }

    pub async fn advance(&self, secs: i64) {
        self.control.advance_clock(secs).await.unwrap();
    }

    /// Headless consent; returns the redirect location.
    pub async fn consent(&self, app: &Value, username: &str, scope: &str, state: &str) -> String {
        self.control
            .authorize(&Consent {
                client_id: app["client_id"].as_str().unwrap().to_owned(),
                redirect_uri: REDIRECT.into(),
                scope: scope.into(),
                state: Some(state.into()),
                username: Some(username.into()),
                decision: "allow".into(),
                granted_scopes: None,
            })
            .await
            .unwrap()
    }

    pub async fn code_for(&self, app: &Value, username: &str, scope: &str) -> String {
        let location = self.consent(app, username, scope, "st").await;
        code_from_location(&location)
    }

    pub async fn exchange(&self, app: &Value, code: &str) -> Resp {
        self.post_form(
            "/oauth/access_token",
            &[
                ("client_id", app["client_id"].as_str().unwrap()),
                ("client_secret", app["client_secret"].as_str().unwrap()),
                ("grant_type", "authorization_code"),
                ("redirect_uri", REDIRECT),
                ("code", code),
            ],
        )
        .await
    }

    pub async fn short_token(&self, app: &Value, username: &str, scope: &str) -> String {
        let code = self.code_for(app, username, scope).await;
        let r = self.exchange(app, &code).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn long_token(&self, app: &Value, username: &str, scope: &str) -> String {
        let short = self.short_token(app, username, scope).await;
        let r = self
            .get_q(
                "/access_token",
                &[
                    ("grant_type", "ig_exchange_token"),
                    ("client_secret", app["client_secret"].as_str().unwrap()),
                    ("access_token", &short),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// An app, a user with `media` posts, and a long-lived token with every scope.
    pub async fn connected(&self, media: u32) -> (Value, Value, String) {
        let app = self.app(spec()).await;
        let user = self
            .user_with(UserSpec::named("acme_shop").with_media(media))
            .await;
        let token = self.long_token(&app, "acme_shop", ALL_SCOPES).await;
        (app, user, token)
    }

    pub async fn graph(&self, path: &str, token: &str, query: &[(&str, &str)]) -> Resp {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        q.push(("access_token", token));
        self.get_q(path, &q).await
    }

    pub async fn graph_post(&self, path: &str, token: &str, form: &[(&str, &str)]) -> Resp {
        let mut f: Vec<(&str, &str)> = form.to_vec();
        f.push(("access_token", token));
        self.post_form(path, &f).await
    }

    pub async fn calls(&self, path: &str) -> Vec<Call> {
        self.control.calls_to(path).await.unwrap()
    }
}

/// An app redirecting to [`REDIRECT`], every other field at the sandbox's default.
pub fn spec() -> AppSpec {
    AppSpec::redirecting_to(REDIRECT)
}

/// A comment on the user's newest post from a generated commenter.
pub fn bare_comment() -> UserEvent {
    UserEvent::Comment {
        media_id: None,
        parent_id: None,
        text: None,
        from_username: None,
    }
}

/// A mention of the user by `from`.
pub fn mention_by(from: Option<&str>) -> UserEvent {
    UserEvent::Mention {
        media_id: None,
        text: None,
        from_username: from.map(str::to_owned),
    }
}

pub fn code_from_location(location: &str) -> String {
    assert!(location.ends_with("#_"), "{location}");
    let url = url::Url::parse(location).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

pub fn query_of(location: &str) -> Vec<(String, String)> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn assert_graph_error(r: &Resp, code: i64, subcode: Option<i64>) {
    let e = &r.body["error"];
    assert_eq!(e["code"], json!(code), "{}", r.text);
    assert_eq!(
        e.get("error_subcode").and_then(Value::as_i64),
        subcode,
        "{}",
        r.text
    );
    assert!(e["message"].is_string(), "{}", r.text);
    assert!(
        e["type"] == "OAuthException" || e["type"] == "IGApiException",
        "{}",
        r.text
    );
    assert!(
        e["fbtrace_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{}",
        r.text
    );
    assert!(e["is_transient"].is_boolean(), "{}", r.text);
}

/// A tiny app server that records what the sandbox POSTs to it (callbacks, webhooks).
pub struct Receiver {
    pub base: String,
    pub got: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    _stop: oneshot::Sender<()>,
}

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Receiver {
    pub async fn start() -> Self {
        use axum::extract::{Request, State};
        let got: std::sync::Arc<std::sync::Mutex<Vec<Received>>> = Default::default();
        async fn record(
            State(got): State<std::sync::Arc<std::sync::Mutex<Vec<Received>>>>,
            req: Request,
        ) -> axum::Json<Value> {
            let path = req.uri().path().to_owned();
            let headers = req.headers().clone();
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap()
                .to_vec();
            got.lock().unwrap().push(Received {
                path: path.clone(),
                headers,
                body,
            });
            if path.contains("deletion") {
                axum::Json(
                    json!({ "url": "https://app.example.com/deletion?id=abc123", "confirmation_code": "abc123" }),
                )
            } else {
                axum::Json(json!({ "ok": true }))
            }
        }
        let app = axum::Router::new().fallback(record).with_state(got.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        });
        Self {
            base: format!("http://{addr}"),
            got,
            _stop: tx,
        }
    }

    pub fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.got.lock().unwrap())
    }
}

pub fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// Verifies a signed_request the way Meta's sample code does; returns the payload.
pub fn verify_signed_request(sr: &str, secret: &str) -> Value {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (sig, payload) = sr.split_once('.').unwrap();
    let expected = hmac(secret.as_bytes(), payload.as_bytes());
    assert_eq!(
        URL_SAFE_NO_PAD.decode(sig).unwrap(),
        expected,
        "bad signature"
    );
    let v: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(
        v["algorithm"].as_str().unwrap().to_uppercase(),
        "HMAC-SHA256"
    );
    v
}
