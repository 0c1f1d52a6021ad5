//! The four OAuth steps of Business Login for Instagram: the authorize page, the code
//! exchange on api.instagram.com, the long-lived exchange and the refresh on graph.instagram.com.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Sandbox;
use crate::calls::CallInfo;
use crate::consent_page::{self, ConsentUser, PageError};
use crate::errors::{FlatError, GraphError, IGAPI, OAUTH};
use crate::ids::{ct_eq, new_access_token, new_auth_code, sha256, sha256_hex};
use crate::params::{Params, ParsedRequest};
use crate::state::{
    App, CODE_TTL_SECS, CodeRecord, ExchangeShape, Invalidation, KNOWN_SCOPES,
    MIN_REFRESH_AGE_SECS, RefreshMode, SCOPE_BASIC, SHORT_TOKEN_TTL_SECS, State, TokenKind,
    TokenRecord, YoungRefresh,
};

/// Why an authorization request cannot be shown or granted. Instagram shows an error page for
/// these instead of redirecting, because the redirect target itself is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthzProblem {
    Missing(&'static str),
    UnknownClient,
    BadRedirect,
    BadResponseType(String),
    InvalidScopes(Vec<String>),
    BasicRequired,
}

/// How Instagram's authorize page words every refusal (the detail follows the colon).
pub const INVALID_REQUEST: &str = "Invalid Request: Request parameters are invalid: ";

impl AuthzProblem {
    pub fn message(&self) -> String {
        let detail = match self {
            Self::Missing(p) => format!("Missing {p}"),
            Self::UnknownClient => "Invalid platform app".to_owned(),
            Self::BadRedirect => "Invalid redirect_uri".to_owned(),
            Self::BadResponseType(t) => {
                format!("Invalid response_type {t:?}: only \"code\" is supported")
            }
            Self::InvalidScopes(s) => format!("Invalid Scopes: {}", s.join(", ")),
            Self::BasicRequired => format!("Invalid Scopes: {SCOPE_BASIC} is required"),
        };
        format!("{INVALID_REQUEST}{detail}")
    }
}

