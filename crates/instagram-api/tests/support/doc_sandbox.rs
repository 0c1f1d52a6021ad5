// Shared by the rustdoc examples (pulled in with a hidden `include!`): an `instagram-sandbox`
// on loopback with one app and one user, so that every flow's example really runs.

#[allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
mod doc_sandbox {
    use instagram_api::{AccessToken, AppCredentials, Callback, Client, ClientSecret, Config, parse_callback};
    use serde_json::{Value, json};

    pub const REDIRECT_URI: &str = "https://app.example.com/ig/callback";

    pub struct DocSandbox {
        pub sandbox: instagram_sandbox::Sandbox,
        pub base: url::Url,
        pub client: Client,
        pub app: AppCredentials,
        pub user: Value,
        http: reqwest::Client,
    }

    pub async fn start() -> DocSandbox {
        let sandbox = instagram_sandbox::Sandbox::new(instagram_sandbox::SandboxOptions::default()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base: url::Url = format!("http://{}/", listener.local_addr().unwrap()).parse().unwrap();
        tokio::spawn(instagram_sandbox::serve(listener, sandbox.clone(), std::future::pending()));
        let http = reqwest::Client::new();
        let post = |path: &str, body: Value| {
            let req = http.post(base.join(path).unwrap()).json(&body);
            async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
        };
        let app = post("_sandbox/apps", json!({ "redirect_uris": [REDIRECT_URI] })).await;
        let user = post("_sandbox/users", json!({ "username": "acme_shop", "media_count": 12 })).await;
        DocSandbox {
            client: Client::new(Config::for_base_url(base.clone())).unwrap(),
            app: AppCredentials {
                client_id: app["client_id"].as_str().unwrap().to_owned(),
                client_secret: ClientSecret::new(app["client_secret"].as_str().unwrap()),
            },
            sandbox,
            base,
            user,
            http,
        }
    }

    impl DocSandbox {
        pub async fn control(&self, path: &str, body: Value) -> Value {
            let req = self.http.post(self.base.join(path).unwrap()).json(&body);
            req.send().await.unwrap().json().await.unwrap()
        }

        /// What the browser comes back with after the user consents.
        pub async fn callback_url(&self, scope: &str) -> url::Url {
            let r = self
                .control(
                    "_sandbox/authorize",
                    json!({ "client_id": self.app.client_id, "redirect_uri": REDIRECT_URI, "scope": scope,
                            "state": "k9s8d7", "username": "acme_shop", "decision": "allow" }),
                )
                .await;
            r["location"].as_str().unwrap().parse().unwrap()
        }

        /// A long-lived token with every scope.
        pub async fn token(&self) -> AccessToken {
            let scope = "instagram_business_basic,instagram_business_content_publish,\
                         instagram_business_manage_comments,instagram_business_manage_insights,\
                         instagram_business_manage_messages";
            let Callback::Code { code, .. } = parse_callback(&self.callback_url(scope).await).unwrap() else {
                panic!("consent was given");
            };
            let short = self.client.exchange_code(&self.app, REDIRECT_URI, &code).await.unwrap();
            self.client.exchange_long_lived(&self.app.client_secret, &short.access_token).await.unwrap().access_token
        }

        pub fn advance(&self, secs: i64) {
            self.sandbox.clock().advance(secs);
        }

        /// Containers finish on the sandbox clock; keep it moving while real time passes.
        pub fn keep_clock_moving(&self) {
            let clock = self.sandbox.clock();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    clock.advance(1);
                }
            });
        }

        pub async fn comment(&self) -> (String, String) {
            let id = self.user["id"].as_str().or(self.user["user_id"].as_str()).unwrap();
            let r = self.control(&format!("_sandbox/users/{id}/events"), json!({ "kind": "comment", "text": "Nice!" })).await;
            (r["media_id"].as_str().unwrap().to_owned(), r["comment_id"].as_str().unwrap().to_owned())
        }
    }
}
