//! Values that must never be printed: access tokens, authorization codes, app secrets.
//!
//! Each type keeps its value in a [`secrecy::SecretString`] (zeroed on drop), prints as
//! `AccessToken(<redacted>)`, has no `Display`, no `Serialize` and no `PartialEq` (comparing
//! secrets with `==` leaks timing), and offers exactly one way to read the value:
//! `expose_secret()`.

use std::fmt;

use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a value; the original `String` is moved, not copied.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The secret itself. Call it only where the value goes onto the wire or into
            /// encrypted storage.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::new(value)
            }
        }

        impl From<SecretString> for $name {
            fn from(value: SecretString) -> Self {
                Self(value)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                SecretString::deserialize(d).map(Self)
            }
        }
    };
}

secret_type!(
    /// An Instagram user access token (short- or long-lived).
    ///
    /// ```
    /// use instagram_api::AccessToken;
    ///
    /// let token = AccessToken::new("IGAAsecret");
    /// assert_eq!(format!("{token:?}"), "AccessToken(<redacted>)");
    /// assert_eq!(token.expose_secret(), "IGAAsecret");
    /// ```
    AccessToken
);

secret_type!(
    /// The one-time `code` Instagram appends to the redirect URI after consent.
    AuthorizationCode
);

secret_type!(
    /// The Instagram App Secret (not the Meta app secret).
    ClientSecret
);

/// `appsecret_proof`: lowercase hex HMAC-SHA256 of the access token keyed with the app secret.
///
/// Needed on `graph.facebook.com` when the app requires it; not documented for
/// `graph.instagram.com`. See [`crate::Client::with_appsecret_proof`].
///
/// ```
/// use instagram_api::{appsecret_proof, AccessToken, ClientSecret};
///
/// let proof = appsecret_proof(&ClientSecret::new("secret"), &AccessToken::new("token"));
/// assert_eq!(proof.len(), 64);
/// ```
pub fn appsecret_proof(secret: &ClientSecret, token: &AccessToken) -> String {
    match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose_secret().as_bytes()) {
        Ok(mut mac) => {
            mac.update(token.expose_secret().as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC accepts keys of any length, so this arm is never taken.
        Err(_) => String::new(),
    }
}

/// Replaces every occurrence of the given secrets, and anything shaped like an Instagram or
/// Facebook token, with `[REDACTED]`.
///
/// Instagram does not echo tokens in error messages, but errors travel far (logs, API
/// responses of the broker), so every message that leaves this crate goes through here.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        // Very short values would redact ordinary words; real secrets are long.
        if secret.len() < 4 {
            continue;
        }
        // A server may reflect the value as it travelled: form- or percent-encoded.
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let percent = form.replace('+', "%20");
        for variant in [*secret, form.as_str(), percent.as_str()] {
            if out.contains(variant) {
                out = out.replace(variant, "[REDACTED]");
            }
        }
    }
    scrub_token_shapes(&out)
}

/// Token prefixes: IGAA (Instagram Login), IGQV/IGQW (Basic Display), EAA (Facebook).
const TOKEN_PREFIXES: &[&str] = &["IGAA", "IGQV", "IGQW", "EAA"];
const MIN_TOKEN_LEN: usize = 24;

fn scrub_token_shapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.len() >= MIN_TOKEN_LEN && TOKEN_PREFIXES.iter().any(|p| word.starts_with(p)) {
            out.push_str("[REDACTED]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let t = AccessToken::new("IGAAtoken");
        let c = AuthorizationCode::new("AQBcode");
        let s = ClientSecret::new("appsecret");
        assert_eq!(format!("{t:?}"), "AccessToken(<redacted>)");
        assert_eq!(format!("{c:?}"), "AuthorizationCode(<redacted>)");
        assert_eq!(format!("{s:?}"), "ClientSecret(<redacted>)");
        assert_eq!(format!("{:#?}", Some(t.clone())).matches("IGAA").count(), 0);
    }

    #[test]
    fn proof_matches_known_vector() {
        // echo -n token | openssl dgst -sha256 -hmac secret
        let p = appsecret_proof(&ClientSecret::new("secret"), &AccessToken::new("token"));
        assert_eq!(
            p,
            "e941110e3d2bfe82621f0e3e1434730d7305d106c5f68c87165d0b27a4611a4a"
        );
    }

    #[test]
    fn scrub_removes_known_and_shaped_tokens() {
        let s = scrub("bad token abcdef123 here", &["abcdef123"]);
        assert_eq!(s, "bad token [REDACTED] here");
        let s = scrub("token IGAAxyzxyzxyzxyzxyzxyzxyzxyz, ok", &[]);
        assert_eq!(s, "token [REDACTED], ok");
        let s = scrub("echo a%2Fb%3Dc and a/b=c", &["a/b=c"]);
        assert_eq!(s, "echo [REDACTED] and [REDACTED]");
        let s = scrub("(#100) Invalid parameter", &[""]);
        assert_eq!(s, "(#100) Invalid parameter");
    }
}
