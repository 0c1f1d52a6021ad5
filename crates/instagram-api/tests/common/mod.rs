//! A tiny scripted HTTP server on 127.0.0.1:0 for wire-format checks and for error paths the
//! sandbox cannot produce (usage headers, malformed bodies, 5xx, redirects, slow answers).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use instagram_api::{Client, Config};

/// `{{echo}}` in a canned body is replaced by everything the request carried (query, body,
/// Authorization header), JSON-escaped: a hostile server that reflects secrets.
pub const ECHO: &str = "{{echo}}";

#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Option<Duration>,
}

impl Canned {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            delay: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: String,
}

impl Recorded {
    pub fn query_value(&self, key: &str) -> Option<String> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }

    pub fn form_value(&self, key: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn bearer(&self) -> Option<String> {
        self.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
    }
}

#[derive(Default)]
struct Inner {
    routes: HashMap<(String, String), VecDeque<Canned>>,
    requests: Vec<Recorded>,
}

#[derive(Clone)]
pub struct Mock {
    pub base: url::Url,
    inner: Arc<Mutex<Inner>>,
}

impl Mock {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base: format!("http://{addr}/").parse().unwrap(),
            inner,
        }
    }

    /// Runs the server on its own thread with logging switched off there, so that a test
    /// capturing log lines sees only the client's (the server itself sees every secret).
    pub fn start_isolated() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _quiet =
                tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv().unwrap();
        Self {
            base: format!("http://{addr}/").parse().unwrap(),
            inner,
        }
    }

    /// Queues answers for `METHOD path`; the last one keeps being served.
    pub fn on(&self, method: &str, path: &str, canned: Canned) -> &Self {
        self.inner
            .lock()
            .unwrap()
            .routes
            .entry((method.to_owned(), path.to_owned()))
            .or_default()
            .push_back(canned);
        self
    }

    /// Replaces whatever was scripted for `METHOD path`.
    pub fn set(&self, method: &str, path: &str, canned: Canned) -> &Self {
        self.inner.lock().unwrap().routes.insert(
            (method.to_owned(), path.to_owned()),
            VecDeque::from([canned]),
        );
        self
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub fn last(&self) -> Recorded {
        self.requests().pop().expect("a request was made")
    }

    pub fn config(&self) -> Config {
        let mut c = Config::for_base_url(self.base.clone());
        c.connect_timeout = Duration::from_secs(2);
        c.request_timeout = Duration::from_secs(5);
        c
    }

    pub fn client(&self) -> Client {
        Client::new(self.config()).unwrap()
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query,
        headers: headers.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let canned = {
        let mut inner = inner.lock().unwrap();
        inner.requests.push(recorded.clone());
        let queue = inner
            .routes
            .get_mut(&(method.to_string(), uri.path().to_owned()));
        match queue {
            Some(q) if q.len() > 1 => q.pop_front(),
            Some(q) => q.front().cloned(),
            None => None,
        }
    };
    let Some(canned) = canned else {
        return (
            StatusCode::NOT_FOUND,
            format!("no route for {method} {}", uri.path()),
        )
            .into_response();
    };
    if let Some(d) = canned.delay {
        tokio::time::sleep(d).await;
    }
    let echo = format!(
        "query={} body={} auth={}",
        uri.query().unwrap_or_default(),
        recorded.body,
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    );
    let echo = serde_json::to_string(&echo).unwrap();
    let body = canned.body.replace(ECHO, echo.trim_matches('"'));
    let mut response = (StatusCode::from_u16(canned.status).unwrap(), body).into_response();
    for (k, v) in canned.headers {
        response.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(&v.replace(ECHO, &echo)).unwrap_or(HeaderValue::from_static("x")),
        );
    }
    response
}

/// A loopback port where nothing listens, kept so for as long as the returned socket lives.
///
/// The socket is bound but does not listen: a connection to it is refused at once, and no other
/// socket can take the port meanwhile (it is bound without `SO_REUSEADDR`). A port bound,
/// dropped and assumed still free could be taken by any process in between.
pub fn closed_port() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}