/// Scopes as the authorize URL carries them: comma- or space-separated.
pub fn parse_scopes(raw: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in raw.split(|c: char| c == ',' || c.is_whitespace()) {
        let s = s.trim();
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

/// Validates client, redirect URI and scopes; returns the app and the requested scopes.
pub fn check_authorize(
    st: &State,
    client_id: Option<&str>,
    redirect_uri: Option<&str>,
    scope: Option<&str>,
) -> Result<(App, Vec<String>), AuthzProblem> {
    let client_id = client_id
        .filter(|c| !c.is_empty())
        .ok_or(AuthzProblem::Missing("client_id"))?;
    let app = st.apps.get(client_id).ok_or(AuthzProblem::UnknownClient)?;
    let redirect_uri = redirect_uri
        .filter(|r| !r.is_empty())
        .ok_or(AuthzProblem::Missing("redirect_uri"))?;
    if !app.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(AuthzProblem::BadRedirect);
    }
    let scopes = parse_scopes(scope.unwrap_or(""));
    if scopes.is_empty() {
        return Err(AuthzProblem::Missing("scope"));
    }
    let unknown: Vec<String> = scopes
        .iter()
        .filter(|s| !KNOWN_SCOPES.contains(&s.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(AuthzProblem::InvalidScopes(unknown));
    }
    if !scopes.iter().any(|s| s == SCOPE_BASIC) {
        return Err(AuthzProblem::BasicRequired);
    }
    Ok((app.clone(), scopes))
}

fn append_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    let query = ser.finish();
    let sep = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!("{base}{sep}{query}")
}

/// The redirect after consent: `code=…&state=…#_`.
pub fn success_location(redirect_uri: &str, code: &str, state: Option<&str>) -> String {
    let mut pairs = vec![("code", code)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    format!("{}#_", append_query(redirect_uri, &pairs))
}

/// The redirect after denial. `state` is echoed, as OAuth clients expect (Meta is silent).
pub fn denial_location(redirect_uri: &str, state: Option<&str>) -> String {
    let mut pairs = vec![
        ("error", "access_denied"),
        ("error_reason", "user_denied"),
        ("error_description", "The user denied your request"),
    ];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    append_query(redirect_uri, &pairs)
}

/// Stores a fresh single-use code (by hash) and returns it.
pub fn issue_code(
    st: &mut State,
    now: i64,
    client_id: &str,
    redirect_uri: &str,
    user_id: &str,
    scopes: Vec<String>,
) -> String {
    let code = new_auth_code();
    st.scoped_id(client_id, user_id);
    st.codes.insert(
        sha256_hex(&code),
        CodeRecord {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            user_id: user_id.to_owned(),
            scopes,
            expires_at: now + CODE_TTL_SECS,
            used_at: None,
        },
    );
    code
}

/// Granted = requested ∩ chosen; the basic scope cannot be declined on Instagram's dialog.
pub fn granted_scopes(requested: &[String], chosen: Option<&[String]>) -> Vec<String> {
    requested
        .iter()
        .filter(|s| s.as_str() == SCOPE_BASIC || chosen.is_none_or(|c| c.contains(s)))
        .cloned()
        .collect()
}

pub fn issue_token(
    st: &mut State,
    now: i64,
    client_id: &str,
    user_id: &str,
    kind: TokenKind,
    scopes: Vec<String>,
    ttl: i64,
) -> String {
    let token = new_access_token();
    st.tokens.insert(
        sha256_hex(&token),
        TokenRecord {
            client_id: client_id.to_owned(),
            user_id: user_id.to_owned(),
            kind,
            scopes,
            issued_at: now,
            expires_at: now + ttl,
            invalidated: None,
        },
    );
    token
}

pub fn with_info(
    resp: Response,
    app_id: Option<&str>,
    user_id: Option<&str>,
    token: Option<&str>,
) -> Response {
    with_info_hashed(resp, app_id, user_id, token.map(sha256_hex))
}

/// Like `with_info`, for callers that already hashed the token (once per call is enough).
pub fn with_info_hashed(
    mut resp: Response,
    app_id: Option<&str>,
    user_id: Option<&str>,
    token_sha256: Option<String>,
) -> Response {
    resp.extensions_mut().insert(CallInfo {
        app_id: app_id.map(str::to_owned),
        user_id: user_id.map(str::to_owned),
        token_sha256,
    });
    resp
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut resp = StatusCode::FOUND.into_response();
            resp.headers_mut().insert(header::LOCATION, v);
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(_) => consent_page::error_page(&PageError::new(
            "Invalid redirect_uri: it cannot be used in a redirect",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// GET/POST /oauth/authorize

pub fn authorize(sb: &Sandbox, req: &ParsedRequest) -> Response {
    if req.method == Method::POST {
        return authorize_submit(sb, &req.params);
    }
    if req.method != Method::GET && req.method != Method::HEAD {
        return consent_page::error_page(&PageError::new("Unsupported method"));
    }
    let p = &req.params;
    let checked = sb.read(|st| {
        check_authorize(
            st,
            p.get("client_id"),
            p.get("redirect_uri"),
            p.get("scope"),
        )
        .map(|(app, scopes)| {
            let users: Vec<ConsentUser> = st
                .users
                .values()
                .map(|u| ConsentUser {
                    username: u.username.clone(),
                    name: u.name.clone(),
                    account_type: u.account_type.clone(),
                    admitted: app.admits(&u.username),
                })
                .collect();
            (app, scopes, users)
        })
    });
    let (app, scopes, users) = match checked {
        Ok(v) => v,
        Err(problem) => return consent_page::error_page(&PageError::new(problem.message())),
    };
    match p.get("response_type") {
        Some("code") => {}
        None | Some("") => {
            return consent_page::error_page(&PageError::new(
                AuthzProblem::Missing("response_type").message(),
            ));
        }
        Some(other) => {
            return consent_page::error_page(&PageError::new(
                AuthzProblem::BadResponseType(other.to_owned()).message(),
            ));
        }
    }
    let resp = consent_page::consent_page(&consent_page::ConsentPage {
        app_name: &app.name,
        client_id: &app.client_id,
        redirect_uri: p.get("redirect_uri").unwrap_or_default(),
        state: p.get("state"),
        scopes: &scopes,
        users: &users,
    });
    with_info(resp, Some(&app.client_id), None, None)
}

fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 30
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
}

fn authorize_submit(sb: &Sandbox, p: &Params) -> Response {
    let now = sb.now();
    let redirect_uri = p.get("redirect_uri").unwrap_or_default().to_owned();
    let state = p.get("state").filter(|s| !s.is_empty()).map(str::to_owned);
    let decision = p.get("decision").unwrap_or("deny");
    let new_username = p.nonempty("new_username").map(str::trim);
    let username = new_username.or_else(|| p.nonempty("username"));
    if let Some(n) = new_username
        && !valid_username(n)
    {
        return consent_page::error_page(&PageError::new(
            "Usernames may use letters, digits, periods and underscores, up to 30 characters",
        ));
    }

    let outcome = sb.write(|st| -> Result<(String, Option<(String, String)>), String> {
        let (app, scopes) =
            check_authorize(st, p.get("client_id"), Some(&redirect_uri), p.get("scope"))
                .map_err(|e| e.message())?;
        if decision != "allow" {
            return Ok((denial_location(&redirect_uri, state.as_deref()), None));
        }
        let username = username.ok_or("Choose a sandbox user to log in as")?;
        let user_id = match st.user_by_name(username) {
            Some(u) => u.user_id.clone(),
            None if new_username.is_some() => {
                let user = crate::control::new_user(username, None, now);
                let id = user.user_id.clone();
                st.insert_user(user);
                id
            }
            None => return Err(format!("No sandbox user named {username}")),
        };
        let chosen: Vec<String> = scopes
            .iter()
            .filter(|s| p.get(&format!("scope_{s}")).is_some())
            .cloned()
            .collect();
        let granted = granted_scopes(&scopes, Some(&chosen));
        let code = issue_code(st, now, &app.client_id, &redirect_uri, &user_id, granted);
        Ok((
            success_location(&redirect_uri, &code, state.as_deref()),
            Some((app.client_id.clone(), user_id)),
        ))
    });
    match outcome {
        Ok((location, who)) => {
            let resp = redirect(&location);
            match who {
                Some((app, user)) => with_info(resp, Some(&app), Some(&user), None),
                None => with_info(resp, p.get("client_id"), None, None),
            }
        }
        Err(message) => consent_page::error_page(&PageError::new(message)),
    }
}

// ---------------------------------------------------------------------------------------------
// POST api.instagram.com/oauth/access_token

/// The code exchange's refusals, in the words Meta is seen to use.
pub const CODE_NOT_FOUND: &str = "Matching code was not found or was already used.";
pub const CODE_USED: &str = "This authorization code has been used";
pub const CODE_REDIRECT_MISMATCH: &str = "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request";

pub fn exchange_code(sb: &Sandbox, req: &ParsedRequest) -> Response {
    if req.method != Method::POST {
        // The endpoint is POST-only; a GET (a common client mistake) gets Graph's wrong-method
        // error, not the flat envelope.
        return GraphError::unsupported_method(req.method.as_str()).into_response();
    }
    let p = &req.params;
    let mut fields = Vec::new();
    for name in [
        "client_id",
        "client_secret",
        "grant_type",
        "redirect_uri",
        "code",
    ] {
        match p.nonempty(name) {
            Some(v) => fields.push(v),
            None => {
                return FlatError::new(format!("Missing required field {name}")).into_response();
            }
        }
    }
    let [client_id, secret, grant_type, redirect_uri, code] = fields[..] else {
        return FlatError::new("Missing required field client_id").into_response();
    };
    let now = sb.now();
    let result = sb.write(
        |st| -> Result<(App, u64, String, Vec<String>, String), FlatError> {
            let key = sha256_hex(code);
            let checked =
                check_exchange(st, now, client_id, secret, grant_type, redirect_uri, &key);
            let rec = match checked {
                Ok(rec) => rec,
                Err(e) => {
                    // Whether Meta burns a code on a failed exchange is unknown; apps choose.
                    let burns = st
                        .apps
                        .get(client_id)
                        .is_some_and(|a| a.failed_exchange_burns_code);
                    if burns
                        && let Some(c) = st.codes.get_mut(&key)
                        && c.client_id == client_id
                        && c.used_at.is_none()
                    {
                        c.used_at = Some(now);
                    }
                    return Err(e);
                }
            };
            let app = st
                .apps
                .get(client_id)
                .cloned()
                .ok_or_else(|| FlatError::new("Invalid platform app"))?;
            if let Some(c) = st.codes.get_mut(&key) {
                c.used_at = Some(now);
            }
            if !st.users.contains_key(&rec.user_id) {
                return Err(FlatError::new(CODE_NOT_FOUND));
            }
            let token = issue_token(
                st,
                now,
                client_id,
                &rec.user_id,
                TokenKind::Short,
                rec.scopes.clone(),
                SHORT_TOKEN_TTL_SECS,
            );
            let scoped = st.scoped_id(client_id, &rec.user_id);
            Ok((app, scoped, token, rec.scopes, rec.user_id))
        },
    );
    match result {
        Ok((app, scoped, token, scopes, user_id)) => {
            let body = match app.exchange_shape {
                ExchangeShape::Flat => json!({
                    "access_token": token,
                    "user_id": scoped,
                    "permissions": scopes,
                }),
                ExchangeShape::Data => json!({
                    "data": [{
                        "access_token": token,
                        "user_id": scoped.to_string(),
                        "permissions": scopes.join(","),
                    }]
                }),
            };
            with_info(
                axum::Json(body).into_response(),
                Some(&app.client_id),
                Some(&user_id),
                Some(&token),
            )
        }
        Err(e) => with_info(e.into_response(), Some(client_id), None, None),
    }
}

/// Every check of a code exchange, in Meta's order; the code's record when all pass.
fn check_exchange(
    st: &State,
    now: i64,
    client_id: &str,
    secret: &str,
    grant_type: &str,
    redirect_uri: &str,
    code_key: &str,
) -> Result<CodeRecord, FlatError> {
    let app = st
        .apps
        .get(client_id)
        .ok_or_else(|| FlatError::new("Invalid platform app"))?;
    if !ct_eq(sha256_hex(secret).as_bytes(), app.secret_hash.as_bytes()) {
        return Err(FlatError::new("Invalid Client Secret"));
    }
    if grant_type != "authorization_code" {
        return Err(FlatError::new("Invalid grant_type"));
    }
    let rec = st
        .codes
        .get(code_key)
        .filter(|c| c.client_id == client_id)
        .cloned()
        .ok_or_else(|| FlatError::new(CODE_NOT_FOUND))?;
    if rec.used_at.is_some() {
        return Err(FlatError::new(CODE_USED));
    }
    if rec.expires_at <= now {
        return Err(FlatError::new(CODE_NOT_FOUND));
    }
    if rec.redirect_uri != redirect_uri {
        return Err(FlatError::new(CODE_REDIRECT_MISMATCH));
    }
    Ok(rec)
}

// ---------------------------------------------------------------------------------------------
// Token checks shared with the Graph endpoints

/// The token a Graph request carries: `access_token` parameter or `Authorization` header.
pub fn bearer(req: &ParsedRequest) -> Option<String> {
    if let Some(t) = req.params.nonempty("access_token") {
        return Some(t.trim().to_owned());
    }
    let auth = req
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, rest) = auth.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth") {
        let t = rest.trim();
        (!t.is_empty()).then(|| t.to_owned())
    } else {
        None
    }
}

/// Resolves a token to its record, answering the Graph error Meta gives for each way it can
/// be unusable.
pub fn check_token(st: &State, token: &str, now: i64) -> Result<(String, TokenRecord), GraphError> {
    if !token.starts_with("IG") || token.len() < 16 {
        return Err(GraphError::cannot_parse_token());
    }
    let key = hex::encode(sha256(token));
    let rec = st.tokens.get(&key).ok_or_else(GraphError::unknown_token)?;
    match rec.invalidated {
        Some(Invalidation::PasswordChanged) => return Err(GraphError::password_changed()),
        Some(Invalidation::Deauthorized) => return Err(GraphError::deauthorized(&rec.client_id)),
        None => {}
    }
    if now >= rec.expires_at {
        return Err(GraphError::expired(rec.expires_at, now));
    }
    if !st.apps.contains_key(&rec.client_id) || !st.users.contains_key(&rec.user_id) {
        return Err(GraphError::unknown_token());
    }
    Ok((key, rec.clone()))
}

fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, GraphError> {
    p.nonempty(name)
        .ok_or_else(|| GraphError::param(format!("The parameter {name} is required")))
}

fn token_response(token: &str, expires_in: i64) -> Response {
    axum::Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": expires_in,
    }))
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// GET graph.instagram.com/access_token (ig_exchange_token)

