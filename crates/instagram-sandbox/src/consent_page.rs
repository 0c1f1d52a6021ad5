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

// Looks like Instagram's authorization dialog (a card, the wordmark, the app's name, what it
// may do, a blue Allow), with text contrast kept at WCAG AA.
const STYLE: &str = "*{box-sizing:border-box}body{font-family:-apple-system,system-ui,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;\
background:#fafafa;color:#262626;margin:0;font-size:14px;line-height:1.45}\
main{max-width:400px;margin:40px auto;background:#fff;border:1px solid #dbdbdb;border-radius:3px;padding:28px 36px}\
.wordmark{font-family:'Brush Script MT','Segoe Script',cursive;font-size:38px;text-align:center;margin:0 0 14px;font-weight:400}\
h1{font-size:18px;text-align:center;margin:0 0 6px;font-weight:600}.muted{color:#6b6b6b;font-size:12px}\
.center{text-align:center}fieldset{border:0;border-top:1px solid #dbdbdb;margin:16px 0 0;padding:12px 0 0}\
legend{font-weight:600;padding:0 4px 0 0}label{display:block;margin:8px 0}.perm small{display:block;color:#6b6b6b;margin-left:24px}\
input[type=text]{border:1px solid #b5b5b5;border-radius:3px;padding:6px 8px;font:inherit;width:12em}\
.buttons{display:flex;gap:10px;margin-top:20px}button{flex:1;font:inherit;font-weight:600;border-radius:8px;padding:8px 16px;cursor:pointer}\
#allow{background:#0064e0;color:#fff;border:1px solid #0064e0}#deny{background:#efefef;color:#262626;border:1px solid #dbdbdb}\
.error{color:#c4001d}footer{margin-top:20px;text-align:center}";

/// What each permission lets the app do, as the dialog words it.
fn scope_text(scope: &str) -> &'static str {
    match scope {
        "instagram_business_basic" => "Access your profile and media",
        "instagram_business_content_publish" => "Publish posts and reels on your behalf",
        "instagram_business_manage_comments" => "Read, reply to and hide comments",
        "instagram_business_manage_messages" => "Read and reply to your messages",
        "instagram_business_manage_insights" => "See insights about your account and media",
        _ => "",
    }
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>{STYLE}</style></head><body><main><p class=\"wordmark\" aria-hidden=\"true\">Instagram</p>{body}\
         <footer class=\"muted\">Instagram sandbox · a local stand-in, not Meta's service</footer></main></body></html>",
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
            "<h1>Sorry, this page isn't available</h1><p class=\"error\" id=\"error\">{}</p>",
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
        "<h1>Log in to continue to {}</h1><p class=\"muted center\">{0} would like to access your \
         Instagram professional account · app {}</p>\
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

    body.push_str(&format!(
        "<fieldset><legend>Allow {} to</legend>",
        escape(c.app_name)
    ));
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
            "<label class=\"perm\"><input type=\"checkbox\" name=\"scope_{0}\" value=\"on\"{extra}> {1}{note}<small>{0}</small></label>",
            escape(s),
            escape(scope_text(s))
        ));
    }
    body.push_str("</fieldset><div class=\"buttons\">");
    body.push_str(
        "<button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Cancel</button>\
         <button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">Allow</button></div></form>\
         <p class=\"muted\">You can remove this app's access at any time in Settings, Apps and websites.</p>",
    );
    page(StatusCode::OK, "Instagram sandbox: authorize", &body)
}
