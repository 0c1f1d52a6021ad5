//! `GET /openapi.json`: the API described from the handlers' own path attributes and the
//! types they answer, so a route or a field cannot drift from its description. The
//! dashboard (`/ui`) is a browser application with its own forms and is not part of it.

use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;

use crate::http::{
    accounts, api_keys, apps, audit, browser, health, meta, meta_webhooks, publish, suspension,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "igbroker",
        description = "A self-hosted Instagram token broker: connect accounts, keep their tokens \
                       fresh, and call the Graph API without the token leaving the broker. \
                       Every error answers `ErrorBody`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        apps::create, apps::list, apps::show, apps::update, apps::delete,
        browser::create_session, browser::show_session,
        accounts::list, accounts::import, accounts::show, accounts::revoke, accounts::token,
        accounts::refresh, accounts::graph_get, accounts::graph_post, accounts::graph_delete,
        suspension::suspend, suspension::resume,
        publish::create, publish::status,
        audit::list,
        api_keys::create, api_keys::list, api_keys::revoke,
        browser::connect, browser::callback,
        meta_webhooks::verify, meta_webhooks::notify,
        meta::deauthorize, meta::data_deletion, meta::status,
        health::healthz, health::readyz, health::metrics, document,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&Security),
    tags(
        (name = "apps", description = "Instagram app registrations"),
        (name = "connect", description = "Connecting accounts through Instagram's consent page"),
        (name = "accounts", description = "Connected accounts and their lifecycle"),
        (name = "tokens", description = "Reading a token (audited); prefer the graph proxy"),
        (name = "graph", description = "The Graph API through the broker"),
        (name = "publishing", description = "Publishing media with an account's token, once per Idempotency-Key"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "api-keys", description = "Keys for this API"),
        (name = "browser", description = "Pages the end user's browser visits"),
        (name = "meta", description = "Meta's callbacks"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    ),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("igb_…")
                    .description(Some(
                        "An igbroker API key: `Authorization: Bearer igb_…`. Its scopes and \
                         apps decide what it may do.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The refusals every `/v1` operation may answer, in the one error shape.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only described: the answers come from `ApiError`.
pub enum CommonErrors {
    /// The request is invalid; the message names what to fix
    #[response(status = 400)]
    Invalid(ErrorBody),
    /// No API key, or one the broker does not know
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The key lacks the scope, or is limited to other apps
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// This key's rate limit; wait `Retry-After` seconds
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// The broker or its database cannot serve now; retry
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// No such object, or one of another tenant's apps
#[derive(utoipa::IntoResponses)]
#[response(status = 404)]
#[allow(dead_code)]
pub struct NotFound(ErrorBody);

/// The account's state forbids it (the code says which)
#[derive(utoipa::IntoResponses)]
#[response(status = 409)]
#[allow(dead_code)]
pub struct Conflict(ErrorBody);

/// Instagram failed or answered something unusable
#[derive(utoipa::IntoResponses)]
#[response(status = 502)]
#[allow(dead_code)]
pub struct Upstream(ErrorBody);

/// The document, built once: it never changes while the process runs.
pub fn json() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"the document did not render: {e}\"}}"))
    })
}

#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "operations", summary = "This document (OpenAPI 3.1)",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn document() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_renders_and_is_openapi_3_1() {
        let v: serde_json::Value = serde_json::from_str(super::json()).unwrap();
        assert_eq!(v["openapi"], "3.1.0");
        assert!(v["paths"]["/v1/accounts/{id}/token"]["get"].is_object());
        // The shared refusal sets carry the one error shape.
        let missing = &v["paths"]["/v1/accounts/{id}"]["get"]["responses"]["404"];
        assert_eq!(
            missing["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        assert!(v["paths"]["/v1/apps"]["get"]["responses"]["429"].is_object());
    }
}
