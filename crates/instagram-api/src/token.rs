//! Long-lived tokens: the short → long exchange and the refresh.

use reqwest::Method;
use serde::Deserialize;

use crate::client::{Call, Client};
use crate::error::Error;
use crate::secrets::{AccessToken, ClientSecret};

/// A long-lived (about 60 days) token.
#[derive(Debug, Clone, Deserialize)]
pub struct LongLivedToken {
    /// The token. A refresh may return the same string or a new one: store whatever comes.
    pub access_token: AccessToken,
    /// `bearer` when sent; not every answer has it.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Seconds until expiry, counted from this answer.
    #[serde(deserialize_with = "crate::de::i64_lenient")]
    pub expires_in: i64,
}

impl Client {
    /// Exchanges a short-lived token for a long-lived one:
    /// `GET {graph_url}/access_token?grant_type=ig_exchange_token` (no version prefix).
    ///
    /// The short-lived token must still be valid (it lives one hour).
    pub async fn exchange_long_lived(
        &self,
        client_secret: &ClientSecret,
        short: &AccessToken,
    ) -> Result<LongLivedToken, Error> {
        let query = vec![
            ("grant_type".to_owned(), "ig_exchange_token".to_owned()),
            (
                "client_secret".to_owned(),
                client_secret.expose_secret().to_owned(),
            ),
            ("access_token".to_owned(), short.expose_secret().to_owned()),
        ];
        let secrets = vec![client_secret.expose_secret(), short.expose_secret()];
        self.token_call("exchange_long_lived", "access_token", query, secrets)
            .await
    }

    /// Refreshes a long-lived token:
    /// `GET {graph_url}/refresh_access_token?grant_type=ig_refresh_token` (no version prefix).
    ///
    /// Instagram refuses tokens younger than 24 hours and can never refresh an expired one
    /// ([`Error::Reauth`] with [`crate::ReauthReason::Expired`]).
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/doc_sandbox.rs"));
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let sb = doc_sandbox::start().await;
    /// # let client = sb.client.clone();
    /// # let stored = sb.token().await;
    /// # sb.advance(25 * 3600);
    /// match client.refresh(&stored).await {
    ///     Ok(fresh) => println!("valid for another {} s", fresh.expires_in),
    ///     Err(e) if e.requires_reauth() => println!("the user must log in again"),
    ///     Err(e) if e.is_transient() => println!("try again in {:?}", e.retry_after()),
    ///     Err(e) => return Err(e.into()),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn refresh(&self, token: &AccessToken) -> Result<LongLivedToken, Error> {
        let query = vec![
            ("grant_type".to_owned(), "ig_refresh_token".to_owned()),
            ("access_token".to_owned(), token.expose_secret().to_owned()),
        ];
        self.token_call(
            "refresh",
            "refresh_access_token",
            query,
            vec![token.expose_secret()],
        )
        .await
    }

    async fn token_call(
        &self,
        op: &'static str,
        endpoint: &str,
        query: Vec<(String, String)>,
        secrets: Vec<&str>,
    ) -> Result<LongLivedToken, Error> {
        let url = self.graph_url_unversioned(&[endpoint])?;
        let call = Call {
            op,
            method: Method::GET,
            url,
            query,
            form: None,
            token: None,
            extra_secrets: secrets.clone(),
        };
        self.send(call).await?.decode(&secrets)
    }
}

/// Decodes a long-lived exchange or refresh answer.
///
/// ```
/// let t = instagram_api::decode_long_lived_token(br#"{"access_token":"IGAAx","expires_in":5183944}"#)?;
/// assert_eq!(t.expires_in, 5183944);
/// assert_eq!(t.token_type, None);
/// # Ok::<(), instagram_api::Error>(())
/// ```
pub fn decode_long_lived_token(body: &[u8]) -> Result<LongLivedToken, Error> {
    serde_json::from_slice(body).map_err(|e| Error::decode(200, &e, &[]))
}
