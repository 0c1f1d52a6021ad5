//! The HTML of the authorize dialog: log in as a sandbox user, untick scopes, Allow or Deny.
//! Also the error page Instagram shows instead of redirecting to an untrusted URI.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::SCOPE_BASIC;

pub struct ConsentUser {
    pub username: String,
    pub name: String,
    pub account_type: String,
    pub admitted: bool,
}

pub struct ConsentPage<'a> {
    pub app_name: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub state: Option<&'a str>,
    pub scopes: &'a [String],
    pub users: &'a [ConsentUser],
}

pub struct PageError {
    pub message: String,
}

impl PageError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#fafafa;margin:0}\
main{max-width:420px;margin:40px auto;background:#fff;border:1px solid #dbdbdb;padding:24px}\
h1{font-size:20px}.muted{color:#737373;font-size:13px}label{display:block;margin:6px 0}\
button{padding:8px 18px;margin-right:8px}.error{color:#b00020}";

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    );
    let mut resp = (status, html).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn error_page(err: &PageError) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Error",
        &format!(
            "<h1>Sorry, this page isn't available</h1><p class=\"error\" id=\"error\">{}</p>\
             <p class=\"muted\">Instagram sandbox</p>",
            escape(&err.message)
        ),
    )
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

pub fn consent_page(c: &ConsentPage<'_>) -> Response {
    let mut body = format!(
        "<h1>Log in to continue to {}</h1><p class=\"muted\">Instagram sandbox · app {}</p>\
         <form method=\"post\" action=\"/oauth/authorize\">",
        escape(c.app_name),
        escape(c.client_id)
    );
    body.push_str(&hidden("client_id", c.client_id));
    body.push_str(&hidden("redirect_uri", c.redirect_uri));
    body.push_str(&hidden("response_type", "code"));
    body.push_str(&hidden("scope", &c.scopes.join(",")));
    if let Some(s) = c.state {
        body.push_str(&hidden("state", s));
    }

    body.push_str("<fieldset><legend>Log in as</legend>");
    if c.users.is_empty() {
        body.push_str(
            "<p class=\"muted\">No sandbox users yet: type a username below, or create one with POST /_sandbox/users.</p>",
        );
    }
    for (i, u) in c.users.iter().enumerate() {
        let checked = if i == 0 { " checked" } else { "" };
        // Meta lets a non-tester through the dialog; the note says what will happen next.
        let note = if u.admitted {
            String::new()
        } else {
            " <span class=\"muted\">(not a tester of this Standard Access app: login works, every API call after it fails)</span>".to_owned()
        };
        body.push_str(&format!(
            "<label><input type=\"radio\" name=\"username\" value=\"{0}\"{checked}> @{0} · {1} · {2}{note}</label>",
            escape(&u.username),
            escape(&u.name),
            escape(&u.account_type)
        ));
    }
    body.push_str(
        "<label>or a new user: <input type=\"text\" name=\"new_username\" autocomplete=\"off\"></label></fieldset>",
    );

    body.push_str("<fieldset><legend>Allow this app to</legend>");
    for s in c.scopes {
        let (extra, note) = if s == SCOPE_BASIC {
            (
                " checked disabled",
                " <span class=\"muted\">(required)</span>",
            )
        } else {
            (" checked", "")
        };
        body.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"scope_{0}\" value=\"on\"{extra}> {0}{note}</label>",
            escape(s)
        ));
    }
    body.push_str("</fieldset><p>");
    body.push_str(
        "<button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Deny</button></p></form>",
    );
    page(StatusCode::OK, "Instagram sandbox: authorize", &body)
}
