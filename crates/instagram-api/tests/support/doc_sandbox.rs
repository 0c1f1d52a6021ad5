// Shared by the rustdoc examples (pulled in with a hidden `include!`): an `instagram-sandbox`
// on loopback with one app and one user, so that every flow's example really runs.

#[allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
mod doc_sandbox {
    use instagram_api::{AccessToken, AppCredentials, Callback, Client, ClientSecret, Config, parse_callback};
    use instagram_sandbox::control_client::{AppSpec, Consent, ControlClient, SandboxUser, UserEvent, UserSpec};

    pub const REDIRECT_URI: &str = "https://app.example.com/ig/callback";

    pub struct DocSandbox {
        pub sandbox: instagram_sandbox::Sandbox,
        pub base: url::Url,
        pub client: Client,
        pub app: AppCredentials,
        pub user: SandboxUser,
        /// The sandbox's control API.
        pub sb: ControlClient,
    }

    pub async fn start() -> DocSandbox {
        let sandbox = instagram_sandbox::Sandbox::new(instagram_sandbox::SandboxOptions::default()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base: url::Url = format!("http://{addr}/").parse().unwrap();
        tokio::spawn(instagram_sandbox::serve(listener, sandbox.clone(), std::future::pending()));
        let sb = ControlClient::new(format!("http://{addr}"));
        let app = sb.create_app(&AppSpec::redirecting_to(REDIRECT_URI)).await.unwrap();
        let user = sb.create_user(&UserSpec::named("acme_shop").with_media(12)).await.unwrap();
        DocSandbox {
            client: Client::new(Config::for_base_url(base.clone())).unwrap(),
            app: AppCredentials {
                client_id: app.client_id,
                client_secret: ClientSecret::new(app.client_secret.unwrap()),
            },
            sandbox,
            base,
            user,
            sb,
        }
    }

    impl DocSandbox {
        /// What the browser comes back with after the user consents.
        pub async fn callback_url(&self, scope: &str) -> url::Url {
            let consent = Consent {
                client_id: self.app.client_id.clone(),
                redirect_uri: REDIRECT_URI.into(),
                scope: scope.into(),
                state: Some("k9s8d7".into()),
                username: Some("acme_shop".into()),
                decision: "allow".into(),
                granted_scopes: None,
            };
            self.sb.authorize(&consent).await.unwrap().parse().unwrap()
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

        /// A comment on the user's newest post: (media id, comment id).
        pub async fn comment(&self) -> (String, String) {
            let event = UserEvent::Comment { media_id: None, parent_id: None, text: Some("Nice!".into()), from_username: None };
            let r = self.sb.user_event(&self.user.id, &event).await.unwrap();
            (r["media_id"].as_str().unwrap().to_owned(), r["comment_id"].as_str().unwrap().to_owned())
        }
    }
}
