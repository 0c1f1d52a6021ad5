//! The page a browser lands on after Instagram's redirect when the session has no
//! return URL: written for the person who just logged in, as Instagram's own pages
//! are: the app's name, the account, what happens next, and a way back.

use askama::Template;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::render;
use crate::service::connect::Outcome;
use crate::service::{accounts, apps, connect};
use crate::state::AppState;
use igbroker_core::ConnectSessionStatus;

#[derive(Template)]
#[template(path = "ui/result.html")]
struct ResultPage {
    heading: String,
    app_name: String,
    username: Option<String>,
    explanation: String,
    next_steps: Vec<String>,
    back_url: Option<String>,
    session_id: String,
    status: String,
    account_id: Option<String>,
    /// A failure's code, and the longer explanation some codes have.
    error: Option<String>,
    error_description: Option<&'static str>,
}

pub async fn page(state: &AppState, headers: &HeaderMap, o: &Outcome) -> Response {
    let session = connect::get(state, &o.session_id).await.ok();
    let app_name = match &session {
        Some(s) => apps::get(state, &s.app_id)
            .await
            .map(|a| a.name)
            .unwrap_or_else(|_| "the app".into()),
        None => "the app".into(),
    };
    let username = match &o.account_id {
        Some(id) => accounts::get(state, id).await.ok().and_then(|a| a.username),
        None => None,
    };
    let (heading, explanation, next_steps) = match o.status {
        ConnectSessionStatus::Connected => (
            "Your Instagram account is connected".to_string(),
            format!("{app_name} can now use this account with the permissions you allowed."),
            vec![
                format!("{app_name} keeps access for as long as you stay connected; the access is renewed automatically before it expires."),
                "You can remove the access at any time in Instagram: Settings, then Apps and websites.".to_string(),
            ],
        ),
        ConnectSessionStatus::Denied => (
            "You did not allow access".to_string(),
            format!("You chose not to allow {app_name} to use your Instagram account, so nothing was connected and {app_name} received no access."),
            vec![format!("If that was a mistake, ask {app_name} for a new link and choose Allow.")],
        ),
        _ => (
            "The connection did not complete".to_string(),
            format!(
                "Instagram sent you back, but the broker could not finish connecting your account ({}).",
                o.error.as_deref().unwrap_or("unknown error").replace('_', " ")
            ),
            vec![format!("Ask {app_name} for a new link and try again.")],
        ),
    };
    // Only a signed-in admin (the cookie reaches this page when Instagram and the broker
    // are the same site, as with the sandbox) gets a link into the dashboard.
    let admin = match super::session::read_cookie(headers, super::session::cookie_name(state)) {
        Some(secret) => matches!(
            crate::service::sign_in::find(state, secret).await,
            Ok(Some(_))
        ),
        None => false,
    };
    let page = ResultPage {
        heading,
        app_name,
        username,
        explanation,
        next_steps,
        back_url: admin.then(|| format!("/ui/connect/{}", o.session_id)),
        session_id: o.session_id.clone(),
        status: o.status.as_str().to_string(),
        account_id: o.account_id.clone(),
        error: o.error.clone(),
        error_description: o
            .error
            .as_deref()
            .and_then(crate::service::error::describe_code),
    };
    let status = if matches!(
        o.status,
        ConnectSessionStatus::Connected | ConnectSessionStatus::Denied
    ) {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, render(&page)).into_response()
}
