//! `/openapi.json` describes the API the broker serves: every route in the router is in
//! the document, and every answer a route gives (without a key, with another tenant's or a
//! missing id, and on success) has a status and a body shape the document lists.
use super::common::*;
use reqwest::Method;
use serde_json::Value;

/// The routes the router declares, read from its source: `(path, methods)`. The dashboard
/// (`/ui`, merged from its own router) is a browser application, not part of the API.
fn declared_routes() -> Vec<(String, Vec<&'static str>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let mut routes = Vec::new();
    for file in ["mod.rs", "meta.rs"] {
        let src = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
        // `/v1` routes are declared on the nested router, between these two markers.
        let (v1_start, v1_end) = match (src.find("let v1 = Router::new()"), src.find(".fallback("))
        {
            (Some(a), Some(b)) => (a, b),
            _ => (usize::MAX, usize::MAX),
        };
        let mut at = 0;
        while let Some(i) = src[at..].find(".route(") {
            let start = at + i;
            // The call's text, up to its closing parenthesis.
            let rest = &src[start + 7..];
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap();
            let call = &rest[..end];
            let q1 = call.find('"').unwrap();
            let q2 = q1 + 1 + call[q1 + 1..].find('"').unwrap();
            let mut path = call[q1 + 1..q2].replace("{*", "{");
            if (v1_start..v1_end).contains(&start) {
                path = format!("/v1{path}");
            }
            let handlers = &call[q2..];
            let mut methods = Vec::new();
            for (needle, m) in [
                ("get(", "get"),
                ("post(", "post"),
                ("patch(", "patch"),
                ("delete(", "delete"),
            ] {
                if handlers.contains(needle) {
                    methods.push(m);
                }
            }
            if handlers.contains("any(") {
                methods.extend(["get", "post", "delete"]);
            }
            assert!(!methods.is_empty(), "no method read for route {path}");
            routes.push((path, methods));
            at = start + 7;
        }
    }
    routes
}

async fn document(env: &TestEnv) -> Value {
    let resp = env
        .http
        .get(format!("{}/openapi.json", env.broker))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    resp.json().await.unwrap()
}

async fn every_route_is_documented(env: TestEnv) {
    let doc = document(&env).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = declared_routes();
    assert!(
        routes.len() >= 25,
        "the route reader found too few routes: {routes:?}"
    );
    let mut missing = Vec::new();
    for (path, methods) in &routes {
        for m in methods {
            if !doc["paths"][path][m].is_object() {
                missing.push(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    // And nothing documented that the router does not serve.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in item.as_object().unwrap().keys() {
            assert!(
                routes
                    .iter()
                    .any(|(p, ms)| p == path && ms.contains(&m.as_str())),
                "documented but not routed: {m} {path}"
            );
        }
    }
    // Generators name a client's methods by operationId: each is given, and unique.
    let mut ids = std::collections::HashSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "operationId {id} is used twice");
        }
    }
    // Keys are described, and every /v1 operation requires one.
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        if path.starts_with("/v1/") {
            for (m, op) in item.as_object().unwrap() {
                assert_eq!(
                    op["security"][0]["api_key"],
                    serde_json::json!([]),
                    "{m} {path}"
                );
            }
        }
    }
}

/// The schema a `$ref` names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

/// The fields a documented answer requires are in the body (one level, and the first
/// item of a page).
fn conforms(doc: &Value, schema: &Value, body: &Value) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            conforms(doc, s, body)?;
        }
        return Ok(());
    }
    for field in schema["required"].as_array().into_iter().flatten() {
        let f = field.as_str().unwrap();
        if body.get(f).is_none() {
            return Err(format!("field `{f}` is missing"));
        }
        let fs = resolve(doc, &schema["properties"][f]);
        if fs["type"] == "array"
            && let Some(first) = body[f].get(0)
        {
            conforms(doc, &fs["items"], first).map_err(|e| format!("{f}[0]: {e}"))?;
        }
        if fs["required"].is_array() {
            conforms(doc, fs, &body[f]).map_err(|e| format!("{f}: {e}"))?;
        }
    }
    Ok(())
}

async fn every_answer_is_documented(env: TestEnv) {
    let doc = document(&env).await;
    let account = env.connect(USER, "user-1").await;
    // Another tenant: an app and account the limited key below may not reach.
    let other_app = env
        .register_app(serde_json::json!({"name": "Other tenant"}))
        .await;
    let other_app = s(&other_app["id"]);
    let other_account = env.connect_to(&other_app, OTHER_USER, "user-2").await;
    let (_, limited) = env
        .api(
            Method::POST,
            "/v1/api-keys",
            Some(serde_json::json!({"name": "limited", "scopes": ["accounts:read"], "app_ids": [env.app_id]})),
        )
        .await;
    let limited = s(&limited["key"]);
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let secured = op["security"][0].get("api_key").is_some();
            let real = path
                .replace(
                    "{id}",
                    if path.contains("api-keys") {
                        "key_nope"
                    } else {
                        &account
                    },
                )
                .replace("{app_id}", &env.app_id)
                .replace("{path}", "me")
                .replace("{code}", "nope");
            let foreign = path
                .replace("{id}", &other_account)
                .replace("{app_id}", &other_app)
                .replace("{path}", "me")
                .replace("{code}", "nope");
            let callers: Vec<(&str, Option<&str>, &str)> = if secured {
                vec![
                    ("no key", None, &real),
                    ("limited key", Some(&limited), &foreign),
                    ("admin", Some(&env.admin_key), &real),
                ]
            } else {
                vec![("no key", None, &real)]
            };
            for (who, key, url) in callers {
                // Deleting or revoking the one account the probe needs would end the probe early.
                if method == Method::DELETE && who == "admin" && !url.contains("key_nope") {
                    continue;
                }
                let mut req = env
                    .http
                    .request(method.clone(), format!("{}{url}", env.broker));
                if let Some(k) = key {
                    req = req.bearer_auth(k);
                }
                if method == Method::POST || method == Method::PATCH {
                    req = req.json(&serde_json::json!({}));
                }
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16().to_string();
                let text = resp.text().await.unwrap();
                assert_no_token_in(url, &text);
                let documented = &op["responses"][&status];
                assert!(
                    documented.is_object(),
                    "{method} {path} as {who} answered {status}, which the document does not list: {text}"
                );
                if let Some(schema) = documented["content"]["application/json"].get("schema") {
                    let body: Value = serde_json::from_str(&text)
                        .unwrap_or_else(|_| panic!("{method} {path} as {who}: not JSON: {text}"));
                    if let Err(e) = conforms(&doc, schema, &body) {
                        panic!("{method} {path} as {who} ({status}): {e}: {body}");
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 60, "only {checked} answers were checked");
}

both_backends!(route_coverage, every_route_is_documented);
both_backends!(answers_match_the_document, every_answer_is_documented);