pub fn exchange_long_lived(sb: &Sandbox, req: &ParsedRequest) -> Response {
    if req.method != Method::GET && req.method != Method::POST {
        return GraphError::unsupported_method(req.method.as_str()).into_response();
    }
    let p = &req.params;
    let now = sb.now();
    let token = bearer(req);
    let result = (|| -> Result<(String, i64, TokenRecord), GraphError> {
        let grant_type = required(p, "grant_type")?;
        let secret = required(p, "client_secret")?;
        let token = token
            .as_deref()
            .ok_or_else(|| GraphError::param("The parameter access_token is required"))?;
        if grant_type != "ig_exchange_token" {
            return Err(GraphError::param(format!(
                "Unsupported grant_type \"{grant_type}\": use ig_exchange_token"
            )));
        }
        sb.write(|st| {
            let (_, rec) = check_token(st, token, now)?;
            crate::graph::check_approved(st, &rec, &req.method)?;
            let app = st
                .apps
                .get(&rec.client_id)
                .ok_or_else(GraphError::unknown_token)?;
            if !ct_eq(sha256_hex(secret).as_bytes(), app.secret_hash.as_bytes()) {
                return Err(GraphError::new(OAUTH, 101, "Error validating client secret."));
            }
            if rec.kind != TokenKind::Short {
                return Err(GraphError::new(
                    IGAPI,
                    100,
                    "Unsupported request: only short-lived access tokens can be exchanged for long-lived ones",
                ));
            }
            let ttl = app.long_ttl();
            let long = issue_token(
                st,
                now,
                &rec.client_id,
                &rec.user_id,
                TokenKind::Long,
                rec.scopes.clone(),
                ttl,
            );
            Ok((long, ttl, rec))
        })
    })();
    match result {
        Ok((long, ttl, rec)) => with_info(
            token_response(&long, ttl),
            Some(&rec.client_id),
            Some(&rec.user_id),
            Some(&long),
        ),
        Err(e) => with_info(e.into_response(), None, None, token.as_deref()),
    }
}

