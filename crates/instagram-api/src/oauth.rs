//! Business Login for Instagram: the authorize URL, the redirect back, the code exchange.

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::client::{Call, Client};
use crate::error::Error;
use crate::secrets::{AccessToken, AuthorizationCode, ClientSecret};

/// The Instagram app: its **Instagram** App ID and App Secret (not the Meta app's).
#[derive(Debug, Clone)]
pub struct AppCredentials {
    /// Instagram App ID.
    pub client_id: String,
    /// Instagram App Secret.
    pub client_secret: ClientSecret,
}

/// What goes into the authorize URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// Instagram App ID.
    pub client_id: String,
    /// Must equal a registered redirect URI exactly, and the one later used in the exchange.
    pub redirect_uri: String,
    /// Permissions such as `instagram_business_basic` (sent comma-separated).
    pub scopes: Vec<String>,
    /// Opaque CSRF value echoed back on the redirect.
    pub state: String,
    /// `enable_fb_login=1|0`: allow signing in through a linked Facebook account.
    pub enable_fb_login: Option<bool>,
    /// Make the user enter credentials again. Sent both as `force_reauth=true|false` and as
    /// `force_authentication=1|0`, since both spellings are in use.
    pub force_reauth: Option<bool>,
}

/// The short-lived (1 hour) token from the code exchange.
#[derive(Debug, Clone)]
pub struct ShortLivedToken {
    /// The token; exchange it with [`Client::exchange_long_lived`] within the hour.
    pub access_token: AccessToken,
    /// The app-scoped user id, as exact decimal digits (the same as `/me`'s `id`).
    pub user_id: String,
    /// Granted permissions (possibly fewer than requested).
    pub permissions: Vec<String>,
}

/// The redirect back from the authorize page, parsed.
#[derive(Debug, Clone)]
pub enum Callback {
    /// Consent given.
    Code {
        /// The code, with Instagram's `#_` suffix removed.
        code: AuthorizationCode,
        /// The echoed `state`.
        state: Option<String>,
    },
    /// Consent refused or the flow failed.
    Denied {
        /// `error`, e.g. `access_denied`.
        error: String,
        /// `error_reason`, e.g. `user_denied`.
        error_reason: Option<String>,
        /// `error_description`, e.g. "The user denied your request".
        error_description: Option<String>,
        /// The echoed `state`.
        state: Option<String>,
    },
}

impl Callback {
    /// The echoed `state` of either outcome.
    pub fn state(&self) -> Option<&str> {
        match self {
            Self::Code { state, .. } | Self::Denied { state, .. } => state.as_deref(),
        }
    }
}

/// Parses Instagram's redirect back to the app.
///
/// ```
/// use instagram_api::{parse_callback, Callback};
///
/// let url = "https://app.example.com/ig/callback?code=AQBx-hBsH3abcdefg&state=k9s8d7#_".parse()?;
/// let Callback::Code { code, state } = parse_callback(&url)? else { unreachable!() };
/// assert_eq!(code.expose_secret(), "AQBx-hBsH3abcdefg");
/// assert_eq!(state.as_deref(), Some("k9s8d7"));
///
/// let url = "https://app.example.com/ig/callback?error=access_denied&error_reason=user_denied\
///            &error_description=The+user+denied+your+request&state=k9s8d7".parse()?;
/// let Callback::Denied { error, error_description, .. } = parse_callback(&url)? else { unreachable!() };
/// assert_eq!(error, "access_denied");
/// assert_eq!(error_description.as_deref(), Some("The user denied your request"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_callback(url: &Url) -> Result<Callback, Error> {
    parse_callback_query(url.query().unwrap_or_default())
}

