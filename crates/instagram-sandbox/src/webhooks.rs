//! The sandbox as Meta's webhook sender for Instagram.
//!
//! `POST /_sandbox/apps/{client_id}/webhooks {callback_url, verify_token, fields[]}` is the
//! dashboard's "Verify and save": Meta calls
//! `GET callback_url?hub.mode=subscribe&hub.challenge=…&hub.verify_token=…` and saves the
//! subscription only when the answer is 200 with the challenge as its body. Events are then
//! POSTed there as the single-object form (`{"object":"instagram","entry":[…]}`) signed with
//! `X-Hub-Signature-256: sha256=<HMAC-SHA256(app secret, raw body)>`, for accounts whose token
//! enabled the field with `POST /me/subscribed_apps`.
//!
//! The verify token is used for the verification call only and is not kept.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Sandbox;
use crate::control::{StrList, body};
use crate::errors::ControlError;
use crate::state::{App, State as SbState, pair_key};

/// Every field an Instagram-login app can subscribe to (the `subscribed_apps` list).
pub const FIELDS: [&str; 12] = [
    "comments",
    "live_comments",
    "mentions",
    "messages",
    "message_reactions",
    "messaging_postbacks",
    "messaging_seen",
    "messaging_referral",
    "messaging_optins",
    "messaging_handover",
    "standby",
    "story_insights",
];

/// The most of a callback's answer quoted back in an error.
const QUOTE_MAX: usize = 64;

#[derive(Debug, Deserialize)]
pub struct Subscribe {
    callback_url: String,
    verify_token: String,
    fields: StrList,
}

fn parse_fields(list: &StrList) -> Result<Vec<String>, ControlError> {
    let mut fields: Vec<String> = Vec::new();
    for f in list
        .joined()
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
    {
        if !FIELDS.contains(&f) {
            return Err(ControlError::bad_request(format!(
                "fields: {f:?} is not an Instagram webhook field (one of {})",
                FIELDS.join(", ")
            )));
        }
        if !fields.iter().any(|x| x == f) {
            fields.push(f.to_owned());
        }
    }
    if fields.is_empty() {
        return Err(ControlError::bad_request(
            "fields: name at least one webhook field, e.g. [\"comments\"]",
        ));
    }
    Ok(fields)
}

fn verify_failed(status: StatusCode, message: impl Into<String>) -> ControlError {
    ControlError {
        status,
        message: format!("The URL couldn't be validated. {}", message.into()),
    }
}

fn quote(text: &str) -> String {
    let cut: String = text.chars().take(QUOTE_MAX).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// Verifies the callback as Meta does, then saves the subscription on the app.
pub async fn subscribe(
    State(sb): State<Sandbox>,
    Path(client_id): Path<String>,
    b: Result<Json<Subscribe>, JsonRejection>,
) -> Result<Json<Value>, ControlError> {
    let req = body(b)?;
    let fields = parse_fields(&req.fields)?;
    if req.verify_token.is_empty() {
        return Err(ControlError::bad_request("verify_token must not be empty"));
    }
    let mut url = url::Url::parse(&req.callback_url).map_err(|e| {
        ControlError::bad_request(format!(
            "callback_url: {:?} is not a URL ({e})",
            req.callback_url
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.fragment().is_some() {
        return Err(ControlError::bad_request(
            "callback_url must be an http(s) URL without a fragment",
        ));
    }
    if !sb.read(|st| st.apps.contains_key(&client_id)) {
        return Err(ControlError::not_found(format!(
            "no app with client_id {client_id}"
        )));
    }

    let challenge = rand::random_range(100_000_000u64..10_000_000_000u64).to_string();
    url.query_pairs_mut()
        .append_pair("hub.mode", "subscribe")
        .append_pair("hub.challenge", &challenge)
        .append_pair("hub.verify_token", &req.verify_token);
    let resp = sb.inner.http.get(url).send().await.map_err(|e| {
        // The URL carries the verify token: it is dropped from the error.
        verify_failed(
            StatusCode::BAD_GATEWAY,
            format!("The callback could not be reached: {}", e.without_url()),
        )
    })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status != reqwest::StatusCode::OK {
        return Err(verify_failed(
            StatusCode::BAD_REQUEST,
            format!(
                "Callback verification failed: the callback answered HTTP {}",
                status.as_u16()
            ),
        ));
    }
    if text.trim() != challenge {
        return Err(verify_failed(
            StatusCode::BAD_REQUEST,
            format!(
                "Response does not match challenge, expected value=\"{challenge}\", received=\"{}\"",
                quote(&text)
            ),
        ));
    }

    let callback_url = req.callback_url.clone();
    let saved = sb.write(|st| {
        let app = st.apps.get_mut(&client_id)?;
        app.webhook_url = Some(callback_url.clone());
        app.webhook_fields.clone_from(&fields);
        Some(subscription_json(app))
    });
    saved
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.insert("success".into(), json!(true));
            }
            Json(v)
        })
        .ok_or_else(|| ControlError::not_found(format!("no app with client_id {client_id}")))
}

fn subscription_json(app: &App) -> Value {
    json!({
        "client_id": app.client_id,
        "callback_url": app.webhook_url,
        "fields": app.webhook_fields,
    })
}

/// `GET /_sandbox/apps/{client_id}/webhooks`: the saved subscription.
pub async fn subscription(
    State(sb): State<Sandbox>,
    Path(client_id): Path<String>,
) -> Result<Json<Value>, ControlError> {
    sb.read(|st| st.apps.get(&client_id).map(subscription_json))
        .map(Json)
        .ok_or_else(|| ControlError::not_found(format!("no app with client_id {client_id}")))
}

/// The apps that receive `field` for this account: the app's subscription names the field
/// and the account's token enabled it with `subscribed_apps`.
pub fn recipients(st: &SbState, user_id: &str, field: &str) -> Vec<App> {
    st.apps
        .values()
        .filter(|app| app.wants_field(field))
        .filter(|app| {
            st.subscriptions
                .get(&pair_key(&app.client_id, user_id))
                .is_some_and(|fields| fields.iter().any(|f| f == field))
        })
        .cloned()
        .collect()
}

/// The single-object body Meta POSTs: one entry for the account, one change.
pub fn change_payload(ig_user_id: &str, time: i64, field: &str, value: Value) -> Value {
    json!({
        "object": "instagram",
        "entry": [{
            "id": ig_user_id,
            "time": time,
            "changes": [{ "field": field, "value": value }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_checked_and_deduplicated() {
        let ok = parse_fields(&StrList::One("comments, mentions,comments".into()));
        assert_eq!(
            ok.ok(),
            Some(vec!["comments".to_owned(), "mentions".to_owned()])
        );
        assert!(parse_fields(&StrList::Many(vec!["feed".into()])).is_err());
        assert!(parse_fields(&StrList::Many(vec![])).is_err());
    }

    #[test]
    fn long_answers_are_cut() {
        let long = "x".repeat(200);
        assert_eq!(quote(&long).chars().count(), QUOTE_MAX + 1);
        assert_eq!(quote("abc"), "abc");
    }
}
