use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use igbroker_core::ApiScope;
use igbroker_store::AccountFilter;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::http::auth::Caller;
use crate::http::extract::{JsonBody, QueryParams};
use crate::http::openapi;
use crate::service::accounts::{self, AccountView};
use crate::service::connect::ImportRequest;
use crate::service::{graph, refresh};
use crate::state::AppState;
use crate::util::{Page, PageQuery, page, rfc3339};

#[derive(Deserialize)]
pub struct ListQuery {
    app_id: Option<String>,
    end_user: Option<String>,
    status: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

#[utoipa::path(
    get,
    path = "/v1/accounts",
    operation_id = "listAccounts",
    tag = "accounts",
    summary = "List connected accounts (scope accounts:read)",
    security(("api_key" = [])),
    params(("app_id" = Option<String>, Query, description = "Only this app's accounts (required for keys limited to some apps)"), ("end_user" = Option<String>, Query, description = "Only this end user's accounts"), ("status" = Option<String>, Query, description = "active, reauth_required, revoked or suspended"), ("limit" = Option<u32>, Query, description = "1 to 500, default 50"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses(
        (status = 200, description = "One page of accounts", body = Page<AccountView>),
        openapi::CommonErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<Page<AccountView>>> {
    caller.require(ApiScope::AccountsRead)?;
    let status = q
        .status
        .as_deref()
        .map(accounts::parse_status)
        .transpose()?;
    match (&q.app_id, caller.app_ids.is_empty()) {
        (Some(a), _) => caller.require_app(a)?,
        (None, false) => {
            return Err(ApiError::Forbidden(
                "this key is limited to some apps: pass app_id".into(),
            ));
        }
        (None, true) => {}
    }
    let limit = q.page.limit()?;
    let filter = AccountFilter {
        app_id: q.app_id.clone(),
        end_user: q.end_user.clone(),
        status,
        ..Default::default()
    };
    let rows = accounts::list(&state, &filter, q.page.after()?.as_deref(), limit + 1).await?;
    let (rows, next) = page(rows, limit, |r| r.id.clone());
    let now = state.now();
    let data: Vec<AccountView> = rows.iter().map(|r| AccountView::from_row(r, now)).collect();
    Ok(Json(Page {
        data,
        next_cursor: next,
    }))
}

pub(crate) async fn owned(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<igbroker_store::AccountRow> {
    let acc = accounts::get(state, id).await?;
    caller.require_app_of("account", id, &acc.app_id)?;
    Ok(acc)
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{id}",
    operation_id = "getAccount",
    tag = "accounts",
    summary = "One account (scope accounts:read)",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The account id (`acc_…`)")),
    responses(
        (status = 200, description = "The account", body = AccountView),
        openapi::CommonErrors, openapi::NotFound,
    )
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AccountView>> {
    caller.require(ApiScope::AccountsRead)?;
    let acc = owned(&state, &caller, &id).await?;
    Ok(Json(AccountView::from_row(&acc, state.now())))
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/token",
    operation_id = "readToken",
    tag = "tokens",
    summary = "The account's access token, audited (scope tokens:read)",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The account id (`acc_…`)")),
    responses(
        (status = 200, description = "The token; never cache beyond expires_at", body = TokenAnswer),
        openapi::CommonErrors, openapi::NotFound, openapi::Conflict,
    )
)]
pub async fn token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(ApiScope::TokensRead)?;
    let acc = owned(&state, &caller, &id).await?;
    let (acc, token) = crate::service::tokens::hand_out(&state, acc, &caller.actor()).await?;
    let body = TokenAnswer {
        access_token: token.expose_secret(),
        expires_at: acc.expires_at.map(rfc3339),
        scopes: acc.scopes.iter().map(|s| s.as_str()).collect(),
    };
    Ok((
        StatusCode::OK,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response())
}

/// The token read's answer, serialized once straight from the fields: no intermediate
/// JSON tree.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TokenAnswer<'a> {
    /// The long-lived Instagram token. Keep it in memory only.
    pub access_token: &'a str,
    pub expires_at: Option<String>,
    /// The Instagram scopes the user granted.
    pub scopes: Vec<&'static str>,
}

/// `DELETE /v1/accounts/{id}`'s answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RevokedAccount {
    pub id: String,
    pub status: &'static str,
    /// Instagram has no revocation endpoint: the token is destroyed here, and the user
    /// removes the app in Instagram's settings.
    pub upstream_revoked: bool,
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/refresh",
    operation_id = "refreshAccount",
    tag = "accounts",
    summary = "Refresh the token now (scope accounts:write)",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The account id (`acc_…`)")),
    responses(
        (status = 200, description = "The account", body = AccountView),
        openapi::CommonErrors, openapi::NotFound, openapi::Conflict, openapi::Upstream,
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AccountView>> {
    caller.require(ApiScope::AccountsWrite)?;
    owned(&state, &caller, &id).await?;
    let acc = refresh::refresh_now(&state, &id, &caller.actor()).await?;
    Ok(Json(AccountView::from_row(&acc, state.now())))
}

#[utoipa::path(
    delete,
    path = "/v1/accounts/{id}",
    operation_id = "revokeAccount",
    tag = "accounts",
    summary = "Revoke the account and destroy its token (scope accounts:write)",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The account id (`acc_…`)")),
    responses(
        (status = 200, description = "The account is revoked", body = RevokedAccount),
        openapi::CommonErrors, openapi::NotFound,
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<RevokedAccount>> {
    caller.require(ApiScope::AccountsWrite)?;
    owned(&state, &caller, &id).await?;
    let acc = accounts::revoke(&state, &id, &caller.actor(), "revoked_by_api").await?;
    Ok(Json(RevokedAccount {
        id: acc.id,
        status: acc.status.as_str(),
        upstream_revoked: false,
    }))
}

#[utoipa::path(
    post,
    path = "/v1/accounts/import",
    operation_id = "importAccount",
    tag = "accounts",
    summary = "Adopt a long-lived token obtained elsewhere (scope accounts:write)",
    security(("api_key" = [])),
    request_body = ImportRequest,
    responses(
        (status = 201, description = "A new account", body = AccountView),
        (status = 200, description = "The account existed; its token was replaced", body = AccountView),
        openapi::CommonErrors, openapi::NotFound, openapi::Upstream,
    )
)]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<ImportRequest>,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    caller.require(ApiScope::AccountsWrite)?;
    caller.require_app(&req.app_id)?;
    let (acc, created) = crate::service::connect::import(&state, req, &caller.actor()).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(AccountView::from_row(&acc, state.now()))))
}

// One operation per method in the API document; one implementation.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/graph/{path}",
    operation_id = "graphGet",
    tag = "graph",
    summary = "Read from the Instagram Graph API as the account (scope graph)",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The account id (`acc_…`)"), ("path" = String, Path, description = "A Graph object or edge path such as `me/media`; token and OAuth endpoints are refused")),
    responses(
        (status = 200, description = "Instagram's answer, with the token and host removed from paging links", body = Object),
        openapi::CommonErrors, openapi::NotFound, openapi::Conflict, openapi::Upstream,
    )
)]
pub async fn graph_get(
    state: State<AppState>,
    caller: Caller,
    method: Method,
    path: Path<(String, String)>,
    query: RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // Graph reads and deletes take their parameters from the query alone.
    graph(state, caller, method, path, query, headers, Bytes::new()).await
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/graph/{path}",
    operation_id = "graphPost",
    tag = "graph",
    summary = "Write through the Graph API as the account (scope graph, and publish or comments:manage as the path needs)",
    security(("api_key" = [])),
    request_body(content = Object, description = "Graph parameters for POST: a flat JSON object or a form (they may also come in the query)"),
    params(("id" = String, Path, description = "The account id (`acc_…`)"), ("path" = String, Path, description = "A Graph object or edge path such as `me/media`; token and OAuth endpoints are refused")),
    responses(
        (status = 200, description = "Instagram's answer, with the token and host removed from paging links", body = Object),
        openapi::CommonErrors, openapi::NotFound, openapi::Conflict, openapi::Upstream,
    )
)]
pub async fn graph_post(
    state: State<AppState>,
    caller: Caller,
    method: Method,
    path: Path<(String, String)>,
    query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    graph(state, caller, method, path, query, headers, body).await
}