/// Like [`parse_callback`], for a bare query string (what a web framework hands over).
pub fn parse_callback_query(query: &str) -> Result<Callback, Error> {
    let query = query.strip_prefix('?').unwrap_or(query);
    // A fragment is never part of the query; some frameworks pass it along anyway.
    let query = query.split('#').next().unwrap_or_default();
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut error_reason = None;
    let mut error_description = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            "code" => &mut code,
            "state" => &mut state,
            "error" => &mut error,
            "error_reason" => &mut error_reason,
            "error_description" => &mut error_description,
            _ => continue,
        };
        if slot.is_some() {
            return Err(invalid_callback(format!("parameter {k} appears twice")));
        }
        *slot = Some(v.into_owned());
    }
    match (code, error) {
        (Some(_), Some(_)) => Err(invalid_callback("both code and error present")),
        (Some(code), None) => {
            let code = code.strip_suffix("#_").unwrap_or(&code);
            let code = code.split('#').next().unwrap_or_default();
            if code.is_empty() {
                return Err(invalid_callback("empty code"));
            }
            Ok(Callback::Code {
                code: AuthorizationCode::new(code),
                state,
            })
        }
        (None, Some(error)) => Ok(Callback::Denied {
            error,
            error_reason,
            error_description,
            state,
        }),
        (None, None) => Err(invalid_callback("neither code nor error present")),
    }
}

fn invalid_callback(reason: impl Into<String>) -> Error {
    Error::InvalidCallback {
        reason: reason.into(),
    }
}

impl Client {
    /// The URL to send the user's browser to.
    ///
    /// ```
    /// use instagram_api::{AuthorizeRequest, Client, Config};
    ///
    /// let client = Client::new(Config::default())?;
    /// let url = client.authorize_url(&AuthorizeRequest {
    ///     client_id: "990602627938098".into(),
    ///     redirect_uri: "https://broker.example.com/oauth/callback".into(),
    ///     scopes: vec!["instagram_business_basic".into(), "instagram_business_content_publish".into()],
    ///     state: "k9s8d7".into(),
    ///     force_reauth: Some(true),
    ///     ..Default::default()
    /// });
    /// assert_eq!(
    ///     url.as_str(),
    ///     "https://www.instagram.com/oauth/authorize?client_id=990602627938098\
    ///      &redirect_uri=https%3A%2F%2Fbroker.example.com%2Foauth%2Fcallback&response_type=code\
    ///      &scope=instagram_business_basic%2Cinstagram_business_content_publish&state=k9s8d7\
    ///      &force_reauth=true&force_authentication=1"
    /// );
    /// # Ok::<(), instagram_api::Error>(())
    /// ```
    pub fn authorize_url(&self, req: &AuthorizeRequest) -> Url {
        let mut url = self.config().authorize_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &req.client_id)
                .append_pair("redirect_uri", &req.redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("scope", &req.scopes.join(","));
            if !req.state.is_empty() {
                q.append_pair("state", &req.state);
            }
            if let Some(v) = req.enable_fb_login {
                q.append_pair("enable_fb_login", if v { "1" } else { "0" });
            }
            if let Some(v) = req.force_reauth {
                q.append_pair("force_reauth", if v { "true" } else { "false" })
                    .append_pair("force_authentication", if v { "1" } else { "0" });
            }
        }
        url
    }

    /// Exchanges the authorization code for a short-lived token (`POST token_url`, form
    /// fields). Accepts the flat answer and the documented `data[]` envelope, `permissions`
    /// as a string or an array, and `user_id` as a number or a string, digit for digit.
    ///
    /// Codes are single-use: an [`Error::OAuth`] here is final for that code.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/doc_sandbox.rs"));
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let sb = doc_sandbox::start().await;
    /// # let client = sb.client.clone();
    /// # let app = sb.app.clone();
    /// # let redirect_uri = doc_sandbox::REDIRECT_URI;
    /// # let callback_url = sb.callback_url("instagram_business_basic").await;
    /// use instagram_api::{parse_callback, Callback};
    ///
    /// // `callback_url` is where Instagram sent the browser back to.
    /// if let Callback::Code { code, .. } = parse_callback(&callback_url)? {
    ///     let short = client.exchange_code(&app, redirect_uri, &code).await?;
    ///     assert!(short.user_id.bytes().all(|b| b.is_ascii_digit()));
    ///     assert_eq!(short.permissions, ["instagram_business_basic"]);
    ///
    ///     let long = client.exchange_long_lived(&app.client_secret, &short.access_token).await?;
    ///     assert!(long.expires_in > 5_000_000); // about 60 days
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn exchange_code(
        &self,
        app: &AppCredentials,
        redirect_uri: &str,
        code: &AuthorizationCode,
    ) -> Result<ShortLivedToken, Error> {
        let form = vec![
            ("client_id".to_owned(), app.client_id.clone()),
            (
                "client_secret".to_owned(),
                app.client_secret.expose_secret().to_owned(),
            ),
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("redirect_uri".to_owned(), redirect_uri.to_owned()),
            ("code".to_owned(), code.expose_secret().to_owned()),
        ];
        let secrets = [app.client_secret.expose_secret(), code.expose_secret()];
        let call = Call {
            op: "exchange_code",
            method: Method::POST,
            url: self.config().token_url.clone(),
            query: Vec::new(),
            form: Some(form),
            token: None,
            extra_secrets: secrets.to_vec(),
        };
        let reply = self.send(call).await?;
        let status = reply.status;
        let body = unwrap_data_envelope(reply.body);
        let wire: ShortLivedWire =
            serde_json::from_value(body).map_err(|e| Error::decode(status, &e, &secrets))?;
        Ok(ShortLivedToken {
            access_token: wire.access_token,
            user_id: wire.user_id,
            permissions: wire.permissions,
        })
    }
}

