//! Webhook subscriptions of an account: `/me/subscribed_apps`.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::{Call, Client};
use crate::error::Error;
use crate::secrets::AccessToken;

/// An app subscribed to an account's webhooks.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SubscribedApp {
    /// App id, when Instagram sends it.
    #[serde(default, deserialize_with = "crate::de::opt_id")]
    pub id: Option<String>,
    /// App name, when Instagram sends it.
    #[serde(default)]
    pub name: Option<String>,
    /// Fields the app receives, e.g. `comments`, `messages`.
    #[serde(default, deserialize_with = "crate::de::permissions")]
    pub subscribed_fields: Vec<String>,
    /// Anything else Instagram sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Deserialize)]
struct AppsEnvelope {
    #[serde(default)]
    data: Vec<SubscribedApp>,
}

impl Client {
    /// `POST /{ig-user-id}/subscribed_apps?subscribed_fields=…` — turns on webhooks for the
    /// account (the app's webhook fields must be configured in the App Dashboard as well).
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/doc_sandbox.rs"));
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let sb = doc_sandbox::start().await;
    /// # let client = sb.client.clone();
    /// # let token = sb.token().await;
    /// client.subscribe_app(&token, "me", &["comments", "messages"]).await?;
    /// let apps = client.subscribed_apps(&token, "me").await?;
    /// assert!(apps.iter().any(|a| a.subscribed_fields.iter().any(|f| f == "comments")));
    /// # Ok(()) }
    /// ```
    pub async fn subscribe_app(
        &self,
        token: &AccessToken,
        ig_user_id: &str,
        fields: &[&str],
    ) -> Result<(), Error> {
        if fields.is_empty() {
            return Err(Error::invalid_request(
                "at least one subscribed field is required",
            ));
        }
        let url = self.graph_url(&[ig_user_id, "subscribed_apps"])?;
        // Documented with the fields in the query string of the POST.
        let call = Call {
            op: "subscribe_app",
            method: Method::POST,
            url,
            query: vec![("subscribed_fields".to_owned(), fields.join(","))],
            form: None,
            token: Some(token),
            extra_secrets: Vec::new(),
        };
        self.send(call).await?.success("subscribe_app")
    }

    /// `GET /{ig-user-id}/subscribed_apps`.
    pub async fn subscribed_apps(
        &self,
        token: &AccessToken,
        ig_user_id: &str,
    ) -> Result<Vec<SubscribedApp>, Error> {
        let env: AppsEnvelope = self
            .graph(
                "subscribed_apps",
                Method::GET,
                token,
                &[ig_user_id, "subscribed_apps"],
                Vec::new(),
            )
            .await?;
        Ok(env.data)
    }

    /// `DELETE /{ig-user-id}/subscribed_apps` — turns webhooks off for the account.
    pub async fn unsubscribe_app(
        &self,
        token: &AccessToken,
        ig_user_id: &str,
    ) -> Result<(), Error> {
        self.graph_success(
            "unsubscribe_app",
            Method::DELETE,
            token,
            &[ig_user_id, "subscribed_apps"],
            Vec::new(),
        )
        .await
    }
}