#[utoipa::path(
    delete,
    path = "/v1/accounts/{id}/graph/{path}",
    operation_id = "graphDelete",
    tag = "graph",
    summary = "Delete through the Graph API as the account (scope graph and comments:manage)",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The account id (`acc_…`)"), ("path" = String, Path, description = "A Graph object or edge path such as `me/media`; token and OAuth endpoints are refused")),
    responses(
        (status = 200, description = "Instagram's answer, with the token and host removed from paging links", body = Object),
        openapi::CommonErrors, openapi::NotFound, openapi::Conflict, openapi::Upstream,
    )
)]
pub async fn graph_delete(
    state: State<AppState>,
    caller: Caller,
    method: Method,
    path: Path<(String, String)>,
    query: RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // Graph reads and deletes take their parameters from the query alone.
    graph(state, caller, method, path, query, headers, Bytes::new()).await
}

pub async fn graph(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    Path((id, path)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require(ApiScope::Graph)?;
    let acc = owned(&state, &caller, &id).await?;
    let mut params: Vec<(String, String)> = match query.as_deref() {
        Some(q) => serde_urlencoded::from_str(q)
            .map_err(|e| ApiError::InvalidRequest(format!("the query string is not valid: {e}")))?,
        None => Vec::new(),
    };
    params.extend(body_params(&headers, &body)?);
    // The allow-list decides before anything leaves the broker: path, method, reserved
    // parameters (query, form and JSON alike), and the scopes the call needs.
    let route = igbroker_core::graph_policy::check(
        method.as_str(),
        &path,
        params.iter().map(|(k, _)| k.as_str()),
    )
    .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    for scope in &route.api_scopes {
        caller.require(*scope)?;
    }
    let method = reqwest::Method::from_bytes(route.method.as_str().as_bytes())
        .map_err(|_| ApiError::InvalidRequest("unsupported method".into()))?;
    let answer = graph::call(
        &state,
        acc,
        &caller.actor(),
        graph::GraphCall {
            method,
            path: route.path,
            params,
        },
    )
    .await?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    Ok((status, Json(answer.body)).into_response())
}

/// Graph parameters may come as a form or as a flat JSON object.
fn body_params(headers: &HeaderMap, body: &Bytes) -> ApiResult<Vec<(String, String)>> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let ctype = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype.starts_with("application/json") {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::InvalidRequest(format!("the body is not valid JSON: {e}")))?;
        let Value::Object(map) = v else {
            return Err(ApiError::InvalidRequest(
                "the JSON body must be an object of Graph parameters".into(),
            ));
        };
        Ok(map
            .into_iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, s)
            })
            .collect())
    } else if ctype.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::InvalidRequest(format!("the form body is not valid: {e}")))
    } else {
        Err(ApiError::InvalidRequest(
            "send Graph parameters in the query, as a form, or as a JSON object".into(),
        ))
    }
}
