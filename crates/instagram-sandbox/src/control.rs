//! The control API under `/_sandbox/`: apps, users, headless consent, the clock, faults,
//! user events and the call log. JSON in and out.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::errors::ControlError;
use crate::faults::{FaultKind, FaultSpec};
use crate::ids::{
    new_client_id, new_client_secret, new_object_id, new_professional_id, sha256_hex,
};
use crate::oauth::{
    AuthzProblem, check_authorize, denial_location, granted_scopes, issue_code, parse_scopes,
    success_location,
};
use crate::state::{
    Access, App, ExchangeShape, Media, RateLimit, RefreshMode, State as SbState, User, YoungRefresh,
};
use crate::timefmt::rfc3339;
use crate::{Sandbox, events, lock};

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/apps", post(create_app).get(list_apps))
        .route("/apps/{client_id}", get(get_app))
        .route(
            "/apps/{client_id}/webhooks",
            post(crate::webhooks::subscribe).get(crate::webhooks::subscription),
        )
        .route("/users", post(create_user).get(list_users))
        .route("/users/{id}", get(get_user))
        .route("/users/{id}/events", post(events::user_event))
        .route("/authorize", post(headless_authorize))
        .route("/clock", get(get_clock).post(move_clock))
        .route(
            "/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/faults/{id}", delete(remove_fault))
        .route("/calls", get(list_calls).delete(clear_calls))
        .route("/reset-rate-limits", post(reset_rate_limits))
        .route("/seed", post(crate::seed::seed))
        .route("/stats", get(crate::seed::stats))
        .route("/health", get(health))
}

/// A trivial route: liveness for scripts, and the baseline benchmarks compare `/me` with.
async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// A JSON body, with axum's plain-text rejections turned into the control API's JSON errors.
pub fn body<T: DeserializeOwned>(b: Result<Json<T>, JsonRejection>) -> Result<T, ControlError> {
    b.map(|Json(v)| v)
        .map_err(|e| ControlError::bad_request(e.body_text()))
}

/// Comma-separated string or array, as the contract allows for scopes and lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StrList {
    One(String),
    Many(Vec<String>),
}