/// `{"data": [ {...} ]}` → `{...}`; anything else is returned unchanged.
fn unwrap_data_envelope(body: Value) -> Value {
    match body {
        Value::Object(mut map) if !map.contains_key("access_token") => match map.remove("data") {
            Some(Value::Array(mut items)) if !items.is_empty() => items.swap_remove(0),
            Some(Value::Object(inner)) => Value::Object(inner),
            Some(other) => {
                map.insert("data".into(), other);
                Value::Object(map)
            }
            None => Value::Object(map),
        },
        other => other,
    }
}

#[derive(Deserialize)]
struct ShortLivedWire {
    access_token: AccessToken,
    #[serde(deserialize_with = "crate::de::id")]
    user_id: String,
    #[serde(default, deserialize_with = "crate::de::permissions")]
    permissions: Vec<String>,
}

/// Decodes a code-exchange success body in either documented shape (exposed for tests and
/// for callers that receive the body some other way).
///
/// ```
/// let flat = br#"{"access_token":"IGAAx","user_id":27640875392278831,"permissions":["instagram_business_basic"]}"#;
/// let t = instagram_api::decode_short_lived_token(flat)?;
/// assert_eq!(t.user_id, "27640875392278831");
/// # Ok::<(), instagram_api::Error>(())
/// ```
pub fn decode_short_lived_token(body: &[u8]) -> Result<ShortLivedToken, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Error::decode(200, &e, &[]))?;
    let wire: ShortLivedWire = serde_json::from_value(unwrap_data_envelope(value))
        .map_err(|e| Error::decode(200, &e, &[]))?;
    Ok(ShortLivedToken {
        access_token: wire.access_token,
        user_id: wire.user_id,
        permissions: wire.permissions,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn callback_variants() {
        let c = parse_callback_query("code=abc%23_&state=s").unwrap();
        assert!(matches!(c, Callback::Code { ref code, .. } if code.expose_secret() == "abc"));
        let c = parse_callback_query("?code=abc#_").unwrap();
        assert!(
            matches!(c, Callback::Code { ref code, state: None } if code.expose_secret() == "abc")
        );
        let c = parse_callback_query("error=access_denied").unwrap();
        assert!(
            matches!(c, Callback::Denied { ref error, state: None, .. } if error == "access_denied")
        );
        for bad in ["", "state=x", "code=", "code=a&error=b", "code=a&code=b"] {
            let e = parse_callback_query(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidCallback { .. }), "{bad}");
        }
        let e = parse_callback_query("code=SECRETCODE&code=SECRETCODE").unwrap_err();
        assert!(!format!("{e} {e:?}").contains("SECRETCODE"));
    }

    #[test]
    fn authorize_url_flags() {
        let client = Client::new(crate::Config::default()).unwrap();
        let url = client.authorize_url(&AuthorizeRequest {
            client_id: "1".into(),
            redirect_uri: "https://x/cb".into(),
            scopes: vec!["a".into()],
            state: "s".into(),
            enable_fb_login: Some(false),
            force_reauth: Some(false),
        });
        let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(q.contains(&("enable_fb_login".into(), "0".into())));
        assert!(q.contains(&("force_reauth".into(), "false".into())));
        assert!(q.contains(&("force_authentication".into(), "0".into())));
        assert!(q.contains(&("response_type".into(), "code".into())));
    }
}
