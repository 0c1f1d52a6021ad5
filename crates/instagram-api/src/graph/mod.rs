//! Typed Graph API calls on `graph.instagram.com/{version}/…`.
//!
//! Ids are `&str` everywhere; `"me"` works wherever Instagram accepts it in place of the
//! professional account id.

pub mod comments;
pub mod insights;
pub mod media;
pub mod profile;
pub mod publish;
pub mod subscriptions;

/// `fields=a,b,c`, or the given default when the caller asked for nothing in particular.
pub(crate) fn fields_param(fields: &[&str], default: &str) -> (String, String) {
    let value = if fields.is_empty() {
        default.to_owned()
    } else {
        fields.join(",")
    };
    ("fields".to_owned(), value)
}

/// `{"id": "…"}`, the answer of every create call.
#[derive(serde::Deserialize)]
pub(crate) struct IdOnly {
    #[serde(deserialize_with = "crate::de::id")]
    pub id: String,
}