// ---------------------------------------------------------------------------------------------
// GET graph.instagram.com/refresh_access_token (ig_refresh_token)

pub fn refresh(sb: &Sandbox, req: &ParsedRequest) -> Response {
    // Only GET works on the real endpoint; a POST gets this exact error.
    if req.method != Method::GET {
        return GraphError::unsupported_method(req.method.as_str()).into_response();
    }
    let p = &req.params;
    let now = sb.now();
    let token = bearer(req);
    let result = (|| -> Result<(String, i64, TokenRecord), GraphError> {
        let grant_type = required(p, "grant_type")?;
        let token = token
            .as_deref()
            .ok_or_else(|| GraphError::param("The parameter access_token is required"))?;
        if grant_type != "ig_refresh_token" {
            return Err(GraphError::param(format!(
                "Unsupported grant_type \"{grant_type}\": use ig_refresh_token"
            )));
        }
        sb.write(|st| {
            let (key, rec) = check_token(st, token, now)?;
            crate::graph::check_approved(st, &rec, &req.method)?;
            let app = st
                .apps
                .get(&rec.client_id)
                .cloned()
                .ok_or_else(GraphError::unknown_token)?;
            if rec.kind != TokenKind::Long {
                return Err(GraphError::new(
                    IGAPI,
                    100,
                    "Unsupported request: only long-lived access tokens can be refreshed",
                ));
            }
            if !rec.has_scope(SCOPE_BASIC) {
                return Err(GraphError::permission_10());
            }
            if now - rec.issued_at < MIN_REFRESH_AGE_SECS {
                return match app.young_refresh {
                    YoungRefresh::Noop => Ok((token.to_owned(), rec.expires_at - now, rec)),
                    YoungRefresh::Error => Err(GraphError::new(
                        IGAPI,
                        100,
                        "The access token cannot be refreshed yet: it must be at least 24 hours old (counted from its issue or last refresh)",
                    )),
                };
            }
            let ttl = app.long_ttl();
            match app.refresh_mode {
                RefreshMode::Same => {
                    if let Some(r) = st.tokens.get_mut(&key) {
                        r.issued_at = now;
                        r.expires_at = now + ttl;
                    }
                    Ok((token.to_owned(), ttl, rec))
                }
                RefreshMode::New => {
                    // The old string stays valid until its own expiry (Meta does not say
                    // otherwise), so a broker that loses the answer can still retry.
                    let fresh = issue_token(
                        st,
                        now,
                        &rec.client_id,
                        &rec.user_id,
                        TokenKind::Long,
                        rec.scopes.clone(),
                        ttl,
                    );
                    Ok((fresh, ttl, rec))
                }
            }
        })
    })();
    match result {
        Ok((tok, expires_in, rec)) => with_info(
            token_response(&tok, expires_in),
            Some(&rec.client_id),
            Some(&rec.user_id),
            Some(&tok),
        ),
        Err(e) => with_info(e.into_response(), None, None, token.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            success_location("https://a.example/cb", "AQx", Some("s 1")),
            "https://a.example/cb?code=AQx&state=s+1#_"
        );
        assert_eq!(
            denial_location("https://a.example/cb?x=1", Some("k9")),
            "https://a.example/cb?x=1&error=access_denied&error_reason=user_denied&error_description=The+user+denied+your+request&state=k9"
        );
        assert_eq!(
            parse_scopes("a,b c,,a"),
            vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]
        );
    }
}