impl StrList {
    pub fn joined(&self) -> String {
        match self {
            Self::One(s) => s.clone(),
            Self::Many(v) => v.join(","),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Apps

#[derive(Debug, Deserialize)]
struct NewApp {
    client_id: Option<String>,
    client_secret: Option<String>,
    name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    redirect_uri: Option<String>,
    #[serde(default)]
    access: Access,
    #[serde(default)]
    testers: Vec<String>,
    #[serde(default)]
    refresh_mode: RefreshMode,
    #[serde(default)]
    exchange_shape: ExchangeShape,
    #[serde(default)]
    young_refresh: YoungRefresh,
    token_ttl_secs: Option<i64>,
    deauthorize_url: Option<String>,
    data_deletion_url: Option<String>,
    webhook_url: Option<String>,
    failed_exchange_burns_code: Option<bool>,
    rate_limit_calls: Option<u32>,
    rate_limit_window_secs: Option<i64>,
    rate_limit_code: Option<i64>,
}

fn check_url(field: &str, value: &str) -> Result<(), ControlError> {
    let url = url::Url::parse(value)
        .map_err(|e| ControlError::bad_request(format!("{field}: {value:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.fragment().is_some() {
        return Err(ControlError::bad_request(format!(
            "{field}: {value:?} must be an http(s) URL without a fragment"
        )));
    }
    Ok(())
}

pub fn app_json(app: &App, secret: Option<&str>) -> Value {
    let mut v = json!({
        "client_id": app.client_id,
        "name": app.name,
        "redirect_uris": app.redirect_uris,
        "access": app.access,
        "testers": app.testers,
        "refresh_mode": app.refresh_mode,
        "exchange_shape": app.exchange_shape,
        "young_refresh": app.young_refresh,
        "token_ttl_secs": app.token_ttl_secs,
        "deauthorize_url": app.deauthorize_url,
        "data_deletion_url": app.data_deletion_url,
        "webhook_url": app.webhook_url,
        "webhook_fields": app.webhook_fields,
        "failed_exchange_burns_code": app.failed_exchange_burns_code,
        "rate_limit": {
            "calls": app.rate_limit.calls,
            "window_secs": app.rate_limit.window_secs,
            "code": app.rate_limit.code,
        },
        "client_secret_sha256": app.secret_hash,
        "created_at": rfc3339(app.created_at),
    });
    if let (Some(s), Some(obj)) = (secret, v.as_object_mut()) {
        obj.insert("client_secret".into(), json!(s));
    }
    v
}

async fn create_app(
    State(sb): State<Sandbox>,
    b: Result<Json<NewApp>, JsonRejection>,
) -> Result<Response, ControlError> {
    let req = body(b)?;
    let mut redirect_uris = req.redirect_uris;
    if let Some(r) = req.redirect_uri
        && !redirect_uris.contains(&r)
    {
        redirect_uris.push(r);
    }
    if redirect_uris.is_empty() {
        return Err(ControlError::bad_request(
            "redirect_uris: at least one OAuth redirect URI is required",
        ));
    }
    for r in &redirect_uris {
        check_url("redirect_uris", r)?;
    }
    for (field, v) in [
        ("deauthorize_url", &req.deauthorize_url),
        ("data_deletion_url", &req.data_deletion_url),
        ("webhook_url", &req.webhook_url),
    ] {
        if let Some(v) = v {
            check_url(field, v)?;
        }
    }
    if let Some(c) = &req.client_id
        && (c.is_empty() || c.chars().any(|ch| ch.is_whitespace() || ch == ','))
    {
        return Err(ControlError::bad_request(
            "client_id must be non-empty, without spaces or commas",
        ));
    }
    if req.client_secret.as_deref().is_some_and(str::is_empty) {
        return Err(ControlError::bad_request("client_secret must not be empty"));
    }
    if let Some(code) = req.rate_limit_code
        && !matches!(code, 4 | 17 | 32 | 613 | 80002)
    {
        return Err(ControlError::bad_request(
            "rate_limit_code must be one of 4, 17, 32, 613, 80002",
        ));
    }
    let now = sb.now();
    let sealer = &sb.inner.store.sealer;
    let (app, secret, created) = sb.write(|st| {
        let client_id = req.client_id.clone().unwrap_or_else(|| {
            let mut id = new_client_id();
            while st.apps.contains_key(&id) {
                id = new_client_id();
            }
            id
        });
        let existing = st.apps.get(&client_id).cloned();
        let new_secret = match (&req.client_secret, &existing) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(new_client_secret()),
        };
        let defaults = RateLimit::default();
        let mut app = App {
            client_id: client_id.clone(),
            name: req
                .name
                .clone()
                .unwrap_or_else(|| format!("Sandbox app {client_id}")),
            secret_hash: String::new(),
            secret_sealed: None,
            secret: None,
            redirect_uris: redirect_uris.clone(),
            access: req.access,
            testers: req.testers.clone(),
            refresh_mode: req.refresh_mode,
            exchange_shape: req.exchange_shape,
            young_refresh: req.young_refresh,
            token_ttl_secs: req.token_ttl_secs.filter(|t| *t > 0),
            deauthorize_url: req.deauthorize_url.clone(),
            data_deletion_url: req.data_deletion_url.clone(),
            // Re-posting an app without a webhook keeps the verified subscription it has.
            webhook_url: req
                .webhook_url
                .clone()
                .or_else(|| existing.as_ref().and_then(|e| e.webhook_url.clone())),
            webhook_fields: if req.webhook_url.is_some() {
                Vec::new()
            } else {
                existing
                    .as_ref()
                    .map(|e| e.webhook_fields.clone())
                    .unwrap_or_default()
            },
            failed_exchange_burns_code: req.failed_exchange_burns_code.unwrap_or_else(|| {
                existing
                    .as_ref()
                    .is_some_and(|e| e.failed_exchange_burns_code)
            }),
            rate_limit: RateLimit {
                calls: req.rate_limit_calls.unwrap_or(defaults.calls).max(1),
                window_secs: req
                    .rate_limit_window_secs
                    .unwrap_or(defaults.window_secs)
                    .max(1),
                code: req.rate_limit_code.unwrap_or(defaults.code),
            },
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
        };
        match (&new_secret, &existing) {
            (Some(s), _) => {
                app.secret_hash = sha256_hex(s);
                app.secret_sealed = sealer.seal(s);
                app.secret = Some(s.clone());
            }
            (None, Some(e)) => {
                app.secret_hash = e.secret_hash.clone();
                app.secret_sealed = e.secret_sealed.clone();
                app.secret = e.secret.clone();
            }
            (None, None) => {}
        }
        st.apps.insert(client_id, app.clone());
        (app, new_secret, existing.is_none())
    });
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(app_json(&app, secret.as_deref()))).into_response())
}

async fn list_apps(State(sb): State<Sandbox>) -> Json<Value> {
    let apps: Vec<Value> = sb.read(|st| st.apps.values().map(|a| app_json(a, None)).collect());
    Json(json!({ "data": apps }))
}

async fn get_app(
    State(sb): State<Sandbox>,
    Path(client_id): Path<String>,
) -> Result<Json<Value>, ControlError> {
    sb.read(|st| st.apps.get(&client_id).map(|a| app_json(a, None)))
        .map(Json)
        .ok_or_else(|| ControlError::not_found(format!("no app with client_id {client_id}")))
}

// ---------------------------------------------------------------------------------------------
// Users

#[derive(Debug, Default, Deserialize)]
pub struct NewUser {
    username: String,
    account_type: Option<String>,
    #[serde(default)]
    media_count: u32,
    name: Option<String>,
    followers_count: Option<u64>,
    follows_count: Option<u64>,
    biography: Option<String>,
    website: Option<String>,
    publish_quota_total: Option<u32>,
}

/// A user with the defaults the consent page also uses when someone logs in as a new name.
pub fn new_user(username: &str, req: Option<&NewUser>, now: i64) -> User {
    let pretty = username
        .split(['_', '.'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    let user_id = new_professional_id();
    User {
        profile_picture_url: format!("https://scontent.sandbox.invalid/profile/{user_id}.jpg"),
        user_id,
        username: username.to_owned(),
        name: req.and_then(|r| r.name.clone()).unwrap_or(pretty),
        account_type: req
            .and_then(|r| r.account_type.clone())
            .unwrap_or_else(|| "BUSINESS".to_owned()),
        followers_count: req.and_then(|r| r.followers_count).unwrap_or(1234),
        follows_count: req.and_then(|r| r.follows_count).unwrap_or(56),
        biography: req.and_then(|r| r.biography.clone()).unwrap_or_default(),
        website: req.and_then(|r| r.website.clone()).unwrap_or_default(),
        publish_quota_total: req.and_then(|r| r.publish_quota_total).unwrap_or(100),
        media: Vec::new(),
        created_at: now,
    }
}

pub fn shortcode() -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..11)
        .map(|_| char::from(A[rand::random_range(0..A.len())]))
        .collect()
}

/// Real media for a new user: captioned images, one a day going back from now.
fn seed_media(st: &mut SbState, user_id: &str, count: u32, now: i64) {
    let mut ids = Vec::new();
    for i in (0..count).rev() {
        let id = new_object_id();
        let ts = now - i64::from(i + 1) * 86_400 + 3600;
        st.media.insert(
            id.clone(),
            Media {
                id: id.clone(),
                owner: user_id.to_owned(),
                caption: Some(format!("Sandbox post #{}", count - i)),
                media_type: "IMAGE".into(),
                media_product_type: "FEED".into(),
                media_url: format!("https://scontent.sandbox.invalid/media/{id}.jpg"),
                thumbnail_url: None,
                alt_text: None,
                shortcode: shortcode(),
                timestamp: ts,
                like_count: u64::from(count - i) * 7 % 97,
                children: Vec::new(),
                is_child: false,
                is_comment_enabled: true,
            },
        );
        ids.push(id);
    }
    if let Some(u) = st.users.get_mut(user_id) {
        u.media.extend(ids);
    }
}

pub fn user_json(st: &SbState, u: &User) -> Value {
    let scoped: serde_json::Map<String, Value> = st
        .scoped_ids
        .iter()
        .filter_map(|(k, v)| {
            let (client, user) = k.split_once(':')?;
            (user == u.user_id).then(|| (client.to_owned(), json!(v.to_string())))
        })
        .collect();
    json!({
        "id": u.user_id,
        "user_id": u.user_id,
        "username": u.username,
        "name": u.name,
        "account_type": u.account_type,
        "followers_count": u.followers_count,
        "follows_count": u.follows_count,
        "media_count": u.media.len(),
        "publish_quota_total": u.publish_quota_total,
        "scoped_ids": scoped,
    })
}

async fn create_user(
    State(sb): State<Sandbox>,
    b: Result<Json<NewUser>, JsonRejection>,
) -> Result<Response, ControlError> {
    let req = body(b)?;
    let username = req.username.trim().to_owned();
    if username.is_empty()
        || username.len() > 30
        || !username
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_')
    {
        return Err(ControlError::bad_request(
            "username: letters, digits, periods and underscores, 1 to 30 characters",
        ));
    }
    if let Some(t) = &req.account_type
        && t != "BUSINESS"
        && t != "MEDIA_CREATOR"
    {
        return Err(ControlError::bad_request(
            "account_type must be BUSINESS or MEDIA_CREATOR",
        ));
    }
    if req.media_count > 10_000 {
        return Err(ControlError::bad_request(
            "media_count: at most 10000 (the most Graph lists)",
        ));
    }
    let now = sb.now();
    let (v, created) = sb.write(|st| {
        // Same name again: the existing user, so setup scripts can be re-run on kept state.
        if let Some(u) = st.user_by_name(&username) {
            return (user_json(st, u), false);
        }
        let user = new_user(&username, Some(&req), now);
        let id = user.user_id.clone();
        st.insert_user(user);
        seed_media(st, &id, req.media_count, now);
        let v = st
            .users
            .get(&id)
            .map(|u| user_json(st, u))
            .unwrap_or_default();
        (v, true)
    });
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(v)).into_response())
}

async fn list_users(State(sb): State<Sandbox>) -> Json<Value> {
    let users: Vec<Value> = sb.read(|st| st.users.values().map(|u| user_json(st, u)).collect());
    Json(json!({ "data": users }))
}

/// Users are named in control paths by professional id or username.
pub fn find_user<'a>(st: &'a SbState, id: &str) -> Option<&'a User> {
    st.users.get(id).or_else(|| st.user_by_name(id))
}

async fn get_user(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ControlError> {
    sb.read(|st| find_user(st, &id).map(|u| user_json(st, u)))
        .map(Json)
        .ok_or_else(|| ControlError::not_found(format!("no sandbox user {id}")))
}

// ---------------------------------------------------------------------------------------------
// Headless consent

#[derive(Debug, Deserialize)]
struct HeadlessAuthorize {
    client_id: String,
    redirect_uri: String,
    scope: StrList,
    state: Option<String>,
    username: Option<String>,
    decision: String,
    granted_scopes: Option<StrList>,
}

async fn headless_authorize(
    State(sb): State<Sandbox>,
    b: Result<Json<HeadlessAuthorize>, JsonRejection>,
) -> Result<Json<Value>, ControlError> {
    let req = body(b)?;
    if req.decision != "allow" && req.decision != "deny" {
        return Err(ControlError::bad_request(
            "decision must be \"allow\" or \"deny\"",
        ));
    }
    let now = sb.now();
    let scope = req.scope.joined();
    let location = sb.write(|st| {
        let (app, scopes) = check_authorize(
            st,
            Some(&req.client_id),
            Some(&req.redirect_uri),
            Some(&scope),
        )
        .map_err(|p| match p {
            AuthzProblem::UnknownClient => ControlError::not_found(p.message()),
            _ => ControlError::bad_request(p.message()),
        })?;
        if req.decision == "deny" {
            return Ok(denial_location(&req.redirect_uri, req.state.as_deref()));
        }
        let username = req
            .username
            .as_deref()
            .ok_or_else(|| ControlError::bad_request("username is required to allow"))?;
        let user = find_user(st, username)
            .ok_or_else(|| ControlError::not_found(format!("no sandbox user {username}")))?;
        let user_id = user.user_id.clone();
        let chosen = req
            .granted_scopes
            .as_ref()
            .map(|g| parse_scopes(&g.joined()));
        let granted = granted_scopes(&scopes, chosen.as_deref());
        let code = issue_code(
            st,
            now,
            &app.client_id,
            &req.redirect_uri,
            &user_id,
            granted,
        );
        Ok(success_location(
            &req.redirect_uri,
            &code,
            req.state.as_deref(),
        ))
    })?;
    Ok(Json(json!({ "location": location })))
}

// ---------------------------------------------------------------------------------------------
// Clock

fn clock_json(sb: &Sandbox) -> Value {
    let clock = sb.clock();
    let now = clock.now_unix();
    json!({ "now": rfc3339(now), "now_unix": now, "offset_secs": clock.offset_secs() })
}

async fn get_clock(State(sb): State<Sandbox>) -> Json<Value> {
    Json(clock_json(&sb))
}

#[derive(Debug, Deserialize)]
struct MoveClock {
    advance_secs: i64,
}

async fn move_clock(
    State(sb): State<Sandbox>,
    b: Result<Json<MoveClock>, JsonRejection>,
) -> Result<Json<Value>, ControlError> {
    let req = body(b)?;
    sb.clock().advance(req.advance_secs);
    sb.save();
    Ok(Json(clock_json(&sb)))
}

// ---------------------------------------------------------------------------------------------
// Faults

fn fault_json(f: &crate::faults::Fault) -> Value {
    json!({
        "id": f.id,
        "path": f.spec.path,
        "method": f.spec.method,
        "kind": f.spec.kind,
        "phase": f.spec.phase,
        "count": f.spec.count,
        "probability": f.spec.probability,
    })
}

async fn add_fault(
    State(sb): State<Sandbox>,
    b: Result<Json<FaultSpec>, JsonRejection>,
) -> Result<Response, ControlError> {
    let spec = body(b)?;
    if !spec.path.starts_with('/') {
        return Err(ControlError::bad_request("path must start with /"));
    }
    if spec.probability.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
        return Err(ControlError::bad_request("probability must be within 0..1"));
    }
    if spec.count.is_some() && spec.probability.is_some() {
        return Err(ControlError::bad_request(
            "give count or probability, not both",
        ));
    }
    if spec.count == Some(0) {
        return Err(ControlError::bad_request("count must be at least 1"));
    }
    if spec.kind == FaultKind::Status && spec.status.is_some_and(|s| !(100..=599).contains(&s)) {
        return Err(ControlError::bad_request(
            "status must be an HTTP status code",
        ));
    }
    if spec.kind == FaultKind::Latency && spec.latency_ms.is_none() {
        return Err(ControlError::bad_request("latency needs latency_ms"));
    }
    // The spec's path is matched against normalised paths, so normalise it the same way.
    let mut spec = spec;
    spec.path = crate::dispatch::RoutePath::parse(&spec.path).normalized();
    let id = lock(&sb.inner.faults).add(spec);
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

async fn list_faults(State(sb): State<Sandbox>) -> Json<Value> {
    let faults: Vec<Value> = lock(&sb.inner.faults)
        .list()
        .iter()
        .map(fault_json)
        .collect();
    Json(json!({ "data": faults }))
}

async fn clear_faults(State(sb): State<Sandbox>) -> Json<Value> {
    lock(&sb.inner.faults).clear();
    Json(json!({ "success": true }))
}

async fn remove_fault(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ControlError> {
    if lock(&sb.inner.faults).remove(&id) {
        Ok(Json(json!({ "success": true })))
    } else {
        Err(ControlError::not_found(format!("no fault {id}")))
    }
}

// ---------------------------------------------------------------------------------------------
// Calls and rate limits

#[derive(Debug, Deserialize)]
struct CallsQuery {
    path: Option<String>,
    since: Option<String>,
    after_seq: Option<u64>,
}

async fn list_calls(
    State(sb): State<Sandbox>,
    Query(q): Query<CallsQuery>,
) -> Result<Json<Value>, ControlError> {
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        ControlError::bad_request("since: an RFC 3339 time or unix seconds")
                    })?
                    .unix_timestamp()
            }
        }),
    };
    let path = q.path.filter(|p| !p.is_empty()).map(|p| {
        if p.starts_with("/_sandbox") {
            p
        } else {
            crate::dispatch::RoutePath::parse(&p).normalized()
        }
    });
    let entries = lock(&sb.inner.calls).query(path.as_deref(), since, q.after_seq);
    Ok(Json(json!({ "data": entries })))
}

async fn clear_calls(State(sb): State<Sandbox>) -> Json<Value> {
    lock(&sb.inner.calls).clear();
    Json(json!({ "success": true }))
}

async fn reset_rate_limits(State(sb): State<Sandbox>) -> Json<Value> {
    lock(&sb.inner.rates).reset();
    Json(json!({ "success": true }))
}
